"""The 3D representations' time grid: frames at 24 fps and mel chunks that cover the same spans.

Frame i of a clip covers [i/24, (i+1)/24) s from the clip's first video frame; chunk i is the mel
columns whose centres fall in that span. Both are computed from the frame count alone, so the
build stores the frames (as H.264) and the whole mel (float16), and the loader rebuilds the
paper's tensors from them.
"""

from __future__ import annotations

import io
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

import numpy as np

from . import spectrogram

FPS = 24
"""The paper's 3D frame rate."""
SIZE = 224

CODEC = {"codec": "libx264", "pix_fmt": "yuv420p", "crf": 18, "preset": "veryfast", "tune": "fastdecode",
         "x264-params": "mbtree=0"}
"""Chosen by measurement (bench/results/build-cpu.md): `tune=fastdecode` (no CABAC, no deblocking)
decodes about 20% faster, and the loader decodes every clip every epoch, for about 6% more bytes
at the same PSNR; `superfast` would encode about a third faster, once, but store about 24% more. x264's
macroblock tree made the bytes differ between identical runs (not the pixels): it is off."""
FACE_KEYFRAMES = 5
"""Frames of each clip sent to MTCNN with --face-crop; boxes in between are interpolated."""


def source_fps(times: Sequence[float]) -> float:
    """The frame rate the timestamps show (30 for CREMA-D's FLVs)."""
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return (len(times) - 1) / span if span > 0 else 30.0


def resample_times(times: Sequence[float], source_fps: float) -> list[int]:
    """For each 24 fps instant, the index of the source frame shown at that instant (by timestamp)."""
    t = np.asarray(times, dtype=np.float64) - times[0]
    span = t[-1] + 1.0 / source_fps
    n = int(np.floor(span * FPS + 1e-6))
    grid = np.arange(n) / FPS
    return np.clip(np.searchsorted(t, grid + 1e-6, side="right") - 1, 0, len(t) - 1).tolist()


def chunk_bounds(n_frames: int, n_columns: int) -> list[tuple[int, int]]:
    """Mel columns [start, stop) of each frame's span; never empty (nearest column if none falls in)."""
    per_second = spectrogram.SAMPLE_RATE / spectrogram.HOP_LENGTH
    edges = np.ceil(np.arange(n_frames + 1) / FPS * per_second - 1e-9).astype(int)
    out = []
    for i in range(n_frames):
        a, b = int(edges[i]), int(edges[i + 1])
        if b <= a:
            b = a + 1
        out.append((min(a, n_columns - 1), min(b, n_columns)) if n_columns else (0, 0))
    return out


def interpolate_boxes(key_indices: Sequence[int], boxes: Sequence[tuple | None], n: int) -> list[tuple | None]:
    """A face box for every frame, linearly interpolated between the keyframes where one was found."""
    known = [(i, b) for i, b in zip(key_indices, boxes) if b is not None]
    if not known:
        return [None] * n
    idx = np.array([i for i, _ in known], dtype=float)
    coords = np.array([b for _, b in known], dtype=float)
    return [tuple(np.interp(i, idx, coords[:, k]) for k in range(4)) for i in range(n)]


def rgb_to_yuv420(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * 3 / 2, W) YUV 4:2:0 planes, BT.601 limited range (2x2 chroma means).

    Done here rather than by FFmpeg's scaler, whose output was seen to vary between identical calls.
    """
    rgb = image.astype(np.float32)
    y = 16.0 + rgb @ np.array([65.481, 128.553, 24.966], np.float32) / 255.0
    cb = 128.0 + rgb @ np.array([-37.797, -74.203, 112.0], np.float32) / 255.0
    cr = 128.0 + rgb @ np.array([112.0, -93.786, -18.214], np.float32) / 255.0
    h, w = y.shape
    sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
    planes = np.concatenate([y.ravel(), sub(cb).ravel(), sub(cr).ravel()])
    return np.clip(np.round(planes), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


def encode_frames(frames: Sequence, size: int = SIZE, fps: int = FPS) -> bytes:
    """H.264 in MP4 at `fps` (24) from size x size (224) YUV 4:2:0 frames: PyAV frames from
    `crop_resize_frame`, or (size * 3 / 2, size) yuv420p arrays.

    Single-threaded x264 with fixed settings (`CODEC`), so the bytes repeat exactly.
    """
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream(CODEC["codec"], rate=fps)
        stream.width, stream.height, stream.pix_fmt = size, size, CODEC["pix_fmt"]
        stream.codec_context.thread_count, stream.codec_context.thread_type = 1, "NONE"
        stream.options = {**{k: str(v) for k, v in CODEC.items() if k not in ("codec", "pix_fmt")}, "threads": "1"}
        for i, image in enumerate(frames):
            frame = image if isinstance(image, av.VideoFrame) else yuv420_frame(*split_planes(image))
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buf.getvalue()


def decode_yuv(blob: bytes) -> np.ndarray:
    """The stored MP4's frames as YUV 4:2:0 planes, (T, 336, 224) uint8, with PyAV's bundled FFmpeg."""
    import av

    from .decode import frame_array

    with av.open(io.BytesIO(blob)) as container:
        return np.stack([frame_array(f, "yuv420p") for f in container.decode(video=0)])


def split_planes(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFmpeg's (H * 3 / 2, W) yuv420p array -> Y (H, W), U and V (H / 2, W / 2) views."""
    h, w = planes.shape[0] * 2 // 3, planes.shape[1]
    chroma = planes[h:].reshape(2, h // 2, w // 2)
    return planes[:h], chroma[0], chroma[1]


RESIZE = {"scaler": "swscale", "interpolation": "bilinear", "flags": ["accurate_rnd", "bitexact"], "threads": 1}
"""How the build resizes frames: FFmpeg's swscale on the YUV 4:2:0 planes, one thread, bit-exact
(no CPU-dependent fast paths), so the same frames give the same pixels on any machine."""


@lru_cache(maxsize=1)
def _scaler():
    from av.video.reformatter import VideoReformatter

    return VideoReformatter()


@lru_cache(maxsize=1)
def _sws_flags() -> int:
    from av.video.reformatter import Interpolation

    flags = Interpolation[RESIZE["interpolation"].upper()]
    for name in RESIZE["flags"]:
        flags |= Interpolation[name.upper()]
    return flags


def yuv420_frame(y: np.ndarray, u: np.ndarray, v: np.ndarray):
    """A PyAV yuv420p frame holding these planes, copied plane by plane (5x faster than from_ndarray)."""
    import av

    frame = av.VideoFrame(y.shape[1], y.shape[0], "yuv420p")
    for plane, data in zip(frame.planes, (y, u, v)):
        if plane.line_size != data.shape[1]:  # padded rows: let PyAV lay them out
            planes = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(y.shape[0] * 3 // 2, y.shape[1])
            return av.VideoFrame.from_ndarray(planes, format="yuv420p")
        plane.update(np.ascontiguousarray(data))
    return frame


def crop_resize_frame(planes: np.ndarray, box: tuple[int, int, int, int], size: int = SIZE):
    """Crop (x0, y0, x1, y1) of a (H * 3 / 2, W) YUV 4:2:0 frame, then resize it to size x size with
    `RESIZE`; a PyAV frame, as `encode_frames` takes it. No RGB round trip.

    The box is first made even, so the chroma planes crop at whole samples.
    """
    x0, y0, x1, y1 = (v // 2 * 2 for v in box)
    y, u, v = split_planes(planes)
    c = (slice(y0 // 2, y1 // 2), slice(x0 // 2, x1 // 2))
    frame = yuv420_frame(y[y0:y1, x0:x1], u[c], v[c])
    return _scaler().reformat(frame, size, size, interpolation=_sws_flags(), threads=RESIZE["threads"])


def crop_resize_yuv420(planes: np.ndarray, box: tuple[int, int, int, int], size: int = SIZE) -> np.ndarray:
    """`crop_resize_frame` as a (size * 3 / 2, size) yuv420p array."""
    from .decode import frame_array

    return frame_array(crop_resize_frame(planes, box, size), "yuv420p")


YUV_TO_RGB = {"y": 1.164, "r_v": 1.596, "g_u": 0.392, "g_v": 0.813, "b_u": 2.017}
"""BT.601 limited range, 8-bit: R = y (Y - 16) + r_v (V - 128), G = y (Y - 16) - g_u (U - 128) - g_v (V - 128),
B = y (Y - 16) + b_u (U - 128). The loader (NumPy) and the device transform (torch) both use these."""


def yuv_to_rgb(planes: np.ndarray, out: np.ndarray) -> None:
    """Write (T, 3, H, W) RGB in [0, 1] into `out` from YUV 4:2:0 planes (`YUV_TO_RGB`, chroma repeated 2x2).

    Done in NumPy for all frames at once: faster than asking FFmpeg for RGB frame by frame, and
    free of the thread fan-out that slows small torch ops in loader workers.
    """
    k = YUV_TO_RGB
    t, h, w = planes.shape[0], planes.shape[1] * 2 // 3, planes.shape[2]
    y = (planes[:, :h].astype(np.float32) - 16.0) * np.float32(k["y"] / 255.0)
    chroma = planes[:, h:].reshape(t, 2, h // 2, w // 2).astype(np.float32) - 128.0
    u = chroma[:, 0].repeat(2, axis=1).repeat(2, axis=2) * np.float32(1.0 / 255.0)
    v = chroma[:, 1].repeat(2, axis=1).repeat(2, axis=2) * np.float32(1.0 / 255.0)
    np.clip(y + k["r_v"] * v, 0.0, 1.0, out=out[:, 0])
    np.clip(y - k["g_u"] * u - k["g_v"] * v, 0.0, 1.0, out=out[:, 1])
    np.clip(y + k["b_u"] * u, 0.0, 1.0, out=out[:, 2])


def resize_yuv420(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize every frame's planes (T, H * 3 / 2, W) -> (T, height * 3 / 2, width), in uint8."""
    from PIL import Image

    out = np.empty((planes.shape[0], height * 3 // 2, width), np.uint8)
    for i, frame in enumerate(planes):
        y, u, v = split_planes(frame)
        out[i, :height] = np.asarray(Image.fromarray(np.ascontiguousarray(y)).resize((width, height), Image.BILINEAR))
        chroma = out[i, height:].reshape(2, height // 2, width // 2)
        for k, plane in enumerate((u, v)):
            chroma[k] = np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((width // 2, height // 2), Image.BILINEAR))
    return out
