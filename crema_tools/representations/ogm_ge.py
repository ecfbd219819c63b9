"""OGM-GE's CREMA-D inputs: how the `ogm-ge` config is computed, and how a sample is decoded.

OGM-GE (GeWu-Lab/OGM-GE_CVPR2022) and the works built on its CREMA-D setup (PMR, AGM, MMPareto,
MMCosine, ...) feed their models what `data/CREMAD/video_preprocessing.py` and
`dataset/CramedDataset.py` make:

- frames: of the 30 fps video, the first frame of every second, the full 480x360 frame; at
  training `fps` of them (1 by default) go through RandomResizedCrop(224) and a random
  horizontal flip, at test through Resize((224, 224)); then ImageNet normalisation;
- audio: the WAV loaded at 22,050 Hz, tiled to 3 s, clipped to [-1, 1],
  `librosa.stft(n_fft=512, hop_length=353)`, `log(|S| + 1e-7)`: 257 x 188;
- labels in the order NEU, HAP, SAD, FEA, DIS, ANG.

The build stores the frames (one JPEG strip) and the spectrogram (float16); `decode` turns a
sample into the `(spectrogram, images, label)` their `CramedDataset.__getitem__` returns.
What matches and what differs is in docs/ogm-ge.md.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..corpus import EMOTIONS, OGM_GE_CLASS_ORDER
from ..errors import LoadError
from .base import BuildOptions, Features, Representation, Step, npy, option

SAMPLE_RATE = 22_050
SECONDS = 3
N_FFT = 512
HOP_LENGTH = 353
LOG_EPS = 1e-7
SPECTROGRAM_SHAPE = (N_FFT // 2 + 1, 1 + SAMPLE_RATE * SECONDS // HOP_LENGTH)  # (257, 188)
IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JPEG_QUALITY = 95  # OpenCV's cv2.imencode default, which their preprocessing script relies on

CLASS_ORDERS: dict[str, tuple[str, ...]] = {"ogm-ge": OGM_GE_CLASS_ORDER, "crema-d": EMOTIONS}
"""Label orders `decode` offers: OGM-GE's (NEU, HAP, SAD, FEA, DIS, ANG) or crema-tools' (ANG, DIS,
FEA, HAP, NEU, SAD, the `cls` member and the `label` field of every sample)."""
PICKS = ("random", "first", "fixed")
LISTED_FIRST = 1
"""The frame OGM-GE's loader opens with `--fps 1`: the first name `os.listdir` gives in the clip's
folder of `00000.jpg`, `00030.jpg`, ... On ext4 (hashed directory order, the same for every folder of
one filesystem) that was `00030.jpg`, the 1 s frame, for every clip; another filesystem may list
another first: `fixed_index` sets it."""

STFT_PARAMS = {
    "sample_rate": SAMPLE_RATE, "resampler": "crema_tools.spectrogram.resample",
    "seconds": SECONDS, "tile": "the clip repeated and cut to 3 s (np.tile(x, 3)[:66150] for every clip of 1 s or more)",
    "clip": [-1.0, 1.0], "n_fft": N_FFT, "hop_length": HOP_LENGTH, "window": "hann (periodic)",
    "center": True, "pad_mode": "constant", "log": f"log(|S| + {LOG_EPS})",
    "shape": list(SPECTROGRAM_SHAPE), "storage": "float16 .npy, (frequency bins, frames), low frequencies first",
}


def source_frame_indices(n_frames: int, fps: int) -> list[int]:
    """Frames that `video2frame_update(frame_kept_per_second=1)` keeps: the first of every second,
    i.e. indices 0, fps, 2 fps, ... of the decoded frames (fps: the video's whole frame rate)."""
    return list(range(0, n_frames, max(1, int(fps))))


def log_stft(signal) -> np.ndarray:
    """OGM-GE's spectrogram of a 22,050 Hz mono signal: tiled to 3 s, clipped, |STFT|, log.

    `np.tile(x, 3)[:66150]` for a clip of at least 1 s; a shorter one (none in CREMA-D) is
    repeated as often as it takes, so every spectrogram is 257 x 188. Zero-padded centred frames
    and a periodic Hann window: `librosa.stft` defaults since librosa 0.10.
    """
    import torch

    n = SAMPLE_RATE * SECONDS
    x = signal.detach().to(torch.float32).reshape(-1)
    if x.numel() == 0:
        raise ValueError("no audio samples")
    x = x.repeat(-(-n // x.numel()))[:n].clamp(-1.0, 1.0)
    with torch.inference_mode():
        s = torch.stft(x, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT), center=True,
                       pad_mode="constant", return_complex=True)
        return torch.log(s.abs() + LOG_EPS).numpy()


def frame_picks(n: int, frames: int, pick: str, generator=None, fixed_index: int = LISTED_FIRST) -> list[int]:
    """Which of a clip's `n` stored frames to use, in time order.

    "random": `frames` distinct frames drawn uniformly and sorted (OGM-GE's `select_index`, as the
    works that fixed their loader use it); with fewer than `frames` stored, drawn with replacement.
    "first": the first `frames`, the last one repeated when the clip has fewer. "fixed": their
    loader's own behaviour, the same frames every epoch: from `fixed_index` on (see LISTED_FIRST).
    """
    import torch

    if pick == "first":
        return [min(i, n - 1) for i in range(frames)]
    if pick == "fixed":
        return [min(fixed_index + i, n - 1) for i in range(frames)]
    if n >= frames:
        return sorted(torch.randperm(n, generator=generator)[:frames].tolist())
    return sorted(torch.randint(n, (frames,), generator=generator).tolist())


@lru_cache(maxsize=2)
def image_transform(train: bool):
    """CramedDataset's transform: RandomResizedCrop(224) + RandomHorizontalFlip at training,
    Resize((224, 224)) at test; then ToTensor and ImageNet normalisation."""
    from torchvision import transforms

    resize = ([transforms.RandomResizedCrop(IMAGE_SIZE), transforms.RandomHorizontalFlip()] if train
              else [transforms.Resize(size=(IMAGE_SIZE, IMAGE_SIZE))])
    return transforms.Compose([*resize, transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def label_index(emotion: str, class_order: str = "ogm-ge") -> int:
    """The label of an emotion code in the chosen order (see CLASS_ORDERS)."""
    if class_order not in CLASS_ORDERS:
        raise LoadError(f"class_order must be one of {', '.join(CLASS_ORDERS)}, not {class_order!r}")
    return CLASS_ORDERS[class_order].index(emotion)


def decode(members: dict[str, bytes], meta: dict, *, class_order: str = "ogm-ge", frames: int = 1,
           train: bool = False, pick: str | None = None,
           generator=None, fixed_index: int = LISTED_FIRST) -> tuple:
    """One `ogm-ge` sample as OGM-GE's `CramedDataset.__getitem__` returns it.

    `members`: the sample's tar members by extension (`jpg`, `npy`; others are ignored); `meta`:
    its parsed `json` member. Returns

    - spectrogram: float32 (257, 188), `log(|STFT| + 1e-7)`; their training loop adds the
      channel with `spec.unsqueeze(1)`;
    - images: float32 (3, frames, 224, 224), ImageNet-normalised: `frames` (their `--fps`) of
      the clip's 1 fps frames, in time order, picked by `pick` ("random" by default when
      `train`, else "first"; "fixed": their loader's, `fixed_index` on), each transformed as their
      train or test transform;
    - label: int, in `class_order` ("ogm-ge": NEU, HAP, SAD, FEA, DIS, ANG; "crema-d": ANG,
      DIS, FEA, HAP, NEU, SAD, as the sample's `label`).

    Random picks and crops draw from torch's RNG (`generator` for the picks), which DataLoader
    seeds per worker.
    """
    import torch
    from PIL import Image

    clip = meta.get("clip_id", "sample")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise LoadError(f"frames must be a positive number of frames per clip, not {frames!r}")
    pick = pick if pick is not None else "random" if train else "first"
    if pick not in PICKS:
        raise LoadError(f"pick must be one of {', '.join(PICKS)}, not {pick!r}")
    label = label_index(meta["emotion"], class_order)
    missing = [m for m in ("jpg", "npy") if m not in members]
    if missing:
        raise LoadError(f"{clip}: no {' or '.join(missing)} member; is this an ogm-ge sample?")
    spec = np.load(io.BytesIO(members["npy"]), allow_pickle=False)
    if spec.shape != SPECTROGRAM_SHAPE:
        raise LoadError(f"{clip}: spectrogram of shape {spec.shape}, expected {SPECTROGRAM_SHAPE}")
    strip = Image.open(io.BytesIO(members["jpg"])).convert("RGB")
    n = int(meta["n_frames"])
    if n < 1 or strip.width % n:
        raise LoadError(f"{clip}: a {strip.width}-pixel-wide strip does not hold {n} frames")
    width, transform = strip.width // n, image_transform(bool(train))
    images = torch.stack([transform(strip.crop((i * width, 0, (i + 1) * width, strip.height)))
                          for i in frame_picks(n, frames, pick, generator, fixed_index)], dim=1)
    return torch.from_numpy(spec.astype(np.float32)), images, label


# ---------------------------------------------------------------- the representation


def step_frames_1fps(raw, f) -> None:
    """OGM-GE's frames: every frame decoded, the first of every second kept, full frame, RGB.

    As their `video_preprocessing.py` (`video2frame_update`, one frame kept per second): frame
    indices 0, fps, 2 fps, ... of the decoded video, fps being its whole frame rate (30 here).
    """
    import av

    from .. import media
    from ..media import video3d
    from ..media.decode import frame_array
    from .steps import checked_video

    path, rel = checked_video(raw, f)
    planes, times, f["video_duration"] = media.read_all_frames(path, rel, pixel_format="yuv420p")
    f["source_fps"] = round(video3d.source_fps(times))
    f["frame_indices"] = source_frame_indices(len(planes), f["source_fps"])
    # only the kept frames go to RGB, through the same FFmpeg conversion as decoding to rgb24 (3x faster)
    f["frames_1fps"] = np.stack([frame_array(av.VideoFrame.from_ndarray(planes[i], format="yuv420p"))
                                 for i in f["frame_indices"]])


def step_ogm_ge_stft(raw, f) -> None:
    """OGM-GE's spectrogram: audio at 22,050 Hz, tiled to 3 s, clipped, log(|STFT| + 1e-7)."""
    from ..media import spectrogram
    from .steps import read_audio

    audio = read_audio(raw, f)
    f["ogm_ge_spectrogram"] = log_stft(spectrogram.resample(audio.samples, audio.rate))
    f["audio_duration"], f["audio_source"] = audio.duration, audio.source


def jpeg(array: np.ndarray) -> bytes:
    """Baseline JPEG at fixed settings (quality 95, 4:2:0): the same bytes for the same pixels."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:0",
                                optimize=False, progressive=False)
    return buf.getvalue()


def _params() -> dict:
    from ..media import spectrogram

    return {
        "reference": "GeWu-Lab/OGM-GE_CVPR2022: data/CREMAD/video_preprocessing.py, dataset/CramedDataset.py",
        "frames": {
            "source": "VideoFlash FLV, the full frame (no face crop), RGB",
            "rule": "of the decoded video, frame indices 0, fps, 2 fps, ...: the first frame of every second "
                    "(video2frame_update with frame_kept_per_second=1); fps the stream's whole frame rate (30)",
            "storage": f"one JPEG strip, frames side by side in time order, quality {JPEG_QUALITY}, 4:2:0, "
                       "full size (480 x 360 each); n_frames and frame_indices in the sample's json",
            "at load": "frames picked per clip (random at training, the first at test), RandomResizedCrop(224) and "
                       "horizontal flip at training, Resize((224, 224)) at test, ImageNet mean and std",
            "resize": {"at": "load", "by": "torchvision transforms on PIL images (as CramedDataset)",
                       "kernel": "bilinear", "antialias": True},
        },
        "spectrogram": {"source": "AudioWAV (the FLV's audio track when there is no WAV)", **STFT_PARAMS,
                        "resampling": spectrogram.PARAMS.get("resampling")},
        "labels": {"cls and json label": "crema-tools order: ANG, DIS, FEA, HAP, NEU, SAD",
                   "ogm-ge order (decode's default)": list(CLASS_ORDERS["ogm-ge"])},
    }


@dataclass(frozen=True)
class OgmGeOptions:
    """What `crema_tools.load` takes for the ogm-ge config."""

    layout: str | None = option(None, "the ogm-ge config")  # "ogm-ge": items as OGM-GE's dataset returns them (the only layout)
    frames_per_clip: int = option(1, "the ogm-ge config")  # 1 fps frames per clip (OGM-GE's --fps)
    class_order: str = option("ogm-ge", "the ogm-ge config")  # label order of the items, "ogm-ge" or "crema-d"
    frame_pick: str | None = option(None, "the ogm-ge config")  # None: "random" at training, "first" at test; or "fixed"
    fixed_index: int = option(LISTED_FIRST, "the ogm-ge config")  # "fixed": the first frame their loader opens


@dataclass(frozen=True, kw_only=True)
class OgmGe(Representation):
    """OGM-GE's inputs, for comparison with it and its successors. Its split family is 2D, though the
    ogm-ge protocol splits 2D and 3D alike (docs/ogm-ge.md)."""

    def steps(self, options: BuildOptions) -> tuple[Step, ...]:
        return (Step("frames_1fps", step_frames_1fps, ("frames_1fps", "frame_indices", "source_fps", "video_duration")),
                Step("ogm_ge_stft", step_ogm_ge_stft, ("ogm_ge_spectrogram", "audio_duration", "audio_source")))

    def render(self, f: Features) -> dict[str, bytes]:
        # frames side by side: 480 is a whole number of JPEG blocks, so each frame is coded as it
        # would be alone (only chroma upsampling at the seams looks across when decoding)
        strip = np.concatenate(list(f["frames_1fps"]), axis=1)
        return {"jpg": jpeg(strip), "npy": npy(f["ogm_ge_spectrogram"].astype(np.float16))}

    def sample_fields(self, f: Features) -> dict:
        return {"n_frames": len(f["frame_indices"]), "frame_indices": list(f["frame_indices"]), "source_fps": f["source_fps"]}

    def refuse_options(self, given: dict, known: dict) -> None:
        if given and all(known.get(k) is not None and k in ("channels", "dtype") for k in given):
            raise LoadError("ogm-ge yields OGM-GE's own tensors (ImageNet-normalised RGB frames, the log STFT): "
                            "channels and dtype do not apply")
        super().refuse_options(given, known)

    def check_options(self, opts: OgmGeOptions) -> None:
        if opts.layout not in (None, "ogm-ge"):
            raise LoadError(f"ogm-ge: layout must be 'ogm-ge', not {opts.layout!r}")
        if opts.frame_pick is not None and opts.frame_pick not in PICKS:
            raise LoadError(f"frame_pick must be one of {', '.join(PICKS)}, not {opts.frame_pick!r}")
        if isinstance(opts.fixed_index, bool) or not isinstance(opts.fixed_index, int) or opts.fixed_index < 0:
            raise LoadError(f"fixed_index must be a frame index (0, 1, ...), not {opts.fixed_index!r}")

    def decode(self, members: dict[str, bytes], meta: dict, opts: OgmGeOptions, split: str):
        """OGM-GE's `(spectrogram, images, label)`, their train or test transforms by split."""
        return decode(members, meta, class_order=opts.class_order, frames=opts.frames_per_clip, train=split == "train",
                      pick=opts.frame_pick, fixed_index=opts.fixed_index)

    def preview(self, members: dict[str, bytes]):
        from ..media.pictures import SPEC_W, array_panel, image_panel, stacked

        strip = image_panel(members["jpg"])
        return stacked([strip, array_panel(members["npy"], np.log(LOG_EPS), 5.0, max(strip.width, SPEC_W))])


OGM_GE = OgmGe(
    name="ogm-ge", modality="multimodal", split_family="2d", layout="ogm-ge", paper=False,
    description="OGM-GE's inputs: the full frames at 1 fps (the first of every second) as one JPEG strip, "
                "and the log-magnitude STFT of the audio tiled to 3 s at 22,050 Hz (257 x 188, float16)",
    shape="spectrogram (257, 188), images (3, frames, 224, 224)",
    members={"jpg": "image", "npy": {"list": {"list": "float16"}}},
    metadata_fields={"n_frames": "int64", "frame_indices": {"sequence": "int64"}, "source_fps": "int64"},
    needs=("frames_1fps", "ogm_ge_stft"), params=_params(), options_type=OgmGeOptions,
)
