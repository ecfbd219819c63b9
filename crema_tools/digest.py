"""sha256 of files and streams, with progress: the one hashing loop the raw corpus's checks
(fetch, verify) and the built dataset's (report.json, loading, push) share."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

CHUNK = 1 << 20


def sha256_stream(f: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of what is left to read in `f`, in 1 MiB chunks (hashlib releases the GIL, so threads scale)."""
    digest = hashlib.sha256()
    while chunk := f.read(CHUNK):
        digest.update(chunk)
        if on_bytes:
            on_bytes(len(chunk))
    return digest.hexdigest()


def sha256_file(path: Path | str, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file."""
    with open(path, "rb") as f:
        return sha256_stream(f, on_bytes)


def progress_bar(total: int, desc: str, progress: bool | None):
    """One byte-counting bar; progress None shows it only on a terminal."""
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=disable, leave=True)


def hash_files(paths: Sequence[Path], *, jobs: int = 4, progress: bool | None = None, desc: str = "sha256") -> list[str]:
    """sha256 of each path (same order), in `jobs` threads, with one bar over all their bytes."""
    if not paths:
        return []
    total = sum(p.stat().st_size for p in paths)
    lock = threading.Lock()
    with progress_bar(total, desc, progress) as bar:

        def advance(n: int) -> None:
            with lock:
                bar.update(n)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return list(pool.map(lambda p: sha256_file(p, advance), paths))
