"""The six representations of the reference paper, and the OGM-GE one, described once.

This module holds the facts every side agrees on (a variant's name, family, modality, the tensor
shape it loads as, the tar members it stores) and nothing heavy to import: the builder adds how
each variant is rendered (`crema_tools.builder.render`), the loader how it is decoded, and the
model zoo which encoders take it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import CremaToolsError

HEIGHT = 224
SQUARE_WIDTH = 224
WIDE_WIDTH = 448  # face (or frame) and spectrogram side by side
FPS = 24  # the paper's 3D frame rate
FAMILIES = ("2d", "3d")
MODALITIES = ("audio", "vision", "multimodal")
MULTIMODAL_LAYOUTS = ("wide", "squeezed")
"""3d-multimodal frames: frame | chunk at 224 + 224 ("wide", the paper's 3D CNNs) or 208 + 16
("squeezed", the paper's VideoMAE input)."""

MEL_FEATURE = {"list": {"list": "float16"}}
META_3D = {"n_frames": "int64", "fps": "int64", "face_keyframes_found": "int64"}
META_OGM_GE = {"n_frames": "int64", "frame_indices": {"sequence": "int64"}, "source_fps": "int64"}
"""ogm-ge: frames in the sample's image strip, their indices in the source video, its frame rate."""


class VariantError(CremaToolsError, ValueError):
    """An unknown variant name, or an option that does not apply to a variant."""


@dataclass(frozen=True)
class Variant:
    """One representation: which split family applies, what it holds, how it is stored and loaded."""

    name: str
    family: str  # "2d" (one image per clip) or "3d" (a sequence of frames per clip)
    modality: str  # "audio", "vision" or "multimodal"
    description: str
    shape: str  # the canonical tensor shape `crema_tools.load` yields, as documented
    members: dict = field(default_factory=lambda: {"png": "image"})  # tar member -> dataset feature dtype
    metadata_fields: dict = field(default_factory=dict)  # per-sample fields besides the common ones
    paper: bool = True  # one of the reference paper's six representations (what the model zoo takes)

    @property
    def dims(self) -> int:
        return 2 if self.family == "2d" else 3

    @property
    def has_audio(self) -> bool:
        return self.modality in ("audio", "multimodal")

    @property
    def has_vision(self) -> bool:
        return self.modality in ("vision", "multimodal")

    @property
    def width(self) -> int:
        """Canonical width for CNNs; multimodal inputs put two 224-wide images side by side."""
        return WIDE_WIDTH if self.modality == "multimodal" else SQUARE_WIDTH


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("2d-audio", "2d", "audio", "the clip's mel spectrogram as a 224x224 grayscale image",
                "(3, 224, 224)"),
        Variant("2d-vision", "2d", "vision", "the MTCNN face crop of the middle frame, 224x224 RGB",
                "(3, 224, 224)"),
        Variant("2d-multimodal", "2d", "multimodal",
                "face crop and spectrogram side by side, 224 high x 448 wide RGB", "(3, 224, 448)"),
        Variant("3d-audio", "3d", "audio",
                "the mel spectrogram (float16 dB), cut at load time into one 224x224 chunk per 24 fps frame",
                "(T, 3, 224, 224)", members={"npy": MEL_FEATURE}, metadata_fields=META_3D),
        Variant("3d-vision", "3d", "vision", "the clip's frames at 24 fps, 224x224 RGB, stored as H.264",
                "(T, 3, 224, 224)", members={"mp4": "binary"}, metadata_fields=META_3D),
        Variant("3d-multimodal", "3d", "multimodal",
                "frames at 24 fps (H.264) and the mel (float16); frame i and chunk i cover the same 1/24 s",
                "(T, 3, 224, 448) wide, (T, 3, 224, 224) squeezed",
                members={"mp4": "binary", "npy": MEL_FEATURE}, metadata_fields=META_3D),
        # OGM-GE's inputs (GeWu-Lab/OGM-GE_CVPR2022), for comparison with it and its successors; its
        # split family is 2D, though the ogm-ge protocol splits 2D and 3D alike (docs/ogm-ge.md)
        Variant("ogm-ge", "2d", "multimodal",
                "OGM-GE's inputs: the full frames at 1 fps (the first of every second) as one JPEG strip, "
                "and the log-magnitude STFT of the audio tiled to 3 s at 22,050 Hz (257 x 188, float16)",
                "spectrogram (257, 188), images (3, frames, 224, 224)",
                members={"jpg": "image", "npy": MEL_FEATURE}, metadata_fields=META_OGM_GE, paper=False),
    )
}
VARIANTS_2D = tuple(name for name, v in VARIANTS.items() if v.paper and v.family == "2d")
VARIANTS_3D = tuple(name for name, v in VARIANTS.items() if v.paper and v.family == "3d")
"""The reference paper's representations of each family: the inputs the model zoo's encoders take."""


def get_variant(name: str) -> Variant:
    """The variant called `name`; the error lists the valid names."""
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        raise VariantError(f"unknown variant {name!r}: choose from {', '.join(VARIANTS)}") from None


def get_variants(names) -> list[Variant]:
    """Several variants, in the order given, each once; at least one."""
    if not names:
        raise VariantError(f"no variant given: choose from {', '.join(VARIANTS)}")
    return [get_variant(n) for n in dict.fromkeys(names)]
