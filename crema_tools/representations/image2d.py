"""The reference paper's 2D representations: one image per clip, of the face, the mel, or both.

- `2d-vision`: the MTCNN face crop of the middle frame, 224x224 RGB;
- `2d-audio`: the whole clip's mel spectrogram (dB) resized to 224x224, grayscale;
- `2d-multimodal`: both side by side, 224 high x 448 wide.

Stored as one PNG per sample; loaded as (C, 224, W) float32 in [0, 1] or uint8.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import media
from ..errors import LoadError
from ..media import spectrogram
from ..media.faces import crop_resize, square_crop_box
from .base import HEIGHT as SIZE
from .base import BuildOptions, Features, Representation, Step, non_finite
from .options import LoadOptions
from .steps import MEL, checked_video, dynamic_range_flag, fill_in_audio


def step_middle_frame(raw: Path, f: Features) -> None:
    """The frame at half the video's duration, RGB."""
    path, rel = checked_video(raw, f)
    f["middle_frame"], f["video_duration"] = media.read_middle_frame(path, rel)


MIDDLE_FRAME = Step("middle_frame", step_middle_frame, ("middle_frame", "video_duration"))


def png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)  # 4x faster than 6, 16% larger
    return buf.getvalue()


def face_image(f: Features) -> np.ndarray:
    """The middle frame's face, squared with a margin and resized to 224x224 RGB."""
    def make():
        frame = f["middle_frame"]
        return crop_resize(frame, square_crop_box(f["face"], frame.shape[1], frame.shape[0]), SIZE)

    return f.derive("face", make)


def spectrogram_image(f: Features) -> np.ndarray:
    """The whole clip's mel spectrogram (dB) resized to 224x224, grayscale."""
    import torch

    return f.derive("spectrogram", lambda: spectrogram.db_image(torch.from_numpy(f["mel_db"]), SIZE, SIZE))


FACE_PARAMS = {"detector": "facenet-pytorch MTCNN", "min_face_size": 40, "crop": "square, 20% margin", "size": SIZE,
               "frame": "middle (half the duration)", "no_face": "centre square crop, face_found false",
               "resize": {"by": "Pillow Image.resize", "kernel": "bilinear (triangle)", "antialias": True,
                          "on": "the RGB crop, uint8"}}
MEL_IMAGE_PARAMS = {**spectrogram.PARAMS, "image": "dB re clip max, -80..0 dB -> 0..255, low frequencies at the bottom",
                    "size": [SIZE, SIZE],
                    "resize": {"by": "torch.nn.functional.interpolate", "kernel": "bilinear", "align_corners": False,
                               "antialias": False, "on": "the float32 dB mel, before it is scaled to 0..255"}}
PARTS = {"face": ("middle_frame", {"face": FACE_PARAMS}), "mel": ("mel", {"spectrogram": MEL_IMAGE_PARAMS})}


@dataclass(frozen=True, kw_only=True)
class PaperImage(Representation):
    """One image per clip: the face crop, the mel image, or both side by side (face left)."""

    split_family: str = "2d"
    layout: str = "image"
    members: dict = field(default_factory=lambda: {"png": "image"})
    options_type: type = LoadOptions

    def __post_init__(self):
        parts = {"vision": ("face",), "audio": ("mel",), "multimodal": ("face", "mel")}[self.modality]
        object.__setattr__(self, "needs", tuple(PARTS[p][0] for p in parts))
        object.__setattr__(self, "params", {k: v for p in parts for k, v in PARTS[p][1].items()})
        object.__setattr__(self, "uses_face", self.has_vision)

    def steps(self, options: BuildOptions) -> tuple[Step, ...]:
        return tuple({"middle_frame": MIDDLE_FRAME, "mel": MEL}[name] for name in self.needs)

    def unusable(self, f: Features) -> str | None:
        labels = {"middle_frame": ("middle_frame", "middle frame"), "mel": ("mel_db", "mel spectrogram")}
        return non_finite(f, dict(labels[name] for name in self.needs))

    def render(self, f: Features) -> dict[str, bytes]:
        if self.modality == "vision":
            return {"png": png(face_image(f))}
        spec = spectrogram_image(f)
        if self.modality == "audio":
            return {"png": png(spec)}
        return {"png": png(np.concatenate([face_image(f), np.repeat(spec[:, :, None], 3, axis=2)], axis=1))}

    def flags(self, f: Features) -> list[dict]:
        return dynamic_range_flag(f) if self.has_audio else []

    def check_options(self, opts: LoadOptions) -> None:
        opts.check()
        if opts.dtype == "planes":
            raise LoadError(f"{self.name}: dtype='planes' applies to 3D configs only (a 2D sample is one "
                            "image: dtype='uint8' is its compact form)")
        if opts.frame_options:
            raise LoadError(f"{self.name}: {' and '.join(opts.frame_options)} apply to 3D configs only "
                            "(a 2D sample is one image)")
        if opts.multimodal_layout is not None:
            raise LoadError(f"{self.name}: multimodal_layout applies to 3d-multimodal only")

    def decode_inputs(self, members: dict[str, bytes], meta: dict, opts: LoadOptions, split: str) -> dict:
        return {"inputs": image_tensor(members["png"], opts.channels, opts.dtype)}

    def fill_in(self, f: Features) -> list[str]:
        return fill_in_audio(self, f)

    def preview(self, members: dict[str, bytes]):
        from ..media.pictures import image_panel

        return image_panel(members["png"])


def image_tensor(blob: bytes, channels: int, dtype: str):
    """(C, H, W) from a PNG: uint8 as stored, or float32 in [0, 1]."""
    import torch
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    t = torch.from_numpy(arr.copy())
    t = t[None] if channels == 1 else t.permute(2, 0, 1).contiguous()
    return t if dtype == "uint8" else t.float().div_(255.0)


REPRESENTATIONS = (
    PaperImage(name="2d-audio", modality="audio", shape="(3, 224, 224)",
               description="the clip's mel spectrogram as a 224x224 grayscale image"),
    PaperImage(name="2d-vision", modality="vision", shape="(3, 224, 224)",
               description="the MTCNN face crop of the middle frame, 224x224 RGB"),
    PaperImage(name="2d-multimodal", modality="multimodal", shape="(3, 224, 448)",
               description="face crop and spectrogram side by side, 224 high x 448 wide RGB"),
)
