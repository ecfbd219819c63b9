"""How each representation is rendered into tar members: the builder's half of a variant.

A renderer never decodes anything itself: the build runs the union of the steps of the variants
being built, once per clip, and hands each renderer the features it asked for. The variant's
shared facts (family, modality, members, shape) live in `crema_tools.variants`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from .. import ogm_ge, spectrogram, video3d
from ..faces import crop_resize, square_crop_box
from ..variants import HEIGHT as SIZE
from ..variants import VARIANTS, Variant, get_variants
from .extract import ClipFeatures


@dataclass(frozen=True)
class Renderer:
    variant: Variant
    steps: tuple[str, ...]  # extraction steps whose success the variant needs
    uses_face: bool
    render: Callable[[ClipFeatures], dict[str, bytes]]  # tar members besides json and cls
    params: dict  # how it was made, recorded in the report and the card
    metadata: Callable[[ClipFeatures], dict] | None = None  # per-sample fields besides the common ones

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def family(self) -> str:
        return self.variant.family


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
                "storage": video3d.CODEC, "resize": video3d.RESIZE, "face_crop": False}
MEL_3D_PARAMS = {**spectrogram.PARAMS, "storage": "float16 dB re clip max, floored at -80 dB, shape (n_mels, columns)",
                 "chunks": "chunk i = the mel columns centred in [i/24, (i+1)/24) s; each resized to 224x224 when loaded"}

def jpeg(array: np.ndarray) -> bytes:
    """Baseline JPEG at fixed settings (quality 95, 4:2:0): the same bytes for the same pixels."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=ogm_ge.JPEG_QUALITY, subsampling="4:2:0",
                                optimize=False, progressive=False)
    return buf.getvalue()


def _render_ogm_ge(f: ClipFeatures) -> dict[str, bytes]:
    # frames side by side: 480 is a whole number of JPEG blocks, so each frame is coded as it
    # would be alone (only chroma upsampling at the seams looks across when decoding)
    strip = np.concatenate(list(f.frames_1fps), axis=1)
    buf = io.BytesIO()
    np.save(buf, f.ogm_ge_spectrogram.astype(np.float16), allow_pickle=False)
    return {"jpg": jpeg(strip), "npy": buf.getvalue()}


def _metadata_ogm_ge(f: ClipFeatures) -> dict:
    # audio_source is a common field the pipeline fills for "mel" variants only: set it here
    return {"n_frames": len(f.frame_indices), "frame_indices": list(f.frame_indices), "source_fps": f.source_fps,
            "audio_source": f.audio_source}


OGM_GE_PARAMS = {
    "reference": "GeWu-Lab/OGM-GE_CVPR2022: data/CREMAD/video_preprocessing.py, dataset/CramedDataset.py",
    "frames": {
        "source": "VideoFlash FLV, the full frame (no face crop), RGB",
        "rule": "of the decoded video, frame indices 0, fps, 2 fps, ...: the first frame of every second "
                "(video2frame_update with frame_kept_per_second=1); fps the stream's whole frame rate (30)",
        "storage": f"one JPEG strip, frames side by side in time order, quality {ogm_ge.JPEG_QUALITY}, 4:2:0, "
                   "full size (480 x 360 each); n_frames and frame_indices in the sample's json",
        "at load": "frames picked per clip (random at training, the first at test), RandomResizedCrop(224) and "
                   "horizontal flip at training, Resize((224, 224)) at test, ImageNet mean and std",
    },
    "spectrogram": {"source": "AudioWAV (the FLV's audio track when there is no WAV)", **ogm_ge.STFT_PARAMS,
                    "resampling": spectrogram.PARAMS.get("resampling")},
    "labels": {"cls and json label": "crema-tools order: ANG, DIS, FEA, HAP, NEU, SAD",
               "ogm-ge order (decode's default)": list(ogm_ge.CLASS_ORDERS["ogm-ge"])},
}

RENDERERS: dict[str, Renderer] = {
    r.name: r
    for r in (
        Renderer(VARIANTS["2d-audio"], ("mel",), False, _render_2d_audio, {"spectrogram": MEL_IMAGE_PARAMS}),
        Renderer(VARIANTS["2d-vision"], ("middle_frame",), True, _render_2d_vision, {"face": FACE_PARAMS}),
        Renderer(VARIANTS["2d-multimodal"], ("middle_frame", "mel"), True, _render_2d_multimodal,
                 {"face": FACE_PARAMS, "spectrogram": MEL_IMAGE_PARAMS}),
        Renderer(VARIANTS["3d-audio"], ("mel",), False, _render_3d_audio, {"spectrogram": MEL_3D_PARAMS},
                 _metadata_3d),
        Renderer(VARIANTS["3d-vision"], ("video_24fps",), False, _render_3d_vision, {"video": VIDEO_PARAMS},
                 _metadata_3d),
        Renderer(VARIANTS["3d-multimodal"], ("video_24fps", "mel"), False, _render_3d_multimodal,
                 {"video": VIDEO_PARAMS, "spectrogram": MEL_3D_PARAMS}, _metadata_3d),
        Renderer(VARIANTS["ogm-ge"], ("frames_1fps", "ogm_ge_stft"), False, _render_ogm_ge, OGM_GE_PARAMS,
                 _metadata_ogm_ge),
    )
}


def get_renderers(names) -> list[Renderer]:
    """The renderers of the named variants (an unknown name is a VariantError listing the valid ones)."""
    return [RENDERERS[v.name] for v in get_variants(names)]
