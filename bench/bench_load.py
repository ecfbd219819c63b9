"""Loading speed: shards to encoder-ready tensors, samples per second on one core.

Measured in one process with torch limited to one thread, as a DataLoader worker runs, so the
figure is per core: N loader workers give about N times it. Shards come from a build of the
synthetic corpus (made first if missing).

    python bench/bench_load.py [--actors 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from common import corpus, machine, table  # noqa: E402

import crema_tools  # noqa: E402
from crema_tools.builder.pipeline import build  # noqa: E402

CASES = [
    ("2d-multimodal", {}, "paper's 2D CNN input"),
    ("3d-multimodal", {"pad_to": 135}, "wide, padded to 135 (3D CNNs)"),
    ("3d-multimodal", {"sample_frames": 32, "multimodal_layout": "squeezed"}, "squeezed, 32 sampled (VideoMAE)"),
    ("3d-multimodal", {"sample_frames": 16, "multimodal_layout": "squeezed"}, "squeezed, 16 sampled"),
    ("3d-vision", {"pad_to": 135}, "frames padded to 135"),
    ("3d-audio", {"pad_to": 135}, "chunks padded to 135"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "crema-tools-bench")
    args = ap.parse_args()
    torch.set_num_threads(1)
    raw, ids = corpus(args.workdir / "raw", args.actors)
    out = args.workdir / "out-load"
    shutil.rmtree(out, ignore_errors=True)
    build(raw, out, ["2d-multimodal", "3d-audio", "3d-vision", "3d-multimodal"], progress=False,
          clip_ids=ids[: 18 * args.actors])
    rows = []
    for variant, kw, what in CASES:
        ds = crema_tools.load(out, variant, "train", **kw)
        next(iter(ds))  # warm up
        start = time.perf_counter()
        n = 0
        for item in ds:  # noqa: B007 - the last item gives the shape below
            n += 1
        rate = n / (time.perf_counter() - start)
        shape = tuple(item["inputs"].shape)
        mb = item["inputs"].numel() * 4 / 1e6
        rows.append((variant, what, str(shape), f"{mb:.0f}", f"{rate:.1f}"))
    print(f"Machine: {machine()}; one process, torch.set_num_threads(1)")
    print(f"Shards: synthetic corpus, train split ({len(ds)} samples per config).\n")
    print(table(rows, ("config", "view", "inputs shape", "MB / sample (float32)", "samples/s per core")))


if __name__ == "__main__":
    main()
