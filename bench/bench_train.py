"""Training throughput: the whole data path (DataLoader workers + batch copy + step) next to the step alone.

Per (encoder, view): samples/s of
- the step alone: forward, backward and Adam on a batch already on the device;
- the loader alone: `crema_tools.load` in the model's compact form (uint8 for 2D, the stored planes
  for 3D, `cfg.load_options()`) through a real DataLoader (workers, collate, batch copy), per loader core;
- the whole path: loader + normalisation on the device + step, as `model_zoo.train` runs it.
If the whole path is well below the step alone, the loader is the bottleneck; `cores for N/s`
says how many loader cores would feed N samples/s.

    python bench/bench_train.py [--device cuda] [--precision bf16] [--workers 2] [--frames 32]

On a CPU the 3D CNNs are measured at `--frames` (default 16, sampled evenly by the loader)
instead of the paper's 135 padded frames, to finish in minutes; on a GPU at 135, padded.
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
import model_zoo  # noqa: E402
from crema_tools.builder.pipeline import build  # noqa: E402
from crema_tools.loading.dataset import collate  # noqa: E402
from crema_tools.loading.transforms import to_model_input  # noqa: E402

CASES = [  # (model, variant, model kwargs)
    ("resnet18", "2d-multimodal", {}),
    ("simple3d", "3d-multimodal", {}),
    ("i3d", "3d-multimodal", {}),
    ("videomae", "3d-multimodal", {"num_frames": 16}),
]


def rate(iterable, seconds: float, warmup: int = 1) -> tuple[float, int]:
    """Samples/s over at most `seconds` after `warmup` batches; each item is a batch size."""
    it = iter(iterable)
    for _ in range(warmup):
        next(it)
    n, start = 0, time.perf_counter()
    for size in it:
        n += size
        if time.perf_counter() - start > seconds:
            break
    return n / (time.perf_counter() - start), n


def measure(name: str, variant: str, kwargs: dict, out: Path, device: torch.device, frames: int, autocast, args) -> tuple:
    """One table row: step alone, loader alone (per core) and the whole path, in samples/s."""
    model = model_zoo.create_model(name, variant=variant, **kwargs)
    if model.pretrained_cfg.temporal == "pad":
        from dataclasses import replace

        temporal = "pad" if frames >= 135 else "sample"  # fewer frames than a clip has: sample them
        model.pretrained_cfg = replace(model.pretrained_cfg, frames=frames, temporal=temporal)
    cfg = model.pretrained_cfg
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    dataset = crema_tools.load(out, variant, "train", shuffle=True, **cfg.load_options())
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, num_workers=args.workers,
                                         collate_fn=collate, pin_memory=device.type == "cuda",
                                         persistent_workers=args.workers > 0)

    def step(batch: dict | torch.Tensor, labels: torch.Tensor) -> int:
        with autocast:
            logits = model(to_model_input(batch, cfg.mean, cfg.std, device))
            loss = torch.nn.functional.cross_entropy(logits, labels.to(device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(labels)

    def epochs():
        epoch = 0
        while True:
            dataset.set_epoch(epoch)
            yield from loader
            epoch += 1

    batch = next(iter(loader))
    fixed = to_model_input(batch, cfg.mean, cfg.std, device), batch["label"]
    step_rate, _ = rate((step(*fixed) for _ in iter(int, 1)), args.seconds)
    load_rate, _ = rate((len(b["label"]) for b in epochs()), args.seconds)
    path_rate, _ = rate((step(b, b["label"]) for b in epochs()), args.seconds)
    per_core = load_rate / max(args.workers, 1)
    mb = sum(v.numel() * v.element_size() for v in batch.values() if isinstance(v, torch.Tensor)) / len(batch["label"]) / 1e6
    return (name, variant, "x".join(map(str, fixed[0].shape[1:])), f"{mb:.2f}", f"{step_rate:.1f}",
            f"{per_core:.1f}", f"{path_rate:.1f}", "loader" if path_rate < 0.8 * step_rate else "step",
            f"{args.feed / per_core:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="bf16" if torch.cuda.is_available() else "fp32")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers (loader cores)")
    ap.add_argument("--frames", type=int, default=None, help="3D frames for the step (default: 135 on GPU, 16 on CPU)")
    ap.add_argument("--seconds", type=float, default=20.0, help="time per measurement")
    ap.add_argument("--feed", type=float, default=100.0, help="samples/s to feed, for the cores column")
    ap.add_argument("--models", nargs="+", default=[c[0] for c in CASES], help="which of the cases to run")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "crema-tools-bench")
    args = ap.parse_args()
    device = torch.device(args.device)
    frames = args.frames or (135 if device.type == "cuda" else 16)
    raw, ids = corpus(args.workdir / "raw", args.actors)
    out = args.workdir / "out-train"
    if not (out / "3d-multimodal" / "report.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        build(raw, out, ["2d-multimodal", "3d-multimodal"], progress=False)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")

    rows = []
    for name, variant, kwargs in (c for c in CASES if c[0] in args.models):
        rows.append(measure(name, variant, kwargs, out, device, frames, autocast, args))
        print(f"done {name} {variant}", file=sys.stderr)
    print(f"Machine: {machine()}; device {device}, {args.precision}, batch {args.batch}, "
          f"{args.workers} DataLoader workers, 3D step at {frames} frames\n")
    print(table(rows, ("model", "variant", "model input", "MB / sample loaded", "step alone samples/s",
                       "loader samples/s per core", "whole path samples/s", "bottleneck",
                       f"loader cores for {args.feed:.0f}/s")))


if __name__ == "__main__":
    main()
