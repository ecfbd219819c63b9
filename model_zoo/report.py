"""Several runs into the tables and the figure a paper shows: mean and std over seeds (or folds).

    python -m model_zoo.report runs/ --out report/

Finds every metrics.json under the given folders, groups the runs by (encoder, variant, protocol,
dataset source), and writes `summary.json`, `summary.md` (one table per modality, like the
reference paper's Tables 1-3, with the CREMA-D raters' row) and `accuracy.png` (bars with error
bars, like its Figure 2) and `zoo.md` (MMAction2-style rows for a README's model zoo). A k-fold run (`--protocol speaker-kfold`) is summarised over its folds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from statistics import mean, stdev

from crema_tools.tables import markdown_table
from crema_tools.variants import VARIANTS

from . import index as zoo_index
from .cli import OneLineParser, one_line_errors
from .config import ModelZooError
from .index import mean_std
from .metrics import METRICS
from .run_metrics import GROUP, RunMetrics


def find_runs(paths) -> list[Path]:
    runs = []
    for p in map(Path, paths):
        if (p / "metrics.json").is_file():
            runs.append(p)
        elif p.is_dir():
            runs += sorted(m.parent for m in p.rglob("metrics.json"))
        else:
            raise ModelZooError(f"{p}: no such run folder (a folder holding metrics.json, or folders of them)")
    if not runs:
        raise ModelZooError(f"no metrics.json under {', '.join(map(str, paths))}: train first (python -m model_zoo.train)")
    return sorted(dict.fromkeys(runs))


def _stat(values: list[float]) -> dict:
    return {"mean": mean(values), "std": stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def summarise(metrics: Iterable[RunMetrics | Mapping], split: str = "test") -> list[dict]:
    """One row per (model, variant, protocol, source): mean and std of each metric over the runs."""
    groups: dict[tuple, list[RunMetrics]] = defaultdict(list)
    for m in map(RunMetrics.of, metrics):
        if split in m.splits:
            groups[m.group].append(m)
    rows = []
    for group, runs in sorted(groups.items()):
        row = {**dict(zip(GROUP, group)), "split": split, "runs": len(runs),
               "seeds": sorted({r.run_seed for r in runs}),
               "folds": sorted({r.fold for r in runs if r.fold is not None}),
               "recipe": runs[0].recipe}
        training = runs[0].document.get("training") or {}
        row["fusion"], row["method"] = training.get("fusion"), training.get("method") or ("joint" if training.get("fusion") else None)
        row["judged_on"] = runs[0].judged_on  # a unimodal run: its scores are its modality's logits'
        for spec in METRICS:
            row[spec.key] = _stat([r.score(split, spec.key) for r in runs])
        row["architecture"] = runs[0].model  # the registered name; row["model"] adds fusion and method
        row["modalities"] = {m: _stat(v) for m in ("audio", "vision")
                             if (v := [x for r in runs if (x := r.modality_score(split, m, "accuracy")) is not None])}
        human = [r.human(split)[0] for r in runs]
        row["human_accuracy"] = _stat([h for h in human if h is not None]) if any(h is not None for h in human) else None
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    """One table per modality, each with the raters' row, as the paper's Tables 1-3."""
    parts = []
    for modality in ("audio", "vision", "multimodal"):
        these = [r for r in rows if VARIANTS[r["variant"]].modality == modality]
        if not these:
            continue
        body = [[r["model"], r["variant"], r["protocol"] + (f" ({len(r['folds'])} folds)" if r["folds"] else ""),
                 r["runs"], *(mean_std(r[spec.key]) for spec in METRICS)] for r in these]
        humans = [r["human_accuracy"]["mean"] for r in these if r["human_accuracy"]]
        if humans:  # the raters give an accuracy only
            body.append(["CREMA-D raters", "same clips", "-", "-",
                         *(f"{mean(humans):.3f}" if spec.key == "accuracy" else "-" for spec in METRICS)])
        parts.append(f"### {modality}\n\n" + markdown_table(
            ["encoder", "variant", "protocol", "runs", *(spec.column for spec in METRICS)], body))
    note = ""
    if any(r["source"] == "synthetic" for r in rows):
        note = "\n\n**Measured on the synthetic sample**: these numbers say nothing about emotion recognition."
    return ("\n\n".join(parts) + "\n\n" + shared_vs_separate(rows) + methods_table(rows)
            + "Mean ± standard deviation over runs (seeds or folds), on the test split." + note + "\n")


def shared_vs_separate(rows: list[dict]) -> str:
    """The paper's question side by side: each encoder shared over both modalities and separate per
    modality (with its fusion head and method), on the same multimodal config; mean ± std over runs."""
    body = []
    for sep in (r for r in rows if r["architecture"].endswith("_separate")):
        encoder = sep["architecture"].removesuffix("_separate")
        for shared in (r for r in rows if r["model"] == encoder and (r["variant"], r["protocol"], r["source"]) ==
                       (sep["variant"], sep["protocol"], sep["source"])):
            body.append([encoder, sep["variant"], sep["protocol"], f"{mean_std(shared['accuracy'])} ({shared['runs']})",
                         sep["model"].removeprefix(sep["architecture"]).strip(" ()") or "-",
                         f"{mean_std(sep['accuracy'])} ({sep['runs']})",
                         *(mean_std(sep["modalities"].get(m)) for m in ("audio", "vision"))])
    if not body:
        return ""
    return "### shared vs separate encoders\n\n" + markdown_table(
        ["encoder", "variant", "protocol", "shared: accuracy (runs)", "separate: fusion, method",
         "separate: accuracy (runs)", "its audio logits", "its vision logits"], body) + "\n\n"


def methods_table(rows: list[dict]) -> str:
    """BalanceBenchmark's table layout for separate-encoder runs: per method the test accuracy and
    macro-F1, each modality's own accuracy, the gap between them (the imbalance: the stronger
    modality's accuracy minus the weaker's, from the means), mean ± std and the number of runs."""
    these = [r for r in rows if r.get("method")]
    if not these:
        return ""
    body = []
    for r in sorted(these, key=lambda r: (r["variant"], r["protocol"], r["model"])):
        audio, vision = (r["modalities"].get(m) if r["judged_on"] in (None, m) else None for m in ("audio", "vision"))
        gap = f"{abs(audio['mean'] - vision['mean']):.3f}" if audio and vision else "-"  # a unimodal run has none
        body.append([r["method"], r["architecture"], r["fusion"] or "-", r["variant"], r["protocol"],
                     mean_std(r["accuracy"]), mean_std(r["macro_f1"]), mean_std(audio), mean_std(vision), gap, r["runs"]])
    return "### balancing methods\n\n" + markdown_table(
        ["method", "model", "fusion", "config", "protocol", "accuracy", "macro-F1", "audio accuracy", "vision accuracy",
         "imbalance", "runs"], body) + "\n\n"


def zoo_table(rows: list[dict], runs: dict[tuple, list[Path]]) -> str:
    """MMAction2-style model zoo rows: what was trained, on what, how well (over which runs), from where."""
    body = []
    for r in rows:
        where = runs.get((r["model"], r["variant"], r["protocol"], r["source"]), [])
        data = "synthetic sample" if r["source"] == "synthetic" else "CREMA-D"
        body.append([r["model"], r["variant"], r["protocol"] + (f" ({len(r['folds'])} folds)" if r["folds"] else ""),
                     data, mean_std(r["accuracy"]), mean_std(r["uar"]), r["runs"], r["recipe"] or "flags",
                     ", ".join(str(p / "metrics.json") for p in where) or "-"])
    return markdown_table(["encoder", "variant", "protocol", "data", "test accuracy", "test UAR", "runs", "recipe", "log"], body)


def plot(rows: list[dict], path: Path):
    """Test accuracy per encoder and variant, as the paper's Figure 2; returns the figure (closed).

    Each bar is the mean over its runs (seeds or folds), and its label says how many (n=); the error
    bar (std) is drawn only where there are several: one run has no spread to show, and a +-0 bar
    would read as certainty. Dashes: the CREMA-D raters' accuracy on the same clips. The figure is
    as wide as its labels need and the title is wrapped to it.
    """
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['model']}\n{r['variant']}\nn={r['accuracy']['n']}" for r in rows]
    longest = max((len(line) for label in labels for line in label.splitlines()), default=0)
    width = max(4.0, max(0.9, 0.065 * longest + 0.15) * len(rows) + 1.5)  # 7-point labels side by side
    fig, ax = plt.subplots(figsize=(width, 3.8), dpi=120)
    means = [r["accuracy"]["mean"] for r in rows]
    ax.bar(range(len(rows)), means,
           color=["#4c72b0" if VARIANTS[r["variant"]].modality == "multimodal" else "#8fa9d6" for r in rows])
    several = [i for i, r in enumerate(rows) if r["accuracy"]["n"] > 1]
    if several:
        ax.errorbar(several, [means[i] for i in several], yerr=[rows[i]["accuracy"]["std"] for i in several],
                    fmt="none", ecolor="black", capsize=4)
    for i, r in enumerate(rows):
        if r["human_accuracy"]:
            ax.hlines(r["human_accuracy"]["mean"], i - 0.4, i + 0.4, colors="#c44e52", linestyles="dashed")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    title = ("bars: mean over n runs (seeds or folds)", "error bars: ± std, where n > 1",
             "dashed: CREMA-D raters on the same clips")
    ax.set_title("\n".join(textwrap.fill(line, width=int(11 * width)) for line in title), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return fig


def summarise_runs(paths, out: Path) -> dict:
    runs = find_runs(paths)
    metrics = [RunMetrics.load(r / "metrics.json") for r in runs]
    rows = summarise(metrics)
    by_key: dict[tuple, list[Path]] = defaultdict(list)
    for run, m in zip(runs, metrics):
        by_key[m.group].append(run)
    if not rows:
        raise ModelZooError("none of the runs has test metrics")
    out.mkdir(parents=True, exist_ok=True)
    summary = {"runs": [str(r) for r in runs], "rows": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(rows))
    (out / "zoo.md").write_text(zoo_table(rows, by_key) + "\n")
    plot(rows, out / "accuracy.png")
    return summary


def main(argv=None) -> dict:
    ap = OneLineParser(description="Summarise training runs: mean and std per (encoder, variant, protocol), a table and a figure.")
    ap.add_argument("runs", nargs="*", help="run folders (holding metrics.json) or folders of them")
    ap.add_argument("--out", type=Path, default=Path("report"), help="folder for summary.md, summary.json, accuracy.png")
    ap.add_argument("--index", type=Path, metavar="INDEX_YML",
                    help="the zoo's index (model_zoo/index.yml): add or update these runs' rows in it")
    ap.add_argument("--update-docs", nargs="+", type=Path, metavar="MARKDOWN",
                    help="rewrite the results table of these files (README.md, docs/model_zoo.md) from --index")
    args = ap.parse_args(argv)
    if not args.runs and not args.update_docs:
        ap.error("give run folders, or --index INDEX_YML --update-docs FILES")
    if args.update_docs and not args.index:
        ap.error("--update-docs needs --index INDEX_YML")
    summary: dict = {}
    with one_line_errors():
        if args.runs:
            summary = summarise_runs(args.runs, args.out)
            print((args.out / "summary.md").read_text())
            if args.index:
                logs: dict[tuple, list[Path]] = defaultdict(list)
                for run in summary["runs"]:
                    logs[RunMetrics.load(Path(run) / "metrics.json").group].append(Path(run))
                new = zoo_index.entries_from_rows(summary["rows"], logs)
                zoo_index.save_index(zoo_index.merge(zoo_index.load_index(args.index), new), args.index)
                print(f"{len(new)} rows -> {args.index}")
        if args.update_docs:
            for path in zoo_index.update_docs(args.update_docs, zoo_index.load_index(args.index)):
                print(f"updated {path}")
    return summary


if __name__ == "__main__":
    main()
