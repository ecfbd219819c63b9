"""Running extraction steps on a clip, the readers they share, and the paper's mel step.

Steps run in worker processes; each is small and independent, so a representation is described
by the steps it needs, and one pass over the corpus serves every representation being built.
A representation's own steps live in its module; the mel, which five of them share, lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .. import media
from ..corpus import media_relpath, unusable_reason
from ..media import spectrogram
from ..media.faces import detect_faces
from .base import Features, Step


def video_path(raw: Path, f: Features) -> tuple[Path, str]:
    """The clip's video and the name errors give it: its corpus path, or a file given directly."""
    if "video" in f.files:
        return f.files["video"], str(f.files["video"])
    rel = media_relpath(f.clip_id, "video_flv")
    return raw / rel, rel


def checked(rel: str) -> None:
    """Refuse a documented broken file of the corpus (known_issues.csv) with its reason."""
    reason = unusable_reason(rel)
    if reason:
        raise media.MediaError(reason)


def checked_video(raw: Path, f: Features) -> tuple[Path, str]:
    path, rel = video_path(raw, f)
    checked(rel)
    return path, rel


def read_audio(raw: Path, f: Features) -> media.Audio:
    """Audio from AudioWAV when the file is there, else from the FLV's audio track."""
    if f.files:  # a file given directly: its WAV, else the video's own track
        wav = f.files.get("wav")
        return media.read_wav(wav, str(wav)) if wav else media.read_flv_audio(*video_path(raw, f))
    wav_rel = media_relpath(f.clip_id, "audio_wav")
    if (raw / wav_rel).exists():
        checked(wav_rel)
        return media.read_wav(raw / wav_rel, wav_rel)
    path, rel = video_path(raw, f)
    if not path.exists():
        raise media.MediaError(f"{wav_rel} and {rel}: both missing, no audio for this clip")
    checked(rel)
    return media.read_flv_audio(path, rel)


def step_mel(raw: Path, f: Features) -> None:
    """The paper's mel in dB (n_mels, columns) of the clip's audio at 22,050 Hz."""
    audio = read_audio(raw, f)
    signal = spectrogram.resample(audio.samples, audio.rate)
    f["mel_db"] = spectrogram.to_db(spectrogram.mel_power(signal)).numpy()
    f["audio_duration"], f["audio_source"] = audio.duration, audio.source


MEL = Step("mel", step_mel, ("mel_db", "audio_duration", "audio_source"))


def dynamic_range_flag(f: Features) -> list[dict]:
    """A clip whose audio barely varies in loudness (the mel step's own check): kept, but flagged (a
    hum rather than a voice?). Made once per clip, whichever representations read the mel."""
    if f.get("mel_db") is None:
        return []
    spread = f.derive("dynamic_range_db", lambda: media.mel_dynamic_range_db(f["mel_db"]))
    if spread >= media.MIN_DYNAMIC_RANGE_DB:
        return []
    return [{"clip_id": f.clip_id, "flag": "low_dynamic_range", "kept": True,
             "detail": f"{f['audio_source']} audio spans {spread:.1f} dB between loud and quiet frames "
                       f"(< {media.MIN_DYNAMIC_RANGE_DB:.0f} dB): a steady hum or noise rather than a voice?"}]


def fill_in_audio(rep, f: Features) -> list[str]:
    """Predict on a video without usable audio: a multimodal model gets a blank (silent) mel, as the
    ablations blank it; an audio model cannot be helped. The middle frame's face is found here."""
    notes = []
    if "mel" in f.errors and "mel" in rep.needs:
        why = f.errors["mel"].removeprefix(f"{video_path(Path(), f)[1]}: ")  # the video is named once, by predict
        if rep.modality == "audio":
            raise media.MediaError(f"no usable audio ({why}); pass --wav, or use a vision model")
        del f.errors["mel"]
        notes.append(f"no usable audio ({why}): the spectrogram part is blank (silence)")
    failed = [f.errors[s] for s in rep.needs if s in f.errors]
    if failed:
        raise media.MediaError(failed[0])
    if rep.uses_face:
        find_faces([f], device=None)
        if not f["face"].found:
            notes.append("no face found in the middle frame: the centre square was used, as the build does")
    if f.get("mel_db") is None and "mel" in rep.needs:  # silence: the floor everywhere
        columns = int(f["video_duration"] * spectrogram.SAMPLE_RATE / spectrogram.HOP_LENGTH) + 1
        f["mel_db"] = np.full((spectrogram.N_MELS, columns), -spectrogram.TOP_DB, np.float32)
        f["audio_duration"] = f["video_duration"]
    return notes


def union(step_lists: Iterable[Sequence[Step]]) -> tuple[Step, ...]:
    """Every step once (by name), in the order first asked for."""
    seen: dict[str, Step] = {}
    for steps in step_lists:
        for step in steps:
            seen.setdefault(step.name, step)
    return tuple(seen.values())


def run_steps(raw: Path, f: Features, steps: Sequence[Step]) -> Features:
    """Run the steps on one clip; a failing step records its reason and the others still run."""
    for name, step, *_ in steps:
        try:
            step(raw, f)
        except media.MediaError as e:
            f.errors[name] = str(e)
        except Exception as e:  # a decoder bug must cost one clip, not the build
            f.errors[name] = f"unexpected {e.__class__.__name__} while reading: {e}"
    return f


def extract(raw: Path, clip_id: str, steps: Sequence[Step]) -> Features:
    """The steps' features of one clip of the corpus at `raw`."""
    return run_steps(raw, Features(clip_id), steps)


def extract_file(video: Path, steps: Sequence[Step], wav: Path | None = None) -> Features:
    """Run the steps on any video (and optionally a WAV) outside the corpus layout: what predict reads."""
    files = {"video": Path(video), **({"wav": Path(wav)} if wav else {})}
    return run_steps(Path(video).parent, Features(Path(video).stem, files=files), steps)


def find_faces(clips: list[Features], device: str | None, middle_frames: bool = True) -> None:
    """MTCNN over a batch of clips, between the two passes of extraction: their `middle_frame`s
    (-> `face`) in one call, the `keyframes` of the --face-crop video (-> `keyframe_faces`) in
    another, on the build's device. One call per kind keeps each kind's batches, so its boxes, the
    same whichever other configs are built alongside. Every frame of a clip to be aligned
    (`align_frames` -> `frame_faces`, with landmarks) goes in one call per clip, as a worker does
    on a CPU, so the landmarks do not depend on the batch either."""
    with_frame = [f for f in clips if f.get("middle_frame") is not None] if middle_frames else []
    for f, face in zip(with_frame, detect_faces([f["middle_frame"] for f in with_frame], device) if with_frame else []):
        f["face"] = face
    tracked = [f for f in clips if f.get("keyframes") is not None]
    faces = iter(detect_faces([k for f in tracked for k in f["keyframes"]], device) if tracked else [])
    for f in tracked:
        f["keyframe_faces"] = [next(faces) for _ in f["keyframes"]]
        f["keyframes"] = None  # found: the second pass needs only the boxes
    for f in clips:
        if f.get("align_frames") is not None:
            f["frame_faces"] = detect_faces(list(f["align_frames"]), device, landmarks=True)
            f["align_frames"] = None  # found: the second pass decodes the video again
