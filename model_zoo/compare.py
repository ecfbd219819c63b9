"""Every balancing method over several seeds on one config, run by run, then one table: the
balanced-multimodal line's comparison in one command.

    accelerate launch -m model_zoo.compare --data crema-d-datasets --out runs/balance --seeds 0 1 2
    python -m model_zoo.compare --data D --out runs/b --methods joint ogm-ge --epochs 5 --batch-size 16

The default is OGM-GE's setting: the `ogm-ge` config (their split and inputs), their baseline recipe
(`resnet18_separate-ogm-ge`: two ResNet18s, concat fusion, SGD) and each method with its paper's
hyperparameters; `--config`, `--recipe` and any `model_zoo.train` flag change that. Validation is
always held out of train (the protocol's own validation split or a seeded 10% of train, stated in
each metrics.json), never the test set, and every test clip is scored. Each (method, seed) run
lives in `<out>/<method>/seed-<n>`: a run with its metrics.json is done and skipped, an interrupted
one resumes from its last checkpoint, so the command can be started again until all are done.
Then `<out>/report/` holds the summary (`summary.md`: BalanceBenchmark's layout, method by method,
mean ± std over seeds with the number of runs) and the chart.
"""

from __future__ import annotations

from pathlib import Path

from .balancing import METHODS
from .cli import OneLineParser, one_line_errors


def plan(methods, seeds, out: Path) -> list[tuple[str, int, Path]]:
    """(method, seed, run folder) of every run, in the order they are made."""
    return [(method, seed, out / method / f"seed-{seed}") for method in methods for seed in seeds]


def main(argv=None) -> dict:
    from .report import summarise_runs
    from .train import main as train_main
    from .train_args import parse_args

    ap = OneLineParser(description="Train every balancing method over several seeds on one config (resumable run by "
                                   "run), then report them side by side. Other flags go to model_zoo.train.")
    ap.add_argument("--data", required=True, help="a built dataset folder or Hub dataset repo id")
    ap.add_argument("--out", required=True, type=Path, help="folder for <method>/seed-<n> runs and report/")
    ap.add_argument("--config", default="ogm-ge", help="the config to train on (default ogm-ge: OGM-GE's inputs and split)")
    ap.add_argument("--recipe", default="resnet18_separate-ogm-ge", help="the recipe every method starts from")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="default: all")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args, train_args = ap.parse_known_args(argv)
    runs = plan(args.methods, args.seeds, args.out)

    def command(method: str, seed: int, folder: Path) -> list[str]:
        return ["--recipe", args.recipe, "--variant", args.config, "--data", str(args.data), "--method", method,
                "--seed", str(seed), "--out", str(folder), *train_args]

    for method in args.methods:  # every method's settings checked before anything trains: a refusal is one line now
        parse_args(command(method, args.seeds[0], args.out / method))
    for i, (method, seed, folder) in enumerate(runs, 1):
        if (folder / "metrics.json").is_file():
            print(f"[{i}/{len(runs)}] {method}, seed {seed}: done ({folder / 'metrics.json'})")
            continue
        print(f"[{i}/{len(runs)}] {method}, seed {seed} -> {folder}")
        resume = ["--resume-from", "latest"] if any((folder / "checkpoints").glob("epoch_*")) else []
        train_main([*command(method, seed, folder), *resume])
    with one_line_errors():
        summary = summarise_runs([folder for _, _, folder in runs], args.out / "report")
    print((args.out / "report" / "summary.md").read_text())
    return summary


if __name__ == "__main__":
    main()
