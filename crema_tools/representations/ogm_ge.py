"""OGM-GE's CREMA-D inputs: how the `ogm-ge` config is computed, and how a sample is decoded.

OGM-GE (GeWu-Lab/OGM-GE_CVPR2022) and the works built on its CREMA-D setup (PMR, AGM, MMPareto,
MMCosine, ...) feed their models what `data/CREMAD/video_preprocessing.py` and
`dataset/CramedDataset.py` make:

- frames: of the 30 fps video, the first frame of every second (their `--fps N`: N of every
  second, `--ogm-ge-fps N` here), the full 480x360 frame; at training `fps` of them (1 by
  default) go through RandomResizedCrop(224) and a random horizontal flip, at test through
  Resize((224, 224)); then ImageNet normalisation;
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
from functools import lru_cache, partial
from pathlib import Path
from typing import Sequence

import numpy as np

from ..corpus import EMOTIONS, OGM_GE_CLASS_ORDER
from ..errors import BuildError, LoadError
from .base import BuildOptions, Features, Representation, Step, npy, option, with_labels

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
another first: `fixed_index` sets it, or `listing` gives the whole order (`listing_order`)."""
MAX_FPS = 30
"""The most frames per second `--ogm-ge-fps` keeps: CREMA-D's frame rate. Above a video's rate their
extraction's step `fps // N` is 0 and it keeps no frame."""
LISTING_FRAMES = 300
"""Frame names `listing_order` lists by default: 10 s at 30 fps (CREMA-D's longest clip kept lasts 5 s)."""
FRAMES_PER_ROW = 100
"""Frames side by side in one row of the strip; more (only at 20 or more frames per second on the
longest clips) wrap into further rows, so the JPEG stays within its 65,500-pixel width."""

STFT_PARAMS = {
    "sample_rate": SAMPLE_RATE, "resampler": "crema_tools.spectrogram.resample",
    "seconds": SECONDS, "tile": "the clip repeated and cut to 3 s (np.tile(x, 3)[:66150] for every clip of 1 s or more)",
    "clip": [-1.0, 1.0], "n_fft": N_FFT, "hop_length": HOP_LENGTH, "window": "hann (periodic)",
    "center": True, "pad_mode": "constant", "log": f"log(|S| + {LOG_EPS})",
    "shape": list(SPECTROGRAM_SHAPE), "storage": "float16 .npy, (frequency bins, frames), low frequencies first",
}


def source_frame_indices(n_frames: int, fps: int, per_second: int = 1) -> list[int]:
    """The frames OGM-GE's extraction keeps at `per_second` frames per second (their `--fps`), of
    `n_frames` decoded frames of a video whose whole frame rate is `fps`.

    Their `video2frame_update` (data/CREMAD/video_preprocessing.py, GeWu-Lab/OGM-GE_CVPR2022 at
    343dc1d) counts the frames of each second from 0 (the second restarting at every multiple of
    `fps`) and keeps those whose place in the second is a multiple of the step `fps // per_second`,
    below `per_second` steps: places 0, step, 2 step, ... For a 30 fps video, 1 per second keeps
    frames 0, 30, 60, ...; 2 keep 0, 15, 30, 45, ...; 3 keep 0, 10, 20, 30, ...; 4 keep places 0, 7,
    14 and 21 of every second. The last, partial second keeps the places it reaches.
    """
    fps = max(1, int(fps))
    step = fps // per_second
    if step < 1:
        raise ValueError(f"a {fps} fps video has no {per_second} frames per second to keep")
    return [i for i in range(n_frames) if i % fps < step * per_second and i % fps % step == 0]


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


def frame_picks(n: int, frames: int, pick: str, generator=None, fixed_index: int = LISTED_FIRST,
                listed: Sequence[int] | None = None) -> list[int]:
    """Which of a clip's `n` stored frames to use, by their place in time order.

    "random": `frames` distinct frames drawn uniformly and sorted (OGM-GE's `select_index`, as the
    works that fixed their loader use it); with fewer than `frames` stored, drawn with replacement.
    "first": the first `frames`, the last one repeated when the clip has fewer. "fixed": their
    loader's own behaviour, the same frames every epoch: the first `frames` of `listed` (the stored
    frames' places in the order their folder is listed, see `listing_order`), in that order; without
    it, from `fixed_index` on (see LISTED_FIRST). The last one repeats when the clip has fewer.
    """
    import torch

    if pick == "first":
        return [min(i, n - 1) for i in range(frames)]
    if pick == "fixed":
        if listed is not None:
            return [listed[min(i, n - 1)] for i in range(frames)]
        return [min(fixed_index + i, n - 1) for i in range(frames)]
    if n >= frames:
        return sorted(torch.randperm(n, generator=generator)[:frames].tolist())
    return sorted(torch.randint(n, (frames,), generator=generator).tolist())


def listing_order(folder: str | Path, frames: int = LISTING_FRAMES) -> tuple[int, ...]:
    """The order in which the filesystem holding `folder` lists the files OGM-GE's extraction writes.

    Their extraction names a kept frame `{count:05d}.jpg` (its index in the video) and writes them in
    time order; their loader reads the first `--fps` names an unsorted `os.listdir` gives. This writes
    empty files of those names for counts 0 to `frames - 1`, in time order, into a new folder inside
    `folder`, lists it with `os.listdir`, removes it, and returns the counts in the order listed: the
    `listing` load option. A clip's folder lists its own names in this order wherever the order of
    two names does not depend on the folder: by name hash (ext4, the same seed for every folder of a
    filesystem) or by creation (XFS, btrfs). Run it where their frames were (or would be) kept.
    """
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix=".listing-", dir=folder) as tmp:
        for count in range(frames):
            with open(os.path.join(tmp, f"{count:05d}.jpg"), "wb"):
                pass
        return tuple(int(name[:-len(".jpg")]) for name in os.listdir(tmp))


def listed_places(frame_indices: Sequence[int], listing: Sequence[int], clip: str = "sample") -> list[int]:
    """The places (in time order) of a clip's stored frames, in the order `listing` lists their names."""
    rank = {count: r for r, count in enumerate(listing)}
    missing = [i for i in frame_indices if i not in rank]
    if missing:
        raise LoadError(f"{clip}: listing has no frame {missing[0]}; "
                        f"make it with ogm_ge.listing_order(folder, frames={max(frame_indices) + 1}) or more")
    return sorted(range(len(frame_indices)), key=lambda place: rank[frame_indices[place]])


def strip_grid(n: int) -> tuple[int, int]:
    """(columns, rows) of a strip of `n` frames: one row up to FRAMES_PER_ROW frames, then rows of that many."""
    columns = min(n, FRAMES_PER_ROW)
    return columns, -(-n // columns)


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
           generator=None, fixed_index: int = LISTED_FIRST, listing: Sequence[int] | None = None) -> tuple:
    """One `ogm-ge` sample as OGM-GE's `CramedDataset.__getitem__` returns it.

    `members`: the sample's tar members by extension (`jpg`, `npy`; others are ignored); `meta`:
    its parsed `json` member. Returns

    - spectrogram: float32 (257, 188), `log(|STFT| + 1e-7)`; their training loop adds the
      channel with `spec.unsqueeze(1)`;
    - images: float32 (3, frames, 224, 224), ImageNet-normalised: `frames` (their `--fps`) of
      the clip's stored frames (those their extraction keeps at the build's `--ogm-ge-fps`), in
      time order, picked by `pick` ("random" by default when `train`, else "first"; "fixed": their
      loader's, the first `frames` in the order `listing` gives, or from `fixed_index` on), each
      transformed as their train or test transform;
    - label: int, in `class_order` ("ogm-ge": NEU, HAP, SAD, FEA, DIS, ANG; "crema-d": ANG,
      DIS, FEA, HAP, NEU, SAD, as the sample's `label`).

    Random picks and crops draw from torch's RNG (`generator` for the picks), which DataLoader
    seeds per worker.
    """
    spectrogram, images = decode_tensors(members, meta, frames=frames, train=train, pick=pick, generator=generator,
                                         fixed_index=fixed_index, listing=listing)
    return spectrogram, images, label_index(meta["emotion"], class_order)


def decode_tensors(members: dict[str, bytes], meta: dict, *, frames: int = 1, train: bool = False,
                   pick: str | None = None, generator=None, fixed_index: int = LISTED_FIRST,
                   listing: Sequence[int] | None = None) -> tuple:
    """`decode`'s spectrogram and images, without the label (a video outside the corpus has none)."""
    import torch
    from PIL import Image

    clip = meta.get("clip_id", "sample")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise LoadError(f"frames must be a positive number of frames per clip, not {frames!r}")
    pick = pick if pick is not None else "random" if train else "first"
    if pick not in PICKS:
        raise LoadError(f"pick must be one of {', '.join(PICKS)}, not {pick!r}")
    missing = [m for m in ("jpg", "npy") if m not in members]
    if missing:
        raise LoadError(f"{clip}: no {' or '.join(missing)} member; is this an ogm-ge sample?")
    spec = np.load(io.BytesIO(members["npy"]), allow_pickle=False)
    if spec.shape != SPECTROGRAM_SHAPE:
        raise LoadError(f"{clip}: spectrogram of shape {spec.shape}, expected {SPECTROGRAM_SHAPE}")
    strip = Image.open(io.BytesIO(members["jpg"])).convert("RGB")
    n = int(meta["n_frames"])
    if n < 1:
        raise LoadError(f"{clip}: a strip of {n} frames")
    columns, rows = strip_grid(n)
    if strip.width % columns or strip.height % rows:
        raise LoadError(f"{clip}: a {strip.width} x {strip.height} strip does not hold {n} frames")
    width, height, transform = strip.width // columns, strip.height // rows, image_transform(bool(train))
    listed = listed_places(meta["frame_indices"], listing, clip) if listing is not None and pick == "fixed" else None

    def frame(i: int):
        x, y = i % columns * width, i // columns * height
        return transform(strip.crop((x, y, x + width, y + height)))

    images = torch.stack([frame(i) for i in frame_picks(n, frames, pick, generator, fixed_index, listed)], dim=1)
    return torch.from_numpy(spec.astype(np.float32)), images


# ---------------------------------------------------------------- the representation


def step_frames(raw, f, per_second: int = 1) -> None:
    """OGM-GE's frames: every frame decoded, `per_second` of every second kept, full frame, RGB.

    As their `video_preprocessing.py` (`video2frame_update` with `frame_kept_per_second`, their
    `--fps`): the frame indices `source_frame_indices` gives, fps being the video's whole frame rate.
    """
    import av

    from .. import media
    from ..media import video3d
    from ..media.decode import frame_array
    from .steps import checked_video

    path, rel = checked_video(raw, f)
    planes, times, f["video_duration"] = media.read_all_frames(path, rel, pixel_format="yuv420p")
    f["source_fps"] = round(video3d.source_fps(times))
    try:
        f["frame_indices"] = source_frame_indices(len(planes), f["source_fps"], per_second)
    except ValueError as e:
        raise media.MediaError(f"{rel}: {e} (--ogm-ge-fps {per_second}; their extraction keeps none)") from None
    # only the kept frames go to RGB, through the same FFmpeg conversion as decoding to rgb24 (3x faster)
    f["ogm_ge_frames"] = np.stack([frame_array(av.VideoFrame.from_ndarray(planes[i], format="yuv420p"))
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


def frames_rule(per_second: int) -> str:
    """How the frames of a build at `per_second` (--ogm-ge-fps) were chosen, for report.json."""
    if per_second == 1:
        return _params()["frames"]["rule"]
    step = MAX_FPS // per_second
    places = ", ".join(str(k * step) for k in range(min(per_second, 4))) + (", ..." if per_second > 4 else "")
    return (f"of the decoded video, {per_second} frames of every second: places {places} (steps of fps // "
            f"{per_second} = {step} at 30 fps) counted from each multiple of fps (video2frame_update with "
            f"frame_kept_per_second={per_second}, their --fps {per_second}); fps the stream's whole frame rate (30)")


def check_fps(per_second) -> None:
    """--ogm-ge-fps: a whole number of frames per second from 1 to MAX_FPS, or a one-line BuildError."""
    if isinstance(per_second, bool) or not isinstance(per_second, int) or not 1 <= per_second <= MAX_FPS:
        raise BuildError(f"--ogm-ge-fps {per_second}: OGM-GE's --fps is a whole number of frames kept per second, "
                         f"1 to {MAX_FPS} (CREMA-D's frame rate); give e.g. --ogm-ge-fps 1 (their default) or 3")


LAYOUTS = (None, "ogm-ge", "parts")
"""How a loaded sample looks: OGM-GE's tuple (None or "ogm-ge"), or a dict of `audio`, `vision` and
the labels every config carries ("parts", what the zoo's separate encoders take)."""


@dataclass(frozen=True)
class OgmGeOptions:
    """What `crema_tools.load` takes for the ogm-ge config."""

    layout: str | None = option(None, "the ogm-ge config")  # "ogm-ge": items as OGM-GE's dataset returns them; "parts": dicts
    frames_per_clip: int = option(1, "the ogm-ge config")  # frames per item, OGM-GE's --fps (of the frames the build kept)
    class_order: str = option("ogm-ge", "the ogm-ge config")  # label order of the items, "ogm-ge" or "crema-d"
    frame_pick: str | None = option(None, "the ogm-ge config")  # None: "random" at training, "first" at test; or "fixed"
    fixed_index: int = option(LISTED_FIRST, "the ogm-ge config")  # "fixed": the first frame their loader opens
    listing: tuple[int, ...] | None = option(None, "the ogm-ge config")  # "fixed": their folder's listing order (listing_order)


@dataclass(frozen=True, kw_only=True)
class OgmGe(Representation):
    """OGM-GE's inputs, for comparison with it and its successors. Its split family is 2D, though the
    ogm-ge protocol splits 2D and 3D alike (docs/ogm-ge.md)."""

    def steps(self, options: BuildOptions) -> tuple[Step, ...]:
        fps = options.ogm_ge_fps
        return (Step("ogm_ge_frames", step_frames if fps == 1 else partial(step_frames, per_second=fps),
                     ("ogm_ge_frames", "frame_indices", "source_fps", "video_duration")),
                Step("ogm_ge_stft", step_ogm_ge_stft, ("ogm_ge_spectrogram", "audio_duration", "audio_source")))

    def check_build_options(self, options: BuildOptions) -> None:
        check_fps(options.ogm_ge_fps)

    def report_params(self, options: BuildOptions) -> dict:
        params = super().report_params(options)
        params["frames"]["kept_per_second"] = options.ogm_ge_fps
        params["frames"]["rule"] = frames_rule(options.ogm_ge_fps)
        return params

    def render(self, f: Features) -> dict[str, bytes]:
        # frames side by side: 480 is a whole number of JPEG blocks, so each frame is coded as it
        # would be alone (only chroma upsampling at the seams looks across when decoding); past
        # FRAMES_PER_ROW frames the strip wraps, black frames filling its last row
        frames = list(f["ogm_ge_frames"])
        columns, rows = strip_grid(len(frames))
        frames += [np.zeros_like(frames[0])] * (columns * rows - len(frames))
        strip = np.concatenate([np.concatenate(frames[r * columns:(r + 1) * columns], axis=1) for r in range(rows)])
        return {"jpg": jpeg(strip), "npy": npy(f["ogm_ge_spectrogram"].astype(np.float16))}

    def sample_fields(self, f: Features) -> dict:
        return {"n_frames": len(f["frame_indices"]), "frame_indices": list(f["frame_indices"]), "source_fps": f["source_fps"]}

    def refuse_options(self, given: dict, known: dict) -> None:
        if given and all(known.get(k) is not None and k in ("channels", "dtype") for k in given):
            raise LoadError("ogm-ge yields OGM-GE's own tensors (ImageNet-normalised RGB frames, the log STFT): "
                            "channels and dtype do not apply")
        super().refuse_options(given, known)

    def check_options(self, opts: OgmGeOptions) -> None:
        if opts.layout not in LAYOUTS:
            raise LoadError(f"ogm-ge: layout must be one of {', '.join(map(repr, LAYOUTS[1:]))}, not {opts.layout!r}")
        if opts.frame_pick is not None and opts.frame_pick not in PICKS:
            raise LoadError(f"frame_pick must be one of {', '.join(PICKS)}, not {opts.frame_pick!r}")
        if isinstance(opts.fixed_index, bool) or not isinstance(opts.fixed_index, int) or opts.fixed_index < 0:
            raise LoadError(f"fixed_index must be a frame index (0, 1, ...), not {opts.fixed_index!r}")
        if opts.listing is not None and (not isinstance(opts.listing, (list, tuple)) or not all(
                isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in opts.listing)):
            raise LoadError("listing must be frame numbers in the order a folder lists them: "
                            "pass ogm_ge.listing_order(folder)")

    def decode(self, members: dict[str, bytes], meta: dict, opts: OgmGeOptions, split: str):
        """OGM-GE's `(spectrogram, images, label)`, their train or test transforms by split; with
        `layout="parts"` the zoo's item instead (`decode_inputs` and the labels every config carries)."""
        if opts.layout == "parts":
            return with_labels(self.decode_inputs(members, meta, opts, split), meta)
        return decode(members, meta, class_order=opts.class_order, frames=opts.frames_per_clip, train=split == "train",
                      pick=opts.frame_pick, fixed_index=opts.fixed_index, listing=opts.listing)

    def decode_inputs(self, members: dict[str, bytes], meta: dict, opts: OgmGeOptions, split: str) -> dict:
        """The same tensors as `decode`, apart and named, for models with an encoder per modality:
        `audio` (1, 257, 188) (their `spec.unsqueeze(1)`) and `vision` (3, frames, 224, 224)."""
        spectrogram, images = decode_tensors(members, meta, frames=opts.frames_per_clip, train=split == "train",
                                             pick=opts.frame_pick, fixed_index=opts.fixed_index, listing=opts.listing)
        return {"audio": spectrogram[None], "vision": images}

    def assemble(self, batch: dict, device=None) -> dict:
        """The parts on `device`, as they are (already normalised as OGM-GE's loader does)."""
        return {part: batch[part].to(device, non_blocking=True) if device is not None else batch[part]
                for part in ("audio", "vision")}

    def preview(self, members: dict[str, bytes]):
        from ..media.pictures import SPEC_W, array_panel, image_panel, stacked

        strip = image_panel(members["jpg"])
        return stacked([strip, array_panel(members["npy"], np.log(LOG_EPS), 5.0, max(strip.width, SPEC_W))])


OGM_GE = OgmGe(
    name="ogm-ge", modality="multimodal", split_family="2d", layout="ogm-ge", paper=False,
    description="OGM-GE's inputs: the full frames their extraction keeps (at 1 fps, the first of every second, "
                "unless built with --ogm-ge-fps N) as one JPEG strip, "
                "and the log-magnitude STFT of the audio tiled to 3 s at 22,050 Hz (257 x 188, float16)",
    shape="spectrogram (257, 188), images (3, frames, 224, 224)",
    members={"jpg": "image", "npy": {"list": {"list": "float16"}}},
    metadata_fields={"n_frames": "int64", "frame_indices": {"sequence": "int64"}, "source_fps": "int64"},
    needs=("ogm_ge_frames", "ogm_ge_stft"), params=_params(), options_type=OgmGeOptions,
)
