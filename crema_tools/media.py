"""Reading CREMA-D media with PyAV and the stdlib, and saying clearly why a file is unusable.

Every reader raises `MediaError` with a reason a user can act on; the build records the reason
per clip and goes on. Nothing here needs system FFmpeg: PyAV bundles it.
"""

from __future__ import annotations

import wave
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CremaToolsError
from .lfs import LFS_FIX, LFS_POINTER_MAX_BYTES, read_lfs_pointer

MAX_CLIP_SECONDS = 10.0
"""CREMA-D clips last 1 to 5 s; a longer file is a whole take (1064_IEO_DIS_MD lasts a minute)."""
MIN_CLIP_SECONDS = 0.3
TRUNCATED_BELOW = 0.9
"""A stream holding less than this share of what its header promises is truncated."""


class MediaError(CremaToolsError):
    """A media file that cannot be used; str() is the reason, naming the file."""


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, mono, in [-1, 1]
    rate: int
    source: str  # "wav" or "flv"

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def check_file(path: Path, label: str) -> None:
    """Fail early on what is not media at all: missing, empty, or a Git LFS pointer."""
    if not path.is_file():
        raise MediaError(f"{label}: file is missing")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{label}: file is empty (0 bytes)")
    if size <= LFS_POINTER_MAX_BYTES and read_lfs_pointer(path) is not None:
        raise MediaError(f"{label}: Git LFS pointer, not media; the clone was made without Git LFS: {LFS_FIX}")


def _check_duration(label: str, seconds: float) -> None:
    if seconds > MAX_CLIP_SECONDS:
        raise MediaError(f"{label}: lasts {seconds:.1f} s, far longer than a clip (at most {MAX_CLIP_SECONDS:.0f} s): a whole take, not one clip")
    if seconds < MIN_CLIP_SECONDS:
        raise MediaError(f"{label}: lasts {seconds:.2f} s, too short to be a clip")


def _open(path: Path, label: str):
    import av

    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:  # pragma: no branch - PyAV error types vary
        raise MediaError(f"{label}: not a readable media file ({e.__class__.__name__}: {e})") from None


def _container_seconds(container, stream) -> float:
    if container.duration:
        return container.duration / 1_000_000
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


@contextmanager
def _media_stream(path: Path, label: str, kind: str):
    """Open a media file and yield (container, its first `kind` stream, duration), all checked."""
    check_file(path, label)
    with _open(path, label) as container:
        streams = getattr(container.streams, kind)
        if not streams:
            raise MediaError(f"{label}: has no {kind} stream")
        duration = _container_seconds(container, streams[0])
        _check_duration(label, duration)
        yield container, streams[0], duration


def read_middle_frame(path: Path, label: str) -> tuple[np.ndarray, float]:
    """The RGB frame at half the clip's duration, by seeking; returns (frame HxWx3 uint8, duration)."""
    import av

    with _media_stream(path, label, "video") as (container, stream, duration):
        rate = float(stream.average_rate or 30)
        target = duration / 2
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= target - 0.5 / rate:
                    return frame.to_ndarray(format="rgb24"), duration
        except av.FFmpegError as e:
            raise MediaError(f"{label}: video does not decode ({e})") from None
    raise MediaError(f"{label}: truncated: no frame at {target:.2f} s of the {duration:.2f} s its header promises")


def read_all_frames(path: Path, label: str, pixel_format: str = "rgb24") -> tuple[list[np.ndarray], list[float], float]:
    """Every frame with its timestamp (s), and the duration the header promises.

    `pixel_format="yuv420p"` returns FFmpeg's planar layout, (H * 3 / 2, W): the FLVs' own format,
    so no conversion is paid for frames that will be re-encoded anyway.
    """
    import av

    with _media_stream(path, label, "video") as (container, stream, duration):
        frames, times = [], []
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format=pixel_format))
                times.append(float(frame.time))
        except av.FFmpegError as e:
            raise MediaError(f"{label}: video does not decode after {len(frames)} frames ({e})") from None
    rate = float(stream.average_rate or 30)
    promised = duration * rate
    if len(frames) < TRUNCATED_BELOW * promised:
        raise MediaError(f"{label}: truncated: {len(frames)} frames decoded, the header promises about {promised:.0f}")
    return frames, times, duration


def read_wav(path: Path, label: str) -> Audio:
    """16-bit PCM WAV (the official AudioWAV format), checked against its header's length."""
    check_file(path, label)
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, promised = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = w.readframes(promised)
    except (wave.Error, EOFError) as e:
        raise MediaError(f"{label}: not a readable WAV file ({e})") from None
    if width != 2:
        raise MediaError(f"{label}: {8 * width}-bit samples; CREMA-D WAVs are 16-bit PCM")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    got = len(samples)
    if promised and got < TRUNCATED_BELOW * promised:
        raise MediaError(f"{label}: truncated: {got} samples, the header promises {promised}")
    _check_duration(label, got / rate)
    if not np.any(samples):
        raise MediaError(f"{label}: holds only silence")
    return Audio(samples, rate, "wav")


def read_flv_audio(path: Path, label: str) -> Audio:
    """The audio track of an FLV, decoded to mono float32 at its own rate."""
    import av

    with _media_stream(path, label, "audio") as (container, stream, duration):
        rate = stream.rate
        to_mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray()[0] for f in to_mono.resample(frame))
            chunks.extend(f.to_ndarray()[0] for f in to_mono.resample(None))
        except av.FFmpegError as e:
            raise MediaError(f"{label}: audio does not decode ({e})") from None
    if not chunks:
        raise MediaError(f"{label}: audio stream holds no samples")
    samples = np.concatenate(chunks)
    if len(samples) < TRUNCATED_BELOW * duration * rate:
        raise MediaError(f"{label}: truncated: {len(samples) / rate:.2f} s of audio, the header promises {duration:.2f} s")
    return Audio(samples.astype(np.float32), rate, "flv")
