"""Build speed against its floor, side by side in one run, on the synthetic corpus.

2D floor per clip: seek to and decode the middle frame, read the audio, one MTCNN call.
3D floor per clip: decode every frame of the FLV (to its native YUV) and read the audio.
The build is measured single-process (--workers 0) like the floor, so the ratio is the cost of
the build's own work; `--workers 0 2` adds rows with decoding processes. Each family is built
with all three variants in one pass and with the multimodal variant alone. It also projects the
full 7,442-clip corpus (time, and shard size from bytes per sample).

    python bench/bench_build.py [--actors 4] [--family 2d|3d|both] [--workers 0 ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import FULL_CORPUS_CLIPS, corpus, machine, table  # noqa: E402

from crema_tools import media  # noqa: E402
from crema_tools.builder.pipeline import build  # noqa: E402
from crema_tools.faces import detect_faces  # noqa: E402


def floor_2d(raw: Path, ids: list[str]) -> float:
    for cid in ids:
        frame, _ = media.read_middle_frame(raw / f"VideoFlash/{cid}.flv", cid)
        media.read_wav(raw / f"AudioWAV/{cid}.wav", cid)
        detect_faces([frame])
    return len(ids)


def floor_3d(raw: Path, ids: list[str]) -> float:
    for cid in ids:
        media.read_all_frames(raw / f"VideoFlash/{cid}.flv", cid, pixel_format="yuv420p")  # native format
        media.read_wav(raw / f"AudioWAV/{cid}.wav", cid)
    return len(ids)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, default=4, help="synthetic actors (18 clips each)")
    ap.add_argument("--family", choices=["2d", "3d", "both"], default="both")
    ap.add_argument("--workers", type=int, nargs="+", default=[0], help="worker settings to time")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "crema-tools-bench")
    args = ap.parse_args()
    raw, ids = corpus(args.workdir / "raw", args.actors)
    n = len(ids)
    detect_faces([media.read_middle_frame(raw / f"VideoFlash/{ids[0]}.flv", "")[0]])  # load MTCNN once
    families = {"2d": (["2d-audio", "2d-vision", "2d-multimodal"], floor_2d),
                "3d": (["3d-audio", "3d-vision", "3d-multimodal"], floor_3d)}
    rows = []
    for fam in (["2d", "3d"] if args.family == "both" else [args.family]):
        all_three, floor = families[fam]
        t_floor = timed(floor, raw, ids)
        for variants in (all_three, all_three[-1:]):
            for workers in args.workers:
                out = args.workdir / f"out-{fam}-{len(variants)}-{workers}"
                shutil.rmtree(out, ignore_errors=True)
                t_build = timed(build, raw, out, variants, "paper", 0, workers, None, False)
                size = {v: sum(p.stat().st_size for p in (out / v).glob("*.tar")) for v in variants}
                rows.append((f"{' + '.join(variants)}, workers={workers}", n,
                             f"{n / t_floor:.1f}", f"{n / t_build:.1f}", f"{t_build / t_floor:.2f}x",
                             f"{FULL_CORPUS_CLIPS * t_build / n / 60:.1f} min",
                             ", ".join(f"{v} {FULL_CORPUS_CLIPS * s / n / 1e9:.2f} GB" for v, s in size.items())))
    print(f"Machine: {machine()}")
    print(f"Synthetic corpus: {n} clips ({args.actors} actors). Floor and build timed in the same run.\n")
    print(table(rows, ("run", "clips", "floor clips/s", "build clips/s", "build / floor",
                       "full corpus (7,442 clips)", "projected shard size, full corpus")))


if __name__ == "__main__":
    main()
