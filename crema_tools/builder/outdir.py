"""The output folder is the user's: one build at a time, and nothing crema-tools did not write is touched.

What crema-tools writes into `--out`, and nothing else:

- `README.md`, the dataset card, holding the build's `crema_tools:` record (`card.card_record`);
- `<variant>/`, one folder per config, holding `report.json` and the shards it lists;
- `.<variant>.partial/`, an unfinished build of a config (see below), holding `build.json`;
- `.crema-tools.lock`, while a build runs.

A build refuses, with one line, to replace a README.md, a config folder or a partial folder
that does not look like the above (a foreign file in a config folder included), unless it is
given `force`. Its lock is an advisory lock (`flock`) on `.crema-tools.lock`, which names the
running build (pid, host, start time, command): the kernel drops it when that process dies,
even by SIGKILL, so a lock file left behind is taken over with a note, never a false refusal.
Its unfinished builds (`.<variant>.partial/`) are described in `crema_tools.builder.partial`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError
from ..format.report import REPORT_NAME, Report, ReportError
from .partial import BUILD_JSON, PARTIAL_SUFFIX, partial_dir, partial_summary

LOCK_NAME = ".crema-tools.lock"
CARD_NAME = "README.md"


# ---------------------------------------------------------------- the lock


def _command() -> str:
    argv = list(sys.argv)
    if argv and ("crema_tools" in argv[0] or Path(argv[0]).name == "crema-tools"):
        argv[0] = "crema-tools"
    return shlex.join(argv).replace("\n", " ")[:300]


def describe_holder(info: dict) -> str:
    """'pid 123 on host, started 2026-01-02 10:00:00, `crema-tools build ...`' from a lock's content."""
    parts = [f"pid {info.get('pid', '?')} on {info.get('host', '?')}"]
    if info.get("started"):
        parts.append(f"started {info['started']}")
    if info.get("command"):
        parts.append(f"`{info['command']}`")
    return ", ".join(parts)


def _read_info(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 65536)
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}


@dataclass
class OutLock:
    """The lock a build holds on its output folder; `release()` removes the lock file."""

    path: Path
    fd: int
    previous: dict  # what a dead build left in the lock file ({} if none)

    @classmethod
    def acquire(cls, out: Path) -> "OutLock":
        path = out / LOCK_NAME
        for _ in range(5):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise BuildError(f"--out {out}: cannot write there ({e.strerror or e})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                info = _read_info(fd)
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise BuildError(f"--out {out}: cannot lock {LOCK_NAME} ({e.strerror or e})") from None
                raise BuildError(f"--out {out}: another build is writing there ({describe_holder(info)}); "
                                 f"wait for it to finish, or use another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder released (and removed) it between our open and our lock
                os.close(fd)
                continue
            previous = _read_info(fd)
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": _command()}
            try:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, (json.dumps(info) + "\n").encode())
                os.fsync(fd)
            except OSError as e:
                os.close(fd)
                raise BuildError(f"--out {out}: cannot write there ({e.strerror or e})") from None
            return cls(path, fd, previous)
        raise BuildError(f"--out {out}: could not take {LOCK_NAME}: other builds keep starting there")

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def lock_state(out: Path) -> tuple[str, dict] | None:
    """('running', info) when a build holds `out`'s lock, ('stale', info) for a lock file a dead
    build left, None without a lock file."""
    path = out / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        info = _read_info(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return "running", info
        fcntl.flock(fd, fcntl.LOCK_UN)
        return "stale", info
    finally:
        os.close(fd)


# ---------------------------------------------------------------- what crema-tools wrote


def is_our_card(path: Path) -> bool:
    """A README.md with a YAML header and the build's `crema_tools:` record every card crema-tools writes
    has (in its text; in the header for cards of earlier versions)."""
    from .card import card_record

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return text.startswith("---\n") and card_record(text) is not None


def config_files(folder: Path) -> set[str] | None:
    """The files a config folder written by crema-tools holds (report.json and its shards), or
    None when its report.json is missing or was not written by crema-tools."""
    try:
        report = Report.load(folder / REPORT_NAME)
    except ReportError:
        return None
    return {REPORT_NAME, *report.shard_names} if report.written_by_crema_tools else None


def _foreign_in(folder: Path, ours: set[str] | None, rel: str) -> list[str]:
    if ours is None:
        found = sorted(p for p in folder.rglob("*") if not p.is_dir())
        return [f"{rel}/ (not written by crema-tools" + (f", holds {found[0].relative_to(folder)}" if found else "")
                + (f" and {len(found) - 1} more" if len(found) > 1 else "") + ")"]
    return [f"{rel}/{p.relative_to(folder)}" for p in sorted(folder.rglob("*"))
            if not p.is_dir() and str(p.relative_to(folder)) not in ours]


def foreign_files(out: Path, variants: list[str]) -> list[str]:
    """What a build of `variants` into `out` would replace or delete that crema-tools did not write."""
    found = []
    card = out / CARD_NAME
    if card.exists() and not (card.is_file() and is_our_card(card)):
        found.append(f"{CARD_NAME} (not a dataset card written by crema-tools)")
    for name in variants:
        folder = out / name
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            found.append(f"{name} (not a config folder)")
        elif folder.is_dir():
            found += _foreign_in(folder, config_files(folder), name)
        partial = partial_dir(out, name)
        if partial.is_symlink() or (partial.exists() and not (partial / BUILD_JSON).is_file()):
            found.append(f"{partial.name}/ (not an unfinished crema-tools build)")
    return found


def check_ownership(out: Path, variants: list[str], force: bool) -> list[str]:
    """Refuse to replace what crema-tools did not write, unless `force`; returns what force will replace."""
    found = foreign_files(out, variants)
    if found and not force:
        shown = "; ".join(found[:2]) + (f"; and {len(found) - 2} more" if len(found) > 2 else "")
        raise BuildError(f"--out {out}: holds files crema-tools did not write and this build would replace: {shown}; "
                         f"move them, use another --out, or pass --force to replace them")
    return found


# ---------------------------------------------------------------- unfinished builds


def describe_partial(out: Path) -> list[str]:
    """One line per unfinished build and for the lock of `out`: what `inspect` shows about work in progress."""
    lines = []
    state = lock_state(out)
    if state and state[0] == "running":
        lines.append(f"A build is writing here now ({describe_holder(state[1])}).")
    elif state:
        lines.append(f"{LOCK_NAME} was left by a build that is no longer running ({describe_holder(state[1])}); "
                     f"the next build takes it over.")
    for partial in sorted(out.glob(f".*{PARTIAL_SUFFIX}")):
        s = partial_summary(partial)
        if s is None:
            continue
        lines.append(f"Unfinished build of {s['variant']}: {s['done']} of {s['units']} work units done, "
                     f"{s['bytes'] / 1e6:,.1f} MB in {partial.name}/; the same build command finishes it, "
                     f"deleting the folder drops it.")
    return lines
