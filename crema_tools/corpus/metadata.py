"""The official CREMA-D metadata shipped as package data, loaded once and cached."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .clips import EMOTIONS, Clip

MEDIA_DIRS = {"video_flv": ("VideoFlash", ".flv"), "audio_wav": ("AudioWAV", ".wav"), "audio_mp3": ("AudioMP3", ".mp3")}
"""Media kind -> (folder, extension) in the official layout."""

# Known issues that make a file unusable. "fixed" issues only affect old copies, and the media
# checks of the build catch those (an FLV without audio has no audio stream); the byte-identical
# WAVs of two clips with different labels cannot both be right, so neither is used.
UNUSABLE_STATUSES = {"open"}
UNUSABLE_CATEGORIES = {"duplicate_audio"}


def _data_text(name: str) -> str:
    blob = resources.files("crema_tools.corpus").joinpath("data", name).read_bytes()
    if name.endswith(".gz"):
        blob = gzip.decompress(blob)
    return blob.decode("utf-8")


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_data_text(name))))


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    kind: str
    clip_id: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class KnownIssue:
    clip_id: str
    files: tuple[str, ...]
    category: str
    status: str
    description: str
    source: str

    @property
    def makes_file_unusable(self) -> bool:
        return self.status in UNUSABLE_STATUSES or self.category in UNUSABLE_CATEGORIES


@dataclass(frozen=True)
class Actor:
    actor_id: int
    age: int
    sex: str
    race: str
    ethnicity: str


@lru_cache(maxsize=1)
def manifest() -> tuple[ManifestEntry, ...]:
    """Every official media file (22,326), with the size and sha256 of the real media."""
    return tuple(
        ManifestEntry(r["path"], r["kind"], r["clip_id"], int(r["size_bytes"]), r["sha256"])
        for r in _rows("manifest.csv.gz")
    )


@lru_cache(maxsize=1)
def official_clip_ids() -> tuple[str, ...]:
    """The 7,442 official clip ids, sorted."""
    return tuple(sorted({e.clip_id for e in manifest()}))


@lru_cache(maxsize=1)
def official_clips() -> tuple[Clip, ...]:
    return tuple(Clip.parse(c) for c in official_clip_ids())


@lru_cache(maxsize=1)
def known_issues() -> tuple[KnownIssue, ...]:
    return tuple(
        KnownIssue(
            r["clip_id"], tuple(r["files"].split(";")), r["category"], r["status"], r["description"], r["source"]
        )
        for r in _rows("known_issues.csv")
    )


@lru_cache(maxsize=1)
def known_issues_by_file() -> dict[str, tuple[KnownIssue, ...]]:
    """Official relative path (e.g. `AudioWAV/1076_MTI_SAD_XX.wav`) -> its documented issues."""
    out: dict[str, list[KnownIssue]] = {}
    for issue in known_issues():
        for path in issue.files:
            out.setdefault(path, []).append(issue)
    return {k: tuple(v) for k, v in out.items()}


def unusable_reason(relpath: str) -> str | None:
    """Why the build must not use this official file, or None when nothing documented stops it."""
    for issue in known_issues_by_file().get(relpath, ()):
        if issue.makes_file_unusable:
            return f"known issue ({issue.category}) in {relpath}: {issue.description}"
    return None


@lru_cache(maxsize=1)
def actors() -> dict[int, Actor]:
    return {
        int(r["ActorID"]): Actor(int(r["ActorID"]), int(r["Age"]), r["Sex"], r["Race"], r["Ethnicity"])
        for r in _rows("VideoDemographics.csv")
    }


@lru_cache(maxsize=1)
def votes() -> dict[str, dict[str, dict[str, int]]]:
    """clip id -> modality (voice, face, multimodal) -> emotion code -> number of raters' votes."""
    letter_to_code = {code[0]: code for code in EMOTIONS}
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in _rows("votes.csv.gz"):
        per_modality: dict[str, dict[str, int]] = {}
        for key, value in r.items():
            if key == "clip_id":
                continue
            modality, letter = key.rsplit("_", 1)
            per_modality.setdefault(modality, {})[letter_to_code[letter]] = int(value)
        out[r["clip_id"]] = per_modality
    return out


@lru_cache(maxsize=1)
def audeering_speaker_split() -> dict[str, tuple[int, ...]]:
    """The published actor split: train / dev / test actor ids."""
    raw = json.loads(_data_text("audeering_speaker_splits.json"))
    return {part: tuple(ids) for part, ids in raw.items()}


OGM_GE_FILES = {"train": "ogm_ge_train.csv", "test": "ogm_ge_test.csv"}
"""Split name -> package data file of the OGM-GE release's CREMA-D split (MIT license)."""


@lru_cache(maxsize=1)
def ogm_ge_rows() -> tuple[tuple[str, str, str], ...]:
    """The OGM-GE release's rows as (clip id, emotion column, split), in file order, train first.

    The files are shipped as published: rows `clip_id,emotion` without a header, CRLF line
    endings; a UTF-8 byte-order mark is dropped if present.
    """
    return tuple(
        (clip_id, emotion, part)
        for part, name in OGM_GE_FILES.items()
        for clip_id, emotion in parse_ogm_ge_csv(
            resources.files("crema_tools.corpus").joinpath("data", name).read_bytes()
        )
    )


def parse_ogm_ge_csv(blob: bytes) -> list[tuple[str, str]]:
    """Rows `clip_id,emotion` of an OGM-GE split file: optional UTF-8 BOM, CRLF or LF, no header."""
    rows = []
    for row in csv.reader(io.StringIO(blob.decode("utf-8-sig"), newline="")):
        if row:
            clip_id, emotion = (field.strip() for field in row)
            rows.append((clip_id, emotion))
    return rows


@lru_cache(maxsize=1)
def ogm_ge_split() -> dict[str, str]:
    """The OGM-GE release's split: clip id -> "train" or "test" (6,698 / 744 of the 7,442 clips)."""
    return {clip_id: part for clip_id, _, part in ogm_ge_rows()}


def media_relpath(clip_id: str, kind: str) -> str:
    folder, ext = MEDIA_DIRS[kind]
    return f"{folder}/{clip_id}{ext}"
