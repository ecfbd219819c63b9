"""A synthetic CREMA-D: the real layout, real clip ids and formats, learnable emotions.

The media of CREMA-D cannot be shipped, so tests, demos and benchmarks run on clips made here:

- `VideoFlash/<id>.flv`: FLV1 video, 480x360, 30 fps, MP3 audio at 22,050 Hz (as the official
  files; FLV cannot hold MP3 at 16 kHz).
- `AudioWAV/<id>.wav`: 16 kHz mono 16-bit PCM.

The face is a public-domain photograph (NASA's astronaut portrait, as shipped by scikit-image)
moved and scaled per actor and per frame, so MTCNN finds it as it would a real face.

Emotions are designed to be learnable and complementary, so fusion can be shown to help:

- vision separates 3 groups (a tint of the face): {ANG, HAP} warm, {DIS, NEU} green, {FEA, SAD} blue;
- audio separates 2 groups (the voice's pitch): {ANG, DIS, FEA} high, {HAP, NEU, SAD} low;
- each emotion is the only one with its (tint, pitch) pair, so both together separate all six.

A perfect vision-only model can reach 50%, a perfect audio-only one 33%, a fused one 100%.
Everything is seeded by (seed, clip id): the same call writes byte-identical files.
"""

from __future__ import annotations

import hashlib
import wave
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .corpus import SENTENCES, Clip, official_clip_ids

FPS = 30
WIDTH, HEIGHT = 480, 360
WAV_RATE = 16_000
FLV_AUDIO_RATE = 22_050

VISION_GROUP = {"ANG": 0, "HAP": 0, "DIS": 1, "NEU": 1, "FEA": 2, "SAD": 2}
AUDIO_GROUP = {"ANG": 0, "DIS": 0, "FEA": 0, "HAP": 1, "NEU": 1, "SAD": 1}
TINTS = np.array([[1.0, 0.45, 0.3], [0.35, 1.0, 0.35], [0.3, 0.5, 1.0]], dtype=np.float32)
PITCH_HZ = (230.0, 120.0)

SAMPLE_ACTORS = (1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008)
SAMPLE_SENTENCES = ("IEO", "DFA", "TSI")


def sample_clip_ids(
    actors: Sequence[int] = SAMPLE_ACTORS, sentences: Sequence[str] = SAMPLE_SENTENCES
) -> list[str]:
    """The built-in sample: every official clip of these actors and sentences (144 by default)."""
    wanted_actors, wanted_sentences = set(actors), set(sentences)
    out = []
    for cid in official_clip_ids():
        clip = Clip.parse(cid)
        if clip.actor_id in wanted_actors and clip.sentence in wanted_sentences:
            if clip.sentence == "IEO" and clip.intensity not in ("XX", "HI"):
                continue  # keep one take per emotion and sentence
            out.append(cid)
    return out


@dataclass(frozen=True)
class ClipDesign:
    """The hidden parameters from which one synthetic clip is rendered."""

    clip_id: str
    duration: float
    pitch_hz: float
    tint: np.ndarray
    face_scale: float
    face_center: tuple[float, float]
    background: np.ndarray
    syllables: int
    rng_seed: int


def _rng_for(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, (seed, *parts))).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def design(clip_id: str, seed: int = 0) -> ClipDesign:
    clip = Clip.parse(clip_id)
    actor = _rng_for(seed, "actor", clip.actor_id)
    take = _rng_for(seed, "clip", clip_id)
    words = len(SENTENCES[clip.sentence].split())
    return ClipDesign(
        clip_id=clip_id,
        duration=round(1.6 + 0.12 * words + take.uniform(0.0, 0.5), 2),
        pitch_hz=PITCH_HZ[AUDIO_GROUP[clip.emotion]] * actor.uniform(0.9, 1.1) * take.uniform(0.95, 1.05),
        tint=TINTS[VISION_GROUP[clip.emotion]],
        face_scale=actor.uniform(0.8, 1.0),
        face_center=(WIDTH / 2 + actor.uniform(-60, 60), HEIGHT / 2 + actor.uniform(-20, 20)),
        background=actor.uniform(40, 200, size=3).astype(np.float32),
        syllables=max(2, round(words * 1.4)),
        rng_seed=int(take.integers(2**31)),
    )


def _face_photo() -> np.ndarray:
    from PIL import Image

    with resources.files("crema_tools").joinpath("assets", "astronaut_face.png").open("rb") as f:
        return np.asarray(Image.open(f).convert("RGB"), dtype=np.float32)


def render_frames(d: ClipDesign, face: np.ndarray) -> Iterable[np.ndarray]:
    """Yield the clip's RGB frames: the tinted face bobbing gently on the actor's background."""
    from PIL import Image

    rng = np.random.default_rng(d.rng_seed)
    h = int(face.shape[0] * d.face_scale * 1.5)
    w = int(face.shape[1] * d.face_scale * 1.5)
    tinted = np.clip(face * (0.55 + 0.45 * d.tint), 0, 255).astype(np.uint8)
    sprite = np.asarray(Image.fromarray(tinted).resize((w, h), Image.BILINEAR))
    backdrop = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    backdrop[:] = d.background.astype(np.uint8)
    noise = rng.integers(-6, 7, size=(HEIGHT, WIDTH, 3), dtype=np.int16)
    backdrop = np.clip(backdrop.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    n_frames = round(d.duration * FPS)
    phase = rng.uniform(0, 2 * np.pi)
    for i in range(n_frames):
        t = i / FPS
        cx = d.face_center[0] + 8 * np.sin(2 * np.pi * 0.7 * t + phase)
        cy = d.face_center[1] + 4 * np.sin(2 * np.pi * 1.1 * t + phase)
        top, left = int(round(cy - h / 2)), int(round(cx - w / 2))
        frame = backdrop.copy()
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + h, HEIGHT), min(left + w, WIDTH)
        frame[y0:y1, x0:x1] = sprite[y0 - top : y1 - top, x0 - left : x1 - left]
        yield frame


def speech(d: ClipDesign, rate: int) -> np.ndarray:
    """A voiced, syllabic signal at the clip's pitch, as float32 in [-1, 1]."""
    rng = np.random.default_rng(d.rng_seed + 1)
    t = np.arange(int(d.duration * rate)) / rate
    vibrato = 1 + 0.03 * np.sin(2 * np.pi * 5 * t)
    drift = 1 + 0.08 * np.sin(np.pi * t / d.duration)
    phase = 2 * np.pi * np.cumsum(d.pitch_hz * vibrato * drift) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 9))
    # syllables: smooth bumps separated by short pauses, leaving a little silence at both ends
    env = np.zeros_like(t)
    starts = np.linspace(0.15, d.duration - 0.35, d.syllables)
    for s in starts:
        length = rng.uniform(0.12, 0.22)
        inside = (t >= s) & (t < s + length)
        env[inside] = np.sin(np.pi * (t[inside] - s) / length)
    noise = rng.normal(0, 0.01, size=t.shape)
    signal = 0.25 * env * voice / 2.7 + noise
    return np.clip(signal, -1, 1).astype(np.float32)


def broadband_voice(seconds: float = 2.5, rate: int = WAV_RATE, seed: int = 0) -> np.ndarray:
    """Speech-like test signal for audio checks: a gliding, vibrato pitch (110-180 Hz) with every
    harmonic below 7.9 kHz at 1/k (a voice's -6 dB/octave tilt), syllable-like bursts, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140.0 * (1 + 0.25 * np.sin(2 * np.pi * 0.6 * t)) * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.where(k * f0 < 7900, np.sin(k * phase) / k, 0.0) for k in range(1, 72))
    syllables = np.sqrt(np.clip(np.sin(2 * np.pi * 2.2 * t), 0, None))
    x = 0.3 * syllables * voice / np.abs(voice).max() + 0.003 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def write_wav(path: Path, signal: np.ndarray, rate: int = WAV_RATE) -> None:
    pcm = np.round(signal * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def write_flv(path: Path, frames: Iterable[np.ndarray], audio: np.ndarray | None) -> None:
    """FLV1 video at 30 fps with MP3 audio, as the official VideoFlash files."""
    import av

    from .media.decode import rational
    from .media.video3d import rgb_to_yuv420

    with av.open(str(path), "w", format="flv") as container:
        video = container.add_stream("flv", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.bit_rate = 600_000
        sound = None
        if audio is not None:
            sound = container.add_stream("libmp3lame", rate=FLV_AUDIO_RATE)
            sound.layout = "mono"
            sound.bit_rate = 64_000
        packets = []
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420(image), format="yuv420p")  # exact, repeatable
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            packets += video.encode(frame)
        packets += video.encode()
        if sound is not None:
            step = 1152
            for start in range(0, len(audio), step):
                chunk = av.AudioFrame.from_ndarray(audio[None, start : start + step], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = FLV_AUDIO_RATE, start
                packets += sound.encode(chunk)
            packets += sound.encode()
        # interleave by time, as a real muxer expects; the sort is stable, so ties keep their order
        packets.sort(key=lambda p: float(p.dts * (rational(p.time_base) or 0)) if p.dts is not None else 0.0)
        container.mux(packets)


def generate_clip(root: Path, clip_id: str, seed: int = 0, face: np.ndarray | None = None, *,
                  duration: float | None = None, wav: bool = True, flv_audio: bool = True) -> None:
    """Write one clip's FLV and WAV; `duration`, `wav` and `flv_audio` let tests make odd files."""
    d = design(clip_id, seed)
    if duration is not None:
        d = replace(d, duration=duration)
    face = _face_photo() if face is None else face
    (root / "VideoFlash").mkdir(parents=True, exist_ok=True)
    if wav:
        (root / "AudioWAV").mkdir(parents=True, exist_ok=True)
        write_wav(root / "AudioWAV" / f"{clip_id}.wav", speech(d, WAV_RATE))
    audio = speech(d, FLV_AUDIO_RATE) if flv_audio else None
    write_flv(root / "VideoFlash" / f"{clip_id}.flv", render_frames(d, face), audio)


def generate_corpus(root: str | Path, clip_ids: Sequence[str] | None = None, seed: int = 0, progress: bool = False) -> list[str]:
    """Write a synthetic corpus in the official layout under `root`; returns the clip ids written."""
    from tqdm.auto import tqdm

    root = Path(root)
    ids = list(clip_ids) if clip_ids is not None else sample_clip_ids()
    face = _face_photo()
    for cid in tqdm(ids, desc="synthetic clips", unit="clip", disable=not progress):
        generate_clip(root, cid, seed, face)
    (root / "SYNTHETIC.txt").write_text(
        "Synthetic CREMA-D sample made by crema-tools: real clip ids and formats, made-up media.\n"
        f"seed: {seed}\nclips: {len(ids)}\n"
    )
    return ids


def is_synthetic(root: str | Path) -> bool:
    return (Path(root) / "SYNTHETIC.txt").is_file()




SAMPLE_VERSION = 1


def cache_dir() -> Path:
    import os

    return Path(os.environ.get("CREMA_TOOLS_CACHE", Path.home() / ".cache" / "crema-tools"))


def ensure_sample(seed: int = 0, progress: bool = True) -> Path:
    """The built-in sample corpus, generated once into the cache (about 10 s) and reused."""
    import shutil

    root = cache_dir() / f"sample-v{SAMPLE_VERSION}-seed{seed}"
    if is_synthetic(root):
        return root
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    generate_corpus(tmp, seed=seed, progress=progress)
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root
