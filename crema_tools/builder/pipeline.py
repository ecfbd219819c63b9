"""The build: plan, run, finalise; every requested variant written as WebDataset shards in one pass.

`plan_build` checks the arguments, finds the clips and fixes their order (a seeded shuffle) and
splits. The ordered clips are cut into work units of `unit_clips` clips (`UNIT_CLIPS` by
default): unit u holds clips [u * unit_clips, (u + 1) * unit_clips) of that order and writes,
for each variant, one shard per split, `<split>-<u:05d>.tar` (a split with no sample in the
unit has no shard from it, so the numbers of a split's shards may skip). `run_build` decodes
each clip of a unit once (in worker processes), sends the middle frames through MTCNN in
batches of `FACE_BATCH` taken in order within the unit, renders every variant, then commits the
unit: its shards are renamed from temporary names to final ones and a status file records
every clip (ok, with its split and shard, or skipped, with the reason) and each shard's sha256.
`finalise_build` merges the units' status files into each config's report.json, moves the
config into place and renders the card.

Because a unit's bytes depend only on the plan and the unit, never on which process made it
or when:

- a build killed at any point (SIGKILL included) and run again with the same command redoes
  only the units without a status file, and ends byte-identical to an uninterrupted build;
  finished shards are never rewritten; the previous config stays in place until the new one
  is complete (see `crema_tools.builder.outdir` for the folder layout);
- under `accelerate launch -m crema_tools build ...` each process takes every N-th unfinished
  unit, runs MTCNN on its own GPU, writes its own shards into the shared `--out`, and process 0
  merges the reports and writes the card: the files equal a one-process build's.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache, partial
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .. import __version__
from ..corpus import MEDIA_DIRS, PROTOCOLS, Clip, ClipIdError, assign_splits, media_relpath, official_clip_ids
from ..errors import CremaToolsError
from ..format.report import REPORT_NAME, Report, ReportError
from ..format.sample import SampleMetadata
from ..format.shards import TMP_MARK, ShardFile
from ..media.faces import default_device
from ..representations import BuildOptions, Features, Representation, Step, get_representations
from ..representations.base import NonFiniteArray
from ..representations.steps import extract, find_faces, run_steps, union
from ..synthetic import is_synthetic
from .card import write_card
from .outdir import (
    BUILD_JSON,
    CARD_NAME,
    CONFIG_DIR,
    STATUS_DIR,
    BuildError,
    OutLock,
    atomic_write,
    check_ownership,
    config_files,
    describe_holder,
    fsync_dir,
    partial_dir,
)

__all__ = ["BuildError", "BuildInterrupted", "BuildPlan", "FACE_BATCH", "UNIT_CLIPS", "build", "check_options",
           "finalise_build", "plan_build", "run_build"]

FACE_BATCH = 16
"""Middle frames per MTCNN call, taken in order within a work unit. Fixed, so boxes never depend
on the number of workers or processes."""
FACE_TRACK_BATCHED_ON = ("cuda",)
"""Device kinds on which --face-crop's keyframes go to MTCNN between two passes over the video,
16 clips (80 frames) per call in the main process. On a CPU each worker runs MTCNN on its own
clip's five keyframes in one pass instead: MTCNN costs about the same per frame in any batch
there, and the second pass decodes the video again, so the batched build measured 1.10x
(bench/results/build-cpu.md). The boxes are the same either way (tested)."""
UNIT_CLIPS = 256
"""Clips per work unit: the step a killed build resumes from and the share parallel processes
take; each unit writes one shard per split and variant (about 180 train samples in the paper's
splits, 20 to 30 MB)."""


class SaidByProcessZero(BuildError):
    """Process 0 of a parallel build refused to start, and said why: the others stay quiet."""


class BuildInterrupted(KeyboardInterrupt):
    """A build stopped by a signal (SIGINT, SIGTERM, SIGHUP); str() says what was kept for a resume."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "interrupted"


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- checks and plan


def discover_clips(raw: Path) -> tuple[list[str], list[dict]]:
    """Clip ids with at least one media file under `raw`, and the files whose names are not clip ids."""
    found: set[str] = set()
    strays: list[dict] = []
    for kind, (folder, ext) in MEDIA_DIRS.items():
        if kind == "audio_mp3" or not (raw / folder).is_dir():
            continue
        try:
            paths = list((raw / folder).iterdir())
        except OSError as e:
            raise BuildError(f"--raw {raw}: cannot read {folder}/ ({e.strerror or e}); "
                             f"check its permissions, or point --raw at a readable copy") from None
        for path in paths:
            if path.suffix != ext:
                continue
            try:
                Clip.parse(path.stem)
            except ClipIdError as e:
                strays.append({"clip_id": path.stem, "reason": f"{folder}/{path.name}: {e}"})
                continue
            found.add(path.stem)
    return sorted(found), strays


def check_same_provenance(out: Path, chosen: list[Representation], protocol: str, seed: int, source: str,
                          fold: int | None = None) -> None:
    """One dataset card describes one protocol, seed, fold and source: refuse to mix configs in a folder."""
    rebuilt = {v.name for v in chosen}
    for path in sorted(out.glob(f"*/{REPORT_NAME}")):
        if path.parent.name in rebuilt:
            continue
        try:
            other = Report.load(path)
        except ReportError:
            continue
        if not other.written_by_crema_tools:
            continue  # not a config crema-tools wrote
        if other.provenance != {"protocol": protocol, "seed": seed, "fold": fold, "source": source}:
            theirs = f"protocol {other.get('protocol')}" + (f" fold {other['fold']}" if other.get("fold") is not None else "")
            ours = f"protocol {protocol}" + (f" fold {fold}" if fold is not None else "")
            raise BuildError(
                f"--out {out}: already holds {path.parent.name} built with {theirs}, "
                f"seed {other.get('seed')} from {other.get('source')} media; use another --out for "
                f"{ours}, seed {seed} from {source} media")


def check_options(variants: Sequence[str], protocol: str, seed: int = 0, workers: int = 0,
                  fold: int | None = None, unit_clips: int = UNIT_CLIPS) -> list[Representation]:
    """The checks that need no files: run first, so a typo costs nothing."""
    chosen = get_representations(list(variants))
    if protocol not in PROTOCOLS:
        raise BuildError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if seed < 0:
        raise BuildError(f"--seed {seed}: seeds are non-negative integers")
    for family in dict.fromkeys(r.split_family for r in chosen):
        assign_splits(protocol, seed, family, fold=fold)  # a missing or stray --fold is a SplitError
    cores = os.cpu_count() or 1
    if not 0 <= workers <= cores:
        raise BuildError(f"--workers {workers}: this machine has {cores} cores; use 0 to {cores}")
    if unit_clips < 1:
        raise BuildError(f"--unit-size {unit_clips}: a work unit holds at least 1 clip")
    return chosen


def check_folders(raw: Path, out: Path) -> None:
    """`raw` looks like CREMA-D and `out` exists (whether it can be written to, the lock finds out)."""
    if not raw.is_dir():
        raise BuildError(f"--raw {raw}: no such folder; point it at the folder holding VideoFlash/ and AudioWAV/")
    if not any((raw / d).is_dir() for d, _ in MEDIA_DIRS.values()):
        raise BuildError(f"--raw {raw}: holds neither VideoFlash/ nor AudioWAV/; point it at the CREMA-D folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"--out {out}: cannot write there ({e.strerror or e})") from None


@lru_cache(maxsize=1)
def build_versions() -> dict[str, str]:
    """The versions the shards' bytes depend on (decoders, encoders, resampling, MTCNN, PNG)."""
    import platform
    import re
    import zlib
    from importlib.metadata import PackageNotFoundError, version

    import av
    import PIL
    import torch
    import torchaudio

    from ..media import video3d

    blob = video3d.encode_frames([np.zeros((video3d.SIZE * 3 // 2, video3d.SIZE), np.uint8)])
    x264 = re.search(rb"x264 - core (\d+)( r\d+)?", blob)
    try:
        facenet = version("facenet-pytorch")
    except PackageNotFoundError:  # pragma: no cover - a source checkout of it
        facenet = "unknown"
    return {
        "crema-tools": __version__, "python": platform.python_version(), "av": av.__version__,
        "ffmpeg": str(getattr(av, "ffmpeg_version_info", "unknown")),
        "libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
        "libavformat": ".".join(map(str, av.library_versions.get("libavformat", ()))),
        "x264": ("core " + (x264.group(1) + (x264.group(2) or b"")).decode()) if x264 else "unknown",
        "torch": torch.__version__, "torchaudio": torchaudio.__version__, "facenet-pytorch": facenet,
        "numpy": np.__version__, "pillow": PIL.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }


@dataclass
class BuildPlan:
    """What a build will do, fixed before any clip is decoded."""

    raw: Path
    out: Path
    representations: list[Representation]
    protocol: str
    seed: int
    source: str  # "crema-d" or "synthetic"
    clip_ids: list[str]  # in processing order: seeded, so shards come out shuffled
    clips_found: int
    strays: list[dict]  # files that are not official clips, reported in every config
    splits: dict[str, dict[str, str]]  # family -> clip id -> split
    steps: tuple[Step, ...]
    fold: int | None = None
    face_crop: bool = False
    workers: int = 0
    device: str | None = None
    unit_clips: int = UNIT_CLIPS
    force: bool = False

    @property
    def build_options(self) -> BuildOptions:
        return BuildOptions(face_crop=self.face_crop, batch_faces=self.face_crop and self.face_kind in FACE_TRACK_BATCHED_ON)

    @property
    def face_kind(self) -> str:
        """The kind of device (cpu, cuda) MTCNN would run on."""
        return (self.device or default_device()).split(":")[0]

    @property
    def need_faces(self) -> bool:
        return any(self.finds_faces(r) for r in self.representations)

    def finds_faces(self, r: Representation) -> bool:
        """Whether MTCNN decides `r`'s bytes (the 2D face crop, the 3D --face-crop track)."""
        return r.finds_faces(self.build_options)

    @property
    def units(self) -> list[list[str]]:
        n = self.unit_clips
        return [self.clip_ids[i:i + n] for i in range(0, len(self.clip_ids), n)]

    @property
    def face_device(self) -> str | None:
        """The kind of device MTCNN runs on (cpu or cuda): its boxes, so the crops, depend on it."""
        if not self.need_faces:
            return None
        return self.face_kind

    def fingerprint(self, r: Representation) -> dict:
        """Everything a variant's bytes depend on besides the media: an unfinished build made
        with a different fingerprint is discarded, never resumed."""
        return {
            "variant": r.name, "protocol": self.protocol, "seed": self.seed, "fold": self.fold,
            "source": self.source, "face_crop": self.face_crop, "unit_clips": self.unit_clips,
            "face_batch": FACE_BATCH, "face_device": self.face_device if self.finds_faces(r) else None,
            "steps": list(r.needs), "params": json.loads(json.dumps(r.params)),
            "clips": len(self.clip_ids),
            "clips_sha256": hashlib.sha256("\n".join(self.clip_ids).encode()).hexdigest(),
            "versions": build_versions(),
        }


def plan_build(raw: str | Path, out: str | Path, variants: Sequence[str], protocol: str = "paper", seed: int = 0,
               workers: int = 0, device: str | None = None, clip_ids: Sequence[str] | None = None,
               face_crop: bool = False, fold: int | None = None, *, unit_clips: int = UNIT_CLIPS,
               force: bool = False, check_out: bool = True) -> BuildPlan:
    """Check everything, find the clips, fix their order and splits; nothing is written but `out`.

    `check_out` (done once, under the build's lock) refuses to replace what crema-tools did not
    write (unless `force`) and to mix protocols in one folder.
    """
    raw, out = Path(raw), Path(out)
    chosen = check_options(variants, protocol, seed, workers, fold, unit_clips)
    check_folders(raw, out)
    source = "synthetic" if is_synthetic(raw) else "crema-d"
    if check_out:
        replaced = check_ownership(out, [r.name for r in chosen], force)
        if replaced:
            note(f"--force: replacing what crema-tools did not write in {out}: " + "; ".join(replaced[:5])
                 + (f"; and {len(replaced) - 5} more" if len(replaced) > 5 else ""))
        check_same_provenance(out, chosen, protocol, seed, source, fold)
    found, strays = discover_clips(raw)
    official = set(official_clip_ids())
    strays += [{"clip_id": c, "reason": "not an official CREMA-D clip id"} for c in found if c not in official]
    ids = [c for c in found if c in official]
    if clip_ids is not None:
        wanted = set(clip_ids)
        ids = [c for c in ids if c in wanted]
    if not ids:
        raise BuildError(f"--raw {raw}: no CREMA-D clip (VideoFlash/<clip id>.flv or AudioWAV/<clip id>.wav) to build from")
    random.Random(seed).shuffle(ids)
    plan = BuildPlan(
        raw, out, chosen, protocol, seed, source, ids, len(found), strays,
        splits={fam: assign_splits(protocol, seed, fam, fold=fold) for fam in dict.fromkeys(r.split_family for r in chosen)},
        steps=(),
        fold=fold, face_crop=face_crop, workers=workers, device=device, unit_clips=unit_clips, force=force,
    )
    plan.steps = union(r.steps(plan.build_options) for r in chosen)
    return plan


# ---------------------------------------------------------------- unfinished builds on disk


def _status_path(plan: BuildPlan, r: Representation, unit: int) -> Path:
    return partial_dir(plan.out, r.name) / STATUS_DIR / f"{unit:05d}.json"


def shard_name(split: str, unit: int) -> str:
    return f"{split}-{unit:05d}.tar"


def unit_inputs(raw: Path, clip_ids: Iterable[str]) -> str:
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


def _unit_is_done(plan: BuildPlan, r: Representation, unit: int, inputs: str) -> bool:
    try:
        status = json.loads(_status_path(plan, r, unit).read_text())
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


def _differences(old: dict, new: dict) -> str:
    keys = [k for k in dict.fromkeys([*new, *old]) if old.get(k) != new.get(k)]
    shown = []
    for k in keys[:3]:
        a, b = old.get(k), new.get(k)
        shown.append(f"{k} {a} instead of {b}" if not isinstance(a, (dict, list)) and len(str(a)) < 40 else f"{k} differ")
    return ", ".join(shown) or "unknown options"


def prepare(plan: BuildPlan) -> list[int]:
    """Set up each variant's partial folder, resuming a compatible unfinished build; returns the
    units some variant still needs, in order. Runs once, in process 0, under the lock."""
    units = plan.units
    inputs = [unit_inputs(plan.raw, u) for u in units]
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
                _remove(partial)  # not resumable (or not ours, and --force was given)
            elif meta.get("fingerprint") != fingerprint:
                note(f"discarding the unfinished build of {r.name} in {partial}: it was made with other options "
                     f"({_differences(meta.get('fingerprint', {}), fingerprint)})")
                _remove(partial)
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
                _remove(p)
        done, changed = set(), []
        for u in range(len(units)):
            if _unit_is_done(plan, r, u, inputs[u]):
                done.add(u)
            elif _status_path(plan, r, u).exists():
                changed.append(u)
                _status_path(plan, r, u).unlink()
        listed = {shard["name"] for u in done for shard in json.loads(_status_path(plan, r, u).read_text())["shards"]}
        for p in config.iterdir():
            if p.name not in listed:  # the shard of a unit cut short before its status was written
                _remove(p)
        if changed:
            note(f"{r.name}: {len(changed)} finished work unit(s) read media that changed since, or lost a shard; "
                 f"building them again")
        if done:
            note(f"resuming {r.name}: {len(done)} of {len(units)} work units already built in {partial}")
        todo.update(u for u in range(len(units)) if u not in done)
    return sorted(todo)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def units_done(plan: BuildPlan) -> dict[str, int]:
    return {r.name: len(list((partial_dir(plan.out, r.name) / STATUS_DIR).glob("*.json"))) for r in plan.representations}


# ---------------------------------------------------------------- decoding workers


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _worker_init(parent: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the main process decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    _die_with_parent(parent)
    torch.set_num_threads(1)


def _stop_pool(pool: ProcessPoolExecutor, clean: bool) -> None:
    if clean:
        pool.shutdown(wait=True)
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join(timeout=10)


class Extraction:
    """The clips' steps, run by worker processes (or here, with workers=0), results in clip order.

    Steps run in two passes: `first_pass` yields each clip's features as it goes; the steps
    that need the faces the build finds in between (`Step.after_faces`: the --face-crop video) run
    in `finish`, on the same workers. A bounded window of clips is in flight, so decoded frames
    never pile up in memory when the workers outrun face detection.
    """

    def __init__(self, raw: Path, ids: list[str], steps: tuple[Step, ...], workers: int):
        self.raw, self.workers = raw, workers
        self.first = tuple(s for s in steps if not s.after_faces)
        self.second = tuple(s for s in steps if s.after_faces)
        self.pool: ProcessPoolExecutor | None = None
        if workers > 0:
            import multiprocessing as mp

            self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=_worker_init,
                                            initargs=(os.getpid(),))
        self.first_pass: Iterator[Features] = self._in_order(partial(extract, self.raw, steps=self.first), ids)

    def finish(self, clips: list[Features]) -> list[Features]:
        """The second pass over `clips` (their first pass and faces done)."""
        if not self.second:
            return clips
        return list(self._in_order(partial(run_steps, self.raw, steps=self.second), clips))

    def _in_order(self, fn, items: Iterable) -> Iterator:
        if self.pool is None:
            yield from map(fn, items)
            return
        window = 4 * self.workers
        try:
            pending: deque = deque()
            for item in items:
                pending.append(self.pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise BuildError("a decoding worker process died (killed by the system, often for lack of memory); "
                             "run the same command again, with fewer --workers") from None

    def __enter__(self) -> "Extraction":
        return self

    def __exit__(self, kind, *_) -> None:
        self.first_pass.close()
        if self.pool is not None:
            _stop_pool(self.pool, clean=kind is None)


def _batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


@contextmanager
def _main_process_threads(workers: int, processes_here: int = 1):
    """The decoding workers have their cores; OpenMP threads competing with them for the rest slow
    MTCNN down many times over, so the main process keeps to what is left while they run. Build
    processes on one machine share its cores."""
    import torch

    threads = torch.get_num_threads()
    if workers > 0 or processes_here > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, processes_here) - workers))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- one unit of one variant


class UnitWriter:
    """One variant's share of one work unit: its shards (one per split) and its status file."""

    def __init__(self, plan: BuildPlan, r: Representation, unit: int, inputs: str):
        self.plan, self.r, self.unit, self.inputs = plan, r, unit, inputs
        self.config = partial_dir(plan.out, r.name) / CONFIG_DIR
        self.shards: dict[str, ShardFile] = {}
        self.samples: list[dict] = []
        self.flagged: list[dict] = []
        self.no_face: list[str] = []
        self.current: Path | None = None  # the file being written, named by a disk-full error

    def skip(self, clip_id: str, reason: str) -> None:
        self.samples.append({"clip_id": clip_id, "status": "skipped", "reason": reason})

    def handle(self, f: Features, split: str | None) -> None:
        v = self.r
        if split is None:
            return self.skip(f.clip_id, f"not in this protocol's {v.split_family.upper()} split")
        failed = [f.errors[s] for s in v.needs if s in f.errors]
        if failed:
            return self.skip(f.clip_id, "; ".join(dict.fromkeys(failed)))
        bad = v.unusable(f)
        if bad:
            return self.skip(f.clip_id, bad)
        try:
            members = v.render(f)
            meta = SampleMetadata.of(f, split, v, self.plan.source)
            members["json"] = meta.to_json()
        except NonFiniteArray as e:  # the last guard: nothing stored holds NaN or inf
            return self.skip(f.clip_id, str(e))
        except Exception as e:  # one odd clip must not end the build
            return self.skip(f.clip_id, f"could not render: {e.__class__.__name__}: {e}")
        members["cls"] = str(meta.label).encode()
        if split not in self.shards:
            self.current = self.config / shard_name(split, self.unit)
            self.shards[split] = ShardFile(self.current)
        self.current = self.shards[split].path
        self.shards[split].write(f.clip_id, members)
        self.samples.append({"clip_id": f.clip_id, "status": "ok", "split": split, "shard": shard_name(split, self.unit),
                             "emotion": meta.emotion})
        self.flagged += v.flags(f)
        if v.face_not_found(f):
            self.no_face.append(f.clip_id)

    def commit(self) -> None:
        """Shards to their final names, then the status file: the unit counts as done only once both are there."""
        records = []
        for split in sorted(self.shards):
            self.current = self.shards[split].tmp
            records.append({"split": split, **self.shards[split].commit(), "clip_ids": self.shards[split].keys})
        fsync_dir(self.config)
        status = {"unit": self.unit, "inputs": self.inputs, "clips": self.plan.units[self.unit], "samples": self.samples,
                  "shards": records, "flagged": self.flagged, "face_not_found": self.no_face}
        path = _status_path(self.plan, self.r, self.unit)
        self.current = path
        atomic_write(path, (json.dumps(status, sort_keys=True) + "\n").encode())
        fsync_dir(path.parent)

    def abort(self) -> None:
        for shard in self.shards.values():
            shard.abort()


def _build_unit(plan: BuildPlan, unit: int, clips: Extraction, todo: list[Representation]) -> None:
    writers = [UnitWriter(plan, r, unit, unit_inputs(plan.raw, plan.units[unit])) for r in todo]
    try:
        for batch in _batched(islice(clips.first_pass, len(plan.units[unit])), FACE_BATCH):
            find_faces(batch, plan.device, middle_frames=any(r.uses_face for r in todo))
            for f in clips.finish(batch):
                for w in writers:
                    w.handle(f, plan.splits[w.r.split_family].get(f.clip_id))
        for w in writers:
            w.commit()
    except OSError as e:
        for w in writers:
            w.abort()
        if not e.filename:
            e.filename = str(next((w.current for w in writers if w.current), plan.out))
        raise
    except BaseException:
        for w in writers:
            w.abort()
        raise


def run_build(plan: BuildPlan, progress: bool = True, units: Sequence[int] | None = None,
              processes_here: int = 1, label: str = "") -> None:
    """Build the given work units (default: all) of every variant that has no status file for them."""
    from tqdm.auto import tqdm

    units = list(range(len(plan.units)) if units is None else units)
    todo = {u: [r for r in plan.representations if not _status_path(plan, r, u).exists()] for u in units}
    units = [u for u in units if todo[u]]
    ids = [cid for u in units for cid in plan.units[u]]
    with _main_process_threads(plan.workers, processes_here), tqdm(
            total=len(ids), desc=label or f"building {', '.join(r.name for r in plan.representations)}",
            unit="clip", disable=not progress, file=sys.stderr) as bar, \
            Extraction(plan.raw, ids, plan.steps, plan.workers) as clips:
        for u in units:
            _build_unit(plan, u, clips, todo[u])
            bar.update(len(plan.units[u]))


# ---------------------------------------------------------------- reports and the card


def _load_statuses(plan: BuildPlan, r: Representation) -> list[dict]:
    statuses = []
    for u in range(len(plan.units)):
        try:
            statuses.append(json.loads(_status_path(plan, r, u).read_text()))
        except (OSError, ValueError):
            raise BuildError(f"{r.name}: work unit {u} was not built (no {_status_path(plan, r, u)}); "
                             f"run the same command again to build what is missing") from None
    return statuses


def _report(plan: BuildPlan, r: Representation, statuses: list[dict]) -> Report:
    params = r.report_params(plan.build_options)
    shards: dict[str, list[dict]] = {}
    per_emotion: dict[str, Counter] = {}
    skipped = list(plan.strays)
    for status in statuses:
        for shard in status["shards"]:
            shards.setdefault(shard["split"], []).append(shard)
        for s in status["samples"]:
            if s["status"] == "ok":
                per_emotion.setdefault(s["split"], Counter())[s["emotion"]] += 1
            else:
                skipped.append({"clip_id": s["clip_id"], "reason": s["reason"]})
    splits = {
        s: {"samples": sum(sh["samples"] for sh in shards[s]),
            "shards": [sh["name"] for sh in shards[s]],
            "shard_info": [{k: sh[k] for k in ("name", "samples", "sha256", "bytes", "clip_ids")} for sh in shards[s]],
            "per_emotion": dict(sorted(per_emotion[s].items()))}
        for s in PROTOCOLS[plan.protocol].splits if s in shards
    }
    return Report({
        "variant": r.name,
        "description": r.description,
        "shape": r.shape,
        "protocol": plan.protocol,
        "protocol_description": PROTOCOLS[plan.protocol].description,
        "seed": plan.seed,
        "fold": plan.fold,
        "source": plan.source,
        "crema_tools_version": __version__,
        "clips_found": plan.clips_found,
        "splits": splits,
        "samples": sum(s["samples"] for s in splits.values()),
        "skipped": sorted(skipped, key=lambda x: x["clip_id"]),
        "flagged": sorted((f for st in statuses for f in st.get("flagged", [])), key=lambda x: (x["clip_id"], x["flag"])),
        "face_not_found": sorted(c for st in statuses for c in st["face_not_found"]),
        "params": params,
        "members": r.members,
        "metadata_fields": r.metadata_fields,
        "build": {"unit_clips": plan.unit_clips, "units": len(plan.units), "face_batch": FACE_BATCH,
                  "face_device": plan.face_device if plan.finds_faces(r) else None,
                  "shard_naming": "<split>-<unit>.tar: unit u holds clips [u * unit_clips, (u + 1) * unit_clips) "
                                  "of the seeded clip order"},
        "versions": build_versions(),
    })


def skip_summary(skipped: list[dict], n: int = 2) -> str:
    """'24 skipped: 20 VideoFlash/<clip>.flv: file is missing; 4 ...': the commonest reasons, clip ids masked."""
    groups = Counter(str(s["reason"]).replace(str(s["clip_id"]), "<clip>") for s in skipped)
    shown = "; ".join(f"{k} x {reason if len(reason) <= 90 else reason[:87] + '...'}" for reason, k in groups.most_common(n))
    more = f"; {len(groups) - n} other reasons" if len(groups) > n else ""
    return f"{len(skipped)} skipped ({shown}{more})" if skipped else "no clip to build"


def write_card_atomically(out: Path) -> None:
    """`card.write_card`, but the new README.md replaces the old one in one rename: it renders in a
    scratch folder of the same name holding copies of the configs' report.json files."""
    scratch = out / f".card.tmp-{os.getpid()}"
    view = scratch / out.resolve().name
    try:
        for report in sorted(out.glob("*/report.json")):
            if config_files(report.parent) is None:
                continue  # not a config crema-tools wrote
            (view / report.parent.name).mkdir(parents=True)
            shutil.copyfile(report, view / report.parent.name / "report.json")
        write_card(view)
        if (view / CARD_NAME).is_file():
            with open(view / CARD_NAME, "rb") as f:
                os.fsync(f.fileno())
            os.replace(view / CARD_NAME, out / CARD_NAME)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def finalise_build(plan: BuildPlan) -> dict[str, dict]:
    """Merge each variant's unit statuses into its report.json, move the config into place, and
    render the card. A config that would hold no sample is not written: the previous one stays,
    and a BuildError summarises why every clip was skipped."""
    reports, empty = {}, {}
    for r in plan.representations:
        partial = partial_dir(plan.out, r.name)
        report = _report(plan, r, _load_statuses(plan, r))
        if report["samples"] == 0:
            empty[r.name] = report
            shutil.rmtree(partial)
            continue
        config = partial / CONFIG_DIR
        atomic_write(config / REPORT_NAME, report.to_json())
        final = plan.out / r.name
        if final.exists() or final.is_symlink():
            os.replace(final, partial / "replaced")  # the old config leaves in one rename...
        os.replace(config, final)  # ...and the new one arrives in another
        fsync_dir(plan.out)
        shutil.rmtree(partial)
        reports[r.name] = report
    if reports:
        write_card_atomically(plan.out)
    if empty:
        why = "; ".join(f"{name}: {skip_summary(rep['skipped'])}, "
                        + ("the previous config is kept" if (plan.out / name / "report.json").is_file() else "nothing written")
                        for name, rep in empty.items())
        written = f" ({', '.join(reports)} written)" if reports else ""
        raise BuildError(f"no sample to write for {', '.join(empty)}{written}: {why}")
    return reports


# ---------------------------------------------------------------- processes, signals, the whole build


@dataclass
class Ranks:
    """This process's place among the build's processes (one, unless under `accelerate launch`)."""

    rank: int = 0
    world: int = 1
    here: int = 1  # build processes on this machine
    device: str | None = None  # this process's GPU, when it has one
    state: object = field(default=None, repr=False)

    @classmethod
    def current(cls) -> "Ranks":
        if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or not torch.cuda.is_available()
        state = PartialState(cpu=cpu, timeout=timedelta(days=7))  # process 0 may plan for long while the others wait
        device = str(state.device) if state.device is not None and state.device.type == "cuda" else None
        here = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes) or 1)
        return cls(state.process_index, state.num_processes, here, device, state)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def broadcast(self, obj):
        """Process 0's `obj`, in every process."""
        if self.world == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        box = [obj]
        broadcast_object_list(box, from_process=0)
        return box[0]


@contextmanager
def _signals_raise():
    """SIGTERM and SIGHUP end the build as Ctrl-C does: cleanly, keeping finished units."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if not fired:  # a second signal must not break the clean-up of the first
            fired.append(signum)
            raise BuildInterrupted("interrupted", signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _kept(plan: BuildPlan | None) -> str:
    if plan is None:
        return "nothing was written"
    done = units_done(plan)
    if not any(done.values()):
        return "no work unit was finished"
    parts = ", ".join(f"{n} {name}" for name, n in done.items())
    return (f"finished work units ({parts}, of {len(plan.units)} each) are kept in {plan.out}/.<variant>.partial/; "
            f"the same command resumes from there, deleting those folders drops them")


def _os_error_line(e: OSError, plan: BuildPlan | None, out: Path) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "disk full"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "permission denied"
    else:
        what = "cannot write"
    where = f" while writing {e.filename}" if e.filename else ""
    return f"--out {out}: {what}{where} ({e.strerror or e}); {_kept(plan)}"


def build(
    raw: str | Path,
    out: str | Path,
    variants: Sequence[str],
    protocol: str = "paper",
    seed: int = 0,
    workers: int = 0,
    device: str | None = None,
    progress: bool = True,
    clip_ids: Sequence[str] | None = None,
    face_crop: bool = False,
    fold: int | None = None,
    *,
    force: bool = False,
    unit_clips: int = UNIT_CLIPS,
) -> dict[str, dict] | None:
    """Build the variants from the corpus at `raw` into the dataset folder `out`; returns the reports.

    Resumes an unfinished build of the same command; under `accelerate launch` every process
    calls it, and only process 0 returns the reports (the others return None).
    """
    raw, out = Path(raw), Path(out)
    check_options(variants, protocol, seed, workers, fold, unit_clips)
    ranks = Ranks.current()
    args = dict(protocol=protocol, seed=seed, workers=workers, device=device or ranks.device, clip_ids=clip_ids,
                face_crop=face_crop, fold=fold, unit_clips=unit_clips, force=force)
    lock, plan = None, None
    with _signals_raise():
        try:
            try:
                shared: dict = {}
                if ranks.main:
                    try:
                        check_folders(raw, out)
                        lock = OutLock.acquire(out)
                        if lock.previous:
                            note(f"taking over {lock.path}: the build that left it is no longer running "
                                 f"({describe_holder(lock.previous)})")
                        plan = plan_build(raw, out, variants, **args)
                        shared = {"todo": prepare(plan)}
                    except CremaToolsError as e:
                        shared = {"error": str(e)}
                        if ranks.world == 1:
                            raise
                shared = ranks.broadcast(shared)
                if "error" in shared:
                    raise (BuildError if ranks.main else SaidByProcessZero)(shared["error"])
                if plan is None:
                    plan = plan_build(raw, out, variants, check_out=False, **args)
                mine = shared["todo"][ranks.rank::ranks.world]
                if ranks.world > 1:
                    note(f"process {ranks.rank} of {ranks.world}: {len(mine)} work unit(s) of {len(plan.units)}")
                run_build(plan, progress and ranks.main, mine, ranks.here)
                ranks.barrier()
                if not ranks.main:
                    return None
                if ranks.world > 1:
                    _wait_for_units(plan)
                return finalise_build(plan)
            except OSError as e:
                raise BuildError(_os_error_line(e, plan, out)) from None
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", signal.SIGINT)
            name = signal.Signals(signum).name
            raise BuildInterrupted(f"interrupted by {name}: {_kept(plan)}", signum) from None
        finally:
            if lock is not None:
                lock.release()


def _wait_for_units(plan: BuildPlan, timeout: float = 120.0) -> None:
    """After the barrier every process has finished its units; their status files may take a
    moment to show on a network file system, and never show if `--out` is not shared."""
    end = time.monotonic() + timeout
    while True:
        missing = [(r, u) for r in plan.representations for u in range(len(plan.units)) if not _status_path(plan, r, u).exists()]
        if not missing:
            return
        if time.monotonic() > end:
            r, u = missing[0]
            raise BuildError(f"--out {plan.out}: the other processes finished, but {len(missing)} of their work units "
                             f"are not there (e.g. {_status_path(plan, r, u)}); in a build over several machines, "
                             f"--out must be a folder they all share; run the same command again to finish")
        time.sleep(0.5)
