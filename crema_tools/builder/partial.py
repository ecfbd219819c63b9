"""The resume state on disk: an unfinished build of a config, kept so that the same command finishes it.

An unfinished build of a config lives in `.<variant>.partial/`:

    build.json        the options and versions its bytes depend on; another build discards it
    status/NNNNN.json one per finished work unit: each clip's status (ok, with its split and
                      shard, or skipped, with the reason), its shards' sha256 and sample counts
    config/           what becomes `<variant>/`: finished shards under their final names
                      (a shard being written is `.<name>.tmp-<pid>`), then report.json

A unit counts as done only once its shards and its status file are both there, made from the same
media (`media_digest`) and the same options (`build.json`'s fingerprint); `prepare` keeps those
and removes everything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable

from ..corpus import media_relpath
from ..format.shards import TMP_MARK
from ..representations import Representation
from . import note
from .atomic import atomic_write, remove

BUILD_JSON = "build.json"
STATUS_DIR = "status"
CONFIG_DIR = "config"
PARTIAL_SUFFIX = ".partial"


def partial_dir(out: Path, variant: str) -> Path:
    return out / f".{variant}{PARTIAL_SUFFIX}"


def partial_summary(partial: Path) -> dict | None:
    """Units finished and in all, and the bytes kept, of an unfinished build; None if it is not one."""
    try:
        meta = json.loads((partial / BUILD_JSON).read_text())
    except (OSError, ValueError):
        return None
    done = len(list((partial / STATUS_DIR).glob("*.json")))
    size = sum(p.stat().st_size for p in partial.rglob("*") if p.is_file())
    return {"variant": meta.get("variant"), "units": meta.get("units"), "done": done, "bytes": size,
            "options": meta.get("fingerprint", {})}


def status_path(plan, r: Representation, unit: int) -> Path:
    return partial_dir(plan.out, r.name) / STATUS_DIR / f"{unit:05d}.json"


def shard_name(split: str, unit: int) -> str:
    return f"{split}-{unit:05d}.tar"


def media_digest(raw: Path, clip_ids: Iterable[str]) -> str:
    """A digest of the names, sizes and modification times of the media a unit reads: a unit
    whose files changed since it was built (a `git lfs pull`, a re-download) is built again."""
    h = hashlib.sha256()
    for cid in clip_ids:
        for kind in ("video_flv", "audio_wav"):
            rel = media_relpath(cid, kind)
            try:
                st = (raw / rel).stat()
                h.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{rel}\t-\n".encode())
    return h.hexdigest()


def unit_is_done(plan, r: Representation, unit: int, inputs: str) -> bool:
    try:
        status = json.loads(status_path(plan, r, unit).read_text())
    except (OSError, ValueError):
        return False
    config = partial_dir(plan.out, r.name) / CONFIG_DIR
    if status.get("inputs") != inputs or status.get("clips") != plan.units[unit]:
        return False
    for shard in status.get("shards", []):
        try:
            if (config / shard["name"]).stat().st_size != shard["bytes"]:
                return False
        except (OSError, KeyError, TypeError):
            return False
    return True


def differences(old: dict, new: dict) -> str:
    keys = [k for k in dict.fromkeys([*new, *old]) if old.get(k) != new.get(k)]
    shown = []
    for k in keys[:3]:
        a, b = old.get(k), new.get(k)
        shown.append(f"{k} {a} instead of {b}" if not isinstance(a, (dict, list)) and len(str(a)) < 40 else f"{k} differ")
    return ", ".join(shown) or "unknown options"


def prepare(plan) -> list[int]:
    """Set up each variant's partial folder, resuming a compatible unfinished build; returns the
    units some variant still needs, in order. Runs once, in process 0, under the lock."""
    units = plan.units
    inputs = [media_digest(plan.raw, u) for u in units]
    todo: set[int] = set()
    for leftover in plan.out.glob(".card.tmp-*"):  # a card render cut short
        shutil.rmtree(leftover, ignore_errors=True)
    for r in plan.representations:
        partial = partial_dir(plan.out, r.name)
        fingerprint = plan.fingerprint(r)
        for leftover in plan.out.glob(f".{r.name}.partial.new-*"):  # a partial folder whose creation was cut short
            shutil.rmtree(leftover, ignore_errors=True)
        if partial.exists() or partial.is_symlink():
            try:
                meta = json.loads((partial / BUILD_JSON).read_text())
            except (OSError, ValueError):
                meta = None
            if meta is None or not (partial / CONFIG_DIR).is_dir():
                remove(partial)  # not resumable (or not ours, and --force was given)
            elif meta.get("fingerprint") != fingerprint:
                note(f"discarding the unfinished build of {r.name} in {partial}: it was made with other options "
                     f"({differences(meta.get('fingerprint', {}), fingerprint)})")
                remove(partial)
        if not partial.exists():
            new = plan.out / f".{r.name}.partial.new-{os.getpid()}"
            (new / CONFIG_DIR).mkdir(parents=True)
            (new / STATUS_DIR).mkdir()
            atomic_write(new / BUILD_JSON, (json.dumps({"variant": r.name, "units": len(units), "fingerprint": fingerprint},
                                                       indent=2, sort_keys=True) + "\n").encode())
            os.replace(new, partial)
            todo.update(range(len(units)))
            continue
        config, status_dir = partial / CONFIG_DIR, partial / STATUS_DIR
        status_dir.mkdir(exist_ok=True)
        shutil.rmtree(partial / "replaced", ignore_errors=True)
        for p in [*config.iterdir(), *status_dir.iterdir()]:
            if TMP_MARK in p.name or p.name == "report.json":  # a dead writer's temporary file, a cut-short finalise
                remove(p)
        done, changed = set(), []
        for u in range(len(units)):
            if unit_is_done(plan, r, u, inputs[u]):
                done.add(u)
            elif status_path(plan, r, u).exists():
                changed.append(u)
                status_path(plan, r, u).unlink()
        listed = {shard["name"] for u in done for shard in json.loads(status_path(plan, r, u).read_text())["shards"]}
        for p in config.iterdir():
            if p.name not in listed:  # the shard of a unit cut short before its status was written
                remove(p)
        if changed:
            note(f"{r.name}: {len(changed)} finished work unit(s) read media that changed since, or lost a shard; "
                 f"building them again")
        if done:
            note(f"resuming {r.name}: {len(done)} of {len(units)} work units already built in {partial}")
        todo.update(u for u in range(len(units)) if u not in done)
    return sorted(todo)




def units_done(plan) -> dict[str, int]:
    return {r.name: len(list((partial_dir(plan.out, r.name) / STATUS_DIR).glob("*.json"))) for r in plan.representations}
