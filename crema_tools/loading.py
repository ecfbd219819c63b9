"""`crema_tools.load`: a built config as a torch-ready dataset, from a local folder or the Hub.

The dataset is a stream built for training on one or many processes:
- shard order and a bounded buffer of samples are shuffled as a function of (seed, epoch), so runs
  are repeatable and epochs differ (`set_epoch`, as `DistributedSampler` does);
- samples are dealt to process ranks and DataLoader workers *before* decoding (only tar headers
  are read for the samples of others), so each process decodes only its own; every sample of a
  split counts exactly once, and `even=True` gives every rank the same number (for training);
- inputs come as float32 in [0, 1] or, for the cheapest transfer, uint8 (normalised on the
  device by `crema_tools.transforms.to_model_input`);
- 3D clips keep their own length, are padded to `pad_to` frames with a mask, or have
  `sample_frames` taken evenly; `collate` pads a batch of clips of different lengths.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from .errors import LoadError
from .hub import check_repo_id
from .shards import iter_members, stream_members
from .variants import MULTIMODAL_LAYOUTS, Variant, VariantError, get_variant


def stream_location(path_or_repo_id: str | Path, revision: str | None = None) -> str:
    """The fsspec URL a streamed dataset is read from: a URL as given, a Hub repo id as hf://datasets/..."""
    text = str(path_or_repo_id)
    if _is_url(text):
        return text.rstrip("/")
    if Path(text).is_dir():
        return Path(text).resolve().as_uri()
    from urllib.parse import quote

    repo_id = check_repo_id(text)
    return f"hf://datasets/{repo_id}" + (f"@{quote(revision, safe='')}" if revision else "")


def resolve(path_or_repo_id: str | Path, variant: str, revision: str | None = None) -> Path:
    """A local dataset folder, or a Hub dataset repository downloaded (only this config) to the cache."""
    local = Path(path_or_repo_id)
    if local.is_dir():
        return local
    repo_id = check_repo_id(path_or_repo_id)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                  allow_patterns=[f"{variant}/*", "README.md"]))


SQUEEZED_FRAME_WIDTH, SQUEEZED_CHUNK_WIDTH = 208, 16


@lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out): a bilinear resize along one axis (align_corners=False) as a matrix."""
    eye = torch.eye(n_in)[None]
    return torch.nn.functional.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].numpy()


def mel_chunks(mel_db: np.ndarray, n_frames: int, width: int = 224) -> np.ndarray:
    """(T, 224, width) in [0, 1]: chunk i is the mel of frame i's 1/24 s, resized as the paper does."""
    from .spectrogram import TOP_DB
    from .video3d import chunk_bounds

    # the vertical resize is the same for every chunk: do it once, then stretch each chunk's columns
    mel = ((mel_db.astype(np.float32) + TOP_DB) / TOP_DB).clip(0.0, 1.0)
    tall = (resize_matrix(mel.shape[0], 224).T @ mel)[::-1]  # low frequencies at the bottom
    out = np.empty((n_frames, 224, width), np.float32)
    bounds = chunk_bounds(n_frames, mel.shape[1])
    for k in sorted({b - a for a, b in bounds}):  # chunks of equal width in one matrix product
        rows = [i for i, (a, b) in enumerate(bounds) if b - a == k]
        cols = np.stack([tall[:, bounds[i][0] : bounds[i][1]] for i in rows])  # (n, 224, k)
        out[rows] = cols @ resize_matrix(k, width)
    return out


DTYPES = ("float32", "uint8", "planes")


@dataclass(frozen=True)
class LoadOptions:
    """How samples become tensors; `check` refuses what does not apply to a variant, with the reason."""

    channels: int = 3
    pad_to: int | None = None  # 3D: pad each clip at the end with blank frames to this length
    sample_frames: int | None = None  # 3D: take this many frames evenly spread over the clip
    multimodal_layout: str | None = None  # 3d-multimodal: "wide" (default) or "squeezed"
    dtype: str = "float32"  # "float32" in [0, 1], "uint8" in [0, 255], or "planes" (3D: as stored, assembled on the device)
    layout: str | None = None  # ogm-ge: "ogm-ge", items as OGM-GE's dataset returns them (the only layout)
    frames_per_clip: int = 1  # ogm-ge: 1 fps frames per clip (OGM-GE's --fps)
    class_order: str = "ogm-ge"  # ogm-ge: label order of the items, "ogm-ge" or "crema-d"

    def check(self, variant: Variant) -> "LoadOptions":
        ogm_ge = {k: v for k, v in (("layout", self.layout), ("frames_per_clip", self.frames_per_clip != 1 or None),
                                    ("class_order", self.class_order != "ogm-ge" or None)) if v is not None}
        if variant.name != "ogm-ge":
            if ogm_ge:
                raise LoadError(f"{variant.name}: {' and '.join(ogm_ge)} apply to the ogm-ge config only")
        elif self.channels != 3 or self.dtype != "float32":
            raise LoadError("ogm-ge yields OGM-GE's own tensors (ImageNet-normalised RGB frames, the log STFT): "
                            "channels and dtype do not apply")
        elif self.layout not in (None, "ogm-ge"):
            raise LoadError(f"ogm-ge: layout must be 'ogm-ge', not {self.layout!r}")
        if self.channels not in (1, 3):
            raise LoadError(f"channels must be 1 (grayscale) or 3 (RGB), not {self.channels}")
        if self.dtype not in DTYPES:
            raise LoadError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.dtype == "planes" and variant.family != "3d":
            raise LoadError(f"{variant.name}: dtype='planes' applies to 3D configs only (a 2D sample is one "
                            "image: dtype='uint8' is its compact form)")
        frame_options = {k: v for k, v in (("pad_to", self.pad_to), ("sample_frames", self.sample_frames)) if v is not None}
        if frame_options and variant.family != "3d":
            raise LoadError(f"{variant.name}: {' and '.join(frame_options)} apply to 3D configs only "
                            "(a 2D sample is one image)")
        if len(frame_options) == 2:
            raise LoadError("pad_to and sample_frames exclude each other: pad clips to a length, or sample frames evenly")
        for name, value in frame_options.items():
            if not isinstance(value, int) or value < 1:
                raise LoadError(f"{name} must be a positive number of frames, not {value!r}")
        if self.multimodal_layout is not None:
            if variant.name != "3d-multimodal":
                raise LoadError(f"{variant.name}: multimodal_layout applies to 3d-multimodal only")
            if self.multimodal_layout not in MULTIMODAL_LAYOUTS:
                raise LoadError(f"multimodal_layout must be one of {', '.join(MULTIMODAL_LAYOUTS)}, "
                                f"not {self.multimodal_layout!r}")
        return self


def image_tensor(blob: bytes, channels: int, dtype: str) -> torch.Tensor:
    """(C, H, W) from a PNG: uint8 as stored, or float32 in [0, 1]."""
    with Image.open(io.BytesIO(blob)) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    t = torch.from_numpy(arr.copy())
    t = t[None] if channels == 1 else t.permute(2, 0, 1).contiguous()
    return t if dtype == "uint8" else t.float().div_(255.0)


def frame_indices(t: int, opts: LoadOptions, clip_id: str) -> tuple[np.ndarray, int]:
    """Which of the clip's T frames to keep, and the output length (blank frames beyond them)."""
    if opts.sample_frames is not None:
        return np.linspace(0, t - 1, opts.sample_frames).round().astype(int), opts.sample_frames
    if opts.pad_to is not None:
        if t > opts.pad_to:
            raise LoadError(f"{clip_id}: {t} frames, more than pad_to={opts.pad_to}; raise pad_to "
                            "(no clip is cut silently) or use sample_frames")
        return np.arange(t), opts.pad_to
    return np.arange(t), t


def _clip_parts(members: dict[str, bytes], meta: dict, opts: LoadOptions):
    """The stored parts of a 3D sample: kept frames' YUV planes (or None), the mel (or None), the
    kept frame indices and the output length."""
    from .video3d import decode_yuv

    n = meta["n_frames"]
    keep, length = frame_indices(n, opts, meta["clip_id"])
    planes = mel = None
    if "mp4" in members:
        planes = decode_yuv(members["mp4"])
        if len(planes) != n:
            raise LoadError(f"{meta['clip_id']}: {len(planes)} frames decoded, the sample says {n}")
        planes = planes[keep]
    if "npy" in members:
        mel = np.load(io.BytesIO(members["npy"]), allow_pickle=False)
        if not np.isfinite(mel).all():
            raise LoadError(f"{meta['clip_id']}: the stored mel holds NaN or inf; rebuild this config")
    return planes, mel, keep, length


def _widths(opts: LoadOptions, video: bool, audio: bool) -> tuple[int, int]:
    """Columns of the frame part and of the chunk part of a 3D input."""
    squeezed = opts.multimodal_layout == "squeezed" and video and audio
    return (0 if not video else SQUEEZED_FRAME_WIDTH if squeezed else 224,
            0 if not audio else SQUEEZED_CHUNK_WIDTH if squeezed else 224)


def _mask(length: int, real: int) -> torch.Tensor:
    mask = torch.zeros(length, dtype=torch.bool)
    mask[:real] = True
    return mask


def clip_tensor(members: dict[str, bytes], meta: dict, opts: LoadOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip as (length, 3, 224, W) in [0, 1] (or uint8) and a mask of its real (unpadded) frames."""
    from .video3d import resize_yuv420, yuv_to_rgb

    planes, mel, keep, length = _clip_parts(members, meta, opts)
    frame_w, chunk_w = _widths(opts, planes is not None, mel is not None)
    out = np.zeros((length, 3, 224, frame_w + chunk_w), np.float32)
    if planes is not None:
        if frame_w != 224:  # resize the uint8 planes, then convert: 5x cheaper than resizing floats
            planes = resize_yuv420(planes, frame_w, 224)
        yuv_to_rgb(planes, out[: len(keep), :, :, :frame_w])
    if mel is not None:
        out[: len(keep), :, :, frame_w:] = mel_chunks(mel, meta["n_frames"], chunk_w)[keep][:, None]
    inputs = torch.from_numpy(out)
    if opts.channels == 1:
        inputs = inputs.mean(dim=1, keepdim=True)
    if opts.dtype == "uint8":
        inputs = inputs.mul_(255.0).round_().to(torch.uint8)
    return inputs, _mask(length, len(keep))


def clip_planes(members: dict[str, bytes], meta: dict, opts: LoadOptions) -> dict:
    """The clip as stored, for `crema_tools.transforms.to_model_input` to assemble on the device.

    `planes` (T', 336, 224) uint8: the kept frames' YUV 4:2:0 planes; `mel` (512, C) float16: the
    whole mel in dB; `chunks` (T', 2): each kept frame's mel columns [start, stop); `mask` and
    `length` as for the other dtypes (T' real frames out of the output length); `geometry`: the
    output's frame and chunk widths and channels. A frame is 75 KB instead of 1.2 MB of wide float32,
    and padding frames are not sent at all.
    """
    from .video3d import chunk_bounds

    planes, mel, keep, length = _clip_parts(members, meta, opts)
    frame_w, chunk_w = _widths(opts, planes is not None, mel is not None)
    item = {"mask": _mask(length, len(keep)), "length": len(keep), "geometry": _geometry(opts, frame_w, chunk_w)}
    if planes is not None:
        item["planes"] = torch.from_numpy(np.ascontiguousarray(planes))
    if mel is not None:
        item["mel"] = torch.from_numpy(mel.astype(np.float16))
        item["chunks"] = torch.tensor(chunk_bounds(meta["n_frames"], mel.shape[1]), dtype=torch.int32)[torch.from_numpy(keep)]
    return item


def _geometry(opts: LoadOptions, frame_w: int, chunk_w: int) -> dict:
    """Where a 3D input's parts lie (for the device transform and the modality ablations)."""
    return {"frame_width": frame_w, "chunk_width": chunk_w, "channels": opts.channels}


def sample_item(members: dict[str, bytes], meta: dict, opts: LoadOptions) -> dict:
    """The tensors of one sample in the form `opts` asks for (without its labels)."""
    if "png" in members:
        return {"inputs": image_tensor(members["png"], opts.channels, opts.dtype)}
    if opts.dtype == "planes":
        return clip_planes(members, meta, opts)
    inputs, mask = clip_tensor(members, meta, opts)
    widths = _widths(opts, "mp4" in members, "npy" in members)
    return {"inputs": inputs, "mask": mask, "length": int(mask.sum()), "geometry": _geometry(opts, *widths)}


LABEL_FIELDS = ("label", "clip_id", "actor_id", "emotion", "sentence", "intensity")
"""The identifying fields every item carries (all collate into batches)."""


def _distributed() -> tuple[int, int]:
    """(rank, world size) of torch.distributed when it is running (accelerate launch, torchrun), else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class CremaDataset(torch.utils.data.IterableDataset):
    """One split of one built config as a stream of dicts.

    Items: `inputs` ((C, 224, W) for 2D, (T, C, 224, W) for 3D, with a boolean `mask` over T, its
    `length` and the `geometry` of its parts; with dtype="planes" the stored parts instead of
    `inputs`, see `clip_planes`), `label` (int, the corpus order), `clip_id`, `actor_id`, `emotion`, `sentence`,
    `intensity`. See the module docstring for shuffling and the split by rank and worker.
    """

    def __init__(self, folder: Path | str, variant: str, split: str, options: LoadOptions = LoadOptions(), *,
                 shuffle: bool = False, seed: int = 0, shuffle_buffer: int = 64, rank: int | None = None,
                 world_size: int | None = None, even: bool = False, select: Callable[[str], bool] | None = None,
                 verify: bool = False):
        try:
            self.info = get_variant(variant)
        except VariantError as e:
            raise LoadError(str(e)) from None
        self.options = options.check(self.info)
        self.streaming = _is_url(folder)
        self.report = _read_report(folder, variant)
        if split not in self.report["splits"]:
            raise LoadError(f"{variant}: no split {split!r} (splits: {', '.join(self.report['splits'])})")
        self.folder, self.variant, self.split = folder, variant, split
        info = self.report["splits"][split]
        counts = {e["name"]: e["samples"] for e in info.get("shard_info", [])}  # older reports: names only
        self.shards = [f"{folder}/{variant}/{name}" if self.streaming else folder / variant / name for name in info["shards"]]
        self.shard_samples = [counts.get(name) for name in info["shards"]]
        self.shard_keys = {e["name"]: e["clip_ids"] for e in info.get("shard_info", []) if "clip_ids" in e}
        self.shard_hashes = {e["name"]: e["sha256"] for e in info.get("shard_info", []) if "sha256" in e}
        if shuffle_buffer < 1:
            raise LoadError(f"shuffle_buffer must be at least 1, not {shuffle_buffer}")
        self.shuffle, self.seed, self.shuffle_buffer, self.even = shuffle, seed, shuffle_buffer, even
        self._rank, self._world = rank, world_size
        if verify:
            self.verify_shards()
        self.select = select
        self._selected: int | None = None
        self.epoch = 0
        self.skip_batches, self.batch_size = 0, 1
        self.decoded = 0  # samples this copy of the dataset decoded (per process when num_workers=0)

    def verify_shards(self) -> None:
        """Check every shard of the split against the sha256 report.json records (reads them all once)."""
        import hashlib

        for shard in self.shards:
            expected = self.shard_hashes.get(_name(shard))
            if expected is None:
                raise LoadError(f"{shard}: report.json records no sha256 for it (built before crema-tools 0.2); rebuild to verify")
            digest = hashlib.sha256()
            with (_open_url(shard) if self.streaming else open(shard, "rb")) as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != expected:
                raise LoadError(f"{shard}: sha256 {digest.hexdigest()[:12]}... differs from report.json's {expected[:12]}...; "
                                "the shard changed since it was built: rebuild or download it again")

    @property
    def samples(self) -> int:
        """Samples in the whole split (or its `select`ed part), over every rank."""
        if self.select is None:
            return self.report["splits"][self.split]["samples"]
        if self._selected is None:  # from the report's clip lists, else tar headers only
            keys = [k for shard in self.shards for k in self.shard_keys.get(_name(shard)) or _keys(shard)]
            self._selected = sum(map(self.select, keys))
        return self._selected

    def rank_and_world(self) -> tuple[int, int]:
        rank, world = _distributed()
        rank = rank if self._rank is None else self._rank
        world = world if self._world is None else self._world
        if not 0 <= rank < world:
            raise LoadError(f"rank {rank} is outside world size {world}")
        return rank, world

    def __len__(self) -> int:
        """Samples this process yields in an epoch."""
        rank, world = self.rank_and_world()
        if self.even:
            return self.samples // world
        return (self.samples - rank + world - 1) // world

    def set_epoch(self, epoch: int, skip_batches: int = 0, batch_size: int = 1) -> None:
        """Reshuffle for `epoch` (call before iterating, as with DistributedSampler).

        `skip_batches` (with the DataLoader's `batch_size`) resumes an epoch mid-way: the batches a
        DataLoader would have produced first are left out before anything is decoded. DataLoader
        workers hand out batches in turn, so worker w skips the batches w, w + K, ... of them.
        """
        self.epoch, self.skip_batches, self.batch_size = epoch, skip_batches, batch_size

    def _shard_order(self) -> list[int]:
        order = list(range(len(self.shards)))
        if self.shuffle:
            random.Random(f"shards-{self.seed}-{self.epoch}").shuffle(order)
        return order

    def _my_members(self) -> Iterator[dict[str, bytes]]:
        """This rank's and worker's samples as raw tar members, reading only their bytes.

        Sample i of the epoch's stream goes to rank i % W; the rank's j-th goes to worker j % K.
        """
        rank, world = self.rank_and_world()
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        cap = self.samples // world if self.even else None
        i = 0
        for s in self._shard_order():
            shard, expected = self.shards[s], self.shard_samples[s]
            count = 0
            try:
                for key, read in _samples(shard):
                    count += 1
                    if self.select is not None and not self.select(key):
                        continue
                    mine, j = i % world == rank, i // world
                    i += 1
                    if cap is not None and j >= cap:
                        return
                    if mine and j % workers == worker:
                        yield {"__key__": key, "__shard__": _name(shard), **read()}
            except (tarfile.TarError, OSError, EOFError) as e:
                raise LoadError(f"{shard}: unreadable shard after {count} samples ({e}); "
                                "rebuild the config or download it again") from None
            if expected is not None and count != expected:
                raise LoadError(f"{shard}: holds {count} samples, report.json says {expected}; "
                                "the shard is truncated or was replaced: rebuild or download it again")

    def _shuffled(self, items: Iterator[dict]) -> Iterator[dict]:
        """A bounded buffer of undecoded samples, drawn from at random (webdataset's `shuffle`)."""
        if not self.shuffle:
            yield from items
            return
        rank, _ = self.rank_and_world()
        info = torch.utils.data.get_worker_info()
        rng = random.Random(f"samples-{self.seed}-{self.epoch}-{rank}-{0 if info is None else info.id}")
        buffer: list[dict] = []
        for item in items:
            buffer.append(item)
            if len(buffer) >= self.shuffle_buffer:
                k = rng.randrange(len(buffer))
                buffer[k], buffer[-1] = buffer[-1], buffer[k]
                yield buffer.pop()
        rng.shuffle(buffer)
        yield from buffer

    def decode(self, members: dict[str, bytes]) -> dict:
        where = f"{members.get('__shard__', '?')}: sample {members.get('__key__', '?')}"
        try:
            meta = json.loads(members["json"])
            if self.info.name == "ogm-ge":  # OGM-GE's (spectrogram, images, label), their transforms
                from .ogm_ge import decode as decode_ogm_ge

                item = decode_ogm_ge(members, meta, class_order=self.options.class_order,
                                     frames=self.options.frames_per_clip, train=self.split == "train")
                self.decoded += 1
                return item
            item = sample_item(members, meta, self.options)
        except LoadError as e:
            raise LoadError(f"{where}: {e}") from None
        except Exception as e:  # a corrupt member: name it, so the user knows what to rebuild
            raise LoadError(f"{where}: cannot decode ({e.__class__.__name__}: {e}); rebuild this config") from None
        self.decoded += 1
        return {**item, **{k: meta[k] for k in LABEL_FIELDS}}

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        skip = (self.skip_batches - worker + workers - 1) // workers * self.batch_size if self.skip_batches else 0
        for n, members in enumerate(self._shuffled(self._my_members())):
            if n >= skip:
                yield self.decode(members)


def _is_url(location) -> bool:
    return isinstance(location, str) and "://" in location


def _name(shard: Path | str) -> str:
    return str(shard).rsplit("/", 1)[-1]


def _read_report(folder: Path | str, variant: str) -> dict:
    if _is_url(folder):
        import fsspec

        try:
            with fsspec.open(f"{folder}/{variant}/report.json", "rt") as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise LoadError(f"{folder}/{variant}/report.json: cannot be read ({e.__class__.__name__}: {e}); "
                            "is the config built there?") from None
    report_path = folder / variant / "report.json"
    if not report_path.is_file():
        built = sorted(p.parent.name for p in folder.glob("*/report.json"))
        raise LoadError(f"{folder}: config {variant!r} is not built here (built: {', '.join(built) or 'none'})")
    return json.loads(report_path.read_text())


def _open_url(url: str):
    import fsspec

    return fsspec.open(url, "rb").open()


def _samples(shard: Path | str) -> Iterator[tuple[str, Callable[[], dict[str, bytes]]]]:
    """(key, read members) per sample. A local shard is read lazily: only the samples asked for
    have their bytes read (call `read` before the next sample). A URL is read once, as a stream,
    as its bytes arrive: every byte passes anyway, so each sample's members are read in passing."""
    if _is_url(shard):
        with _open_url(shard) as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for key, members in stream_members(tar):
                yield key, (lambda m=members: m)
        return
    with tarfile.open(shard, "r") as tar:
        for key, infos in iter_members(tar):
            yield key, (lambda infos=infos: {ext: tar.extractfile(m).read() for ext, m in infos.items()})


def _keys(shard: Path) -> Iterator[str]:
    try:
        with tarfile.open(shard, "r") as tar:
            for key, _ in iter_members(tar):
                yield key
    except (tarfile.TarError, OSError, EOFError) as e:
        raise LoadError(f"{shard}: unreadable shard ({e}); rebuild the config or download it again") from None


def collate(items: list[dict]) -> dict:
    """Batch items; tensors of different shapes (3D clips of different lengths, the planes form's
    frames and mels) are padded at the end of each axis to the largest, with zeros (`mask` False)."""
    batch: dict = {}
    for key in items[0]:
        values = [x[key] for x in items]
        if isinstance(values[0], torch.Tensor) and len({v.shape for v in values}) > 1:
            shape = [max(sizes) for sizes in zip(*(v.shape for v in values))]
            padded = values[0].new_zeros((len(values), *shape))
            for i, v in enumerate(values):
                padded[(i, *map(slice, v.shape))] = v
            batch[key] = padded
        else:
            batch[key] = torch.utils.data.default_collate(values)
    return batch


def load(path_or_repo_id: str | Path, variant: str, split: str = "train", *, channels: int = 3,
         pad_to: int | None = None, sample_frames: int | None = None, multimodal_layout: str | None = None,
         dtype: str = "float32", shuffle: bool = False, seed: int = 0, shuffle_buffer: int = 64,
         rank: int | None = None, world_size: int | None = None, even: bool = False,
         select: Callable[[str], bool] | None = None, layout: str | None = None, frames_per_clip: int = 1,
         class_order: str = "ogm-ge", revision: str | None = None, streaming: bool = False,
         verify: bool = False) -> CremaDataset:
    """One split of a built config, ready for a `torch.utils.data.DataLoader` (use `collate` for
    3D clips of their own lengths).

    2D configs yield `inputs` (C, 224, 224) or, multimodal, (C, 224, 448). 3D configs yield
    (T, C, 224, W) with a boolean `mask` over T and its `length`; by default T is the clip's own
    (about 24 x duration); `pad_to=135` pads at the end with blank frames (the paper's 3D CNNs; a
    longer clip is an error naming it); `sample_frames=16` or `32` takes frames evenly (VideoMAE).
    `multimodal_layout` (3d-multimodal): "wide" puts frame | chunk side by side (W 448), "squeezed"
    resizes the frame to 208 wide and the chunk to 16 (W 224, the paper's VideoMAE input).
    `dtype="uint8"` keeps images as bytes (4x less to copy). `dtype="planes"` (3D) yields the
    clip as stored, the frames' YUV 4:2:0 planes and the mel, unpadded (16x less than wide float32
    per frame, and no padding; far cheaper to decode, see bench/bench_load.py):
    `crema_tools.transforms.to_model_input(batch, ...)`
    converts, resizes, pads and normalises it on the device, to the float32 path's tensors within
    3 grey levels. Both compact forms are normalised there: pass the whole batch.
    `shuffle`, `seed`, `shuffle_buffer`: seeded reshuffling per epoch (`set_epoch`). `rank` and
    `world_size` default to torch.distributed's; `even=True` gives every rank the same number of
    samples (training; at most world_size - 1 samples of an epoch are left out). `select(clip_id)`
    keeps part of the split (e.g. a validation hold-out), decided before decoding.
    `streaming=True` reads a Hub repo (or any fsspec URL, e.g. `s3://bucket/crema-d`) shard by
    shard as the bytes arrive, without downloading the config first. Sample counts are always checked
    against report.json; `verify=True` also checks every shard's sha256 before anything is read.
    The `ogm-ge` config yields OGM-GE's `(spectrogram, images, label)` (`layout="ogm-ge"`), with
    `frames_per_clip` of the 1 fps frames and labels in `class_order` (see docs/ogm-ge.md).
    """
    options = LoadOptions(channels, pad_to, sample_frames, multimodal_layout, dtype, layout, frames_per_clip, class_order)
    location = stream_location(path_or_repo_id, revision) if streaming else resolve(path_or_repo_id, variant, revision)
    return CremaDataset(location, variant, split, options, shuffle=shuffle,
                        seed=seed, shuffle_buffer=shuffle_buffer, rank=rank, world_size=world_size, even=even,
                        select=select, verify=verify)
