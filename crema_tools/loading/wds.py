"""The shards read with the webdataset library: a decoder for its pipelines, the shards' URLs, the recipe.

A built config is plain WebDataset tars, so `webdataset.WebDataset(urls)` reads it from anywhere
webdataset opens (a path, `pipe:` commands, http(s), `hf://`), on many nodes. What it cannot know is
what the members hold: a float16 mel `.npy` cut into per-frame chunks at load time, an H.264 `.mp4`
of 24 fps frames, a JPEG strip of 1 fps frames, a PNG with the face and the mel side by side.
`Decoder(variant, **options)` knows, for every config of the registry and any added to it: it
hands each sample's members to the representation's own `decode` hook, with the load options
`crema_tools.load` takes, so each item holds the same tensors `crema_tools.load` yields for that
sample.

The recipe (`pipeline` builds exactly this)::

    import webdataset as wds
    import crema_tools
    from crema_tools.loading.wds import Decoder, shard_urls

    urls = shard_urls("crema-d-datasets", "2d-multimodal", "train")  # a folder, a Hub repo id or an fsspec URL
    dataset = (wds.WebDataset(urls, nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker,
                              shardshuffle=len(urls), detshuffle=True, seed=0)
               .compose(wds.detshuffle(64, initial=64, seed=0))  # samples, reshuffled each epoch
               .map(Decoder("2d-multimodal", channels=3)))
    loader = wds.WebLoader(dataset, batch_size=32, num_workers=4, collate_fn=crema_tools.collate)

A `.map` stage rather than handlers for webdataset's `.decode`: `.decode` calls its handlers member
by member, by extension, without the rest of the sample, and a sample decodes as a whole (a 3D
clip's frames and mel chunks are cut together by the frame count in its `json`; the labels are in
`json`). The item is `crema_tools.load`'s (and the `__key__`, the clip id, that webdataset's `map`
adds to a dict); `crema_tools.collate` batches it.

What differs from `crema_tools.load`: webdataset deals whole shards to nodes and workers, so give a
split at least as many shards as nodes x workers (a split of CREMA-D holds a few shards of up to
1,000 samples; a node or worker left without one raises webdataset's "No samples found"), and
every byte of a node's shards is read. `crema_tools.load` deals samples, reads only a rank's own
from local shards, checks the counts against report.json, and resumes mid-epoch (`set_epoch`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..errors import LoadError
from ..representations import VariantError, get_representation, load_options
from .dataset import CremaDataset, decode_sample, stream_location


class Decoder:
    """A webdataset `.map` stage: a sample as webdataset groups it (`__key__`, `__url__` and the
    members by extension, as bytes) to the item `crema_tools.load(..., variant, split, **options)`
    yields for it. `split` None decodes each sample for its own split (its `json` says which: it
    decides, for example, OGM-GE's train or test transforms). Picklable, for DataLoader workers."""

    def __init__(self, variant: str, split: str | None = None, **options):
        try:
            self.representation = get_representation(variant)
        except VariantError as e:
            raise LoadError(str(e)) from None
        self.variant, self.split = variant, split
        self.options = load_options(self.representation, options)

    def __call__(self, sample: dict) -> dict:
        where = f"{sample.get('__url__', '?')}: sample {sample.get('__key__', '?')}"
        members = {k: v for k, v in sample.items() if not k.startswith("__")}
        if "json" not in members:
            raise LoadError(f"{where}: no json member ({', '.join(sorted(members)) or 'no members'}); "
                            "not a sample of a crema-tools build")
        declared = _declared_variant(members["json"])
        if declared not in (None, self.variant):
            raise LoadError(f"{where}: a {declared} sample, and this decoder reads {self.variant}: "
                            "give it the URLs of that config's shards")
        return decode_sample(self.representation, members, self.options, self.split, where)


def _declared_variant(meta: bytes) -> str | None:
    """The config a sample's `json` names (None where it is unreadable: decoding says why)."""
    try:
        return json.loads(meta).get("variant")
    except (ValueError, AttributeError):
        return None


def shard_urls(path_or_repo_id: str | Path, variant: str, split: str = "train", *, revision: str | None = None) -> list[str]:
    """One split's shards, in report.json's order, as webdataset opens them: paths in a local dataset
    folder, `hf://datasets/<repo>/<variant>/<shard>` for a Hub repo id, `<url>/<variant>/<shard>` for
    an fsspec URL (webdataset opens http(s) and hf:// itself; wrap others as `pipe:` commands)."""
    local = Path(path_or_repo_id)
    location = local if local.is_dir() else stream_location(path_or_repo_id, revision)
    return [str(shard) for shard in CremaDataset(location, variant, split).shards]


def pipeline(urls: Iterable[str], variant: str, split: str | None = None, *, shuffle: bool = False, seed: int = 0,
             shuffle_buffer: int = 64, **options):
    """The module docstring's recipe as a `webdataset.WebDataset`: shards split by node, then by
    DataLoader worker; with `shuffle`, the shards and a buffer of `shuffle_buffer` samples reshuffled
    each epoch as a function of `seed` (webdataset's `detshuffle`); each sample decoded by `Decoder`."""
    import webdataset as wds

    urls = list(urls)
    if not urls:
        raise LoadError("no shard URLs given: shard_urls(folder or repo id, variant, split) lists a split's")
    if shuffle_buffer < 1:
        raise LoadError(f"shuffle_buffer must be at least 1, not {shuffle_buffer}")
    decoder = Decoder(variant, split, **options)
    dataset = wds.WebDataset(urls, nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker,
                             shardshuffle=len(urls) if shuffle else False, detshuffle=True, seed=seed)
    if shuffle:
        dataset = dataset.compose(wds.detshuffle(shuffle_buffer, initial=shuffle_buffer, seed=seed))
    return dataset.map(decoder)
