"""Split files: any lab's published split of CREMA-D, read from the formats people ship.

`read_split_file(paths)` takes one or more files, or folders of them, and returns a `SplitFile`:
every clip id it lists, with the split the file gives it. The format is told from the content:

- OGM-GE / PMR CSV: `clip_id,label` rows (label an emotion code such as ANG), one file per split;
- `clip_id,split` CSV: one file for all splits, the split in the second column;
- HiCMAE: whitespace-separated `path path label` lines (or `clip_id label`), the label their index
  in the order ANG, DIS, FEA, HAP, NEU, SAD; one file per split;
- EmoBox JSON lines: `{"key": "cremad-1001-DFA-ANG-XX", "wav": ".../AudioWAV/1001_DFA_ANG_XX.wav", ...}`,
  one file per split.

A CSV may start with a header (`clip_id,label`, `clip_id,split`). A file without a split column
gets its split from its name: the word train, test or validation (also valid, val, dev) in it,
as in `train.csv` or `cremad_test_fold_1.jsonl`. Given a folder, every `.csv`, `.txt`, `.tsv`,
`.lst`, `.json` and `.jsonl` file in it is read (a LICENSE or README.md is not).

A UTF-8 byte-order mark and CRLF line endings are accepted as they come (OGM-GE ships both);
blank lines are skipped. Everything else that is not one clip per line is an error of one line
naming the file and the line: a malformed line, an id that is not one of the 7,442 official ones,
a clip listed twice or in two splits, a label that contradicts the clip id (crema-tools labels a
clip by its id, so a file that labels it otherwise describes another dataset), an empty file, a
file in no format above or whose name gives no split. The whole file is read and checked before
anything is built.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Sequence

from ..errors import CremaToolsError
from .clips import EMOTIONS
from .metadata import official_clip_ids

SPLIT_WORDS = {"train": "train", "training": "train", "test": "test", "testing": "test",
               "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation"}
"""Words naming a split, in a file name or a split column, and the split they name."""
READ_SUFFIXES = (".csv", ".txt", ".tsv", ".lst", ".json", ".jsonl")
"""The files of a folder given as --split-file that are read; others (LICENSE, README.md) are not."""
FORMATS = {
    "clip-label-csv": "OGM-GE / PMR CSV (clip_id,label; one file per split)",
    "clip-split-csv": "clip_id,split CSV",
    "hicmae": "HiCMAE lines (path path label; one file per split)",
    "emobox-jsonl": "EmoBox JSON lines (one file per split)",
}
"""Format id -> what it is, as report.json and the errors name it."""
HEADER_WORDS = {"label": "clip-label-csv", "emotion": "clip-label-csv", "emo": "clip-label-csv", "class": "clip-label-csv",
                "split": "clip-split-csv", "set": "clip-split-csv", "subset": "clip-split-csv", "partition": "clip-split-csv"}
_CLIP_LIKE = re.compile(r"^\d{4}_")
_WHAT_WE_READ = ("clip_id,label or clip_id,split CSV rows, HiCMAE's `path path label` lines, "
                 "or EmoBox JSON lines")


class SplitFileError(CremaToolsError, ValueError):
    """A split file that cannot be read as a split of the official clips: one line naming file and line."""


@dataclass(frozen=True)
class SplitSource:
    """One file read: its name (relative to what was given), sha256, format and clips per split."""

    name: str
    sha256: str
    format: str
    clips: tuple[tuple[str, int], ...]

    def record(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "format": self.format, "clips": dict(self.clips)}


@dataclass(frozen=True, eq=False)
class SplitFile:
    """A published split, read and checked: clip id -> split, and where it came from.

    `sha256` is the file's own when one file was given; for several files (or a folder) it is the
    sha256 of the lines `sha256sum` prints for them, in name order (`<sha256>  <name>\\n` each).
    Two SplitFiles are equal when they were given under the same names with the same bytes.
    """

    name: str  # what was given, by base name: "ogm-ge" or "train.csv, test.csv"
    given: tuple[str, ...]  # the base names of the paths given, in order (the card's --split-file arguments)
    sha256: str
    files: tuple[SplitSource, ...]
    assignment: dict[str, str] = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SplitFile) and (self.given, self.sha256) == (other.given, other.sha256)

    def __hash__(self) -> int:
        return hash((self.given, self.sha256))

    @property
    def format(self) -> str:
        return "+".join(dict.fromkeys(f.format for f in self.files))

    @property
    def splits(self) -> dict[str, int]:
        """Clips per split, train, validation, test first."""
        counts: dict[str, int] = {}
        for split in self.assignment.values():
            counts[split] = counts.get(split, 0) + 1
        order = ("train", "validation", "test")
        return {s: counts[s] for s in sorted(counts, key=lambda s: (order.index(s) if s in order else 3, s))}

    @property
    def provenance(self) -> dict:
        """What a build's provenance records of it: {"name", "sha256"}."""
        return {"name": self.name, "sha256": self.sha256}

    def record(self) -> dict:
        """report.json's `split_file`."""
        return {**self.provenance, "given": list(self.given), "format": self.format, "clips": self.splits,
                "files": [f.record() for f in self.files]}

    def left_out_reason(self, clip_id: str) -> str | None:
        """Why a clip is in no split: the file does not list it."""
        return None if clip_id in self.assignment else f"not in the split file {self.name}"


def read_split_file(paths: str | Path | Sequence[str | Path]) -> SplitFile:
    """Read one or more split files, or folders of them, into one checked `SplitFile`."""
    given = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not given:
        raise SplitFileError("--split-file: no file given")
    files = [f for path in given for f in _files_of(path)]
    names = [f.name for f in files]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise SplitFileError(f"--split-file: two files are named {twice} ({', '.join(str(f) for f in files if f.name == twice)}); "
                             f"each split file is known by its name, so give them distinct names")
    seen: dict[str, tuple[str, int, str]] = {}  # clip id -> (file, line, split)
    sources = []
    for path in files:
        blob = _read(path)
        fmt, rows = _parse(path, blob)
        counts: dict[str, int] = {}
        for n, clip_id, split in rows:
            if clip_id in seen:
                other_file, other_line, other_split = seen[clip_id]
                where = "in this file" if other_file == str(path) else f"in {other_file}"
                if other_split == split:
                    raise SplitFileError(f"{path}:{n}: {clip_id} is listed twice (also {where}, line {other_line})")
                raise SplitFileError(f"{path}:{n}: {clip_id} is in {split} here but in {other_split} {where}, line "
                                     f"{other_line}: a clip belongs in one split")
            seen[clip_id] = (str(path), n, split)
            counts[split] = counts.get(split, 0) + 1
        sources.append(SplitSource(path.name, hashlib.sha256(blob).hexdigest(), fmt, tuple(counts.items())))
    if len(given) == 1 and given[0].is_file():
        digest = sources[0].sha256
    else:
        digest = hashlib.sha256("".join(f"{s.sha256}  {s.name}\n" for s in sorted(sources, key=lambda s: s.name)).encode()).hexdigest()
    return SplitFile(", ".join(p.name for p in given), tuple(p.name for p in given), digest, tuple(sources),
                     {clip_id: split for clip_id, (_, _, split) in sorted(seen.items())})


# ---------------------------------------------------------------- files


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        try:
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in READ_SUFFIXES)
        except OSError as e:
            raise SplitFileError(f"--split-file {path}: cannot list the folder ({e.strerror or e})") from None
        if not found:
            raise SplitFileError(f"--split-file {path}: the folder holds no split file ({', '.join(READ_SUFFIXES)})")
        return found
    if not path.is_file():
        raise SplitFileError(f"--split-file {path}: no such file or folder")
    return [path]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SplitFileError(f"{path}: cannot be read ({e.strerror or e})") from None


def _lines(path: Path, blob: bytes) -> list[tuple[int, str]]:
    """(line number, text) of every non-blank line; a UTF-8 BOM and CRLF endings are dropped."""
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = blob[:e.start].count(b"\n") + 1
        raise SplitFileError(f"{path}:{line}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    return [(n, line.strip()) for n, line in enumerate(text.split("\n"), 1) if line.strip()]


def _split_from_name(path: Path) -> str:
    words = {SPLIT_WORDS[w] for w in re.split(r"[^a-z]+", path.stem.lower()) if w in SPLIT_WORDS}
    if len(words) != 1:
        said = "names several splits" if words else "names no split"
        raise SplitFileError(f"{path}: its name {said}; a file without a split column takes its split from its name: "
                             f"put exactly one of train, validation (or valid, val, dev) or test in it, e.g. train.csv")
    return words.pop()


# ---------------------------------------------------------------- lines


def _parse(path: Path, blob: bytes) -> tuple[str, list[tuple[int, str, str]]]:
    """The file's format and its rows (line number, clip id, split)."""
    lines = _lines(path, blob)
    if not lines:
        raise SplitFileError(f"{path}: empty; a split file lists at least one clip")
    n, first = lines[0]
    if first.startswith("{"):
        fmt, parse = "emobox-jsonl", _emobox_row
    elif "," in first:
        fmt, lines = _csv_kind(path, lines)
        parse = _label_row if fmt == "clip-label-csv" else _split_row
    elif len(first.split()) >= 2:
        fmt, parse = "hicmae", _hicmae_row
    else:
        raise SplitFileError(f"{path}:{n}: not a split file crema-tools reads: expected {_WHAT_WE_READ}, got {_short(first)}")
    if not lines:
        raise SplitFileError(f"{path}: holds a header and no clip; a split file lists at least one clip")
    split = None if fmt == "clip-split-csv" else _split_from_name(path)
    official = _official()
    rows = []
    for n, line in lines:
        try:
            clip_id, label, row_split = parse(line)
        except _BadLine as e:
            raise SplitFileError(f"{path}:{n}: cannot read this line as {FORMATS[fmt]}: {e} in {_short(line)}") from None
        if clip_id not in official:
            raise SplitFileError(f"{path}:{n}: {clip_id!r} is not one of the 7,442 official CREMA-D clip ids")
        emotion = clip_id.split("_")[2]
        if label is not None and label != emotion:
            raise SplitFileError(f"{path}:{n}: {clip_id} is labelled {label} here but its id says {emotion}; crema-tools "
                                 f"labels a clip by its id, so this file does not describe CREMA-D as released")
        rows.append((n, clip_id, row_split or split))
    return fmt, rows


class _BadLine(ValueError):
    """What is wrong with one line; `_parse` adds the file, line number and format."""


@lru_cache(maxsize=1)
def _official() -> frozenset[str]:
    return frozenset(official_clip_ids())


def _short(line: str, n: int = 60) -> str:
    return repr(line if len(line) <= n else line[:n - 3] + "...")


def _clip_id(value: str) -> str:
    """A clip id from a field: the id itself, or a path whose base name (less its extension) is one."""
    value = value.strip()
    if not value:
        raise _BadLine("an empty field")
    name = PureWindowsPath(PurePosixPath(value).name).name
    if not _CLIP_LIKE.match(name) or "." not in name:
        return name
    return name.rsplit(".", 1)[0]


def _emotion(value: str) -> str:
    code = value.strip().upper()
    if code not in EMOTIONS:
        raise _BadLine(f"the label {value.strip()!r} is not an emotion code ({', '.join(EMOTIONS)})")
    return code


def _split_word(value: str) -> str:
    split = SPLIT_WORDS.get(value.strip().lower())
    if split is None:
        raise _BadLine(f"{value.strip()!r} is not a split (train, validation, test; also valid, val, dev)")
    return split


def _csv_fields(line: str) -> list[str]:
    fields = next(csv.reader([line]))
    if len(fields) != 2:
        raise _BadLine(f"{len(fields)} comma-separated fields where 2 are expected")
    return fields


def _csv_kind(path: Path, lines: list[tuple[int, str]]) -> tuple[str, list[tuple[int, str]]]:
    """label or split CSV, from a header or the first row's second field; the rows without the header."""
    n, first = lines[0]
    try:
        key, value = _csv_fields(first)
    except _BadLine as e:
        raise SplitFileError(f"{path}:{n}: not a split file crema-tools reads: {e} in {_short(first)}") from None
    if not _CLIP_LIKE.match(_clip_id(key)) and value.strip().lower() in HEADER_WORDS:
        return HEADER_WORDS[value.strip().lower()], lines[1:]
    if value.strip().upper() in EMOTIONS:
        return "clip-label-csv", lines
    if value.strip().lower() in SPLIT_WORDS:
        return "clip-split-csv", lines
    raise SplitFileError(f"{path}:{n}: not a split file crema-tools reads: the second column {value.strip()!r} is neither "
                         f"an emotion code ({', '.join(EMOTIONS)}) nor a split (train, validation, test)")


def _label_row(line: str) -> tuple[str, str | None, str | None]:
    key, value = _csv_fields(line)
    return _clip_id(key), _emotion(value), None


def _split_row(line: str) -> tuple[str, str | None, str | None]:
    key, value = _csv_fields(line)
    return _clip_id(key), None, _split_word(value)


def _hicmae_row(line: str) -> tuple[str, str | None, str | None]:
    *paths, label = line.split()
    if not paths:
        raise _BadLine("one field where paths and a label are expected")
    ids = list(dict.fromkeys(_clip_id(p) for p in paths))
    if len(ids) > 1:
        raise _BadLine(f"the paths name different clips ({', '.join(ids)})")
    if label.isdigit():
        index = int(label)
        if index >= len(EMOTIONS):
            raise _BadLine(f"the label {label} is not an index 0..{len(EMOTIONS) - 1} (ANG, DIS, FEA, HAP, NEU, SAD)")
        return ids[0], EMOTIONS[index], None
    return ids[0], _emotion(label), None


def _emobox_row(line: str) -> tuple[str, str | None, str | None]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as e:
        raise _BadLine(f"not JSON ({e.msg})") from None
    if not isinstance(item, dict):
        raise _BadLine("not a JSON object")
    ids = []
    if isinstance(item.get("wav"), str):
        ids.append(_clip_id(item["wav"]))
    if isinstance(item.get("key"), str):
        parts = item["key"].split("-")
        if len(parts) < 4:
            raise _BadLine(f"the key {item['key']!r} does not end in a clip id (cremad-1001-DFA-ANG-XX)")
        ids.append("_".join(parts[-4:]))
    if not ids:
        raise _BadLine('neither "wav" nor "key" is given')
    if len(set(ids)) > 1:
        raise _BadLine(f'"wav" and "key" name different clips ({", ".join(ids)})')
    label = item.get("emo")
    return ids[0], (_emotion(label) if isinstance(label, str) else None), None
