"""Helpers the test files share: folder contents, subprocesses, shards, the loopback Hub's environment.

Imported as `from helpers import ...` (conftest.py puts tests/ on sys.path). Stdlib only at import time,
so that hubserver.py stays so too.
"""

from __future__ import annotations

from pathlib import Path

# --- folders ----------------------------------------------------------------------------------


def files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones included) by relative POSIX path, in path order, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
