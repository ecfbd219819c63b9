"""The zoo as data: `model_zoo/index.yml` lists every trained model of the zoo, in the spirit of
MMAction2's metafile.yml: what was trained (model, config, recipe), on what (data, protocol, seeds
or folds), how well (test accuracy and UAR, mean and std over the runs), where the weights are
(a Hub model repo id, or none) and the log the numbers come from.

    model_zoo.list_pretrained()                  # the entries with published weights
    python -m model_zoo.report runs/ --index model_zoo/index.yml       # add or update this report's rows
    python -m model_zoo.report --index model_zoo/index.yml --update-docs README.md docs/model_zoo.md

The README's and docs/model_zoo.md's results tables are generated from the index (between the
`<!-- zoo-index -->` markers), so the prose never disagrees with the data.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from crema_tools.tables import markdown_table

from .config import ModelZooError

INDEX = Path(__file__).with_name("index.yml")
START, END = "<!-- zoo-index -->", "<!-- /zoo-index -->"


@dataclass(frozen=True)
class ZooEntry:
    """One trained model of the zoo and its results."""

    model: str  # a model_zoo name, with its fusion head and method for separate encoders
    variant: str  # the config it was trained on
    protocol: str
    data: str  # "CREMA-D" or "synthetic sample"
    accuracy: dict  # {"mean", "std", "n"} on the test split
    uar: dict
    runs: int
    seeds: list = field(default_factory=list)
    folds: list = field(default_factory=list)
    recipe: str | None = None  # a recipe name, or the flags it was trained with
    weights: str | None = None  # the Hub model repo id of the published checkpoint
    license: str | None = None  # of the weights, where it restricts use
    log: str | None = None  # where the numbers come from (a metrics.json, a test, a Hub file)

    @property
    def key(self) -> tuple:
        return self.model, self.variant, self.protocol, self.data


def load_index(path: str | Path = INDEX) -> list[ZooEntry]:
    """The index's entries; a file that is not one is a one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        known = {f.name for f in fields(ZooEntry)}
        return [ZooEntry(**{k: v for k, v in entry.items() if k in known}) for entry in document.get("models") or []]
    except (yaml.YAMLError, TypeError, AttributeError) as e:
        raise ModelZooError(f"{path}: not a model zoo index ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None


def save_index(entries: list[ZooEntry], path: str | Path = INDEX) -> None:
    header = "# The model zoo as data: regenerate with python -m model_zoo.report RUNS --index model_zoo/index.yml\n"
    models = [{k: v for k, v in asdict(e).items() if v not in (None, [], {})} for e in sorted(entries, key=ZooEntry.key.fget)]
    Path(path).write_text(header + yaml.safe_dump({"models": models}, sort_keys=False, allow_unicode=True))


def entries_from_rows(rows: list[dict], logs: dict[tuple, list[Path]] | None = None) -> list[ZooEntry]:
    """Index entries from `model_zoo.report.summarise` rows (`logs`: the runs behind each row)."""
    out = []
    for r in rows:
        where = (logs or {}).get((r["model"], r["variant"], r["protocol"], r["source"]), [])
        out.append(ZooEntry(
            model=r["model"], variant=r["variant"], protocol=r["protocol"],
            data="synthetic sample" if r["source"] == "synthetic" else "CREMA-D",
            accuracy={k: round(v, 4) if isinstance(v, float) else v for k, v in r["accuracy"].items()},
            uar={k: round(v, 4) if isinstance(v, float) else v for k, v in r["uar"].items()},
            runs=r["runs"], seeds=list(r["seeds"]), folds=list(r["folds"]), recipe=r["recipe"],
            log=", ".join(str(p / "metrics.json") for p in where) or None))
    return out


def merge(index: list[ZooEntry], new: list[ZooEntry]) -> list[ZooEntry]:
    """`index` with `new` entries replacing those of the same model, config, protocol and data (their
    published weights and license kept unless the new entry names its own)."""
    by_key = {e.key: e for e in index}
    for e in new:
        old = by_key.get(e.key)
        if old is not None and e.weights is None:
            e = ZooEntry(**{**asdict(e), "weights": old.weights, "license": old.license})
        by_key[e.key] = e
    return list(by_key.values())


def list_pretrained(filter: str = "*", path: str | Path = INDEX) -> list[ZooEntry]:
    """The zoo's published checkpoints (entries with a Hub repo id) whose model name matches `filter`;
    load one with `model_zoo.from_pretrained(entry.weights)`."""
    return [e for e in load_index(path) if e.weights and fnmatch.fnmatch(e.model, filter)]


def mean_std(stat: dict | None) -> str:
    """A `{"mean", "std", "n"}` summary as a table shows it: the mean alone for one run, "-" for none."""
    if stat is None:
        return "-"
    return f"{stat['mean']:.3f}" if stat.get("n", 1) == 1 else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def table(entries: list[ZooEntry]) -> str:
    """The results table the README and docs/model_zoo.md show."""
    body = [[e.model, e.variant, e.protocol + (f" ({len(e.folds)} folds)" if e.folds else ""), e.data, mean_std(e.accuracy),
             mean_std(e.uar), e.runs, e.recipe or "flags", f"`{e.weights}`" if e.weights else "-", f"`{e.log}`" if e.log else "-"]
            for e in sorted(entries, key=ZooEntry.key.fget)]
    return markdown_table(["model", "config", "protocol", "data", "test accuracy", "test UAR", "runs", "recipe",
                           "weights", "log"], body)


def update_docs(paths, entries: list[ZooEntry]) -> list[Path]:
    """Rewrite the table between the zoo-index markers of each file; a file without them is an error."""
    changed = []
    for path in map(Path, paths):
        text = path.read_text(encoding="utf-8")
        if START not in text or END not in text:
            raise ModelZooError(f"{path}: no {START} ... {END} markers; add them where the zoo's table belongs")
        head, rest = text.split(START, 1)
        new = f"{head}{START}\n{table(entries)}\n{END}{rest.split(END, 1)[1]}"
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed
