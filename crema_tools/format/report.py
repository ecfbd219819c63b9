"""`report.json`: what a built config holds, typed once, and whether its shards agree with it.

The build writes it; the loader, `inspect`, the card, `push`, the output folder's ownership
checks and the model zoo's training read it through `Report`. Its keys stay as they always were
(new ones are added, never renamed), so older builds still load.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..digest import sha256_file
from ..errors import CremaToolsError
from .shards import iter_members

REPORT_NAME = "report.json"
PROVENANCE = ("source", "protocol", "seed", "fold", "split_file")
"""What one dataset card describes: every config of a folder shares it. `split_file` is the sha256 of
the split file a `split-file` build read (report.json's `split_file` holds its name and files too),
None for the other protocols and in reports older than the key."""


class ReportError(CremaToolsError, ValueError):
    """A report.json that is missing, unreadable or not one crema-tools wrote."""


@dataclass(frozen=True)
class ShardRecord:
    """One shard as report.json records it (older reports list names only: the rest is None)."""

    name: str
    split: str
    samples: int | None = None
    sha256: str | None = None
    bytes: int | None = None
    clip_ids: list[str] | None = None


class Report(dict):
    """One config's report.json: the parsed JSON (so every key stays reachable), with typed accessors."""

    @classmethod
    def load(cls, path: Path | str) -> "Report":
        """From a file, or any fsspec URL (a Hub repo, object storage); a ReportError names the file."""
        try:
            if isinstance(path, str) and "://" in path:
                import fsspec

                with fsspec.open(path, "rt") as f:
                    data = json.load(f)
            else:
                data = json.loads(Path(path).read_text())
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise ReportError(f"{path}: cannot be read ({e.__class__.__name__}: {e}); is the config built there?") from None
        if not isinstance(data, dict) or not isinstance(data.get("splits"), dict):
            raise ReportError(f"{path}: not a crema-tools report (no splits)")
        return cls(data)

    @classmethod
    def find(cls, folder: Path | str) -> list["Report"]:
        """The reports of every config in a dataset folder, by config name."""
        return [cls.load(p) for p in sorted(Path(folder).glob(f"*/{REPORT_NAME}"))]

    def to_json(self) -> bytes:
        return (json.dumps(self, indent=2, sort_keys=True) + "\n").encode()

    @property
    def variant(self) -> str:
        return self["variant"]

    @property
    def written_by_crema_tools(self) -> bool:
        return "crema_tools_version" in self

    @property
    def provenance(self) -> dict:
        """source, protocol, seed, fold and the split file's sha256 (or None): what one dataset card describes."""
        return {**{k: self.get(k) for k in PROVENANCE}, "split_file": self.split_file_sha256}

    @property
    def split_file(self) -> dict | None:
        """The split file of a `split-file` build: {"name", "sha256", "given", "format", "clips", "files"}."""
        value = self.get("split_file")
        return value if isinstance(value, dict) else None

    @property
    def split_file_sha256(self) -> str | None:
        return (self.split_file or {}).get("sha256")

    @property
    def actors_in_several_splits(self) -> int | None:
        """How many actors appear in more than one split (None in reports older than the key)."""
        return (self.get("actors") or {}).get("in_more_than_one_split")

    @property
    def split_names(self) -> list[str]:
        return list(self["splits"])

    def split_samples(self, split: str) -> int:
        return self["splits"][split]["samples"]

    @property
    def members(self) -> dict:
        """Tar members besides json and cls (reports older than the key held PNGs)."""
        return self.get("members", {"png": "image"})

    def shards(self, split: str | None = None) -> list[ShardRecord]:
        """The shards of one split (or all, split by split), with what the report records of each."""
        out = []
        for name, info in self["splits"].items():
            if split is not None and name != split:
                continue
            recorded = {e.get("name"): e for e in info.get("shard_info") or [] if isinstance(e, dict)}
            for shard in info.get("shards", []):
                r = recorded.get(shard, {})
                out.append(ShardRecord(str(shard), name, r.get("samples"), r.get("sha256"), r.get("bytes"), r.get("clip_ids")))
        return out

    @property
    def shard_names(self) -> set[str]:
        return {s.name for s in self.shards()}


def actor_overlap(actors: dict[str, Iterable[int]]) -> dict:
    """report.json's `actors`, from the actor ids of each split: how many actors there are, per split, and
    how many appear in more than one split (whose scores then are not speaker-independent)."""
    seen: Counter = Counter(a for ids in actors.values() for a in set(ids))
    shared = sorted(a for a, n in seen.items() if n > 1)
    return {"total": len(seen), "per_split": {s: len(set(ids)) for s, ids in actors.items()},
            "in_more_than_one_split": len(shared), "shared": shared}


def actors_text(actors: dict | None) -> str:
    """`actor_overlap` in words, as the card and `inspect` say it."""
    if not isinstance(actors, dict):
        return "not recorded (built by an older crema-tools)"
    n, total = actors.get("in_more_than_one_split", 0), actors.get("total", 0)
    per_split = actors.get("per_split") or {}
    order = sorted(per_split, key=lambda s: (("train", "validation", "test") + (s,)).index(s))  # report.json sorts its keys
    counts = f"{total} actors ({', '.join(f'{s} {per_split[s]}' for s in order)}); "
    if n == 0:
        return counts + "none of them appears in more than one split: the splits are speaker-independent"
    return (counts + f"{n} of them appear in more than one split: test (and validation) share speakers with "
            f"train, so scores on them are not speaker-independent")


@dataclass
class ShardCheck:
    """What `check_shards` found: samples counted per split, and every disagreement as one line."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_shards(report: Report, config: Path, *, count: bool = True, hashes: bool = True, called: str = "the report") -> ShardCheck:
    """Do the shards in `config` agree with their report? Listed shards exist, no stray ones sit beside
    them; with `count`, each is a readable tar whose samples hold every member and whose count, size
    and (with `hashes`) sha256 are what the report records, and each split's total is the report's.
    `called` is what the lines call the report ("report.json" where the reader speaks of files)."""
    name, check = config.name, ShardCheck()
    members = set(report.members) | {"json", "cls"}
    listed = report.shard_names
    for stray in sorted(p.name for p in config.glob("*.tar") if p.name not in listed):
        check.problems.append(f"{name}/{stray}: a shard {called} does not list (left from another build?)")
    for split in report.split_names:
        counted = 0
        for shard in report.shards(split):
            path = config / shard.name
            if not path.is_file():
                check.problems.append(f"{name}/{shard.name}: listed in {called} but missing")
                continue
            if count:
                n = _count_samples(path, members, check.problems)
                counted += n
                check.problems += _against_record(path, n, shard, hashes, called)
        check.counts[split] = counted if count else report.split_samples(split)
        if count and counted != report.split_samples(split):
            check.problems.append(f"{name} {split}: {called} says {report.split_samples(split)} samples, "
                                  f"the shards hold {counted}")
    return check


def _count_samples(path: Path, members: set[str], problems: list[str]) -> int:
    """Samples in one shard, from its tar headers; each must hold `members`."""
    where = f"{path.parent.name}/{path.name}"
    try:
        with tarfile.open(path, "r") as tar:
            count = 0
            for key, infos in iter_members(tar):
                count += 1
                if missing := members - set(infos):
                    problems.append(f"{where}: sample {key} lacks {', '.join(sorted(missing))}")
                    break
            return count
    except (tarfile.TarError, OSError) as e:
        problems.append(f"{where}: not a readable tar ({e})")
        return 0


def _against_record(path: Path, samples: int, record: ShardRecord, hashes: bool, called: str) -> list[str]:
    where = f"{path.parent.name}/{path.name}"
    if record.samples is not None and record.samples != samples:
        return [f"{where}: {called} records {record.samples} samples, the shard holds {samples}"]
    if record.bytes is not None and record.bytes != path.stat().st_size:
        return [f"{where}: {path.stat().st_size} bytes, {called} records {record.bytes} (changed since the build)"]
    if hashes and record.sha256 is not None and sha256_file(path) != record.sha256:
        return [f"{where}: its sha256 is not the one {called} records (changed since the build)"]
    return []
