"""Check a local CREMA-D copy against the shipped manifest, file by file.

A copy is "complete and official" when every manifest file of the requested kinds is there with
the manifest's size and sha256, and nothing else media-looking sits in the media folders. Clones
made without Git LFS hold small pointer text files instead of media; they are reported as such,
with the fix (`git lfs pull`, or `crema-tools fetch`).
"""

from __future__ import annotations

import os
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..corpus import MEDIA_DIRS, known_issues, known_issues_by_file, manifest
from ..corpus.metadata import ManifestEntry
from ..digest import hash_files
from ..errors import CremaToolsError
from ..media.lfs import LFS_POINTER_MAX_BYTES, read_lfs_pointer
from ..tables import text_table

DEFAULT_ROOT = Path("CREMA-D")
"""Where `fetch` puts a copy and `verify` looks for one, relative to the working directory."""

KIND_ALIASES = {
    "video": "video_flv", "flv": "video_flv", "video_flv": "video_flv",
    "wav": "audio_wav", "audio_wav": "audio_wav",
    "mp3": "audio_mp3", "audio_mp3": "audio_mp3",
}
"""Names accepted by `--what` -> manifest kind."""

STATUSES = ("ok", "missing", "lfs_pointer", "size_mismatch", "hash_mismatch")
"""Per-file verdicts, in the order of the summary table."""

PARTIAL_SUFFIX = ".part"  # unfinished downloads of crema-tools fetch


class RawFolderError(CremaToolsError, FileNotFoundError):
    """The folder given as a CREMA-D copy does not exist or holds none of the media folders."""


# --------------------------------------------------------------------------- shared helpers


def parse_kinds(what: str | Iterable[str] | None = None) -> tuple[str, ...]:
    """`"video,wav"` or `["mp3"]` -> manifest kinds, in manifest order; None or "all" -> all kinds.

    Raises ValueError naming the accepted names, so the CLI can show it as a usage error.
    """
    if what is None:
        return tuple(MEDIA_DIRS)
    names = what.split(",") if isinstance(what, str) else list(what)
    names = [n.strip().lower() for n in names if n.strip()]
    if not names or "all" in names:
        return tuple(MEDIA_DIRS)
    unknown = [n for n in names if n not in KIND_ALIASES]
    if unknown:
        raise ValueError(f"unknown media kind {', '.join(unknown)}: use video, wav, mp3 (comma-separated) or all")
    wanted = {KIND_ALIASES[n] for n in names}
    return tuple(k for k in MEDIA_DIRS if k in wanted)


def select_entries(entries: Iterable[ManifestEntry] | None, kinds: Sequence[str]) -> list[ManifestEntry]:
    """The manifest entries (the shipped manifest by default) of the given kinds."""
    source = manifest() if entries is None else entries
    return [e for e in source if e.kind in kinds]


def local_path(root: Path, relpath: str) -> Path:
    """`root/relpath`, refusing manifest paths that would land outside root."""
    parts = Path(relpath).parts
    if Path(relpath).is_absolute() or ".." in parts or not parts:
        raise ValueError(f"unsafe manifest path {relpath!r}: paths must stay inside the copy")
    return root.joinpath(*parts)


def fetch_command(root: Path, kinds: Sequence[str] = tuple(MEDIA_DIRS)) -> str:
    """The `crema-tools fetch` line that repairs `root` for these kinds."""
    cmd = f"crema-tools fetch --to {shlex.quote(str(root))}"
    if set(kinds) != set(MEDIA_DIRS):
        short = {"video_flv": "video", "audio_wav": "wav", "audio_mp3": "mp3"}
        cmd += " --what " + ",".join(short[k] for k in kinds)
    return cmd


# --------------------------------------------------------------------------- report types


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one manifest file; `fix` is what the user should run or do."""

    path: str
    kind: str
    status: str
    detail: str = ""
    fix: str = ""


@dataclass(frozen=True)
class ExtraFile:
    """A media-looking file in a media folder that the manifest does not list."""

    path: str
    kind: str
    detail: str
    fix: str


@dataclass(frozen=True)
class KnownProblem:
    """An official file with a documented open problem (informative: it is still the official file)."""

    path: str
    clip_id: str
    category: str
    description: str


@dataclass
class VerifyReport:
    """Everything `verify` found; `render()` gives the summary the CLI prints."""

    root: Path
    kinds: tuple[str, ...]
    quick: bool
    checks: list[FileCheck]
    extras: list[ExtraFile] = field(default_factory=list)
    known_problems: list[KnownProblem] = field(default_factory=list)

    @property
    def problems(self) -> list[FileCheck]:
        return [c for c in self.checks if c.status != "ok"]

    @property
    def complete_and_official(self) -> bool:
        """True when no manifest file is missing or wrong and there is no extra media file."""
        return not self.problems and not self.extras

    def by_status(self, status: str) -> list[FileCheck]:
        return [c for c in self.checks if c.status == status]

    def counts(self) -> dict[str, Counter]:
        """kind -> Counter of statuses, plus `extra`."""
        out = {k: Counter() for k in self.kinds}
        for c in self.checks:
            out[c.kind][c.status] += 1
        for x in self.extras:
            out[x.kind]["extra"] += 1
        return out

    def render(self, max_problems: int = 20) -> str:
        """Plain-text summary: a kind x status table, then the first problems with their fix."""
        mode = "sizes only (--quick): hashes not checked" if self.quick else "sizes and sha256"
        lines = [f"CREMA-D copy at {self.root}: {len(self.checks):,} manifest files checked, {mode}", ""]
        lines += self._table()
        lines += self._problem_lines(max_problems)
        lines += self._known_problem_lines()
        lines.append("")
        if self.complete_and_official:
            lines.append("Result: complete and official.")
        else:
            lines.append(
                f"Result: NOT complete and official ({_plural(len(self.problems), 'manifest file')} not ok, "
                f"{_plural(len(self.extras), 'extra file')})."
            )
            lines += [f"  fix: {fix}" for fix in self.fixes()]
        return "\n".join(lines)

    def fixes(self, limit: int = 5) -> list[str]:
        """The distinct repairs the problems call for, most common first."""
        counts = Counter(c.fix for c in self.problems if c.fix)
        counts.update(x.fix for x in self.extras)
        return [fix for fix, _ in counts.most_common(limit)]

    def _table(self) -> list[str]:
        columns = list(STATUSES) + ["extra"]
        counts = self.counts()
        total = Counter()
        for c in counts.values():
            total.update(c)
        rows = [[k] + [f"{counts[k][s]:,}" for s in columns] for k in self.kinds]
        rows.append(["total"] + [f"{total[s]:,}" for s in columns])
        return text_table(["kind"] + columns, rows)

    def _problem_lines(self, max_problems: int) -> list[str]:
        items = [(c.status, c.path, c.detail, c.fix) for c in self.problems]
        items += [("extra", x.path, x.detail, x.fix) for x in self.extras]
        if not items:
            return []
        shown = items[:max_problems]
        lines = ["", f"Problems (first {len(shown):,} of {len(items):,}):"]
        for status, path, detail, fix in shown:
            lines.append(f"  {status:<13} {path}: {detail}")
            if fix:
                lines.append(f"  {'':<13} fix: {fix}")
        if len(items) > len(shown):
            rest = Counter(s for s, *_ in items[max_problems:])
            lines.append("  ... and " + ", ".join(f"{n:,} more {s}" for s, n in sorted(rest.items())))
        return lines

    def _known_problem_lines(self) -> list[str]:
        if not self.known_problems:
            return []
        lines = ["", "Documented problem files present (official files, listed for information):"]
        for p in self.known_problems:
            lines.append(f"  {p.path} [{p.category}]: {p.description}")
        return lines


# --------------------------------------------------------------------------- verify


def verify(
    root: str | os.PathLike = DEFAULT_ROOT,
    *,
    what: str | Iterable[str] | None = None,
    quick: bool = False,
    jobs: int = 4,
    progress: bool | None = None,
    entries: Iterable[ManifestEntry] | None = None,
) -> VerifyReport:
    """Check a local CREMA-D copy against the manifest.

    `root` is the folder that holds VideoFlash/, AudioWAV/ and AudioMP3/. Each manifest file of
    the kinds in `what` (e.g. "video,wav"; default all) is classified as ok, missing, lfs_pointer
    (a Git LFS pointer stub instead of the media), size_mismatch or hash_mismatch; `quick` checks
    sizes only. Extra media files in those folders are listed, and so are the official files with
    documented open problems. Hashing runs in `jobs` threads behind one progress bar.
    `entries` replaces the shipped manifest (tests use a small one).

    Raises RawFolderError when `root` does not exist or has none of the three media folders.
    """
    root = Path(root)
    kinds = parse_kinds(what)
    _require_media_folders(root)
    selected = select_entries(entries, kinds)
    renames = known_renames()
    checks: list[FileCheck | None] = [None] * len(selected)
    to_hash: list[int] = []
    for i, entry in enumerate(selected):
        check = _check_without_hash(root, entry, kinds, renames)
        if check is None and quick:
            check = FileCheck(entry.path, entry.kind, "ok")
        if check is None:
            to_hash.append(i)
        checks[i] = check
    digests = hash_files([local_path(root, selected[i].path) for i in to_hash], jobs=jobs, progress=progress)
    for i, digest in zip(to_hash, digests):
        checks[i] = _check_hash(root, selected[i], digest, kinds)
    final = [c for c in checks if c is not None]
    return VerifyReport(
        root=root,
        kinds=kinds,
        quick=quick,
        checks=final,
        extras=_extra_files(root, selected, kinds, renames),
        known_problems=_known_problems_present(final),
    )


def _require_media_folders(root: Path) -> None:
    folders = ", ".join(f"{d}/" for d, _ in MEDIA_DIRS.values())
    if not root.is_dir():
        raise RawFolderError(
            f"{root}: no such folder. Point it at the folder that holds {folders}"
            f" or download a copy with: {fetch_command(root)}"
        )
    if not any((root / d).is_dir() for d, _ in MEDIA_DIRS.values()):
        raise RawFolderError(
            f"{root}: none of {folders} is in this folder. Point it at the folder that holds them"
            f" (the root of a CREMA-D clone), or download a copy with: {fetch_command(root)}"
        )


def _check_without_hash(
    root: Path, entry: ManifestEntry, kinds: Sequence[str], renames: dict[str, str]
) -> FileCheck | None:
    """The verdict reachable from stat() and a pointer sniff; None when only a hash can tell."""
    path = local_path(root, entry.path)
    fetch = fetch_command(root, kinds)
    if not path.is_file():
        old = next((o for o, new in renames.items() if new == entry.path and (root / o).is_file()), None)
        if old:
            return FileCheck(entry.path, entry.kind, "missing", f"present under its old name {old}",
                             f"mv {shlex.quote(str(root / old))} {shlex.quote(str(path))}")
        return FileCheck(entry.path, entry.kind, "missing", "not in the copy", fetch)
    size = path.stat().st_size
    if size <= LFS_POINTER_MAX_BYTES and (pointer := read_lfs_pointer(path)) is not None:
        return _pointer_check(entry, pointer, fetch)
    if size != entry.size_bytes:
        detail = f"{size:,} bytes, the manifest says {entry.size_bytes:,}{_fixed_issue_note(entry.path)}"
        return FileCheck(entry.path, entry.kind, "size_mismatch", detail, fetch)
    return None


def _pointer_check(entry: ManifestEntry, pointer: dict[str, str], fetch: str) -> FileCheck:
    oid = pointer.get("oid", "?")
    same = oid == f"sha256:{entry.sha256}"
    detail = f"Git LFS pointer stub (oid {oid}), not the media" + (
        "" if same else "; it points to another version than the manifest's"
    )
    return FileCheck(entry.path, entry.kind, "lfs_pointer", detail, f"git lfs pull (inside the git clone), or {fetch}")


def _check_hash(root: Path, entry: ManifestEntry, digest: str, kinds: Sequence[str]) -> FileCheck:
    if digest == entry.sha256:
        return FileCheck(entry.path, entry.kind, "ok")
    detail = f"sha256 {digest[:12]}..., the manifest says {entry.sha256[:12]}...{_fixed_issue_note(entry.path)}"
    return FileCheck(entry.path, entry.kind, "hash_mismatch", detail, fetch_command(root, kinds))


def _fixed_issue_note(relpath: str) -> str:
    """Why an old copy of this file may differ: a documented problem fixed upstream since."""
    fixed = [i for i in known_issues_by_file().get(relpath, ()) if i.status == "fixed"]
    return "".join(f" (likely an older copy: {i.description})" for i in fixed)


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def known_renames() -> dict[str, str]:
    """Old official path -> current path, from the known issues that describe a rename."""
    out = {}
    path_re = re.compile(r"\b(?:VideoFlash|AudioWAV|AudioMP3)/[\w.]+\.(?:flv|wav|mp3)\b")
    for issue in known_issues():
        if issue.category != "misnamed_file":
            continue
        for old in path_re.findall(issue.description):
            if old not in issue.files and len(issue.files) == 1:
                out[old] = issue.files[0]
    return out


def _extra_files(
    root: Path, selected: list[ManifestEntry], kinds: Sequence[str], renames: dict[str, str]
) -> list[ExtraFile]:
    """Media-looking files (and unfinished downloads) in the selected media folders that the manifest lacks."""
    expected = {e.path for e in selected}
    media_exts = {ext for _, ext in MEDIA_DIRS.values()}
    extras = []
    for kind in kinds:
        folder, _ = MEDIA_DIRS[kind]
        if not (root / folder).is_dir():
            continue
        for name in sorted(os.listdir(root / folder)):
            rel = f"{folder}/{name}"
            if rel in expected or not (root / rel).is_file():
                continue
            suffix = Path(name).suffix.lower()
            if suffix == PARTIAL_SUFFIX:
                detail = "unfinished download of crema-tools fetch"
                fix = f"{fetch_command(root, kinds)} (resumes it), or delete it"
            elif suffix in media_exts:
                detail, fix = _extra_explained(root, rel, renames)
            else:
                continue
            extras.append(ExtraFile(rel, kind, detail, fix))
    return extras


def _extra_explained(root: Path, rel: str, renames: dict[str, str]) -> tuple[str, str]:
    """(what this extra file is, how to fix it)."""
    new = renames.get(rel)
    if new is None:
        return "not in the manifest", f"move it out of {root}, or delete it"
    detail = f"old name of {new} (renamed upstream, same content)"
    if (root / new).is_file():
        return detail + ", which is also present", f"rm {shlex.quote(str(root / rel))}"
    return detail, f"mv {shlex.quote(str(root / rel))} {shlex.quote(str(root / new))}"


def _known_problems_present(checks: list[FileCheck]) -> list[KnownProblem]:
    """Official files in the copy (status ok) that the official README documents as broken (status open)."""
    by_file = known_issues_by_file()
    out = []
    for c in checks:
        if c.status != "ok":
            continue  # a stub or a damaged copy is not the documented official file
        for issue in by_file.get(c.path, ()):
            if issue.status == "open":
                out.append(KnownProblem(c.path, issue.clip_id, issue.category, issue.description))
    return out
