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

What a sample becomes is its representation's business (`Representation.decode`, with the load
options it defines and checks); this module only finds, deals, shuffles and reads the shards.

The sample buffer is the webdataset library's `shuffle` stage (seeded here). Reading and dealing
the shards stay hand-written (`_my_members`, `_samples`): webdataset deals whole shards to nodes
and workers and reads every byte of them, while this loader deals samples (every sample of a split
once, and `even` counts, whatever the number of shards: a split of CREMA-D holds only a few), reads
only a rank's own samples' bytes from a local shard, checks each shard against report.json with
one-line errors naming it, and resumes mid-epoch. `wds.py` serves webdataset's own pipelines.
"""

from __future__ import annotations

import json
import random
import tarfile
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..digest import sha256_stream
from ..errors import LoadError
from ..format.report import REPORT_NAME, Report, ReportError
from ..format.shards import iter_members, stream_members
from ..hub import check_repo_id
from ..representations import Representation, VariantError, get_representation, load_options


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

    def __init__(self, folder: Path | str, variant: str, split: str, options=None, *,
                 shuffle: bool = False, seed: int = 0, shuffle_buffer: int = 64, rank: int | None = None,
                 world_size: int | None = None, even: bool = False, select: Callable[[str], bool] | None = None,
                 verify: bool = False):
        try:
            self.info = get_representation(variant)
        except VariantError as e:
            raise LoadError(str(e)) from None
        self.options = load_options(self.info, options)
        self.streaming = _is_url(folder)
        self.report = _read_report(folder, variant)
        if split not in self.report.split_names:
            raise LoadError(f"{variant}: no split {split!r} (splits: {', '.join(self.report.split_names)})")
        self.folder, self.variant, self.split = folder, variant, split
        records = self.report.shards(split)  # older reports record names only: the rest is None
        self.shards = [f"{folder}/{variant}/{r.name}" if self.streaming else folder / variant / r.name for r in records]
        self.shard_samples = [r.samples for r in records]
        self.shard_keys = {r.name: r.clip_ids for r in records if r.clip_ids is not None}
        self.shard_hashes = {r.name: r.sha256 for r in records if r.sha256 is not None}
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
        for shard in self.shards:
            expected = self.shard_hashes.get(_name(shard))
            if expected is None:
                raise LoadError(f"{shard}: report.json records no sha256 for it (built before crema-tools 0.2); rebuild to verify")
            with (_open_url(shard) if self.streaming else open(shard, "rb")) as f:
                digest = sha256_stream(f)
            if digest != expected:
                raise LoadError(f"{shard}: sha256 {digest[:12]}... differs from report.json's {expected[:12]}...; "
                                "the shard changed since it was built: rebuild or download it again")

    @property
    def samples(self) -> int:
        """Samples in the whole split (or its `select`ed part), over every rank."""
        if self.select is None:
            return self.report.split_samples(self.split)
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
        unreadable = _UNREADABLE  # a local: see _UNREADABLE
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
            except unreadable as e:
                raise LoadError(f"{shard}: unreadable shard after {count} samples ({e}); "
                                "rebuild the config or download it again") from None
            if expected is not None and count != expected:
                raise LoadError(f"{shard}: holds {count} samples, report.json says {expected}; "
                                "the shard is truncated or was replaced: rebuild or download it again")

    def _shuffled(self, items: Iterator[dict]) -> Iterator[dict]:
        """Undecoded samples through webdataset's `shuffle` stage (a bounded buffer drawn from at
        random), with a generator seeded by (seed, epoch, rank, worker)."""
        if not self.shuffle:
            return items
        import webdataset

        rank, _ = self.rank_and_world()
        info = torch.utils.data.get_worker_info()
        rng = random.Random(f"samples-{self.seed}-{self.epoch}-{rank}-{0 if info is None else info.id}")
        return webdataset.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=rng)(items)

    def decode(self, members: dict[str, bytes]) -> dict:
        item = decode_sample(self.info, members, self.options, self.split,
                             f"{members.get('__shard__', '?')}: sample {members.get('__key__', '?')}")
        self.decoded += 1
        return item

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        skip = (self.skip_batches - worker + workers - 1) // workers * self.batch_size if self.skip_batches else 0
        for n, members in enumerate(self._shuffled(self._my_members())):
            if n >= skip:
                yield self.decode(members)


def decode_sample(rep: Representation, members: dict[str, bytes], options, split: str | None, where: str) -> dict:
    """One sample's members (`json` among them) as `rep` decodes them, for `split` (None: the sample's
    own, from its `json`); any failure is a one-line LoadError that starts with `where`."""
    try:
        meta = json.loads(members["json"])
        return rep.decode(members, meta, options, split or meta["split"])
    except LoadError as e:
        raise LoadError(f"{where}: {e}") from None
    except Exception as e:  # a corrupt member: name it, so the user knows what to rebuild
        raise LoadError(f"{where}: cannot decode ({e.__class__.__name__}: {e}); rebuild this config") from None


_UNREADABLE = (tarfile.TarError, OSError, EOFError)
"""What a shard that cannot be read raises. The generators that catch it bind it to a local first: a
generator left suspended inside its `try` (a dataset partly read) is closed when it is collected, at
interpreter exit after this module's globals may already be None, and an `except` clause naming
`tarfile.TarError` then fails with AttributeError ("Exception ignored in: <generator ...>")."""


def _is_url(location) -> bool:
    return isinstance(location, str) and "://" in location


def _name(shard: Path | str) -> str:
    return str(shard).rsplit("/", 1)[-1]


def _read_report(folder: Path | str, variant: str) -> Report:
    if not _is_url(folder) and not (folder / variant / REPORT_NAME).is_file():
        built = sorted(p.parent.name for p in folder.glob(f"*/{REPORT_NAME}"))
        raise LoadError(f"{folder}: config {variant!r} is not built here (built: {', '.join(built) or 'none'})")
    try:
        return Report.load(f"{folder}/{variant}/{REPORT_NAME}" if _is_url(folder) else folder / variant / REPORT_NAME)
    except ReportError as e:
        raise LoadError(str(e)) from None


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
    unreadable = _UNREADABLE  # a local: see _UNREADABLE
    try:
        with tarfile.open(shard, "r") as tar:
            for key, _ in iter_members(tar):
                yield key
    except unreadable as e:
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


def load(path_or_repo_id: str | Path, variant: str, split: str = "train", *, shuffle: bool = False, seed: int = 0,
         shuffle_buffer: int = 64, rank: int | None = None, world_size: int | None = None, even: bool = False,
         select: Callable[[str], bool] | None = None, revision: str | None = None, streaming: bool = False,
         verify: bool = False, **options) -> CremaDataset:
    """One split of a built config, ready for a `torch.utils.data.DataLoader` (use `collate` for
    3D clips of their own lengths).

    What every config shares:
    `shuffle`, `seed`, `shuffle_buffer`: seeded reshuffling per epoch (`set_epoch`). `rank` and
    `world_size` default to torch.distributed's; `even=True` gives every rank the same number of
    samples (training; at most world_size - 1 samples of an epoch are left out). `select(clip_id)`
    keeps part of the split (e.g. a validation hold-out), decided before decoding.
    `streaming=True` reads a Hub repo (or any fsspec URL, e.g. `s3://bucket/crema-d`) shard by
    shard as the bytes arrive, without downloading the config first. Sample counts are always checked
    against report.json; `verify=True` also checks every shard's sha256 before anything is read.

    `**options` are the representation's own, checked by it (an option of another one is an error
    saying where it applies):

    - 2D configs (`channels`, `dtype`) yield `inputs` (C, 224, 224) or, multimodal, (C, 224, 448).
    - 3D configs (`channels`, `dtype`, `pad_to`, `sample_frames`, `multimodal_layout`) yield
      (T, C, 224, W) with a boolean `mask` over T and its `length`; by default T is the clip's own
      (about 24 x duration); `pad_to=135` pads at the end with blank frames (the paper's 3D CNNs; a
      longer clip is an error naming it); `sample_frames=16` or `32` takes frames evenly (VideoMAE).
      `multimodal_layout` (3d-multimodal): "wide" puts frame | chunk side by side (W 448), "squeezed"
      resizes the frame to 208 wide and the chunk to 16 (W 224, the paper's VideoMAE input).
    - `dtype="uint8"` keeps images as bytes (4x less to copy). `dtype="planes"` (3D) yields the
      clip as stored, the frames' YUV 4:2:0 planes and the mel, unpadded (16x less than wide float32
      per frame, and no padding; far cheaper to decode, see bench/bench_load.py):
      `crema_tools.transforms.to_model_input(batch, ...)` converts, resizes, pads and normalises it on
      the device, to the float32 path's tensors within 3 grey levels. Both compact forms are
      normalised there: pass the whole batch.
    - The `ogm-ge` config (`layout`, `frames_per_clip`, `class_order`) yields OGM-GE's
      `(spectrogram, images, label)`, with `frames_per_clip` of the 1 fps frames and labels in
      `class_order` (see docs/ogm-ge.md).
    """
    location = stream_location(path_or_repo_id, revision) if streaming else resolve(path_or_repo_id, variant, revision)
    return CremaDataset(location, variant, split, options, shuffle=shuffle, seed=seed, shuffle_buffer=shuffle_buffer,
                        rank=rank, world_size=world_size, even=even, select=select, verify=verify)
