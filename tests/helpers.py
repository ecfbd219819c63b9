"""Helpers the test files share: folder contents, subprocesses, shards, the loopback Hub's environment.

Imported as `from helpers import ...` (conftest.py puts tests/ on sys.path). Stdlib only at import time,
so that hubserver.py stays so too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# --- folders ----------------------------------------------------------------------------------


def files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones included) by relative POSIX path, in path order, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- subprocesses -----------------------------------------------------------------------------


def run_python(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float | None = None,
               check: bool = False) -> subprocess.CompletedProcess:
    """Run this interpreter with `args` in a subprocess (`env`: its whole environment), capturing text output."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=check)


def run_cli(*args: str, module: str = "crema_tools.cli", cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args` (the crema-tools command line), capturing text output; `env` adds to os.environ."""
    return run_python("-m", module, *args, cwd=cwd, env={**os.environ, **env} if env else None, timeout=timeout)
