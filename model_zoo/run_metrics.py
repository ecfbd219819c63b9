"""A training run's metrics.json as one type: train writes it, report, the card and push read it.

    run = RunMetrics.load("runs/x/metrics.json")     # checked: a bad file names the key at fault
    run.held_out(), run.stat("test", "uar"), run.dataset_repo()
    run.save("runs/x/metrics.json")

The JSON object is kept whole (`document`), unknown keys included, so a run written by another
version of crema-tools reads, and writes back, unchanged. `RunMetrics` is also a read-only mapping
of it, so what took the metrics as a dict still does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from crema_tools.corpus.splits import PROTOCOLS
from crema_tools.hub import is_repo_id

from .config import ModelZooError
from .metrics import METRICS

GROUP = ("model", "variant", "protocol", "source")
"""What the report averages runs over (their seeds or folds differ); each row of its summary.json carries these keys."""


class MetricsError(ModelZooError):
    """A metrics.json that cannot be read as a training run's results: names the file and the key."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_metrics(metrics: Any, where: str = "metrics") -> dict:
    """`metrics` itself, once it holds what the card relies on; a wrong type is an error naming the key.

    Needs `splits` ({split: {"samples", "accuracy", ...}}); the other `METRICS`, `summary`, `human`,
    `seeds`, `dataset` and `recipe` are optional; unknown keys are kept.
    """
    def bad(key: str, want: str):
        raise MetricsError(f"{where}: {key} should be {want}")

    if not isinstance(metrics, dict):
        bad("the top level", "an object")
    splits = metrics.get("splits")
    if not isinstance(splits, dict) or not splits:
        bad("splits", "an object of split name -> scores")
    for split, scores in splits.items():
        if not isinstance(scores, dict):
            bad(f"splits.{split}", "an object")
        if not isinstance(scores.get("samples"), int):
            bad(f"splits.{split}.samples", "an integer")
        for spec in METRICS:
            if spec.key in scores and not _number(scores[spec.key]):
                bad(f"splits.{split}.{spec.key}", "a number")
        if not _number(scores.get("accuracy")):
            bad(f"splits.{split}.accuracy", "a number")
    for split, summary in (metrics.get("summary") or {}).items():
        for spec in METRICS:
            stats = summary.get(spec.key) if isinstance(summary, dict) else None
            if stats is not None and not (isinstance(stats, dict) and _number(stats.get("mean"))
                                          and (stats.get("std") is None or _number(stats["std"]))):
                bad(f"summary.{split}.{spec.key}", "an object with a numeric mean and std")
    seeds = metrics.get("seeds")
    if seeds is not None and not (isinstance(seeds, list) and all(isinstance(s, int) for s in seeds)):
        bad("seeds", "a list of integers")
    dataset = metrics.get("dataset")
    if dataset is not None and not isinstance(dataset, dict):
        bad("dataset", 'an object {"path_or_repo", "revision"}')
    for key in ("model", "variant", "protocol", "source", "recipe"):
        if metrics.get(key) is not None and not isinstance(metrics[key], str):
            bad(key, "a string")
    split_file = metrics.get("split_file")
    if split_file is not None and not (isinstance(split_file, dict) and isinstance(split_file.get("name"), str)
                                       and isinstance(split_file.get("sha256"), str)):
        bad("split_file", 'an object {"name", "sha256"}')
    return metrics


class RunMetrics(Mapping):
    """One training run's results and how they were made (metrics.json), or the mean over several runs.

    Keys written by `model_zoo.train`: the run record (model, variant, recipe, protocol, seed (of
    the split), fold, split_file ({name, sha256, format} of a split-file build, else None),
    actors_in_more_than_one_split, training_seed, source, dataset, training, versions), best_epoch, history,
    splits ({split: the scores of `metrics.scores`, breakdowns, human, predictions}), human and
    data. A card for one run of several also carries `summary` ({split: {metric: {mean, std}}}) and
    `seeds`. Wrapping a dict does not check it (the report summarises hand-made runs too); `load`
    and `checked` do.
    """

    __slots__ = ("document",)

    def __init__(self, document: dict):
        self.document = document

    @classmethod
    def load(cls, path: str | Path) -> RunMetrics:
        """Read and check a metrics.json; what cannot be read is a `MetricsError` naming the file."""
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise MetricsError(f"{path}: cannot be read as JSON ({e})") from None
        return cls(check_metrics(document, str(path)))

    @classmethod
    def of(cls, metrics: RunMetrics | Mapping) -> RunMetrics:
        """`metrics` as a RunMetrics, unchecked."""
        return metrics if isinstance(metrics, RunMetrics) else cls(metrics)

    @classmethod
    def checked(cls, metrics: RunMetrics | Mapping, where: str = "metrics") -> RunMetrics:
        """`metrics` as a RunMetrics, checked as `load` checks a file."""
        run = cls.of(metrics)
        check_metrics(run.document, where)
        return run

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.document, indent=2) + "\n", encoding="utf-8")

    def to_dict(self) -> dict:
        return self.document

    def __getitem__(self, key: str) -> Any:
        return self.document[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.document)

    def __len__(self) -> int:
        return len(self.document)

    def __repr__(self) -> str:
        return f"RunMetrics({self.model!r}, {self.variant!r}, splits={list(self.splits)})"

    # ------------------------------------------------------------ how the numbers were made

    @property
    def model(self) -> str | None:
        return self.document.get("model")

    @property
    def variant(self) -> str | None:
        return self.document.get("variant")

    @property
    def model_label(self) -> str | None:
        """The model as tables name it: separate encoders with their fusion head and balancing method."""
        training = self.document.get("training") or {}
        extras = [str(x) for x in (training.get("fusion"), training.get("method")) if x]
        return f"{self.model} ({', '.join(extras)})" if extras and self.model else self.model

    @property
    def judged_on(self) -> str | None:
        """The modality whose own logits a unimodal run is selected and scored by (None: the fused logits)."""
        return (self.document.get("training") or {}).get("judged_on")

    def modality_score(self, split: str, modality: str, key: str) -> float | None:
        """A separate-encoder run's score of one modality's own logits (evaluate's `modalities`)."""
        value = ((self.splits[split].get("modalities") or {}).get(modality) or {}).get(key)
        return float(value) if _number(value) else None

    @property
    def protocol(self) -> str | None:
        return self.document.get("protocol")

    @property
    def source(self) -> str | None:
        """What the data was built from: "crema-d" or "synthetic"."""
        return self.document.get("source")

    @property
    def recipe(self) -> str | None:
        return self.document.get("recipe")

    @property
    def split_seed(self) -> int | None:
        """The seed of the dataset's split (metrics.json `seed`), not of training."""
        return self.document.get("seed")

    @property
    def fold(self) -> int | None:
        return self.document.get("fold")

    @property
    def split_file(self) -> dict | None:
        """The split file the data was built from ({"name", "sha256", "format"}), None for the built-in protocols."""
        return self.document.get("split_file")

    @property
    def training_seed(self) -> int | None:
        return self.document.get("training_seed")

    @property
    def run_seed(self) -> int | None:
        """What tells this run from the others of its group: its training seed, or the split's if it records none."""
        return self.document.get("training_seed", self.split_seed)

    @property
    def group(self) -> tuple:
        """The run's `GROUP` values: (model, variant, protocol, source), "?" for a source not recorded;
        the model as `model_label` names it, so that fusion heads and methods are never averaged together.

        The protocol of a split-file run names the file and its sha256, so runs on two different
        split files are never averaged together."""
        protocol = self.protocol
        if self.split_file is not None:
            protocol = f"{protocol} {self.split_file.get('name')} (sha256 {str(self.split_file.get('sha256'))[:12]})"
        return self.model_label, self.variant, protocol, self.document.get("source", "?")

    def training_seeds(self) -> list[int]:
        """The training seeds behind the figures: `seeds` for several runs, else the run's own."""
        if self.document.get("seeds"):
            return list(self.document["seeds"])
        return [self.training_seed] if isinstance(self.training_seed, int) else []

    @property
    def several_runs(self) -> bool:
        """Whether the figures are means over several runs."""
        return len(self.training_seeds()) > 1 or bool(self.summary)

    @property
    def dataset_source(self) -> str | None:
        """The dataset folder or Hub dataset repo id the run was trained and evaluated on."""
        return (self.document.get("dataset") or {}).get("path_or_repo")

    def dataset_repo(self) -> tuple[str | None, str | None]:
        """(Hub dataset id, revision) the run was evaluated on, if metrics.json names a Hub repo."""
        source = self.dataset_source
        if isinstance(source, str) and is_repo_id(source) and not Path(source).exists():
            return source, (self.document.get("dataset") or {}).get("revision")
        return None, None

    # ------------------------------------------------------------ the numbers

    @property
    def splits(self) -> dict[str, dict]:
        return self.document.get("splits", {})

    def held_out(self) -> list[str]:
        """The evaluated splits a card reports: every split but train and empty ones, validation before test."""
        order = {"validation": 0, "test": 1}
        return sorted((s for s, m in self.splits.items() if s != "train" and m["samples"] > 0),
                      key=lambda s: (order.get(s, 2), s))

    def is_dataset_split(self, split: str) -> bool:
        """Whether `split` is a split of the dataset itself, one `load_dataset(..., split=split)` opens.

        Every evaluated split is but `validation` under a protocol without one (paper, ogm-ge, hicmae):
        training then validates on a seeded hold-out of train and records its scores under that name,
        and `training.validation` says which it was. A run that does not record it is judged by its
        protocol's splits; a split-file run (its splits are the file's) then counts as having none.
        """
        if split != "validation":
            return True
        recorded = self.validation_source
        if recorded is not None:
            return recorded == "validation"
        protocol = PROTOCOLS.get(self.protocol or "")
        return protocol is not None and "validation" in protocol.splits

    @property
    def validation_source(self) -> str | None:
        """What training validated on: "validation" (the split) or the hold-out of train it carved
        ("held-out 10% of train (seed 0, by clip id)"); None if metrics.json does not say."""
        recorded = (self.document.get("training") or {}).get("validation")
        return recorded if isinstance(recorded, str) else None

    def samples(self, split: str) -> int:
        return self.splits[split]["samples"]

    def score(self, split: str, key: str) -> float | None:
        """The run's own value of a metric (a `METRICS` key) on a split; None if not recorded. A unimodal
        run's is its modality's (`judged_on`): its fused logits hold an encoder that never trained."""
        if self.judged_on:
            return self.modality_score(split, self.judged_on, key)
        return self.splits[split].get(key)

    def stat(self, split: str, key: str) -> tuple[float | None, float | None]:
        """(value, std): the mean over seeds when the run has a summary, else the run's own value."""
        stats = ((self.summary or {}).get(split) or {}).get(key)
        if isinstance(stats, dict) and _number(stats.get("mean")):
            return float(stats["mean"]), (float(stats["std"]) if _number(stats.get("std")) else None)
        value = self.score(split, key)
        return (float(value), None) if _number(value) else (None, None)

    def human(self, split: str) -> tuple[float | None, str | None]:
        """(accuracy, which ratings) of the CREMA-D raters on the split's clips, if recorded."""
        human = (self.document.get("human") or {}).get(split) or self.splits[split].get("human") or {}
        accuracy = human.get("accuracy")
        return (accuracy if _number(accuracy) else None), human.get("modality") or human.get("ratings")

    @property
    def summary(self) -> dict | None:
        """The mean and std over several runs, {split: {metric: {mean, std}}}, when the file carries them."""
        return self.document.get("summary")

    def with_summary(self, summary: dict, seeds: list[int]) -> RunMetrics:
        """This run with the mean and std over its sibling runs ({split: {metric: {mean, std}}}) and their seeds."""
        return RunMetrics({**self.document, "summary": summary, **({"seeds": seeds} if seeds else {})})
