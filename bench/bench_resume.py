"""A build killed halfway (SIGKILL) and resumed, against a clean build, on the synthetic corpus.

The clean build and the resumed one run in this process, one after the other, with MTCNN
loaded beforehand, so their times are the build's own work (wall and CPU seconds). The killed
build is `crema-tools build` in its own process, stopped by SIGKILL once half of its work units
are finished; the resumed build is the same call again. What starting a `crema-tools build`
process costs (Python, torch, MTCNN) is timed on its own. The resumed build's files are
checked byte for byte against the clean build's.

    python bench/bench_resume.py [--actors 4] [--variant 2d-multimodal ...] [--unit-size 8] [--workers 0]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
from common import corpus, machine, table  # noqa: E402

from crema_tools.builder.pipeline import build  # noqa: E402
from crema_tools.media.faces import detect_faces  # noqa: E402


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def command(raw: Path, out: Path, args) -> list[str]:
    cmd = [sys.executable, "-m", "crema_tools", "build", "--raw", str(raw), "--out", str(out),
           "--unit-size", str(args.unit_size), "--workers", str(args.workers)]
    for v in args.variant:
        cmd += ["--variant", v]
    return cmd


def cpu_seconds() -> float:
    """This process's CPU time and that of its finished children (decoding workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(fn, *args, **kw) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn(*args, **kw)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def process_start() -> float:
    """Wall seconds for a new process to import the builder and load MTCNN, as `crema-tools build` does."""
    code = ("import numpy as np; from crema_tools.builder import pipeline; from crema_tools.media.faces import detect_faces; "
            "detect_faces([np.zeros((360, 480, 3), np.uint8)])")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def finished_units(out: Path, variant: str) -> int:
    return len(list((out / f".{variant}.partial" / "status").glob("*.json")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, default=4, help="synthetic actors (18 clips each)")
    ap.add_argument("--variant", nargs="+", default=["2d-multimodal"])
    ap.add_argument("--unit-size", type=int, default=8, help="clips per work unit")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "crema-tools-bench")
    args = ap.parse_args()
    raw, ids = corpus(args.workdir / "raw", args.actors)
    units = -(-len(ids) // args.unit_size)
    clean, resumed = args.workdir / "resume-clean" / "out", args.workdir / "resume-killed" / "out"
    for folder in (clean, resumed):
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)

    detect_faces([np.zeros((360, 480, 3), np.uint8)])  # MTCNN loaded before anything is timed
    kw = dict(progress=False, workers=args.workers, unit_clips=args.unit_size)
    t_clean = timed(build, raw, clean, args.variant, **kw)

    start = time.perf_counter()
    p = subprocess.Popen(command(raw, resumed, args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while finished_units(resumed, args.variant[-1]) < units // 2 and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    t_killed = time.perf_counter() - start
    done = finished_units(resumed, args.variant[-1])

    t_resumed = timed(build, raw, resumed, args.variant, **kw)
    identical = files(clean) == files(resumed)
    t_start = process_start()

    rows = [
        ("clean build", f"{units} of {units}", f"{t_clean[0]:.1f}", "1.00", f"{t_clean[1]:.1f}", "1.00"),
        ("resumed build, after a SIGKILL once half the units were done", f"{units - done} of {units}",
         f"{t_resumed[0]:.1f}", f"{t_resumed[0] / t_clean[0]:.2f}", f"{t_resumed[1]:.1f}", f"{t_resumed[1] / t_clean[1]:.2f}"),
        ("(the killed build: its process, start to SIGKILL)", f"{done} of {units}", f"{t_killed:.1f}", "", "", ""),
        ("(starting a build process: Python, torch, MTCNN)", "", f"{t_start:.1f}", "", "", ""),
    ]
    print(f"Machine: {machine()}; load average during the run (1 / 5 / 15 min): "
          + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"Synthetic corpus: {len(ids)} clips ({args.actors} actors); {', '.join(args.variant)}; "
          f"work units of {args.unit_size} clips ({units}); --workers {args.workers}.\n")
    print(table(rows, ("run", "work units built", "wall s", "wall / clean", "CPU s", "CPU / clean")))
    print(f"\nResumed build byte-identical to the clean one (shards, report.json, card): {'yes' if identical else 'NO'}")
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
