"""`hicmae-av`: similarity-aligned face clips and the Kaldi fbank, HiCMAE's audio-visual input.

HiCMAE (sunlicai/HiCMAE at commit cdd28d4; MAE-DFER and AVF-MAE++ prepare CREMA-D alike) runs
OpenFace 2.2's FeatureExtraction with `-simalign -simsize 256 -nomask` on every FLV
(preprocess/face_and_audio/extract_face.py): every frame's 68 landmarks mapped by a similarity
transform onto OpenFace's mean face, written as a 256 px JPEG. OpenFace scales its mean face by
`-simscale` (0.7 by default) whatever `-simsize` is, so at 256 px the face is as large as in its
default 112 px output and the rest of the square shows the head and background around it.

Here, without OpenFace (a Windows executable): every frame of the FLV, at its own rate (30 fps),
goes through MTCNN (`media.faces`, with landmarks), and its five points are mapped by the
least-squares similarity (`faces.similarity`, Umeyama) onto `TEMPLATE`: InsightFace's ArcFace
five-point template (112 px) at its own scale, its square centred in the 256 px canvas, as
OpenFace centres its 112 px-sized face (both frame a face tightly in 112 px; OpenFace's mean face
itself is not used, and its output was not at hand to measure the difference). A frame without a face takes the transform of the
nearest frame that has one (the earlier on a tie); a clip without any takes the centre square.
The 256 px faces are stored as H.264 (as the 3D configs' video), with the clip's Kaldi fbank
exactly as the `fbank` config stores it.

The loader samples frames as their `VideoClsDatasetFrame` (kinetics_av.py, `load_video` and
`__getitem__`) with run_class_finetuning_av.py's CREMA-D settings (scripts/.../cream-d/
finetune_170.sh: 16 frames, sampling rate 4, input size 160, short side 160, 2 test segments):

- training split: a 64-frame window (16 x 4) ending at a uniform random frame in [64, n); 16
  frames spread evenly over it (`linspace`, clipped); a clip of 64 frames or fewer gives n // 4
  frames spread over it, the last repeated to 16; the audio is the fbank under the window;
- other splits (their test mode): every 4th frame, the last repeated up to 16, and
  `test_segments` windows of 16 of them, the first at the start and the last at the end;
  `video` and `audio` get a leading segment axis (average the model's outputs over it).

Frames are resized to 160 x 160 (Pillow, bilinear: their `Resize((160, 160))` of PIL images), so
their 160 px centre crop is the whole frame; then /255 and ImageNet mean and std, (3, 16, 160,
160). Their training augmentation (RandAugment, random resized crop, flip, random erasing) is the
training loop's to add. The audio is the fbank's rows under the sampled frames (their
`load_audio`, to the nearest 10 ms row; the whole clip where that span is 1,024 samples or less),
cut or zero-padded to 256 and AudioSet-normalised: (1, 256, 128). Where their span starts on a
10 ms row this equals their code (the first test segment); elsewhere the rows lie up to 5 ms from
theirs: on synthetic speech, median 0.04 and at most 0.77 apart in normalised units (tested).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import media
from ..errors import LoadError
from ..media import faces, video3d
from .base import BuildOptions, Features, Representation, Step, option
from .fbank import FBANK, NORMALISATIONS
from .fbank import SAMPLE_RATE as AUDIO_RATE
from .steps import checked_video

SIZE = 256
"""The aligned face's side, as HiCMAE's extraction writes it (`-simsize 256`)."""
ARCFACE_112 = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041))
"""InsightFace's ArcFace template (deepinsight/insightface, python-package/insightface/utils/face_align.py,
`arcface_dst`): left eye, right eye, nose tip, left and right mouth corner in a 112 px square, in
MTCNN's order."""
TEMPLATE = tuple((x + (SIZE - 112) / 2, y + (SIZE - 112) / 2) for x, y in ARCFACE_112)
"""Where the five points go in the 256 px face: ArcFace's template, its 112 px square centred."""
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
"""ImageNet's, as their video_transforms.Normalize and tensor_normalize apply them."""
FBANK_SHIFT, FBANK_WINDOW = 160, 400  # samples: Kaldi's 10 ms frame shift and 25 ms window at 16 kHz
MIN_AUDIO = 1024
"""Samples: a shorter span under the frames gives the whole clip (their `load_audio`)."""


# ---------------------------------------------------------------- building


def transforms(found: list[faces.Face], width: int, height: int) -> list[np.ndarray]:
    """Each frame's 2x3 transform onto `TEMPLATE`: from its own five points, else those of the
    nearest frame that has them (the earlier on a tie); the centre square if no frame has any."""
    have = [i for i, f in enumerate(found) if f.points is not None]
    if not have:
        side = min(width, height)
        centre = np.array([[SIZE / side, 0.0, -(width - side) / 2 * SIZE / side],
                           [0.0, SIZE / side, -(height - side) / 2 * SIZE / side]])
        return [centre] * len(found)
    own = {i: faces.similarity(found[i].points, TEMPLATE) for i in have}
    nearest = np.asarray(have)
    return [own[int(nearest[np.argmin(np.abs(nearest - i))])] for i in range(len(found))]


def rgb_frames(raw: Path, f: Features) -> np.ndarray:
    """(T, H, W, 3) uint8: every frame of the clip in order, from YUV 4:2:0 (BT.601, `video3d.yuv_to_rgb`)."""
    path, rel = checked_video(raw, f)
    planes, times, f["video_duration"] = media.read_all_frames(path, rel, pixel_format="yuv420p")
    f["source_fps"] = round(video3d.source_fps(times))
    rgb = np.empty((len(planes), 3, planes[0].shape[0] * 2 // 3, planes[0].shape[1]), np.float32)
    video3d.yuv_to_rgb(np.stack(planes), rgb)
    return (rgb.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)


def step_align_frames(raw: Path, f: Features) -> None:
    """On a GPU, the first pass: the frames, whose faces the build then finds on its device."""
    f["align_frames"] = rgb_frames(raw, f)


def step_aligned_video(raw: Path, f: Features) -> None:
    """Every frame aligned onto `TEMPLATE` at 256 px, stored as H.264 at the clip's own frame rate.
    Its faces come from the build (`frame_faces`, found between two passes on a GPU), else from
    MTCNN here on the CPU, all of the clip's frames in one call."""
    if "align_frames" in f.errors:  # the first pass could not read the video: neither can this one
        raise media.MediaError(f.errors["align_frames"])
    frames = rgb_frames(raw, f)
    found = f.get("frame_faces")
    if found is None:
        found = faces.detect_faces(list(frames), device="cpu", landmarks=True)
    if len(found) != len(frames):
        raise media.MediaError(f"{len(frames)} frames decoded, {len(found)} searched for faces in the first pass")
    height, width = frames.shape[1:3]
    aligned = [faces.warp(frame, m, SIZE) for frame, m in zip(frames, transforms(found, width, height))]
    f["aligned_mp4"] = video3d.encode_frames([video3d.rgb_to_yuv420(a) for a in aligned], SIZE, f["source_fps"])
    f["aligned_frames"], f["aligned_faces_found"] = len(aligned), sum(x.points is not None for x in found)
    f["frame_faces"] = None


# ---------------------------------------------------------------- their sampling rules


def train_indices(n: int, frames: int, rate: int, draw_end) -> np.ndarray:
    """Their training rule (`load_video`, one segment): `draw_end(low, high)` draws the window's
    end in [low, high) when the clip is longer than the window."""
    window = frames * rate
    if n <= window:
        index = np.linspace(0, n, num=n // rate)
        index = np.concatenate((index, np.ones(frames - n // rate) * n))
        return np.clip(index, 0, n - 1).astype(np.int64)
    end = int(draw_end(window, n))
    index = np.linspace(end - window, end, num=frames)
    return np.clip(index, end - window, end - 1).astype(np.int64)


def test_segments(n: int, frames: int, rate: int, segments: int) -> list[tuple[np.ndarray, int, int]]:
    """Their test rule: for each segment, its frame indices and the first and last frame of its audio."""
    every = list(range(0, n, rate))
    while len(every) < frames:
        every.append(every[-1])
    step = max((len(every) - frames) / (segments - 1), 0) if segments > 1 else 0
    out = []
    for k in range(segments):
        start = int(k * step)
        last = min(every[min(start + frames - 1, len(every) - 1)] + rate, n - 1)
        out.append((np.asarray(every[start:start + frames], np.int64), every[start], last))
    return out


def audio_rows(first: int, last: int, n: int, samples: int) -> tuple[int, int] | None:
    """The fbank rows [a, b) of the audio under frames first..last of n (their `load_audio`: the
    same fraction of the audio's samples), or None for the whole clip (a span of 1,024 samples or less)."""
    lo = int(first / (n - 1) * samples) if n > 1 else 0
    hi = int(last / (n - 1) * samples) if n > 1 else 0
    if hi - lo <= MIN_AUDIO:
        return None
    a = round(lo / FBANK_SHIFT)
    return a, a + 1 + (hi - lo - FBANK_WINDOW) // FBANK_SHIFT


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class HicmaeOptions:
    """What `crema_tools.load` takes for the hicmae-av config (HiCMAE's CREMA-D settings by default)."""

    num_frames: int = option(16, "the hicmae-av config")  # frames per clip (their --num_frames)
    sampling_rate: int = option(4, "the hicmae-av config")  # every Nth frame (their --sampling_rate)
    input_size: int = option(160, "the hicmae-av config")  # frames resized to it, square (their --input_size)
    test_segments: int = option(2, "the hicmae-av config")  # windows per clip outside training (their --test_num_segment)
    audio_length: int = option(256, "the hicmae-av config")  # fbank rows, cut or zero-padded (their --input_size_audio)


def pictures(members: dict[str, bytes], meta: dict) -> np.ndarray:
    """(T, 256, 256, 3) uint8: the stored faces, as their JPEGs would open."""
    planes = video3d.decode_yuv(members["mp4"])
    if len(planes) != meta["n_frames"]:
        raise LoadError(f"{meta['clip_id']}: {len(planes)} frames decoded, the sample says {meta['n_frames']}")
    rgb = np.empty((len(planes), 3, SIZE, SIZE), np.float32)
    video3d.yuv_to_rgb(planes, rgb)
    return (rgb.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)


def video_tensor(rgb: np.ndarray, keep: np.ndarray, size: int):
    """(3, T, size, size): the kept frames resized (Pillow bilinear), /255, ImageNet-normalised."""
    import torch
    from PIL import Image

    picked = np.stack([np.asarray(Image.fromarray(rgb[i]).resize((size, size), Image.BILINEAR)) for i in keep])
    x = torch.from_numpy(picked).float().div_(255.0)
    x = (x - torch.tensor(MEAN)) / torch.tensor(STD)
    return x.permute(3, 0, 1, 2).contiguous()


def audio_tensor(fbank: np.ndarray, rows: tuple[int, int] | None, length: int):
    """(1, length, 128): the rows under the frames, cut or zero-padded, AudioSet-normalised."""
    import torch

    x = torch.from_numpy(fbank if rows is None else fbank[rows[0]:rows[1]])
    x = torch.nn.functional.pad(x[:length], (0, 0, 0, max(0, length - min(len(x), length))))
    mean, std = NORMALISATIONS["audioset"]
    return ((x - mean) / (std * 2))[None]


@dataclass(frozen=True, kw_only=True)
class HicmaeAv(Representation):
    """Aligned 256 px face clips (H.264) and the Kaldi fbank; loaded as HiCMAE's `(video, audio, label)`."""

    def steps(self, options: BuildOptions) -> tuple[Step, ...]:
        video = ("aligned_mp4", "aligned_frames", "aligned_faces_found", "source_fps", "video_duration")
        if options.batch_faces:
            return (Step("align_frames", step_align_frames, ("align_frames", "source_fps", "video_duration")),
                    Step("aligned_video", step_aligned_video, video, after_faces=True), *FBANK.steps(options))
        return (Step("aligned_video", step_aligned_video, video), *FBANK.steps(options))

    def finds_faces(self, options: BuildOptions) -> bool:
        return True

    def render(self, f: Features) -> dict[str, bytes]:
        return {"mp4": f["aligned_mp4"], **FBANK.render(f)}

    def sample_fields(self, f: Features) -> dict:
        return {"n_frames": f["aligned_frames"], "fps": f["source_fps"], "frames_with_face": f["aligned_faces_found"],
                "fbank_frames": int(f["fbank"].shape[0]), "audio_samples": round(f["audio_duration"] * AUDIO_RATE)}

    def unusable(self, f: Features) -> str | None:
        return FBANK.unusable(f)

    def flags(self, f: Features) -> list[dict]:
        n, found = f["aligned_frames"], f["aligned_faces_found"]
        if found == n:
            return []
        how = "the centre square" if not found else "the transform of the nearest frame with a face"
        return [{"clip_id": f.clip_id, "flag": "aligned_frames_without_face", "kept": True,
                 "detail": f"no face found in {n - found} of {n} frames: they take {how}"}]

    def face_not_found(self, f: Features) -> bool:
        return not f["aligned_faces_found"]

    def check_options(self, opts: HicmaeOptions) -> None:
        for name in ("num_frames", "sampling_rate", "input_size", "test_segments", "audio_length"):
            value = getattr(opts, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LoadError(f"{name} must be a positive whole number, not {value!r}")

    def decode_inputs(self, members: dict[str, bytes], meta: dict, opts: HicmaeOptions, split: str) -> dict:
        """HiCMAE's `(video, audio)` and the stored frames they took (`decode` adds the labels)."""
        import torch

        rgb = pictures(members, meta)
        fbank = np.load(io.BytesIO(members["npy"]), allow_pickle=False).astype(np.float32)
        n, samples = len(rgb), int(meta["audio_samples"])
        if split == "train":
            keep = train_indices(n, opts.num_frames, opts.sampling_rate,
                                 lambda lo, hi: torch.randint(lo, hi, ()).item())
            rows = audio_rows(int(keep[0]), min(int(keep[0]) + opts.num_frames * opts.sampling_rate, n - 1), n, samples)
            return {"video": video_tensor(rgb, keep, opts.input_size), "audio": audio_tensor(fbank, rows, opts.audio_length),
                    "frame_indices": torch.from_numpy(keep)}
        views = test_segments(n, opts.num_frames, opts.sampling_rate, opts.test_segments)
        return {"video": torch.stack([video_tensor(rgb, keep, opts.input_size) for keep, _, _ in views]),
                "audio": torch.stack([audio_tensor(fbank, audio_rows(a, b, n, samples), opts.audio_length)
                                      for _, a, b in views]),
                "frame_indices": torch.from_numpy(np.stack([keep for keep, _, _ in views]))}

    def assemble(self, batch: dict, device=None):
        """(video, audio) of a collated batch on `device`: normalised already, as their model takes them."""
        return tuple(batch[k].to(device, non_blocking=True) if device is not None else batch[k] for k in ("video", "audio"))

    @property
    def card_tasks(self) -> tuple[set[str], set[str]]:
        return {"video-classification", "audio-classification"}, {"audio-emotion-recognition"}

    def preview(self, members: dict[str, bytes]):
        from ..media.pictures import stacked, video_panel

        return stacked([video_panel(members["mp4"]), FBANK.preview({"npy": members["npy"]})])


def _params() -> dict:
    reference = "sunlicai/HiCMAE@cdd28d4"
    return {
        "video": {
            "source": "VideoFlash FLV, every frame at its own rate (30 fps), decoded as YUV 4:2:0, to RGB by BT.601",
            "faces": "facenet-pytorch MTCNN on every frame, the most probable face's five landmarks; on the build's "
                     "device (batched per clip; in the main process between two passes on a GPU)",
            "alignment": "least-squares similarity (Umeyama) of the five points onto the template, applied by Pillow's "
                         "affine transform, bilinear, black outside the frame",
            "template": {"points": [list(p) for p in TEMPLATE], "from": "InsightFace's ArcFace 112 px five-point "
                         "template, unscaled, its square centred in 256 px (OpenFace keeps the default face scale, "
                         "-simscale 0.7, at -simsize 256)", "order": "left eye, right eye, nose, left and right mouth corner"},
            "no_face": "a frame without a face: the nearest frame's transform (earlier on a tie); a clip without any: "
                       "the centre square; frames_with_face in the sample's json, a flag in report.json",
            "size": [SIZE, SIZE], "storage": video3d.CODEC,
            "resize": {"at": "build", "by": "Pillow Image.transform (affine)", "kernel": "bilinear", "antialias": False},
            "reference": f"{reference}: preprocess/face_and_audio/extract_face.py (OpenFace -simalign -simsize 256 -nomask)",
        },
        "fbank": FBANK.params["fbank"],
        "sampling": {
            "train": "a num_frames x sampling_rate (16 x 4) frame window ending at a uniform random frame, num_frames "
                     "spread over it; the fbank rows under it",
            "other splits": "every sampling_rate-th frame, test_segments (2) windows of num_frames: the first and the "
                            "last; video (S, 3, T, H, W), audio (S, 1, 256, 128)",
            "video": "resized to input_size (160) square, /255, ImageNet mean and std, (3, 16, 160, 160); no augmentation",
            "resize": {"at": "load", "by": "Pillow Image.resize (their Resize((160, 160)) of PIL images)",
                       "kernel": "bilinear", "antialias": True, "to": "input_size (160) square"},
            "audio": "cut or zero-padded to audio_length (256) rows, (x + 4.2677393) / (2 x 4.5689974), (1, 256, 128)",
            "reference": f"{reference}: kinetics_av.py VideoClsDatasetFrame (load_video, load_audio, __getitem__); "
                         "scripts/voxceleb2/audio_visual/hicmae_pretrain_base/cream-d/finetune_170.sh",
        },
    }


HICMAE_AV = HicmaeAv(
    name="hicmae-av", modality="multimodal", split_family="2d", layout="hicmae-av", paper=False,
    description="similarity-aligned 256 px face clips (MTCNN's five landmarks onto ArcFace's template, every frame, "
                "H.264) and the Kaldi fbank, loaded as HiCMAE's (video, audio, label): 16 frames at sampling rate 4, "
                "160 px, and (1, 256, 128)",
    shape="video (3, 16, 160, 160), audio (1, 256, 128); other splits (2, ...) for their two test segments",
    members={"mp4": "binary", "npy": {"list": {"list": "float32"}}},
    metadata_fields={"n_frames": "int64", "fps": "int64", "frames_with_face": "int64", "fbank_frames": "int64",
                     "audio_samples": "int64"},
    needs=("aligned_video", "fbank"), params=_params(), options_type=HicmaeOptions, stores=frozenset({"video"}),
)
