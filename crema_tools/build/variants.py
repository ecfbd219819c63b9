"""Each dataset representation as a small declarative unit: the steps it needs and how it renders.

A variant never decodes anything itself: the build runs the union of the steps of the variants
being built, once per clip, and hands each variant the features it asked for.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

from .. import spectrogram, video3d
from ..faces import crop_resize, square_crop_box
from .extract import ClipFeatures

SIZE = 224


@dataclass(frozen=True)
class Variant:
    name: str
    family: str  # "2d" or "3d": which split of a protocol applies
    steps: tuple[str, ...]  # extraction steps whose success the variant needs
    uses_face: bool
    render: Callable[[ClipFeatures], dict[str, bytes]]  # tar members besides json and cls
    description: str
    shape: str  # the canonical tensor shape `crema_tools.load` yields
    params: dict
    members: dict = field(default_factory=lambda: {"png": "image"})  # tar member -> dataset feature dtype
    metadata: Callable[[ClipFeatures], dict] | None = None  # per-sample fields besides the common ones
    metadata_fields: dict = field(default_factory=dict)  # their dataset feature dtypes


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)  # 4x faster than 6, 16% larger
    return buf.getvalue()


def face_image(f: ClipFeatures) -> np.ndarray:
    """The middle frame's face, squared with a margin and resized to 224x224 RGB."""
    if "face" not in f.derived:
        frame = f.middle_frame
        f.derived["face"] = crop_resize(frame, square_crop_box(f.face, frame.shape[1], frame.shape[0]), SIZE)
    return f.derived["face"]


def spectrogram_image(f: ClipFeatures) -> np.ndarray:
    """The whole clip's mel spectrogram (dB) resized to 224x224, grayscale."""
    import torch

    if "spectrogram" not in f.derived:
        f.derived["spectrogram"] = spectrogram.db_image(torch.from_numpy(f.mel_db), SIZE, SIZE)
    return f.derived["spectrogram"]


def _render_2d_vision(f: ClipFeatures) -> dict[str, bytes]:
    return {"png": png(face_image(f))}


def _render_2d_audio(f: ClipFeatures) -> dict[str, bytes]:
    return {"png": png(spectrogram_image(f))}


def _render_2d_multimodal(f: ClipFeatures) -> dict[str, bytes]:
    spec = np.repeat(spectrogram_image(f)[:, :, None], 3, axis=2)
    return {"png": png(np.concatenate([face_image(f), spec], axis=1))}


FACE_PARAMS = {"detector": "facenet-pytorch MTCNN", "min_face_size": 40, "crop": "square, 20% margin", "size": SIZE,
               "frame": "middle (half the duration)", "no_face": "centre square crop, face_found false"}
MEL_IMAGE_PARAMS = {**spectrogram.PARAMS, "image": "dB re clip max, -80..0 dB -> 0..255, low frequencies at the bottom",
                    "size": [SIZE, SIZE]}

def _mel_npy(f: ClipFeatures) -> bytes:
    if "mel_npy" not in f.derived:
        buf = io.BytesIO()
        np.save(buf, f.mel_db.astype(np.float16), allow_pickle=False)
        f.derived["mel_npy"] = buf.getvalue()
    return f.derived["mel_npy"]


def _frames_3d(f: ClipFeatures) -> int:
    """Frames of the 24 fps grid: from the video when it was decoded, else from the audio's length."""
    if f.n_frames is not None:
        return f.n_frames
    return int(np.floor(f.audio_duration * video3d.FPS + 1e-6))


def _metadata_3d(f: ClipFeatures) -> dict:
    return {"n_frames": _frames_3d(f), "fps": video3d.FPS, "face_keyframes_found": f.track_faces}


def _render_3d_audio(f: ClipFeatures) -> dict[str, bytes]:
    return {"npy": _mel_npy(f)}


def _render_3d_vision(f: ClipFeatures) -> dict[str, bytes]:
    return {"mp4": f.video_mp4}


def _render_3d_multimodal(f: ClipFeatures) -> dict[str, bytes]:
    return {"mp4": f.video_mp4, "npy": _mel_npy(f)}


VIDEO_PARAMS = {"fps": video3d.FPS, "size": [video3d.SIZE, video3d.SIZE], "resampling": "by timestamp",
                "storage": video3d.CODEC, "face_crop": False}
MEL_3D_PARAMS = {**spectrogram.PARAMS, "storage": "float16 dB re clip max, floored at -80 dB, shape (n_mels, columns)",
                 "chunks": "chunk i = the mel columns centred in [i/24, (i+1)/24) s; each resized to 224x224 when loaded"}
META_3D = {"n_frames": "int64", "fps": "int64", "face_keyframes_found": "int64"}
MEL_FEATURE = {"list": {"list": "float16"}}

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("2d-audio", "2d", ("mel",), False, _render_2d_audio,
                "the clip's mel spectrogram as a 224x224 grayscale image", "(3, 224, 224)",
                {"spectrogram": MEL_IMAGE_PARAMS}),
        Variant("2d-vision", "2d", ("middle_frame",), True, _render_2d_vision,
                "the MTCNN face crop of the middle frame, 224x224 RGB", "(3, 224, 224)",
                {"face": FACE_PARAMS}),
        Variant("2d-multimodal", "2d", ("middle_frame", "mel"), True, _render_2d_multimodal,
                "face crop | spectrogram side by side, 224 high x 448 wide RGB", "(3, 224, 448)",
                {"face": FACE_PARAMS, "spectrogram": MEL_IMAGE_PARAMS}),
        Variant("3d-audio", "3d", ("mel",), False, _render_3d_audio,
                "the mel spectrogram (float16 dB), cut at load time into one 224x224 chunk per 24 fps frame",
                "(T, 3, 224, 224)", {"spectrogram": MEL_3D_PARAMS},
                members={"npy": MEL_FEATURE}, metadata=_metadata_3d, metadata_fields=META_3D),
        Variant("3d-vision", "3d", ("video_24fps",), False, _render_3d_vision,
                "the clip's frames at 24 fps, 224x224 RGB, stored as H.264",
                "(T, 3, 224, 224)", {"video": VIDEO_PARAMS},
                members={"mp4": "binary"}, metadata=_metadata_3d, metadata_fields=META_3D),
        Variant("3d-multimodal", "3d", ("video_24fps", "mel"), False, _render_3d_multimodal,
                "frames at 24 fps (H.264) and the mel (float16); frame i and chunk i cover the same 1/24 s",
                "(T, 3, 224, 448) wide, (T, 3, 224, 224) squeezed", {"video": VIDEO_PARAMS, "spectrogram": MEL_3D_PARAMS},
                members={"mp4": "binary", "npy": MEL_FEATURE}, metadata=_metadata_3d, metadata_fields=META_3D),
    )
}


class VariantError(ValueError):
    pass


def get_variants(names) -> list[Variant]:
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise VariantError(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}")
    if not names:
        raise VariantError(f"no variant given: choose from {', '.join(VARIANTS)}")
    return [VARIANTS[n] for n in dict.fromkeys(names)]
