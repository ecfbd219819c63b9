"""Forward+backward throughput and peak memory of every model_zoo encoder on one fixed small input.

    python bench/bench_models.py [--device cpu|cuda] [--batch N] [--frames T] [--iters K] [--threads N]
                                 [--all-variants] [--models a,b]

Each (model, variant) runs in a fresh Python process so its peak memory is its own:
- CPU: peak resident set size (ru_maxrss) of that process minus its RSS just before the model is
  built (torch and model_zoo imported). It covers weights, gradients, activations and whatever
  the allocator keeps; it is a high-water mark of the whole process, not a tensor count.
- CUDA: torch.cuda.max_memory_allocated() over the timed steps (tensors only, not the caching
  allocator's reserve or the CUDA context). Steps run under bf16 autocast; the 2D CNNs use
  channels_last.
Throughput is batch size over the median time of `--iters` timed steps (forward, cross-entropy,
backward) after one warm-up step; the median keeps a burst of other work from skewing a row.
3D CNNs get `--frames` frames; VideoMAE (base config) is built for `--frames` frames, since its
frame count is fixed by its config.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CNN_2D = {"resnet18", "googlenet", "vgg16"}


def machine_description(device: str) -> str:
    import torch

    text = f"{os.cpu_count()}-core CPU ({cpu_name()}), torch {torch.__version__}, {torch.get_num_threads()} threads"
    if device == "cuda":
        text += f", GPU: {torch.cuda.get_device_name()}"
    elif not torch.cuda.is_available():
        text += ", no GPU"
    # Other work on a small machine skews CPU numbers: say how busy it was.
    text += f"; load average {os.getloadavg()[0]:.2f} at start"
    return text


def rss_now_kib() -> int:
    """Current resident set size in KiB (Linux /proc), for the baseline before the model exists."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def run_one(name: str, variant: str, device: str, batch: int, frames: int, iters: int, threads: int) -> dict:
    """Benchmark one model in this process; returns one table row as a dict."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    import model_zoo

    torch.manual_seed(0)
    frames_arg = model_zoo.get_model_entry(name).frames_arg
    kwargs = {frames_arg: frames} if frames_arg else {}
    baseline_kib = rss_now_kib()
    model = model_zoo.create_model(name, variant=variant, **kwargs).to(device).train()
    shape = model.pretrained_cfg.input_shape
    if model.pretrained_cfg.frames is not None:
        shape = (frames, *shape[1:])
    shape = (batch, *shape)
    inputs = torch.rand(shape, device=device)
    targets = torch.randint(0, 6, (batch,), device=device)
    if device == "cuda" and name in CNN_2D:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: allocator, cuDNN/oneDNN algorithm choice
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_seconds = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        sync()
        step_seconds.append(time.perf_counter() - start)
    if device == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kib) / 1024
    return {
        "model": name,
        "variant": variant,
        "input": "x".join(map(str, shape)),
        "params": model.num_parameters(),
        "samples_per_s": batch / statistics.median(step_seconds),
        "peak_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=4, help="T for 3D models (even, for VideoMAE)")
    parser.add_argument("--iters", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (default: torch's choice); 1 avoids oversubscription on a busy machine")
    parser.add_argument("--all-variants", action="store_true", help="every (model, variant) pair, not just multimodal")
    parser.add_argument("--models", default="", help="comma-separated subset of model_zoo.list_models()")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(run_one(*args.worker, args.device, args.batch, args.frames, args.iters, args.threads)))
        return

    sys.path.insert(0, str(ROOT))
    import torch

    import model_zoo

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    names = args.models.split(",") if args.models else model_zoo.list_models()
    pairs = [
        (name, variant)
        for name in names
        for variant in model_zoo.get_model_entry(name).variants
        if args.all_variants or variant == model_zoo.get_model_entry(name).default_variant
    ]
    memory = "peak CUDA memory allocated" if args.device == "cuda" else "peak RSS increase of a fresh process"
    print(f"# model_zoo forward+backward, {args.device}: {machine_description(args.device)}")
    precision = "bf16 autocast" if args.device == "cuda" else "fp32"
    print(f"# batch {args.batch}, T = {args.frames} frames for 3D models, median of {args.iters} timed steps"
          f" after 1 warm-up; {precision}; memory: {memory}")
    print()
    print("| model | variant | input (B x ...) | params | samples/s (fwd+bwd) | peak memory (MiB) |")
    print("|---|---|---|---:|---:|---:|")
    for name, variant in pairs:
        command = [sys.executable, __file__, "--worker", name, variant, "--device", args.device,
                   "--batch", str(args.batch), "--frames", str(args.frames), "--iters", str(args.iters),
                   "--threads", str(args.threads)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"| {name} | {variant} | failed: {result.stderr.strip().splitlines()[-1]} | | | |", flush=True)
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"| {name} | {variant} | {row['input']} | {row['params']:,} | {row['samples_per_s']:.2f} |"
              f" {row['peak_mib']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
