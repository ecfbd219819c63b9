"""Loading through a real DataLoader, per view and per form: CPU cost per sample and cores to feed a GPU.

For each view and each form `crema_tools.load` can yield (float32, uint8, and for 3D the stored
planes), batches go through a real `torch.utils.data.DataLoader`: worker processes decode,
`crema_tools.collate` batches, the batch is copied into shared memory and unpickled by the main
process. CPU time is counted over all of them (this process and its workers, user + system, in
steady state: after a first epoch that starts the workers), so `samples/s per core` is what one
loader core gives, and `cores for N/s` what feeding a
GPU at N samples/s would take. `MB / sample` is what crosses to the device: with float32 the model's
input itself; with uint8 and planes, the device (`crema_tools.transforms.to_model_input`) makes the
input from it. Shards come from a build of the synthetic corpus (made first if missing).

    python bench/bench_load.py [--actors 2] [--rounds 3] [--workers 1] [--feed 100]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from common import corpus, load_average, machine, table  # noqa: E402

import crema_tools  # noqa: E402
from crema_tools.builder.pipeline import build  # noqa: E402

VIEWS = [  # (config, load options, what it is)
    ("2d-multimodal", {}, "paper's 2D CNN input, 3x224x448"),
    ("3d-multimodal", {"pad_to": 135}, "wide, padded to 135 (3D CNNs)"),
    ("3d-multimodal", {"sample_frames": 32, "multimodal_layout": "squeezed"}, "squeezed, 32 sampled (VideoMAE)"),
    ("3d-multimodal", {"sample_frames": 16, "multimodal_layout": "squeezed"}, "squeezed, 16 sampled"),
    ("3d-vision", {"pad_to": 135}, "frames padded to 135"),
    ("3d-audio", {"pad_to": 135}, "chunks padded to 135"),
]


def forms(variant: str) -> tuple[str, ...]:
    return ("float32", "uint8", "planes") if variant.startswith("3d") else ("float32", "uint8")


def batch_bytes(batch: dict) -> int:
    return sum(v.numel() * v.element_size() for v in batch.values() if isinstance(v, torch.Tensor))


def cpu_with_workers() -> float:
    """CPU seconds (user + system) of this process and of its live children (the DataLoader workers)."""
    import psutil

    me = psutil.Process()
    return sum(t.user + t.system for t in [me.cpu_times(), *(c.cpu_times() for c in me.children(recursive=True))])


def measure(out: Path, variant: str, options: dict, dtype: str, workers: int, batch_size: int, epochs: int) -> dict:
    """CPU seconds and wall seconds per sample, steady state: the workers are started and run one
    epoch first (a per-epoch cost, small over a real corpus's epoch), then `epochs` epochs are
    measured; and the bytes per sample handed over."""
    dataset = crema_tools.load(out, variant, "train", dtype=dtype, shuffle=True, seed=0, **options)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                         collate_fn=crema_tools.collate, persistent_workers=workers > 0)
    for _ in loader:  # start the workers
        pass
    n, handed = 0, 0
    cpu0, wall0 = cpu_with_workers(), time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            n += len(batch["label"])
            handed += batch_bytes(batch)
    result = {"cpu": (cpu_with_workers() - cpu0) / n, "wall": (time.perf_counter() - wall0) / n, "mb": handed / n / 1e6}
    del loader  # stops the workers
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--epochs", type=int, default=1, help="measured epochs per case and round (after one to warm up)")
    ap.add_argument("--workers", type=int, default=1, help="DataLoader workers")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--feed", type=float, default=100.0, help="samples/s a GPU should be fed")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "crema-tools-bench")
    args = ap.parse_args()
    torch.set_num_threads(1)
    raw, ids = corpus(args.workdir / "raw", args.actors)
    out = args.workdir / "out-load"
    if not (out / "3d-multimodal" / "report.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        build(raw, out, ["2d-multimodal", "3d-audio", "3d-vision", "3d-multimodal"], progress=False,
              clip_ids=ids[: 18 * args.actors])
    cases = [(variant, options, what, dtype) for variant, options, what in VIEWS for dtype in forms(variant)]
    before = load_average()
    runs: dict[int, list[dict]] = {i: [] for i in range(len(cases))}
    for r in range(args.rounds):
        order = list(range(len(cases)))
        order = order[r % len(order):] + order[: r % len(order)]  # rotated, so no case always runs first
        for i in order:
            variant, options, _, dtype = cases[i]
            runs[i].append(measure(out, variant, options, dtype, args.workers, args.batch, args.epochs))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    rows, float_cost = [], {}
    for i, (variant, _, what, dtype) in enumerate(cases):
        cpu = statistics.median(m["cpu"] for m in runs[i])
        wall = statistics.median(m["wall"] for m in runs[i])
        mb = statistics.median(m["mb"] for m in runs[i])
        float_cost.setdefault((variant, what), cpu)
        per_core = 1.0 / cpu
        rows.append((variant, what, dtype, f"{mb:.2f}", f"{cpu * 1000:.0f}", f"{per_core:.1f}",
                     f"{float_cost[(variant, what)] / cpu:.2f}x", f"{args.feed / per_core:.1f}",
                     f"{args.feed * mb / 1000:.2f}", f"{1.0 / wall:.1f}"))
    samples = len(crema_tools.load(out, "3d-multimodal", "train"))
    print(f"Machine: {machine()}; torch 1 thread per process; load average before {before}, after {load_average()}")
    print(f"Shards: synthetic corpus, train split ({samples} samples per config); DataLoader with {args.workers} "
          f"worker(s), batch {args.batch}, crema_tools.collate; medians of {args.rounds} interleaved rounds.\n")
    print(table(rows, ("config", "view", "form", "MB / sample to the device", "CPU ms / sample (workers + main)",
                       "samples/s per core", "vs float32", f"cores for {args.feed:.0f}/s",
                       f"GB/s to the device at {args.feed:.0f}/s", f"samples/s, {args.workers} worker(s), wall")))


if __name__ == "__main__":
    main()
