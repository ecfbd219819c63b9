"""The reference paper's 3D representations: a clip of frames at 24 fps, of the video, the mel, or both.

- `3d-vision`: the clip's frames at 24 fps, 224x224 RGB, stored as H.264;
- `3d-audio`: the whole mel (float16 dB), cut at load time into one 224x224 chunk per frame;
- `3d-multimodal`: both; frame i and chunk i cover the same 1/24 s.

Loaded as (T, C, 224, W) with a mask over T (float32 or uint8), or in the `planes` form (the
stored YUV planes and mel, assembled on the device by `assemble`). See `crema_tools.load`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import media
from ..errors import LoadError
from ..media import spectrogram, video3d
from ..media.faces import Face
from .base import BuildOptions, Features, Representation, Step, non_finite, npy
from .options import MULTIMODAL_LAYOUTS, LoadOptions
from .steps import MEL, checked_video, dynamic_range_flag, fill_in_audio

SQUEEZED_FRAME_WIDTH, SQUEEZED_CHUNK_WIDTH = 208, 16

# ---------------------------------------------------------------- extraction


def frames_24fps(raw: Path, f: Features) -> tuple[list[np.ndarray], list[int]]:
    """Every frame decoded as YUV 4:2:0 planes, and which of them is shown at each 24 fps instant."""
    path, rel = checked_video(raw, f)
    planes, times, f["video_duration"] = media.read_all_frames(path, rel, pixel_format="yuv420p")
    return planes, video3d.resample_times(times, video3d.source_fps(times))


def keyframe_indices(n: int) -> list[int]:
    """The `video3d.FACE_KEYFRAMES` frames of the 24 fps grid that MTCNN looks at."""
    return sorted({round(k) for k in np.linspace(0, n - 1, video3d.FACE_KEYFRAMES)})


def keyframe_images(planes: Sequence[np.ndarray], picks: list[int], keys: list[int]) -> np.ndarray:
    """(K, H, W, 3) uint8 RGB of the keyframes."""
    height, width = planes[0].shape[0] * 2 // 3, planes[0].shape[1]
    rgb = np.empty((len(keys), 3, height, width), np.float32)
    video3d.yuv_to_rgb(np.stack([planes[picks[k]] for k in keys]), rgb)
    return (rgb.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)


def step_face_keyframes(raw: Path, f: Features) -> None:
    """--face-crop on a GPU, first pass: the keyframes' RGB images. The build then finds the faces of
    many clips' keyframes in one MTCNN batch on its device, and `step_video_24fps` crops."""
    planes, picks = frames_24fps(raw, f)
    f["keyframes"] = keyframe_images(planes, picks, keyframe_indices(len(picks)))


def step_video_24fps(raw: Path, f: Features, face_crop: bool = False) -> None:
    """Every frame decoded, put on the 24 fps grid by timestamp, (face-)cropped, 224x224, H.264.

    Frames stay in the FLV's own YUV 4:2:0 from decoding to encoding. With --face-crop the boxes
    found on the keyframes (`keyframe_faces`, set by the build between its two passes on a GPU;
    else found here, on the CPU, one clip's keyframes in one MTCNN call) are interpolated to every
    frame.
    """
    from ..media import faces

    if "face_keyframes" in f.errors:  # the first pass could not read the video: neither can this one
        raise media.MediaError(f.errors["face_keyframes"])
    planes, picks = frames_24fps(raw, f)
    height, width = planes[0].shape[0] * 2 // 3, planes[0].shape[1]
    if face_crop:
        keys = keyframe_indices(len(picks))
        found = f.get("keyframe_faces")
        if found is None:
            found = faces.detect_faces(list(keyframe_images(planes, picks, keys)), device="cpu")
        f["track_faces"] = sum(x.found for x in found)
        boxes = video3d.interpolate_boxes(keys, [x.box for x in found], len(picks))
        # no face on any keyframe: the centre square, as the 2D crop does
        crops = [faces.square_crop_box(Face(b, 1.0 if b else 0.0), width, height) for b in boxes]
    else:
        crops = [(0, 0, width, height)] * len(picks)
    f["n_frames"] = len(picks)
    f["video_mp4"] = video3d.encode_frames([video3d.crop_resize_frame(planes[p], c) for p, c in zip(picks, crops)])


VIDEO_PARAMS = {"fps": video3d.FPS, "size": [video3d.SIZE, video3d.SIZE], "resampling": "by timestamp",
                "storage": video3d.CODEC, "resize": video3d.RESIZE, "face_crop": False}
SQUEEZED_RESIZE = {"at": "load", "by": "Pillow Image.resize on the YUV planes (the device transform repeats its "
                   "fixed-point arithmetic exactly)", "kernel": "bilinear (triangle)", "antialias": True, "to": "208 wide"}
MEL_3D_PARAMS = {**spectrogram.PARAMS, "storage": "float16 dB re clip max, floored at -80 dB, shape (n_mels, columns)",
                 "chunks": "chunk i = the mel columns centred in [i/24, (i+1)/24) s; each resized to 224x224 when loaded",
                 "resize": {"at": "load (loader and device transform alike)", "kernel": "linear along each axis "
                            "(torch interpolate, align_corners False)", "antialias": False,
                            "on": "the mel scaled to [0, 1]; squeezed layout: chunks 16 wide"}}
METADATA_FIELDS = {"n_frames": "int64", "fps": "int64", "face_keyframes_found": "int64"}


def mel_npy(f: Features) -> bytes:
    return f.derive("mel_npy", lambda: npy(f["mel_db"].astype(np.float16)))


def frames_on_grid(f: Features) -> int:
    """Frames of the 24 fps grid: from the video when it was decoded, else from the audio's length."""
    if f.get("n_frames") is not None:
        return f["n_frames"]
    return int(np.floor(f["audio_duration"] * video3d.FPS + 1e-6))


# ---------------------------------------------------------------- loading (CPU)


def mel_chunks(mel_db: np.ndarray, n_frames: int, width: int = 224) -> np.ndarray:
    """(T, 224, width) in [0, 1]: chunk i is the mel of frame i's 1/24 s, resized as the paper does."""
    from ..media.planes import resize_matrix

    # the vertical resize is the same for every chunk: do it once, then stretch each chunk's columns
    mel = ((mel_db.astype(np.float32) + spectrogram.TOP_DB) / spectrogram.TOP_DB).clip(0.0, 1.0)
    tall = (resize_matrix(mel.shape[0], 224).T @ mel)[::-1]  # low frequencies at the bottom
    out = np.empty((n_frames, 224, width), np.float32)
    bounds = video3d.chunk_bounds(n_frames, mel.shape[1])
    for k in sorted({b - a for a, b in bounds}):  # chunks of equal width in one matrix product
        rows = [i for i, (a, b) in enumerate(bounds) if b - a == k]
        cols = np.stack([tall[:, bounds[i][0] : bounds[i][1]] for i in rows])  # (n, 224, k)
        out[rows] = cols @ resize_matrix(k, width)
    return out


def frame_indices(t: int, opts: LoadOptions, clip_id: str) -> tuple[np.ndarray, int]:
    """Which of the clip's T frames to keep, and the output length (blank frames beyond them)."""
    if opts.sample_frames is not None:
        return np.linspace(0, t - 1, opts.sample_frames).round().astype(int), opts.sample_frames
    if opts.pad_to is not None:
        if t > opts.pad_to:
            raise LoadError(f"{clip_id}: {t} frames, more than pad_to={opts.pad_to}; raise pad_to "
                            "(no clip is cut silently) or use sample_frames")
        return np.arange(t), opts.pad_to
    return np.arange(t), t


def clip_parts(members: dict[str, bytes], meta: dict, opts: LoadOptions):
    """The stored parts of a sample: kept frames' YUV planes (or None), the mel (or None), the kept
    frame indices and the output length."""
    n = meta["n_frames"]
    keep, length = frame_indices(n, opts, meta["clip_id"])
    planes = mel = None
    if "mp4" in members:
        planes = video3d.decode_yuv(members["mp4"])
        if len(planes) != n:
            raise LoadError(f"{meta['clip_id']}: {len(planes)} frames decoded, the sample says {n}")
        planes = planes[keep]
    if "npy" in members:
        mel = np.load(io.BytesIO(members["npy"]), allow_pickle=False)
        if not np.isfinite(mel).all():
            raise LoadError(f"{meta['clip_id']}: the stored mel holds NaN or inf; rebuild this config")
    return planes, mel, keep, length


def widths(opts: LoadOptions, video: bool, audio: bool) -> tuple[int, int]:
    """Columns of the frame part and of the chunk part of an input."""
    squeezed = opts.multimodal_layout == "squeezed" and video and audio
    return (0 if not video else SQUEEZED_FRAME_WIDTH if squeezed else 224,
            0 if not audio else SQUEEZED_CHUNK_WIDTH if squeezed else 224)


def real_mask(length: int, real: int):
    import torch

    mask = torch.zeros(length, dtype=torch.bool)
    mask[:real] = True
    return mask


def geometry(opts: LoadOptions, frame_w: int, chunk_w: int) -> dict:
    """Where an input's parts lie (for the device transform and the modality ablations)."""
    return {"frame_width": frame_w, "chunk_width": chunk_w, "channels": opts.channels}


def clip_tensor(members: dict[str, bytes], meta: dict, opts: LoadOptions):
    """The clip as (length, 3, 224, W) in [0, 1] (or uint8) and a mask of its real (unpadded) frames."""
    import torch

    planes, mel, keep, length = clip_parts(members, meta, opts)
    frame_w, chunk_w = widths(opts, planes is not None, mel is not None)
    out = np.zeros((length, 3, 224, frame_w + chunk_w), np.float32)
    if planes is not None:
        if frame_w != 224:  # resize the uint8 planes, then convert: 5x cheaper than resizing floats
            planes = video3d.resize_yuv420(planes, frame_w, 224)
        video3d.yuv_to_rgb(planes, out[: len(keep), :, :, :frame_w])
    if mel is not None:
        out[: len(keep), :, :, frame_w:] = mel_chunks(mel, meta["n_frames"], chunk_w)[keep][:, None]
    inputs = torch.from_numpy(out)
    if opts.channels == 1:
        inputs = inputs.mean(dim=1, keepdim=True)
    if opts.dtype == "uint8":
        inputs = inputs.mul_(255.0).round_().to(torch.uint8)
    return inputs, real_mask(length, len(keep))


def clip_planes(members: dict[str, bytes], meta: dict, opts: LoadOptions) -> dict:
    """The clip as stored, for `assemble` to finish on the device.

    `planes` (T', 336, 224) uint8: the kept frames' YUV 4:2:0 planes; `mel` (512, C) float16: the
    whole mel in dB; `chunks` (T', 2): each kept frame's mel columns [start, stop); `mask` and
    `length` as for the other dtypes (T' real frames out of the output length); `geometry`: the
    output's frame and chunk widths and channels. A frame is 75 KB instead of 1.2 MB of wide float32,
    and padding frames are not sent at all.
    """
    import torch

    planes, mel, keep, length = clip_parts(members, meta, opts)
    frame_w, chunk_w = widths(opts, planes is not None, mel is not None)
    item = {"mask": real_mask(length, len(keep)), "length": len(keep), "geometry": geometry(opts, frame_w, chunk_w)}
    if planes is not None:
        item["planes"] = torch.from_numpy(np.ascontiguousarray(planes))
    if mel is not None:
        item["mel"] = torch.from_numpy(mel.astype(np.float16))
        bounds = video3d.chunk_bounds(meta["n_frames"], mel.shape[1])
        item["chunks"] = torch.tensor(bounds, dtype=torch.int32)[torch.from_numpy(keep)]
    return item


# ---------------------------------------------------------------- the device side


def assemble_planes(batch: dict, device=None):
    """(B, L, C, 224, W) float in [0, 1] from a collated `dtype="planes"` batch, on `device`.

    `clip_tensor` does the same on the CPU: frame | chunk side by side, real frames first (`mask`),
    blank frames after.
    """
    import torch

    from ..media.planes import mel_chunks as device_mel_chunks
    from ..media.planes import resize_planes, yuv420_to_rgb

    shape = {k: int(v.flatten()[0]) for k, v in batch["geometry"].items()}
    frame_w, chunk_w = shape["frame_width"], shape["chunk_width"]
    mask = batch["mask"].to(device, non_blocking=True)
    parts = []
    if "planes" in batch:
        planes = batch["planes"].to(device, non_blocking=True)
        if frame_w != planes.shape[-1]:
            planes = resize_planes(planes, frame_w)
        parts.append(yuv420_to_rgb(planes))
    if "mel" in batch:
        chunks = device_mel_chunks(batch["mel"].to(device, non_blocking=True), batch["chunks"].to(device, non_blocking=True),
                                   chunk_w)
        parts.append(chunks[:, :, None].expand(-1, -1, 3, -1, -1))
    real = torch.cat(parts, dim=-1)  # (B, T', 3, 224, W), T' the batch's most real frames
    b, t = real.shape[:2]
    out = real.new_zeros((b, mask.shape[1], *real.shape[2:]))
    out[:, :t] = real * mask[:, :t, None, None, None]
    if shape["channels"] == 1:
        out = out.mean(dim=2, keepdim=True)
    return out


# ---------------------------------------------------------------- the representation


PARTS = {"video": ("video_24fps", {"video": VIDEO_PARAMS}), "mel": ("mel", {"spectrogram": MEL_3D_PARAMS})}


@dataclass(frozen=True, kw_only=True)
class PaperClip(Representation):
    """A clip of frames on the 24 fps grid: video frames, mel chunks, or both side by side."""

    split_family: str = "3d"
    layout: str = "clip"
    metadata_fields: dict = field(default_factory=lambda: dict(METADATA_FIELDS))
    options_type: type = LoadOptions

    def __post_init__(self):
        parts = {"vision": ("video",), "audio": ("mel",), "multimodal": ("video", "mel")}[self.modality]
        object.__setattr__(self, "members", {**({"mp4": "binary"} if self.has_vision else {}),
                                             **({"npy": {"list": {"list": "float16"}}} if self.has_audio else {})})
        object.__setattr__(self, "needs", tuple(PARTS[p][0] for p in parts))
        params = {k: v for p in parts for k, v in PARTS[p][1].items()}
        if self.modality == "multimodal":  # the squeezed layout (VideoMAE's input) narrows the frames
            params["video"] = {**params["video"], "squeezed_resize": SQUEEZED_RESIZE}
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "stores", frozenset(p for p in parts))

    def steps(self, options: BuildOptions) -> tuple[Step, ...]:
        steps = []
        for name in self.needs:
            if name == "mel":
                steps.append(MEL)
            elif options.face_crop and options.batch_faces:
                steps += [Step("face_keyframes", step_face_keyframes, ("keyframes", "video_duration")),
                          Step(name, partial(step_video_24fps, face_crop=True), ("video_mp4", "n_frames", "track_faces"),
                               after_faces=True)]
            else:
                steps.append(Step(name, partial(step_video_24fps, face_crop=True) if options.face_crop else step_video_24fps,
                                  ("video_mp4", "n_frames", "video_duration", "track_faces")))
        return tuple(steps)

    def finds_faces(self, options: BuildOptions) -> bool:
        return options.face_crop and self.has_vision

    def report_params(self, options: BuildOptions) -> dict:
        params = super().report_params(options)
        if "video" in params:
            params["video"]["face_crop"] = options.face_crop
        return params

    def render(self, f: Features) -> dict[str, bytes]:
        return {**({"mp4": f["video_mp4"]} if self.has_vision else {}), **({"npy": mel_npy(f)} if self.has_audio else {})}

    def sample_fields(self, f: Features) -> dict:
        return {"n_frames": frames_on_grid(f), "fps": video3d.FPS, "face_keyframes_found": f.get("track_faces")}

    def unusable(self, f: Features) -> str | None:
        return non_finite(f, {"mel_db": "mel spectrogram"}) if self.has_audio else None

    def flags(self, f: Features) -> list[dict]:
        return dynamic_range_flag(f) if self.has_audio else []

    def check_options(self, opts: LoadOptions) -> None:
        opts.check()
        if len(opts.frame_options) == 2:
            raise LoadError("pad_to and sample_frames exclude each other: pad clips to a length, or sample frames evenly")
        for name, value in opts.frame_options.items():
            if not isinstance(value, int) or value < 1:
                raise LoadError(f"{name} must be a positive number of frames, not {value!r}")
        if opts.multimodal_layout is not None:
            if self.modality != "multimodal":
                raise LoadError(f"{self.name}: multimodal_layout applies to 3d-multimodal only")
            if opts.multimodal_layout not in MULTIMODAL_LAYOUTS:
                raise LoadError(f"multimodal_layout must be one of {', '.join(MULTIMODAL_LAYOUTS)}, "
                                f"not {opts.multimodal_layout!r}")

    def decode_inputs(self, members: dict[str, bytes], meta: dict, opts: LoadOptions, split: str) -> dict:
        if opts.dtype == "planes":
            return clip_planes(members, meta, opts)
        inputs, mask = clip_tensor(members, meta, opts)
        parts = widths(opts, "mp4" in members, "npy" in members)
        return {"inputs": inputs, "mask": mask, "length": int(mask.sum()), "geometry": geometry(opts, *parts)}

    def fill_in(self, f: Features) -> list[str]:
        return fill_in_audio(self, f)

    def assemble(self, batch: dict, device=None):
        if "inputs" in batch:
            return super().assemble(batch, device)
        return assemble_planes(batch, device)

    def preview(self, members: dict[str, bytes]):
        from ..media.pictures import SPEC_W, array_panel, stacked, video_panel

        panels = [video_panel(members["mp4"])] if "mp4" in members else []
        if "npy" in members:
            panels.append(array_panel(members["npy"], -spectrogram.TOP_DB, 0.0, max((p.width for p in panels), default=SPEC_W)))
        return stacked(panels)


REPRESENTATIONS = (
    PaperClip(name="3d-audio", modality="audio", shape="(T, 3, 224, 224)",
              description="the mel spectrogram (float16 dB), cut at load time into one 224x224 chunk per 24 fps frame"),
    PaperClip(name="3d-vision", modality="vision", shape="(T, 3, 224, 224)",
              description="the clip's frames at 24 fps, 224x224 RGB, stored as H.264"),
    PaperClip(name="3d-multimodal", modality="multimodal", shape="(T, 3, 224, 448) wide, (T, 3, 224, 224) squeezed",
              description="frames at 24 fps (H.264) and the mel (float16); frame i and chunk i cover the same 1/24 s"),
)
