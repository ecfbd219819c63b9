"""The shard format: deterministic WebDataset tars and the per-sample schema they carry.

The builder writes it, the loader, `inspect` and the dataset card read it; none of them needs
the others to do so.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

SAMPLE_FIELDS: dict[str, object] = {
    "clip_id": "string", "actor_id": "int64", "actor_sex": "string", "sentence": "string",
    "emotion": "string", "intensity": "string", "label": "int64", "split": "string",
    "face_box": {"sequence": "float64"}, "face_probability": "float64", "face_found": "bool",
    "audio_source": "string", "duration_s": "float64", "source": "string", "variant": "string",
}
"""The `json` member every sample holds (as Hugging Face feature dtypes); a variant's own fields
(`crema_tools.variants.Variant.metadata_fields`) come on top. `cls` holds the label index."""

MAX_SAMPLES_PER_SHARD = 1000
MAX_BYTES_PER_SHARD = 1 << 30


class ShardWriter:
    """Writes `<prefix>-00000.tar`, `<prefix>-00001.tar`, ... with fixed tar headers.

    Each sample is a key plus members keyed by extension (`png`, `json`, `cls`); members are
    written in sorted extension order with mtime 0 and no owner, so a rebuild is byte-identical.
    """

    def __init__(self, folder: Path, prefix: str, max_samples: int = MAX_SAMPLES_PER_SHARD, max_bytes: int = MAX_BYTES_PER_SHARD):
        self.folder, self.prefix = folder, prefix
        self.max_samples, self.max_bytes = max_samples, max_bytes
        self.shards: list[str] = []
        self.samples = 0
        self._tar: tarfile.TarFile | None = None
        self._in_shard = 0
        self._bytes = 0

    def _roll(self) -> None:
        self.close()
        name = f"{self.prefix}-{len(self.shards):05d}.tar"
        self.shards.append(name)
        self._tar = tarfile.open(self.folder / name, "w", format=tarfile.USTAR_FORMAT)
        self._in_shard = self._bytes = 0

    def write(self, key: str, members: dict[str, bytes]) -> None:
        size = sum(len(v) for v in members.values())
        if self._tar is None or self._in_shard >= self.max_samples or (self._in_shard and self._bytes + size > self.max_bytes):
            self._roll()
        for ext in sorted(members):
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(members[ext]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(members[ext]))
        self._in_shard += 1
        self._bytes += size
        self.samples += 1

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None


def iter_members(tar: tarfile.TarFile):
    """Yield (key, {ext: TarInfo}) per sample, in order, without reading any content."""
    key, infos = None, {}
    for info in tar:
        if not info.isfile():
            continue
        k, _, ext = info.name.partition(".")
        if key is not None and k != key:
            yield key, infos
            infos = {}
        key = k
        infos[ext] = info
    if key is not None:
        yield key, infos


def read_shard(path: Path):
    """Yield (key, {ext: bytes}) per sample of one shard, in order."""
    with tarfile.open(path, "r") as tar:
        for key, infos in iter_members(tar):
            yield key, {ext: tar.extractfile(info).read() for ext, info in infos.items()}
