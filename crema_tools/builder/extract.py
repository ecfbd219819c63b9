"""Per-clip processing steps: each reads what one kind of variant needs, or records why it can't.

Steps run in worker processes; each is small and independent, so a variant is described by the
steps it needs, and one pass over the corpus serves every variant being built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from .. import media, spectrogram
from ..corpus import media_relpath, unusable_reason
from ..faces import Face


@dataclass
class ClipFeatures:
    """What the steps extracted from one clip; `errors` maps a step to why it failed."""

    clip_id: str
    middle_frame: np.ndarray | None = None
    video_duration: float | None = None
    mel_db: np.ndarray | None = None  # (n_mels, mel frames) float32, dB re max
    audio_duration: float | None = None
    audio_source: str | None = None
    face: Face | None = None
    video_mp4: bytes | None = None  # 3D: the 24 fps frames, 224x224, H.264
    n_frames: int | None = None  # 3D: frames at 24 fps
    track_faces: int | None = None  # 3D --face-crop: keyframes where MTCNN found the face
    keyframes: np.ndarray | None = None  # 3D --face-crop: (K, H, W, 3) uint8 RGB, the frames MTCNN looks at
    keyframe_faces: list[Face] | None = None  # 3D --face-crop: what MTCNN found on them (the build sets it)
    frames_1fps: np.ndarray | None = None  # ogm-ge: (n, H, W, 3) uint8, the first frame of every second
    frame_indices: list[int] | None = None  # ogm-ge: their indices among the decoded frames
    source_fps: int | None = None  # ogm-ge: the video's frame rate, as a whole number
    ogm_ge_spectrogram: np.ndarray | None = None  # ogm-ge: (257, 188) float32, log(|STFT| + 1e-7)
    errors: dict[str, str] = field(default_factory=dict)
    derived: dict[str, object] = field(default_factory=dict)  # images several variants share, made once
    files: dict[str, Path] = field(default_factory=dict)  # "video" / "wav" outside the corpus layout (predict)


def _video_path(raw: Path, f: ClipFeatures) -> tuple[Path, str]:
    """The clip's video and the name errors give it: its corpus path, or a file given directly."""
    if "video" in f.files:
        return f.files["video"], str(f.files["video"])
    rel = media_relpath(f.clip_id, "video_flv")
    return raw / rel, rel


def _checked(rel: str) -> None:
    reason = unusable_reason(rel)
    if reason:
        raise media.MediaError(reason)


def step_middle_frame(raw: Path, f: ClipFeatures) -> None:
    path, rel = _video_path(raw, f)
    _checked(rel)
    f.middle_frame, f.video_duration = media.read_middle_frame(path, rel)


def _frames_24fps(raw: Path, f: ClipFeatures) -> tuple[list[np.ndarray], list[int]]:
    """Every frame decoded as YUV 4:2:0 planes, and which of them is shown at each 24 fps instant."""
    from .. import video3d

    path, rel = _video_path(raw, f)
    _checked(rel)
    planes, times, f.video_duration = media.read_all_frames(path, rel, pixel_format="yuv420p")
    return planes, video3d.resample_times(times, video3d.source_fps(times))


def _keyframe_indices(n: int) -> list[int]:
    """The `video3d.FACE_KEYFRAMES` frames of the 24 fps grid that MTCNN looks at."""
    from .. import video3d

    return sorted({round(k) for k in np.linspace(0, n - 1, video3d.FACE_KEYFRAMES)})


def _keyframe_images(planes: Sequence[np.ndarray], picks: list[int], keys: list[int]) -> np.ndarray:
    """(K, H, W, 3) uint8 RGB of the keyframes."""
    from .. import video3d

    height, width = planes[0].shape[0] * 2 // 3, planes[0].shape[1]
    rgb = np.empty((len(keys), 3, height, width), np.float32)
    video3d.yuv_to_rgb(np.stack([planes[picks[k]] for k in keys]), rgb)
    return (rgb.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)


def step_face_keyframes(raw: Path, f: ClipFeatures) -> None:
    """3D --face-crop, first pass: the keyframes' RGB images. The build then finds the faces of many
    clips' keyframes in one MTCNN batch on its device, and `step_video_24fps` crops."""
    planes, picks = _frames_24fps(raw, f)
    f.keyframes = _keyframe_images(planes, picks, _keyframe_indices(len(picks)))


def step_video_24fps(raw: Path, f: ClipFeatures, face_crop: bool = False) -> None:
    """Every frame decoded, put on the 24 fps grid by timestamp, (face-)cropped, 224x224, H.264.

    Frames stay in the FLV's own YUV 4:2:0 from decoding to encoding. With --face-crop the boxes
    found on the keyframes (`keyframe_faces`, set by the build between its two passes on a GPU;
    else found here, on the CPU, one clip's keyframes in one MTCNN call) are interpolated to every
    frame.
    """
    from .. import video3d
    from ..faces import detect_faces, square_crop_box

    if "face_keyframes" in f.errors:  # the first pass could not read the video: neither can this one
        raise media.MediaError(f.errors["face_keyframes"])
    planes, picks = _frames_24fps(raw, f)
    height, width = planes[0].shape[0] * 2 // 3, planes[0].shape[1]
    if face_crop:
        keys = _keyframe_indices(len(picks))
        found = f.keyframe_faces
        if found is None:
            found = detect_faces(list(_keyframe_images(planes, picks, keys)), device="cpu")
        f.track_faces = sum(x.found for x in found)
        boxes = video3d.interpolate_boxes(keys, [x.box for x in found], len(picks))
        # no face on any keyframe: the centre square, as the 2D crop does
        crops = [square_crop_box(Face(b, 1.0 if b else 0.0), width, height) for b in boxes]
    else:
        crops = [(0, 0, width, height)] * len(picks)
    f.n_frames = len(picks)
    f.video_mp4 = video3d.encode_frames([video3d.crop_resize_frame(planes[p], c) for p, c in zip(picks, crops)])


def _read_audio(raw: Path, f: ClipFeatures) -> media.Audio:
    """Audio from AudioWAV when the file is there, else from the FLV's audio track."""
    if f.files:  # a file given directly: its WAV, else the video's own track
        wav = f.files.get("wav")
        return media.read_wav(wav, str(wav)) if wav else media.read_flv_audio(*_video_path(raw, f))
    wav_rel = media_relpath(f.clip_id, "audio_wav")
    if (raw / wav_rel).exists():
        _checked(wav_rel)
        return media.read_wav(raw / wav_rel, wav_rel)
    path, rel = _video_path(raw, f)
    if not path.exists():
        raise media.MediaError(f"{wav_rel} and {rel}: both missing, no audio for this clip")
    _checked(rel)
    return media.read_flv_audio(path, rel)


def step_mel(raw: Path, f: ClipFeatures) -> None:
    """Audio from AudioWAV when the file is there, else from the FLV's audio track."""
    audio = _read_audio(raw, f)
    signal = spectrogram.resample(audio.samples, audio.rate)
    f.mel_db = spectrogram.to_db(spectrogram.mel_power(signal)).numpy()
    f.audio_duration, f.audio_source = audio.duration, audio.source


def step_frames_1fps(raw: Path, f: ClipFeatures) -> None:
    """OGM-GE's frames: every frame decoded, the first of every second kept, full frame, RGB.

    As their `video_preprocessing.py` (`video2frame_update`, one frame kept per second): frame
    indices 0, fps, 2 fps, ... of the decoded video, fps being its whole frame rate (30 here).
    """
    import av

    from .. import ogm_ge, video3d

    path, rel = _video_path(raw, f)
    _checked(rel)
    planes, times, f.video_duration = media.read_all_frames(path, rel, pixel_format="yuv420p")
    f.source_fps = round(video3d.source_fps(times))
    f.frame_indices = ogm_ge.source_frame_indices(len(planes), f.source_fps)
    # only the kept frames go to RGB, through the same FFmpeg conversion as decoding to rgb24 (3x faster)
    f.frames_1fps = np.stack([av.VideoFrame.from_ndarray(planes[i], format="yuv420p").to_ndarray(format="rgb24")
                              for i in f.frame_indices])


def step_ogm_ge_stft(raw: Path, f: ClipFeatures) -> None:
    """OGM-GE's spectrogram: audio at 22,050 Hz, tiled to 3 s, clipped, log(|STFT| + 1e-7)."""
    from .. import ogm_ge

    audio = _read_audio(raw, f)
    f.ogm_ge_spectrogram = ogm_ge.log_stft(spectrogram.resample(audio.samples, audio.rate))
    f.audio_duration, f.audio_source = audio.duration, audio.source


STEPS: dict[str, Callable[..., None]] = {
    "middle_frame": step_middle_frame,
    "face_keyframes": step_face_keyframes,
    "video_24fps": step_video_24fps,
    "mel": step_mel,
    "frames_1fps": step_frames_1fps,
    "ogm_ge_stft": step_ogm_ge_stft,
}


class Step(NamedTuple):
    name: str
    run: Callable[[Path, ClipFeatures], None]
    after_faces: bool = False  # needs the faces the build finds between its two passes


def bind_steps(names: Sequence[str], face_crop: bool = False, batch_faces: bool = False) -> tuple[Step, ...]:
    """The named steps, each once, with their build options bound (picklable, for worker processes).

    With `face_crop` the video step finds the faces on its clip's keyframes itself (on the CPU);
    with `batch_faces` too, the 24 fps video takes two passes instead: its keyframes first, the
    crop once the build has found their faces, many clips per MTCNN call on the build's device.
    """
    steps = []
    for name in dict.fromkeys(names):
        if name == "video_24fps" and face_crop and batch_faces:
            steps += [Step("face_keyframes", step_face_keyframes),
                      Step(name, partial(step_video_24fps, face_crop=True), after_faces=True)]
        elif name == "video_24fps" and face_crop:
            steps.append(Step(name, partial(step_video_24fps, face_crop=True)))
        else:
            steps.append(Step(name, STEPS[name]))
    return tuple(steps)


def extract(raw: Path, clip_id: str, steps: tuple[Step, ...]) -> ClipFeatures:
    """Run the steps on one clip; a failing step records its reason and the others still run."""
    return run_steps(raw, ClipFeatures(clip_id), steps)


def extract_file(video: Path, steps: tuple[Step, ...], wav: Path | None = None) -> ClipFeatures:
    """Run the steps on any video (and optionally a WAV) outside the corpus layout: what predict reads."""
    files = {"video": Path(video), **({"wav": Path(wav)} if wav else {})}
    return run_steps(Path(video).parent, ClipFeatures(Path(video).stem, files=files), steps)


def run_steps(raw: Path, f: ClipFeatures, steps: tuple[Step, ...]) -> ClipFeatures:
    for name, step, _ in steps:
        try:
            step(raw, f)
        except media.MediaError as e:
            f.errors[name] = str(e)
        except Exception as e:  # a decoder bug must cost one clip, not the build
            f.errors[name] = f"unexpected {e.__class__.__name__} while reading: {e}"
    return f
