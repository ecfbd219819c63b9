"""`crema_tools.load`: a built config as a torch-ready dataset, from a local folder or the Hub."""

from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from .errors import LoadError
from .hub import check_repo_id
from .shards import read_shard


def resolve(path_or_repo_id: str | Path, variant: str, revision: str | None = None) -> Path:
    """A local dataset folder, or a Hub dataset repository downloaded (only this config) to the cache."""
    local = Path(path_or_repo_id)
    if local.is_dir():
        return local
    repo_id = check_repo_id(path_or_repo_id)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                  allow_patterns=[f"{variant}/*", "README.md"]))


def _image_tensor(blob: bytes, channels: int) -> torch.Tensor:
    img = Image.open(io.BytesIO(blob))
    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    t = torch.from_numpy(arr.copy()).float().div_(255.0)
    return t[None] if channels == 1 else t.permute(2, 0, 1).contiguous()


LAYOUTS = ("wide", "squeezed")
SQUEEZED_FRAME_WIDTH, SQUEEZED_CHUNK_WIDTH = 208, 16


@lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out): a bilinear resize along one axis (align_corners=False) as a matrix."""
    eye = torch.eye(n_in)[None]
    return torch.nn.functional.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].numpy()


def mel_chunks(mel_db: np.ndarray, n_frames: int, width: int = 224) -> np.ndarray:
    """(T, 224, width) in [0, 1]: chunk i is the mel of frame i's 1/24 s, resized as the paper does."""
    from .video3d import chunk_bounds

    # the vertical resize is the same for every chunk: do it once, then stretch each chunk's columns
    mel = ((mel_db.astype(np.float32) + 80.0) / 80.0).clip(0.0, 1.0)
    tall = (resize_matrix(mel.shape[0], 224).T @ mel)[::-1]  # low frequencies at the bottom
    out = np.empty((n_frames, 224, width), np.float32)
    bounds = chunk_bounds(n_frames, mel.shape[1])
    for k in sorted({b - a for a, b in bounds}):  # chunks of equal width in one matrix product
        rows = [i for i, (a, b) in enumerate(bounds) if b - a == k]
        cols = np.stack([tall[:, bounds[i][0] : bounds[i][1]] for i in rows])  # (n, 224, k)
        out[rows] = cols @ resize_matrix(k, width)
    return out


def frame_indices(t: int, frames: int | None, clip_id: str) -> tuple[np.ndarray, int]:
    """Which of the clip's T frames to keep, and the output length (padded beyond them with blanks)."""
    if frames is None:
        return np.arange(t), t
    if frames >= PAD_FROM:
        if t > frames:
            raise LoadError(f"{clip_id}: {t} frames, more than frames={frames}; raise frames (no clip is cut silently)")
        return np.arange(t), frames
    return np.linspace(0, t - 1, frames).round().astype(int), frames


def clip_tensor(members: dict[str, bytes], meta: dict, layout: str, frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip as (length, 3, 224, W) floats in [0, 1] and a mask of its real (unpadded) frames."""
    from .video3d import decode_yuv, resize_yuv420, yuv_to_rgb

    n = meta["n_frames"]
    keep, length = frame_indices(n, frames, meta["clip_id"])
    planes = None
    if "mp4" in members:
        planes = decode_yuv(members["mp4"])
        if len(planes) != n:
            raise LoadError(f"{meta['clip_id']}: {len(planes)} frames decoded, the sample says {n}")
        planes = planes[keep]
    squeezed = layout == "squeezed" and planes is not None and "npy" in members
    frame_w = 0 if planes is None else SQUEEZED_FRAME_WIDTH if squeezed else 224
    chunk_w = 0 if "npy" not in members else SQUEEZED_CHUNK_WIDTH if squeezed else 224
    out = np.zeros((length, 3, 224, frame_w + chunk_w), np.float32)
    if planes is not None:
        if squeezed:  # resize the uint8 planes, then convert: 5x cheaper than resizing floats
            planes = resize_yuv420(planes, frame_w, 224)
        yuv_to_rgb(planes, out[: len(keep), :, :, :frame_w])
    if chunk_w:
        mel = np.load(io.BytesIO(members["npy"]), allow_pickle=False)
        out[: len(keep), :, :, frame_w:] = mel_chunks(mel, n, chunk_w)[keep][:, None]
    mask = torch.zeros(length, dtype=torch.bool)
    mask[: len(keep)] = True
    return torch.from_numpy(out), mask


PAD_FROM = 64
"""`frames` at or above this pads (the paper's 135); below it samples evenly (VideoMAE's 16 or 32)."""


class CremaDataset(torch.utils.data.IterableDataset):
    """Iterates one split of one built config; each item is a dict.

    Items: `inputs` (float tensor in [0, 1] of the config's canonical shape), `label` (int),
    `clip_id`, `actor_id`, `emotion`, `sentence`, `intensity`. With several DataLoader workers,
    shards are divided between them.
    """

    def __init__(self, folder: Path, variant: str, split: str, channels: int = 3,
                 frames: int | None = None, multimodal_layout: str = "wide"):
        if channels not in (1, 3):
            raise LoadError(f"channels must be 1 or 3, not {channels}")
        if multimodal_layout not in LAYOUTS:
            raise LoadError(f"multimodal_layout must be one of {', '.join(LAYOUTS)}, not {multimodal_layout!r}")
        if frames is not None and frames < 1:
            raise LoadError(f"frames must be a positive number of frames or None, not {frames}")
        self.frames, self.layout = frames, multimodal_layout
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

    def _my_samples(self) -> Iterator[dict[str, bytes]]:
        """This DataLoader worker's samples: whole shards when there are enough to go round, else
        every n-th sample, so a small split still keeps every worker decoding."""
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        by_shard = len(self.shards) >= workers
        for shard in self.shards[worker::workers] if by_shard else self.shards:
            for i, (_, members) in enumerate(read_shard(shard)):
                if by_shard or i % workers == worker:
                    yield members

    def decode(self, members: dict[str, bytes]) -> dict:
        meta = json.loads(members["json"])
        if "png" in members:
            return {"inputs": _image_tensor(members["png"], self.channels), **self.labels(meta)}
        inputs, mask = clip_tensor(members, meta, self.layout, self.frames)
        if self.channels == 1:
            inputs = inputs.mean(dim=1, keepdim=True)
        return {"inputs": inputs, "mask": mask, "length": int(mask.sum()), **self.labels(meta)}

    @staticmethod
    def labels(meta: dict) -> dict:
        """The identifying fields every item carries (all collate into batches)."""
        return {k: meta[k] for k in ("label", "clip_id", "actor_id", "emotion", "sentence", "intensity")}

    def __iter__(self) -> Iterator[dict]:
        for members in self._my_samples():
            yield self.decode(members)


def load(path_or_repo_id: str | Path, variant: str, split: str = "train", *, channels: int = 3,
         frames: int | None = None, multimodal_layout: str = "wide", revision: str | None = None) -> CremaDataset:
    """One split of a built config, ready for a `torch.utils.data.DataLoader`.

    2D configs yield `inputs` (3, 224, 224) or, multimodal, (3, 224, 448). 3D configs yield
    (T, 3, 224, W) with a boolean `mask` over T and its `length`: `frames=None` keeps the clip's
    own T (about 24 x duration); `frames` of 64 or more pads at the end with blank frames (135:
    the paper's 3D CNNs; a longer clip is an error), fewer samples frames evenly (16 or 32:
    VideoMAE).
    `multimodal_layout` "wide" puts frame | chunk side by side (W 448), "squeezed" resizes the
    frame to 208 wide and the chunk to 16 (W 224, the paper's VideoMAE input).
    """
    return CremaDataset(resolve(path_or_repo_id, variant, revision), variant, split, channels, frames, multimodal_layout)
