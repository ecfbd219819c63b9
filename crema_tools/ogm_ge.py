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
from functools import lru_cache

import numpy as np
import torch

from .corpus import EMOTIONS, OGM_GE_CLASS_ORDER
from .errors import LoadError

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
PICKS = ("random", "first")

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


def log_stft(signal: torch.Tensor) -> np.ndarray:
    """OGM-GE's spectrogram of a 22,050 Hz mono signal: tiled to 3 s, clipped, |STFT|, log.

    `np.tile(x, 3)[:66150]` for a clip of at least 1 s; a shorter one (none in CREMA-D) is
    repeated as often as it takes, so every spectrogram is 257 x 188. Zero-padded centred frames
    and a periodic Hann window: `librosa.stft` defaults since librosa 0.10.
    """
    n = SAMPLE_RATE * SECONDS
    x = signal.detach().to(torch.float32).reshape(-1)
    if x.numel() == 0:
        raise ValueError("no audio samples")
    x = x.repeat(-(-n // x.numel()))[:n].clamp(-1.0, 1.0)
    with torch.inference_mode():
        s = torch.stft(x, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT), center=True,
                       pad_mode="constant", return_complex=True)
        return torch.log(s.abs() + LOG_EPS).numpy()


def frame_picks(n: int, frames: int, pick: str, generator: torch.Generator | None = None) -> list[int]:
    """Which of a clip's `n` stored frames to use, in time order.

    "random": `frames` distinct frames drawn uniformly and sorted (OGM-GE's `select_index`);
    with fewer than `frames` stored, drawn with replacement. "first": the first `frames`, the
    last one repeated when the clip has fewer.
    """
    if pick == "first":
        return [min(i, n - 1) for i in range(frames)]
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
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One `ogm-ge` sample as OGM-GE's `CramedDataset.__getitem__` returns it.

    `members`: the sample's tar members by extension (`jpg`, `npy`; others are ignored); `meta`:
    its parsed `json` member. Returns

    - spectrogram: float32 (257, 188), `log(|STFT| + 1e-7)`; their training loop adds the
      channel with `spec.unsqueeze(1)`;
    - images: float32 (3, frames, 224, 224), ImageNet-normalised: `frames` (their `--fps`) of
      the clip's 1 fps frames, in time order, picked by `pick` ("random" by default when
      `train`, else "first"), each transformed as their train or test transform;
    - label: int, in `class_order` ("ogm-ge": NEU, HAP, SAD, FEA, DIS, ANG; "crema-d": ANG,
      DIS, FEA, HAP, NEU, SAD, as the sample's `label`).

    Random picks and crops draw from torch's RNG (`generator` for the picks), which DataLoader
    seeds per worker.
    """
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
                          for i in frame_picks(n, frames, pick, generator)], dim=1)
    return torch.from_numpy(spec.astype(np.float32)), images, label
