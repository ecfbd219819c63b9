"""Reading CREMA-D media with PyAV and the stdlib, and saying clearly why a file is unusable.

Every reader raises `MediaError` with a reason a user can act on; the build records the reason
per clip and goes on. Nothing here needs system FFmpeg: PyAV bundles it.

Two sanity checks go beyond "does it decode":

- A file whose content is not what its extension says (an MP4 or an MP3 named `.flv`, an FLV
  named `.wav`) is refused, so the clip is skipped with that reason. Every official file is an
  FLV or a RIFF WAVE: anything else was re-encoded or swapped after the release, and its frames,
  timing and audio would differ from everyone else's build of the same clip, so the promise that
  the same corpus gives the same shards would silently break.
- A truncated file (an interrupted download or copy) is refused, so the clip is skipped with
  that reason and the fix: it is not the official file either, and what was cut (the end of the
  speech, the last frames) would silently shorten the clip's mel and frames. A WAV must hold every
  sample its header promises; an FLV every byte its tags declare (`flv_truncation`), and its
  streams must reach the duration its metadata states (`FLV_END_TOLERANCE_S`).
- Audio with almost no dynamic range (`MIN_DYNAMIC_RANGE_DB`) is kept, with a flag in the
  report (`flagged`, with the measured range). The threshold is a heuristic: a noisy or very
  quiet recording can still be a genuine clip its raters labelled, and dropping it would change
  the split's counts against other works; the flag lets users find and drop such clips.
"""

from __future__ import annotations

import wave
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import CremaToolsError
from .lfs import LFS_FIX, LFS_POINTER_MAX_BYTES, read_lfs_pointer

MAX_CLIP_SECONDS = 10.0
"""CREMA-D clips last 1 to 5 s; a longer file is a whole take (1064_IEO_DIS_MD lasts a minute)."""
MIN_CLIP_SECONDS = 0.3
TRUNCATED_BELOW = 0.9
"""A stream holding less than this share of what its header promises is truncated."""
FLV_END_TOLERANCE_S = 0.1
"""How far before the duration an FLV's metadata states its streams may end, and the file still be whole.

Measured on the 144 clips of the synthetic sample (FLV1 480x360 at 30 fps with MP3 at 22,050 Hz, the
official files' layout): the latest audio or video packet ends exactly at the stated duration in every
clip (0 ms short; the decoded video alone ends up to 36 ms early, the audio alone up to 11 ms, as a
file's two streams end apart). 0.1 s (three video frames, two MP3 frames) leaves room for writers that
state the duration a frame or two past the data; a cut inside a tag, the usual truncation, is caught
byte-exactly by `flv_truncation` whatever this tolerance."""
TRUNCATED_FIX = "an incomplete download or copy; run `crema-tools verify`, then `crema-tools fetch` to replace it"
FLV_TAG_TYPES = (8, 9, 18)
"""FLV tag types: audio, video, script data (onMetaData)."""
MIN_DYNAMIC_RANGE_DB = 10.0
"""Speech spans 20 dB or more between its pauses and its loudest syllables; a clip whose frames
all lie within 10 dB of each other holds a steady hum or noise, not a voice."""

EXPECTED_FORMAT = {".flv": "FLV", ".wav": "WAV"}
"""What the official files hold, by extension."""


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


def sniff_format(head: bytes) -> str | None:
    """The kind of media file its first bytes announce, or None when they announce nothing known."""
    if head.startswith(b"FLV"):
        return "FLV"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[4:8] == b"ftyp":
        return "MP4"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MP3"
    if head.startswith(b"OggS"):
        return "Ogg"
    if head.startswith(b"fLaC"):
        return "FLAC"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    return None


def check_file(path: Path, label: str) -> None:
    """Fail early on what is not media at all: missing, empty, unreadable, a Git LFS pointer, or
    a known media format other than the one its extension names."""
    if not path.is_file():
        raise MediaError(f"{label}: file is missing")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise MediaError(f"{label}: cannot be read ({e.strerror or e})") from None
    if size == 0:
        raise MediaError(f"{label}: file is empty (0 bytes)")
    if size <= LFS_POINTER_MAX_BYTES and read_lfs_pointer(path) is not None:
        raise MediaError(f"{label}: Git LFS pointer, not media; the clone was made without Git LFS: {LFS_FIX}")
    expected, found = EXPECTED_FORMAT.get(path.suffix.lower()), sniff_format(head)
    if expected and found and found != expected:
        raise MediaError(_mismatch(label, found, expected))


def _mismatch(label: str, found: str, expected: str) -> str:
    return (f"{label}: holds {found} content, not the {expected} its extension names: not the official file "
            f"(re-encoded or swapped); run `crema-tools verify`, then `crema-tools fetch` to replace it")


def flv_truncation(data: bytes) -> str | None:
    """Why an FLV's bytes stop short of what its tags declare, or None when every tag is whole.

    An FLV is a 9-byte header and a chain of tags (11-byte header, data, 4-byte size of the tag):
    a file cut anywhere but between two tags leaves a last tag shorter than its header says. FFmpeg
    decodes such a tag as far as it goes (a frame's top half, a shortened MP3 frame) without an
    error, so the chain is walked here. Bytes after the chain that are no tag are left alone, as
    FFmpeg does.
    """
    if len(data) < 9 or not data.startswith(b"FLV"):
        return None
    pos = int.from_bytes(data[5:9], "big") + 4  # the header, then the size of no previous tag
    while pos < len(data):
        if data[pos] & 0x1F not in FLV_TAG_TYPES:
            return None
        if len(data) - pos < 11:
            return f"its last tag stops inside its header, {11 - (len(data) - pos)} bytes short"
        end = pos + 11 + int.from_bytes(data[pos + 1 : pos + 4], "big")
        if end > len(data):
            return f"its last tag stops {end - len(data)} bytes short of the {end - pos} it declares"
        pos = end + 4
    return None


def _check_flv_whole(path: Path, label: str) -> None:
    try:
        reason = flv_truncation(path.read_bytes())
    except OSError as e:
        raise MediaError(f"{label}: cannot be read ({e.strerror or e})") from None
    if reason:
        raise MediaError(f"{label}: truncated: {reason}: {TRUNCATED_FIX}")


def mel_dynamic_range_db(mel_db: np.ndarray) -> float:
    """The spread of a clip's loudness: the 95th minus the 5th percentile of its frames' energies (dB).

    `mel_db` is a (mels, frames) power spectrogram in dB (any reference): each column's energy is
    the sum of its bands' powers, so the measure follows the clip's 93 ms analysis windows.
    """
    db = np.asarray(mel_db, dtype=np.float64)
    if db.ndim != 2 or db.shape[1] == 0:
        return 0.0
    energy = 10.0 * np.log10(np.power(10.0, (db - db.max()) / 10.0).sum(axis=0) + 1e-30)
    return float(np.percentile(energy, 95) - np.percentile(energy, 5))


def _check_duration(label: str, seconds: float) -> None:
    if seconds > MAX_CLIP_SECONDS:
        raise MediaError(f"{label}: lasts {seconds:.1f} s, far longer than a clip (at most {MAX_CLIP_SECONDS:.0f} s): "
                         f"a whole take, not one clip")
    if seconds < MIN_CLIP_SECONDS:
        raise MediaError(f"{label}: lasts {seconds:.2f} s, too short to be a clip")


def rational(value) -> Fraction | None:
    """A PyAV rational (`time_base`, `average_rate`, ...) as a Fraction, or None where it is unset.

    PyAV 18 gives a Fraction or None; PyAV 19 an `av.AVRational`, never None: unset is a falsy
    `AVRational(0, 1)`, which would divide by zero where None used to fail a test for it.
    """
    try:
        value = Fraction(value.numerator, value.denominator)
    except (AttributeError, TypeError, ZeroDivisionError):
        return None
    return value or None


def frame_rate(stream) -> float:
    """A video stream's average frame rate, 30 (the corpus's) where the file states none."""
    return float(rational(stream.average_rate) or 30)


def frame_array(frame, pixel_format: str = "rgb24") -> np.ndarray:
    """A video frame as an array in `pixel_format`, converted on the calling thread alone.

    PyAV 17 and later convert on a pool of threads by default; PyAV 19's pool (FFmpeg 9), made by a
    conversion in a process that then forks (the build's workers, DataLoader workers), leaves the
    child's next conversion waiting forever for threads it does not have.
    """
    return frame.to_ndarray(format=pixel_format, threads=1)


def _open(path: Path, label: str):
    import av

    try:
        return av.open(str(path))
    except PermissionError as e:
        raise MediaError(f"{label}: cannot be read ({e.strerror or e})") from None
    except (av.FFmpegError, OSError, ValueError) as e:  # pragma: no branch - PyAV error types vary
        why = getattr(e, "strerror", None) or e  # FFmpeg's reason, without the path its str() repeats
        raise MediaError(f"{label}: not a readable media file ({e.__class__.__name__}: {why})") from None


def _container_seconds(container, stream) -> float:
    if container.duration:
        return container.duration / 1_000_000
    time_base = rational(stream.time_base)
    if stream.duration and time_base:
        return float(stream.duration * time_base)
    return 0.0


@contextmanager
def _media_stream(path: Path, label: str, kind: str):
    """Open a media file and yield (container, its first `kind` stream, duration), all checked."""
    check_file(path, label)
    with _open(path, label) as container:
        expected = EXPECTED_FORMAT.get(path.suffix.lower())
        names = container.format.name.split(",")
        if expected == "FLV" and "flv" not in names:
            raise MediaError(_mismatch(label, container.format.long_name or container.format.name, expected))
        if "flv" in names:
            _check_flv_whole(path, label)
        streams = getattr(container.streams, kind)
        if not streams:
            raise MediaError(f"{label}: has no {kind} stream")
        duration = _container_seconds(container, streams[0])
        _check_duration(label, duration)
        yield container, streams[0], duration


def _av_packets(container):
    """The file's audio and video packets from where it stands to its end.

    A damaged FLV can make FFmpeg open a stream mid-file, which PyAV's demuxer trips over
    (IndexError) once the other streams are flushed: that is the end too.
    """
    packets = container.demux(*(s for s in container.streams if s.type in ("audio", "video")))
    while True:
        try:
            yield next(packets)
        except (StopIteration, IndexError):
            return


def _note_end(packet, ends: list[float]) -> None:
    """`ends[0]`: the latest end (s) of the packets seen, where the file's data stops."""
    time_base = rational(packet.time_base)
    if packet.size and packet.pts is not None and time_base:
        ends[0] = max(ends[0], float((packet.pts + (packet.duration or 0)) * time_base))


def _decode_to_end(container, stream, ends: list[float]):
    """Every frame of `stream`, to the end of what the file holds; `ends[0]` becomes the latest end of
    any audio or video packet (`_note_end`). All are demuxed, only `stream` is decoded: the data's end
    is the latest stream's, since one file's streams end apart."""
    for packet in _av_packets(container):
        _note_end(packet, ends)
        if packet.stream.index == stream.index:
            yield from packet.decode()


def _check_data_end(container, label: str, duration: float, data_end: float) -> None:
    """An FLV whose streams stop well before the duration its metadata states lost its end."""
    if "flv" in container.format.name.split(",") and duration - data_end > FLV_END_TOLERANCE_S:
        raise MediaError(f"{label}: truncated: its streams end at {data_end:.2f} s, its metadata states "
                         f"{duration:.2f} s: {TRUNCATED_FIX}")


def read_middle_frame(path: Path, label: str) -> tuple[np.ndarray, float]:
    """The RGB frame at half the clip's duration, by seeking; returns (frame HxWx3 uint8, duration)."""
    import av

    with _media_stream(path, label, "video") as (container, stream, duration):
        rate, time_base = frame_rate(stream), rational(stream.time_base)
        target, image, ends = duration / 2, None, [0.0]
        try:
            if time_base:
                container.seek(int(target / time_base), stream=stream, backward=True)
            else:  # no time base of its own: the container's, in microseconds
                container.seek(int(target * 1_000_000), backward=True)
            for packet in _av_packets(container):  # decoded up to the frame, then only read to the end
                _note_end(packet, ends)
                if image is None and packet.stream.index == stream.index:
                    for frame in packet.decode():
                        if frame.time is not None and frame.time >= target - 0.5 / rate:
                            image = frame_array(frame)
                            break
        except av.FFmpegError as e:
            raise MediaError(f"{label}: video does not decode ({e})") from None
        if image is not None:
            _check_data_end(container, label, duration, ends[0])
            return image, duration
    raise MediaError(f"{label}: truncated: no frame at {target:.2f} s of the {duration:.2f} s its header promises")


def read_all_frames(path: Path, label: str, pixel_format: str = "rgb24") -> tuple[list[np.ndarray], list[float], float]:
    """Every frame with its timestamp (s), and the duration the header promises.

    `pixel_format="yuv420p"` returns FFmpeg's planar layout, (H * 3 / 2, W): the FLVs' own format,
    so no conversion is paid for frames that will be re-encoded anyway.
    """
    import av

    with _media_stream(path, label, "video") as (container, stream, duration):
        rate = frame_rate(stream)  # read while the file is open: PyAV 19's streams refuse use after
        frames, times, ends = [], [], [0.0]
        try:
            for frame in _decode_to_end(container, stream, ends):
                frames.append(frame_array(frame, pixel_format))
                times.append(float(frame.time))
        except av.FFmpegError as e:
            raise MediaError(f"{label}: video does not decode after {len(frames)} frames ({e})") from None
        _check_data_end(container, label, duration, ends[0])
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
    except OSError as e:
        raise MediaError(f"{label}: cannot be read ({e.strerror or e})") from None
    if width != 2:
        raise MediaError(f"{label}: {8 * width}-bit samples; CREMA-D WAVs are 16-bit PCM")
    if len(data) < promised * channels * width:  # the data chunk stops before its declared size
        got = len(data) // (channels * width)
        raise MediaError(f"{label}: truncated: holds {got} of the {promised} samples its header promises "
                         f"({got / rate:.2f} of {promised / rate:.2f} s, {promised * channels * width - len(data)} "
                         f"bytes missing): {TRUNCATED_FIX}")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    got = len(samples)
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
        chunks, ends = [], [0.0]
        try:
            for frame in _decode_to_end(container, stream, ends):
                chunks.extend(f.to_ndarray()[0] for f in to_mono.resample(frame))
            chunks.extend(f.to_ndarray()[0] for f in to_mono.resample(None))
        except av.FFmpegError as e:
            raise MediaError(f"{label}: audio does not decode ({e})") from None
        _check_data_end(container, label, duration, ends[0])
    if not chunks:
        raise MediaError(f"{label}: audio stream holds no samples")
    samples = np.concatenate(chunks)
    if len(samples) < TRUNCATED_BELOW * duration * rate:
        raise MediaError(f"{label}: truncated: {len(samples) / rate:.2f} s of audio, the header promises {duration:.2f} s")
    return Audio(samples.astype(np.float32), rate, "flv")
