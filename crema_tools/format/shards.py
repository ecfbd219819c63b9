"""The shard format: deterministic WebDataset tars and the per-sample schema they carry.

The builder writes it, the loader, `inspect` and the dataset card read it; none of them needs
the others to do so.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

from ..digest import sha256_file  # noqa: F401 - where the tests and older code find it

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
TMP_MARK = ".tmp-"
"""A file being written is named `.<final name>.tmp-<pid>` next to its final name."""


def _add_sample(tar: tarfile.TarFile, key: str, members: dict[str, bytes]) -> None:
    """Members in sorted extension order, mtime 0, no owner: a rebuild is byte-identical."""
    for ext in sorted(members):
        info = tarfile.TarInfo(f"{key}.{ext}")
        info.size, info.mtime, info.mode = len(members[ext]), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(members[ext]))


class _Hashing:
    """A write-only file that hashes and counts what goes through it."""

    def __init__(self, f):
        self.f, self.sha256, self.bytes = f, hashlib.sha256(), 0

    def tell(self) -> int:
        return self.bytes

    def write(self, data) -> int:
        self.f.write(data)
        self.sha256.update(data)
        self.bytes += len(data)
        return len(data)


def tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


class ShardFile:
    """One tar, written under a temporary name and moved to `path` by `commit()`.

    Nothing half-written is ever visible under the final name: a build killed at any point
    leaves at most a `.<name>.tmp-<pid>` file, which the next build deletes. `commit()` returns
    the shard's record for report.json: name, samples, sha256 and bytes.
    """

    def __init__(self, path: Path):
        self.path = path
        self.tmp = tmp_name(path)
        self.keys: list[str] = []
        self._file = open(self.tmp, "wb")
        self._hashing = _Hashing(self._file)
        self._tar: tarfile.TarFile | None = tarfile.open(fileobj=self._hashing, mode="w", format=tarfile.USTAR_FORMAT)

    @property
    def samples(self) -> int:
        return len(self.keys)

    def write(self, key: str, members: dict[str, bytes]) -> None:
        _add_sample(self._tar, key, members)
        self.keys.append(key)

    def commit(self) -> dict:
        self._tar.close()
        self._tar = None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.path)
        return {"name": self.path.name, "samples": self.samples, "sha256": self._hashing.sha256.hexdigest(),
                "bytes": self._hashing.bytes}

    def abort(self) -> None:
        """Close and delete the temporary file (never raises: it runs while another error unwinds)."""
        try:
            if self._tar is not None:
                self._tar.fileobj = None  # do not write the end-of-archive blocks
        finally:
            self._tar = None
            try:
                self._file.close()
            except OSError:
                pass
            try:
                self.tmp.unlink()
            except OSError:
                pass


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
        _add_sample(self._tar, key, members)
        self._in_shard += 1
        self._bytes += size
        self.samples += 1

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None


def _grouped(tar: tarfile.TarFile, value):
    """Yield (key, {ext: value(info)}) per sample: a sample's members are consecutive, named key.ext."""
    key, members = None, {}
    for info in tar:
        if not info.isfile():
            continue
        k, _, ext = info.name.partition(".")
        if key is not None and k != key:
            yield key, members
            members = {}
        key = k
        members[ext] = value(info)
    if key is not None:
        yield key, members


def iter_members(tar: tarfile.TarFile):
    """Yield (key, {ext: TarInfo}) per sample, in order, without reading any content."""
    return _grouped(tar, lambda info: info)


def read_shard(path: Path):
    """Yield (key, {ext: bytes}) per sample of one shard, in order."""
    with tarfile.open(path, "r") as tar:
        for key, infos in iter_members(tar):
            yield key, {ext: tar.extractfile(info).read() for ext, info in infos.items()}


def stream_members(tar: tarfile.TarFile):
    """Yield (key, {ext: bytes}) per sample of a tar opened as a stream (mode "r|", no seeking):
    each member's bytes are read as they pass, for shards read over the network."""
    return _grouped(tar, lambda info: tar.extractfile(info).read())
