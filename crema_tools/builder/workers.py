"""The decoding workers: each clip's extraction steps run in worker processes, results in clip order.

Workers die with the build (even when it is SIGKILLed), ignore Ctrl-C (the main process decides),
and keep one thread each; the main process keeps the cores they leave for MTCNN."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import BuildError
from ..representations import Features, Step
from ..representations.steps import extract, run_steps

STOP_GRACE_S = 5.0
"""How long an interrupted build lets each worker finish the clip in hand (about a second) before killing it."""


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
    """Stop the workers. Cut short (an error, a signal), each first finishes the clip in hand, up to
    `STOP_GRACE_S`: a worker killed while it writes its result leaves half a message in the result
    pipe, and the pool's manager thread, which the interpreter joins at exit, would wait for the
    rest forever. A worker still busy after that is killed, and the pipe is closed under the
    manager thread so that its read ends."""
    if clean:
        pool.shutdown(wait=True)
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in processes:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [p for p in processes if p.is_alive()]
    for p in stuck:
        p.kill()
    for p in stuck:
        p.join(timeout=10)
    if stuck:  # no writer left: a half-read message ends in EOF, which the manager thread handles
        writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
        if writer is not None:
            writer.close()


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


def batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


@contextmanager
def main_process_threads(workers: int, processes_here: int = 1):
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

