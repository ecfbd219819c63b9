"""Balancing methods: the training step's cost per method, and each method end to end under `accelerate launch`.

Two tables from one run, on the `ogm-ge` config built from a synthetic corpus (the built-in
sample's design, `--actors` actors of 18 clips):

1. the step's cost, in this process: `resnet18_separate` (variant `ogm-ge`; the method's own fusion
   head where it trains one, MLA's `shared`; `concat` otherwise, which ReconBoost needs) on one fixed
   batch of the config's input; the whole step as `model_zoo.train` runs it (forward with each
   modality's parts, `method.backward`, `after_backward`, SGD step, zero_grad), after
   `method.start_epoch`, repeated after a warm-up and interleaved across methods (round-robin) so
   the machine's load hits all alike. ms per step (median), samples/s and the ratio to the joint
   baseline's step. ReconBoost's step depends on the epoch: two rows, a boosting epoch (0) and a
   rectification epoch (4, its defaults: 4 boosting then 4 rectification epochs).
2. each method trained end to end by `accelerate launch -m model_zoo.train` with 2 CPU processes
   (recipe `resnet18_separate-ogm-ge`, `--epochs`, `--batch`): exit status, wall time, and from its
   metrics.json the test accuracy and macro-F1 (a unimodal run's are its modality's), each modality's
   own test accuracy and the raters' accuracy on the same clips (and which ratings).

On a synthetic corpus the scores say nothing about emotion recognition: table 2 shows that every
method runs end to end under DDP, evaluates per modality and writes the raters' row, and what it costs.

    python bench/bench_methods.py [--device cuda] [--methods joint ogm-ge] [--skip-launch]

Defaults: batch 8, 5 timed steps per method after 1 warm-up, 2 epochs per launched run, 8 actors
(144 clips, the built-in sample); about 9 minutes in all on a 2-core CPU (a launched run 35-90 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from common import corpus, load_average, machine, table  # noqa: E402

import crema_tools  # noqa: E402
import model_zoo  # noqa: E402
from crema_tools.builder.pipeline import build  # noqa: E402
from crema_tools.loading.dataset import collate  # noqa: E402
from crema_tools.loading.transforms import to_model_input  # noqa: E402
from model_zoo.balancing import METHODS, Outputs, StepContext, get_method  # noqa: E402
from model_zoo.run_metrics import RunMetrics  # noqa: E402

CONFIG, RECIPE = "ogm-ge", "resnet18_separate-ogm-ge"
LAUNCH_FLAGS = {"reconboost": ["--boosting-epochs", "1", "--rectification-epochs", "0"]}
"""Per-method flags for the launched runs: ReconBoost must reach its vision stage within the epochs."""
RECONBOOST_EPOCHS = {"boosting": 0, "rectification": 4}
"""The epochs ReconBoost's step is timed at, with its default hyperparameters (4 boosting, 4 rectification)."""


class Case:
    """One row of table 1: a method at an epoch, with its own model, optimizer and context."""

    def __init__(self, label: str, name: str, epoch: int, batch: dict, device: torch.device, autocast):
        self.label, self.name, self.epoch, self.device, self.autocast = label, name, epoch, device, autocast
        self.method = get_method(name)
        fusion = self.method.fusion or "concat"
        self.fusion = fusion
        torch.manual_seed(0)
        self.model = model_zoo.create_model("resnet18_separate", variant=CONFIG, fusion=fusion).to(device).train()
        cfg = self.model.pretrained_cfg
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
        self.model_input = lambda b: to_model_input(b, cfg.mean, cfg.std, device)
        self.inputs, self.labels = self.model_input(batch), batch["label"].to(device)
        self.train_loader = [batch, batch]  # what start_epoch reads: PMR's prototypes, MLA's steps per epoch
        self.step_count = self.epoch * len(self.train_loader)  # start_epoch runs at an epoch's first step
        self.times: list[float] = []
        self.error: str | None = None
        self.method.restore_state({})
        self.method.start_epoch(self.context())

    def context(self) -> StepContext:
        generator = torch.Generator(self.device).manual_seed(self.step_count)
        return StepContext(self.model, self.epoch, self.step_count, generator, None, self.train_loader,
                           self.model_input, self.optimizer)

    def step(self) -> float:
        start = time.perf_counter()
        context = self.context()
        with self.autocast:
            out = Outputs(*self.model(self.inputs, return_parts=True), self.labels, self.inputs)
            self.method.backward(out, context)
            self.method.after_backward(out, context)
        self.optimizer.step()
        self.optimizer.zero_grad()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.step_count += 1
        return time.perf_counter() - start


def first_batch(out: Path, batch_size: int) -> dict:
    cfg = model_zoo.create_model("resnet18_separate", variant=CONFIG).pretrained_cfg
    dataset = crema_tools.load(out, CONFIG, "train", **cfg.load_options())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=0, collate_fn=collate)
    return next(iter(loader))


def step_costs(out: Path, methods: list[str], args, device: torch.device) -> tuple[list[tuple], str]:
    """Table 1: per (method, epoch) the step's median ms, samples/s and ratio to joint's."""
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    batch = first_batch(out, args.batch)
    cases, failed = [], []
    for name in methods:
        epochs = RECONBOOST_EPOCHS if name == "reconboost" else {None: 0}
        for phase, epoch in epochs.items():
            label = name if phase is None else f"{name} ({phase}, epoch {epoch})"
            try:
                cases.append(Case(label, name, epoch, batch, device, autocast))
            except Exception as e:  # a method that cannot start is a row, not the end of the bench
                failed.append((label, f"start_epoch failed: {type(e).__name__}: {e}"))
    for rep in range(args.warmup + args.repeats):
        for case in cases:
            if case.error is not None:
                continue
            try:
                seconds = case.step()
            except Exception as e:
                case.error = f"step failed: {type(e).__name__}: {e}"
                continue
            if rep >= args.warmup:
                case.times.append(seconds)
        print(f"round {rep + 1}/{args.warmup + args.repeats} done", file=sys.stderr)
    medians = {c.label: statistics.median(c.times) for c in cases if c.error is None and c.times}
    joint = medians.get("joint")
    rows = []
    for case in cases:
        if case.label not in medians:
            rows.append((case.label, case.fusion, "-", "-", "-", "-", case.error or "no timing"))
            continue
        ms = medians[case.label] * 1000
        spread = f"{min(case.times) * 1000:.0f}-{max(case.times) * 1000:.0f}"
        ratio = f"{medians[case.label] / joint:.2f}x" if joint else "-"
        rows.append((case.label, case.fusion, f"{ms:.0f}", spread, f"{args.batch / medians[case.label]:.2f}", ratio, ""))
    rows += [(label, "-", "-", "-", "-", "-", error) for label, error in failed]
    shape = " + ".join(f"{k} {'x'.join(map(str, v.shape[1:]))}" for k, v in cases[0].inputs.items()) \
        if cases and isinstance(cases[0].inputs, dict) else ""
    return rows, shape


def fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def launch(method: str, out: Path, run: Path, args) -> tuple:
    """Table 2: one method trained by `accelerate launch` with 2 CPU processes; a row either way."""
    shutil.rmtree(run, ignore_errors=True)
    launcher = Path(sys.executable).with_name("accelerate")
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", str(args.processes), "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "model_zoo.train", "--recipe", RECIPE,
           "--method", method, "--data", str(out), "--out", str(run), "--epochs", str(args.epochs),
           "--batch-size", str(args.batch), "--precise-bn-batches", "1", *LAUNCH_FLAGS.get(method, [])]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
        status, stderr = r.returncode, r.stderr
    except subprocess.TimeoutExpired as e:
        status, stderr = "timeout", (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    wall = time.perf_counter() - start
    metrics = run / "metrics.json"
    if status != 0 or not metrics.is_file():
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        last = (lines[-1] if lines else "no stderr")[:160].replace("|", "/")
        return (method, str(status), f"{wall:.0f}", "-", "-", "-", "-", "-", "-", "-", str(args.processes), last)
    doc = json.loads(metrics.read_text())
    scores = RunMetrics(doc)
    test = doc["splits"]["test"]
    mods = test.get("modalities") or {}
    human = test.get("human") or {}
    judged = scores.judged_on
    processes = (doc.get("training") or {}).get("processes", "-")
    return (method, str(status), f"{wall:.0f}", str(test.get("samples", "-")), fmt(scores.score("test", "accuracy")),
            fmt(scores.score("test", "macro_f1")) + (f" ({judged})" if judged else ""),
            fmt((mods.get("audio") or {}).get("accuracy")), fmt((mods.get("vision") or {}).get("accuracy")),
            fmt(human.get("accuracy")), str(human.get("ratings", "-")), str(processes), "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--batch", type=int, default=8, help="batch of the timed step and of the launched runs (per process)")
    ap.add_argument("--repeats", type=int, default=5, help="timed steps per method, after --warmup")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per method first")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of each launched run")
    ap.add_argument("--actors", type=int, default=8, help="synthetic actors, 18 clips each (8: the built-in sample)")
    ap.add_argument("--processes", type=int, default=2, help="processes of each launched run (CPU)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds before a launched run is stopped")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "crema-tools-bench")
    ap.add_argument("--skip-launch", action="store_true", help="only table 1 (the step's cost)")
    args = ap.parse_args()
    started = time.perf_counter()
    device = torch.device(args.device)
    raw, ids = corpus(args.workdir / "raw", args.actors)
    out = args.workdir / f"out-methods-{len(ids)}"
    if not (out / CONFIG / "report.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        build(raw, out, [CONFIG], progress=False, protocol="ogm-ge")

    rows1, shape = step_costs(out, args.methods, args, device)
    load1 = load_average()
    rows2 = []
    if not args.skip_launch:
        for method in args.methods:
            rows2.append(launch(method, out, args.workdir / "runs-methods" / method, args))
            print(f"launched {method}: exit {rows2[-1][1]}, {rows2[-1][2]} s", file=sys.stderr)
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    print(f"Machine: {machine()}\n")
    print(f"Synthetic corpus: {len(ids)} clips ({args.actors} actors, the built-in sample's design), config `{CONFIG}` "
          f"(protocol ogm-ge). These scores are not results about emotion recognition: the clips are synthetic. "
          "What the tables show is the cost of each method's step, and that every method runs end to end "
          "under DDP, evaluates each modality on its own and writes the raters' row.\n")
    print(f"1. The step's cost: resnet18_separate ({CONFIG}), device {device}, {precision}, batch {args.batch} "
          f"(input {shape}), SGD; median of {args.repeats} steps after {args.warmup} warm-up, round-robin over methods; "
          f"load average after: {load1}\n")
    print(table(rows1, ("method", "fusion", "ms / step", "range ms", "samples/s", "x joint", "note")))
    if not args.skip_launch:
        print(f"\n2. End to end: `accelerate launch --multi_gpu --num_processes {args.processes}` on the CPU "
              f"(OMP_NUM_THREADS=1), recipe {RECIPE}, {args.epochs} epochs, batch {args.batch} per process, "
              f"--precise-bn-batches 1 (reconboost: {' '.join(LAUNCH_FLAGS['reconboost'])}); test split scores from "
              f"metrics.json (a unimodal run's are its modality's); load average after: {load_average()}\n")
        print(table(rows2, ("method", "exit", "wall s", "test clips", "test accuracy", "test macro-F1", "audio accuracy",
                            "vision accuracy", "raters' accuracy", "raters' ratings", "processes (metrics.json)", "last stderr line")))
    print(f"\nWhole run: {time.perf_counter() - started:.0f} s wall")


if __name__ == "__main__":
    main()
