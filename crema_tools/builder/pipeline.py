"""`build()`: plan, run, finalise; every requested representation written as WebDataset shards in one pass.

Its parts live in their own modules (see `crema_tools.builder`). `plan_build` checks the
arguments, finds the clips and fixes their order (a seeded shuffle) and splits. The ordered clips are cut into work units of `unit_clips` clips (`UNIT_CLIPS` by
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

import errno
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from ..corpus import SplitFile, resolve_protocol
from ..errors import BuildError, CremaToolsError
from ..representations import BuildOptions
from . import note
from .finalise import finalise_build
from .outdir import OutLock, describe_holder
from .partial import prepare, status_path, units_done
from .plan import FACE_BATCH, UNIT_CLIPS, BuildPlan, check_folders, check_options, load_split_file, plan_build
from .ranks import Ranks, SaidByProcessZero
from .unit import run_build

__all__ = ["BuildError", "BuildInterrupted", "BuildPlan", "FACE_BATCH", "UNIT_CLIPS", "build", "check_options",
           "finalise_build", "plan_build", "run_build"]


class BuildInterrupted(KeyboardInterrupt):
    """A build stopped by a signal (SIGINT, SIGTERM, SIGHUP); str() says what was kept for a resume."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "interrupted"


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
    protocol: str | None = None,
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
    split_file: SplitFile | str | Path | Sequence[str | Path] | None = None,
    ogm_ge_fps: int = 1,
) -> dict[str, dict] | None:
    """Build the variants from the corpus at `raw` into the dataset folder `out`; returns the reports.

    `protocol` None is `paper`, or `split-file` when `split_file` is given: a lab's published split
    (one or more files, or a folder of them; see `crema_tools.corpus.split_files`), read and
    checked whole before anything else. `ogm_ge_fps`: the frames per second the ogm-ge config keeps
    (OGM-GE's `--fps`, 1 to 30). Resumes an unfinished build of the same command; under
    `accelerate launch` every process calls it, and only process 0 returns the reports (the
    others return None).
    """
    raw, out = Path(raw), Path(out)
    try:
        resolve_protocol(protocol, split_file)  # --protocol and --split-file agree before the file is read
    except CremaToolsError as e:
        raise BuildError(str(e)) from None
    split_file = load_split_file(split_file)  # read once, here: every later check and the plan take it as read
    check_options(variants, protocol, seed, workers, fold, unit_clips, split_file, BuildOptions(ogm_ge_fps=ogm_ge_fps))
    ranks = Ranks.current()
    args = dict(protocol=protocol, seed=seed, workers=workers, device=device or ranks.device, clip_ids=clip_ids,
                face_crop=face_crop, fold=fold, unit_clips=unit_clips, force=force, split_file=split_file,
                ogm_ge_fps=ogm_ge_fps)
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
                    wait_for_units(plan)
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


def wait_for_units(plan: BuildPlan, timeout: float = 120.0) -> None:
    """After the barrier every process has finished its units; their status files may take a
    moment to show on a network file system, and never show if `--out` is not shared."""
    end = time.monotonic() + timeout
    while True:
        missing = [(r, u) for r in plan.representations for u in range(len(plan.units)) if not status_path(plan, r, u).exists()]
        if not missing:
            return
        if time.monotonic() > end:
            r, u = missing[0]
            raise BuildError(f"--out {plan.out}: the other processes finished, but {len(missing)} of their work units "
                             f"are not there (e.g. {status_path(plan, r, u)}); in a build over several machines, "
                             f"--out must be a folder they all share; run the same command again to finish")
        time.sleep(0.5)
