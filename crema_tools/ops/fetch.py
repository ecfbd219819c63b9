"""Download the official CREMA-D media over HTTPS, resumably, checked against the shipped manifest.

Each file goes to `<name>.part` first. An interrupted transfer resumes from the part with an HTTP
range request on the next attempt (or the next run); a complete part is renamed to its real name
only once its size and sha256 match the manifest, so a file under its real name is always right.
A re-run checks what is already there and downloads only what is missing or wrong.
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from .. import __version__
from ..corpus.metadata import ManifestEntry
from ..digest import hash_files, progress_bar, sha256_file
from ..errors import CremaToolsError
from ..media.lfs import LFS_POINTER_MAX_BYTES, read_lfs_pointer
from .verify import (
    DEFAULT_ROOT,
    PARTIAL_SUFFIX,
    local_path,
    parse_kinds,
    select_entries,
)

OFFICIAL_REPO = "CheyneyComputerScience/CREMA-D"
OFFICIAL_COMMIT = "1658cd342dff90010aa843eaeebd53610a08b1dc"
"""The commit the shipped manifest was taken from; pinning it keeps URLs and hashes in step."""

DEFAULT_BASE_URL = f"https://media.githubusercontent.com/media/{OFFICIAL_REPO}/{OFFICIAL_COMMIT}"
"""Git LFS media of the official repository (raw.githubusercontent.com would serve pointer stubs)."""

DEFAULT_JOBS = 8
DEFAULT_RETRIES = 2
DEFAULT_TIMEOUT_S = 60.0
RETRY_DELAY_S = 1.0  # times the attempt number, after network errors only
UNREACHABLE_AFTER = 8  # files failed before any succeeded: the server is taken to be unreachable
CHUNK = 256 * 1024
RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = f"crema-tools/{__version__} (Python urllib)"


class FetchError(CremaToolsError, OSError):
    """The destination folder cannot be used at all (per-file problems are reported, not raised)."""


@dataclass(frozen=True)
class FetchFailure:
    """One file that could not be brought to the manifest's size and sha256."""

    path: str
    url: str
    reason: str


@dataclass
class FetchResult:
    """What a fetch run did; `ok` is False when any file failed (the CLI then exits 1)."""

    root: Path
    downloaded: list[str] = field(default_factory=list)
    already_ok: list[str] = field(default_factory=list)
    failed: list[FetchFailure] = field(default_factory=list)
    bytes_downloaded: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self, max_failures: int = 20) -> str:
        """Counts, then the first failures with the URL and the reason."""
        lines = [
            f"{self.root}: downloaded {len(self.downloaded):,} files ({_human(self.bytes_downloaded)}), "
            f"{len(self.already_ok):,} already ok, {len(self.failed):,} failed."
        ]
        for f in self.failed[:max_failures]:
            lines.append(f"  FAILED {f.path}: {f.reason} [{f.url}]")
        if len(self.failed) > max_failures:
            lines.append(f"  ... and {len(self.failed) - max_failures:,} more failures")
        if self.failed:
            lines.append("Run the same command again to retry the failed files; finished files are kept.")
        return "\n".join(lines)


def entry_url(relpath: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """The download URL of one official file: base_url + '/' + its path in the repository."""
    return base_url.rstrip("/") + "/" + urllib.parse.quote(relpath, safe="/")


def fetch(
    root: str | os.PathLike = DEFAULT_ROOT,
    *,
    what: str | Iterable[str] | None = None,
    base_url: str = DEFAULT_BASE_URL,
    jobs: int = DEFAULT_JOBS,
    retries: int = DEFAULT_RETRIES,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool | None = None,
    entries: Iterable[ManifestEntry] | None = None,
) -> FetchResult:
    """Download the official CREMA-D media into `root` (VideoFlash/, AudioWAV/, AudioMP3/).

    `what` picks kinds ("video,wav,mp3"; default all). Files come from the official repository's
    Git LFS media URLs at the manifest's commit, or from `base_url` (a mirror with the same
    layout), in `jobs` parallel downloads behind one progress bar. Partial files (`.part`) are
    resumed with range requests. A file is renamed to its real name only when its size and sha256
    match the manifest; a mismatch is deleted and retried up to `retries` times, then reported.
    Files already present and correct are not downloaded again. `entries` replaces the shipped
    manifest (tests use a small one). Network errors are reported per file, not raised.
    """
    root = Path(root)
    selected = select_entries(entries, parse_kinds(what))
    _make_root(root)
    result = FetchResult(root)
    already_ok, todo = _split_done(root, selected, jobs, progress)
    result.already_ok = [e.path for e in already_ok]
    if todo:
        _download_all(root, todo, base_url, jobs, retries, timeout, progress, result)
    return result


def _make_root(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        message = f"cannot create the download folder {root}: {e.strerror or e}; pick another --to folder"
        raise FetchError(message) from e


def _split_done(
    root: Path, selected: list[ManifestEntry], jobs: int, progress: bool | None
) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """(already correct, still to download): sizes first, then sha256 of the right-sized files."""
    same_size = [e for e in selected if _size_or_none(local_path(root, e.path)) == e.size_bytes]
    digests = hash_files([local_path(root, e.path) for e in same_size], jobs=jobs, progress=progress, desc="check")
    done = {e.path for e, d in zip(same_size, digests) if d == e.sha256}
    for e in selected:
        if e.path in done:
            _partial(local_path(root, e.path)).unlink(missing_ok=True)  # a stale leftover, not needed
    return [e for e in selected if e.path in done], [e for e in selected if e.path not in done]


# --------------------------------------------------------------------------- the transfer


class _Resume(Exception):
    """Transient failure: keep the part file and resume it on the next attempt."""


class _Restart(Exception):
    """The part is wrong: delete it and start the file again from zero."""


class _GiveUp(Exception):
    """Retrying cannot help (404, 403, a local error): report the file now."""


@dataclass
class _Job:
    entry: ManifestEntry
    final: Path
    url: str
    on_bar: int = 0  # bytes of this file currently counted on the progress bar

    @property
    def part(self) -> Path:
        return _partial(self.final)


class _Transfer:
    """Shared state of one run: the bar (behind a lock), the byte count and the stop flag."""

    def __init__(self, bar, timeout: float):
        self.bar = bar
        self.timeout = timeout
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.stop_reason = "interrupted; run again to resume"
        self.received = 0

    def count(self, job: _Job, on_disk: int) -> None:
        """Make the bar count exactly `on_disk` bytes for this file (negative steps on restarts)."""
        with self.lock:
            self.bar.update(on_disk - job.on_bar)
        job.on_bar = on_disk

    def received_chunk(self, job: _Job, n: int) -> None:
        with self.lock:
            self.bar.update(n)
            self.received += n
        job.on_bar += n


def _download_all(root, todo, base_url, jobs, retries, timeout, progress, result: FetchResult) -> None:
    jobs_list = [_Job(e, local_path(root, e.path), entry_url(e.path, base_url)) for e in todo]
    with progress_bar(sum(e.size_bytes for e in todo), "download", progress) as bar:
        transfer = _Transfer(bar, timeout)
        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            futures = {pool.submit(_download_one, job, transfer, retries): job for job in jobs_list}
            outcomes = {}
            failed_in_a_row = 0
            for future in as_completed(futures):
                outcome = outcomes[futures[future].entry.path] = future.result()
                failed_in_a_row = failed_in_a_row + 1 if outcome else -len(jobs_list)
                if failed_in_a_row == UNREACHABLE_AFTER and not transfer.stop.is_set():
                    # nothing has come through: stop rather than retry thousands of files for hours
                    transfer.stop_reason = (f"not tried: the first {UNREACHABLE_AFTER} files all failed "
                                            f"({outcome.reason}); check the network or --base-url, then run again")
                    transfer.stop.set()
        except BaseException:  # Ctrl-C: stop the workers, keep their .part files for a resume
            transfer.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    result.bytes_downloaded = transfer.received
    for job in jobs_list:  # manifest order, whatever order the threads finished in
        failure = outcomes[job.entry.path]
        if failure is None:
            result.downloaded.append(job.entry.path)
        else:
            result.failed.append(failure)


def _download_one(job: _Job, transfer: _Transfer, retries: int) -> FetchFailure | None:
    """Bring one file to its real name, or say why not; never raises for network trouble."""
    reason = ""
    for attempt in range(retries + 1):
        if transfer.stop.is_set():
            return _failure(job, transfer.stop_reason)
        try:
            job.final.parent.mkdir(parents=True, exist_ok=True)
            _transfer_part(job, transfer)
            _commit(job)
            return None
        except _GiveUp as e:
            return _failure(job, str(e))
        except _Restart as e:
            job.part.unlink(missing_ok=True)
            transfer.count(job, 0)
            reason = str(e)
        except _Resume as e:
            reason = str(e)
            if attempt < retries:
                time.sleep(RETRY_DELAY_S * (attempt + 1))
        except OSError as e:  # the local side: permissions, disk full
            return _failure(job, f"cannot write {job.part}: {e.strerror or e}")
    tries = f"{retries + 1} attempt" + ("s" if retries else "")
    return _failure(job, f"{reason} ({tries})")


def _transfer_part(job: _Job, transfer: _Transfer) -> None:
    """Append the missing bytes to the part file; raises when it did not get all the server sent."""
    offset = _size_or_none(job.part) or 0
    if offset > job.entry.size_bytes:
        raise _Restart(f"partial file {job.part} is larger than the manifest size")
    transfer.count(job, offset)
    if offset == job.entry.size_bytes:
        return  # a complete part from an earlier run: only verify it
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with urllib.request.urlopen(urllib.request.Request(job.url, headers=headers), timeout=transfer.timeout) as resp:
            offset = _resume_offset(resp, offset)
            transfer.count(job, offset)
            _stream(resp, job, transfer, append=offset > 0)
    except urllib.error.HTTPError as e:
        _raise_http(e, job)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        if isinstance(e, OSError) and e.filename:  # a local file error, not the network
            raise
        raise _Resume(f"network error: {_network_reason(e)}") from None


def _resume_offset(resp, asked: int) -> int:
    """Where the body starts: `asked` for a 206 that resumes there, 0 for a full 200 answer."""
    if resp.status != 206:
        return 0  # the server ignored Range: the body is the whole file
    match = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != asked:
        raise _Restart(f"the server resumed at the wrong offset ({resp.headers.get('Content-Range')!r})")
    return asked


def _stream(resp, job: _Job, transfer: _Transfer, append: bool) -> None:
    expected = resp.headers.get("Content-Length")
    got = 0
    with open(job.part, "ab" if append else "wb") as out:
        while chunk := resp.read(CHUNK):
            if transfer.stop.is_set():
                raise _Resume("interrupted")
            try:
                out.write(chunk)
            except OSError as e:
                raise _GiveUp(f"cannot write {job.part}: {e.strerror or e}") from None
            got += len(chunk)
            transfer.received_chunk(job, len(chunk))
    if expected is not None and got < int(expected):
        have = _size_or_none(job.part) or 0
        raise _Resume(f"connection closed after {have:,} of {job.entry.size_bytes:,} bytes")


def _raise_http(e: urllib.error.HTTPError, job: _Job) -> NoReturn:
    e.close()
    if e.code == 416:  # the part does not fit the server's file: start over
        raise _Restart(f"HTTP 416 for a resume at byte {_size_or_none(job.part)}")
    message = f"HTTP {e.code} {e.reason}"
    if e.code in RETRYABLE_HTTP:
        raise _Resume(message) from None
    if e.code == 404:
        message += ": not on the server; check --base-url (it must serve the repository's file layout)"
    raise _GiveUp(message) from None


def _commit(job: _Job) -> None:
    """Rename the part to the real name only if size and sha256 are the manifest's."""
    size = _size_or_none(job.part) or 0
    entry = job.entry
    if size != entry.size_bytes:
        note = _pointer_note(job.part)
        raise _Restart(f"size mismatch: got {size:,} bytes, the manifest says {entry.size_bytes:,}{note}")
    digest = sha256_file(job.part)
    if digest != entry.sha256:
        raise _Restart(f"sha256 mismatch: got {digest[:12]}..., the manifest says {entry.sha256[:12]}...")
    try:
        os.replace(job.part, job.final)  # atomic: the real name only ever holds a verified file
    except OSError as e:
        raise _GiveUp(f"cannot rename {job.part} to {job.final.name}: {e.strerror or e}") from None


def _pointer_note(part: Path) -> str:
    if (_size_or_none(part) or 0) <= LFS_POINTER_MAX_BYTES and read_lfs_pointer(part) is not None:
        return " (the server sent a Git LFS pointer, not the media: use an LFS media URL as --base-url)"
    return ""


# --------------------------------------------------------------------------- small helpers


def _partial(final: Path) -> Path:
    return final.with_name(final.name + PARTIAL_SUFFIX)


def _size_or_none(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _failure(job: _Job, reason: str) -> FetchFailure:
    return FetchFailure(job.entry.path, redact_url(job.url), reason)


def _network_reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None) or e
    return str(reason) or type(e).__name__


def redact_url(url: str) -> str:
    """The URL without user:password or query string, so credentials never reach a report."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"
