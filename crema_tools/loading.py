"""`crema_tools.load`: a built config as a torch-ready dataset, from a local folder or the Hub."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from .build.shards import read_shard


class LoadError(ValueError):
    pass


def resolve(path_or_repo_id: str | Path, variant: str, revision: str | None = None) -> Path:
    """A local dataset folder, or a Hub dataset repository downloaded (only this config) to the cache."""
    local = Path(path_or_repo_id)
    if local.is_dir():
        return local
    if str(path_or_repo_id).startswith((".", "/")) or str(path_or_repo_id).count("/") != 1:
        raise LoadError(f"{path_or_repo_id}: no such folder, and not a Hub repo id of the form owner/name")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(path_or_repo_id), repo_type="dataset", revision=revision,
                                  allow_patterns=[f"{variant}/*", "README.md"]))


def _image_tensor(blob: bytes, channels: int) -> torch.Tensor:
    img = Image.open(io.BytesIO(blob))
    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    t = torch.from_numpy(arr.copy()).float().div_(255.0)
    return t[None] if channels == 1 else t.permute(2, 0, 1).contiguous()


class CremaDataset(torch.utils.data.IterableDataset):
    """Iterates one split of one built config; each item is a dict.

    Items: `inputs` (float tensor in [0, 1] of the config's canonical shape), `label` (int),
    `clip_id`, `actor_id`, `emotion`, `sentence`, `intensity`. With several DataLoader workers,
    shards are divided between them.
    """

    def __init__(self, folder: Path, variant: str, split: str, channels: int = 3):
        if channels not in (1, 3):
            raise LoadError(f"channels must be 1 or 3, not {channels}")
        report_path = folder / variant / "report.json"
        if not report_path.is_file():
            built = sorted(p.parent.name for p in folder.glob("*/report.json"))
            raise LoadError(f"{folder}: config {variant!r} is not built here (built: {', '.join(built) or 'none'})")
        self.report = json.loads(report_path.read_text())
        if split not in self.report["splits"]:
            raise LoadError(f"{variant}: no split {split!r} (splits: {', '.join(self.report['splits'])})")
        self.folder, self.variant, self.split, self.channels = folder, variant, split, channels
        self.shards = [folder / variant / s for s in self.report["splits"][split]["shards"]]

    def __len__(self) -> int:
        return self.report["splits"][self.split]["samples"]

    def _my_shards(self) -> list[Path]:
        info = torch.utils.data.get_worker_info()
        return self.shards if info is None else self.shards[info.id :: info.num_workers]

    def decode(self, members: dict[str, bytes]) -> dict:
        meta = json.loads(members["json"])
        return {"inputs": _image_tensor(members["png"], self.channels), **self.labels(meta)}

    @staticmethod
    def labels(meta: dict) -> dict:
        """The identifying fields every item carries (all collate into batches)."""
        return {k: meta[k] for k in ("label", "clip_id", "actor_id", "emotion", "sentence", "intensity")}

    def __iter__(self) -> Iterator[dict]:
        for shard in self._my_shards():
            for _, members in read_shard(shard):
                yield self.decode(members)


def load(path_or_repo_id: str | Path, variant: str, split: str = "train", *, channels: int = 3,
         revision: str | None = None) -> CremaDataset:
    """One split of a built config, ready for a `torch.utils.data.DataLoader`."""
    return CremaDataset(resolve(path_or_repo_id, variant, revision), variant, split, channels)
