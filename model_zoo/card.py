"""The model card of a zoo checkpoint: Hub metadata (model-index, base model, licenses) and text.

    card = render_model_card(model, metrics=read_metrics("runs/x/metrics.json"), dataset_repo_id="org/crema-d")
    card.save("runs/x/README.md")
    model_index(metrics, "org/crema-d")            # the `model-index` list alone

The card is rendered with huggingface_hub's `ModelCard` from `cards/model_card.md`, so its metadata
round-trips through `ModelCard.load`. `model-index` holds one result per held-out split of the
training run (task, dataset repo id, config, split, revision, and the protocol and seeds as dataset
arguments) with accuracy, UAR (macro recall) and macro-F1: the mean over training seeds, with the
standard deviation in the metric's arguments, when the run has several. It needs a Hub dataset id:
without one the card keeps the numbers in its text only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from crema_tools.hub import is_repo_id
from crema_tools.variants import VARIANTS

from .config import ModelZooError

LIBRARY = "crema-tools"
TAGS = ("crema-d", "emotion-recognition", "audio-visual")
METRICS = (  # metrics.json key, Hub metric id, its arguments, what the card calls it
    ("accuracy", "accuracy", None, "Accuracy"),
    ("uar", "recall", {"average": "macro"}, "UAR"),
    ("macro_f1", "f1", {"average": "macro"}, "Macro-F1"),
)
HUMAN_CREMA_D = {"audio": ("voice only", 0.409), "vision": ("face only", 0.582), "multimodal": ("audio-visual", 0.636)}
"""The CREMA-D raters' accuracy over the whole corpus, as the CREMA-D paper reports it."""


class MetricsError(ModelZooError):
    """A metrics.json that cannot be read as a training run's results: names the file and the key."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_metrics(path: str | Path) -> dict:
    """A training run's metrics.json, checked where the card relies on it; unknown keys are kept.

    Needs `splits` ({split: {"samples", "accuracy", ...}}); `uar`, `macro_f1`, `summary`, `human`,
    `seeds`, `dataset` and `recipe` are optional. A wrong type is an error naming the key.
    """
    path = Path(path)
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MetricsError(f"{path}: cannot be read as JSON ({e})") from None
    return check_metrics(metrics, str(path))


def check_metrics(metrics: Any, where: str = "metrics") -> dict:
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
        for key, *_ in METRICS:
            if key in scores and not _number(scores[key]):
                bad(f"splits.{split}.{key}", "a number")
        if not _number(scores.get("accuracy")):
            bad(f"splits.{split}.accuracy", "a number")
    for split, summary in (metrics.get("summary") or {}).items():
        for key, *_ in METRICS:
            stats = summary.get(key) if isinstance(summary, dict) else None
            if stats is not None and not (isinstance(stats, dict) and _number(stats.get("mean"))
                                          and (stats.get("std") is None or _number(stats["std"]))):
                bad(f"summary.{split}.{key}", "an object with a numeric mean and std")
    seeds = metrics.get("seeds")
    if seeds is not None and not (isinstance(seeds, list) and all(isinstance(s, int) for s in seeds)):
        bad("seeds", "a list of integers")
    dataset = metrics.get("dataset")
    if dataset is not None and not isinstance(dataset, dict):
        bad("dataset", 'an object {"path_or_repo", "revision"}')
    for key in ("model", "variant", "protocol", "source", "recipe"):
        if metrics.get(key) is not None and not isinstance(metrics[key], str):
            bad(key, "a string")
    return metrics


def held_out(metrics: dict) -> list[str]:
    """The evaluated splits a card reports: every split but train and empty ones, validation before test."""
    order = {"validation": 0, "test": 1}
    return sorted((s for s, m in metrics["splits"].items() if s != "train" and m["samples"] > 0),
                  key=lambda s: (order.get(s, 2), s))


def dataset_repo_of(metrics: dict) -> tuple[str | None, str | None]:
    """(Hub dataset id, revision) the run was evaluated on, if metrics.json names a Hub repo."""
    dataset = metrics.get("dataset") or {}
    source = dataset.get("path_or_repo")
    if isinstance(source, str) and is_repo_id(source) and not Path(source).exists():
        return source, dataset.get("revision")
    return None, None


def base_model_of(weights: str | None) -> str | None:
    """The Hub model id the initial weights came from (`hf:ORG/NAME`), if they came from the Hub."""
    if weights and weights.startswith("hf:"):
        weights = weights[3:]
    return weights if weights and is_repo_id(weights) else None


def run_seeds(metrics: dict) -> list[int]:
    """The training seeds behind the figures: `seeds` for several runs, else the run's own."""
    if metrics.get("seeds"):
        return list(metrics["seeds"])
    return [metrics["training_seed"]] if isinstance(metrics.get("training_seed"), int) else []


def task_type(variant: str, frames: int | None = None) -> str:
    v = VARIANTS.get(variant)
    return "video-classification" if (v.family == "3d" if v else frames) else "image-classification"


def _stat(metrics: dict, split: str, key: str) -> tuple[float | None, float | None]:
    """(value, std): the mean over seeds when the run has a summary, else the single run's value."""
    stats = ((metrics.get("summary") or {}).get(split) or {}).get(key)
    if isinstance(stats, dict) and _number(stats.get("mean")):
        return float(stats["mean"]), (float(stats["std"]) if _number(stats.get("std")) else None)
    value = metrics["splits"][split].get(key)
    return (float(value), None) if _number(value) else (None, None)


def eval_results(metrics: dict, dataset_repo_id: str, config: str | None = None, *,
                 dataset_revision: str | None = None, dataset_name: str | None = None):
    """`huggingface_hub.EvalResult`s of a run: one per held-out split and metric."""
    from huggingface_hub import EvalResult

    check_metrics(metrics)
    config = config or metrics.get("variant")
    seeds = run_seeds(metrics)
    several = len(seeds) > 1 or bool(metrics.get("summary"))
    protocol = metrics.get("protocol")
    args = {k: v for k, v in {"protocol": protocol, "split_seed": metrics.get("seed"), "fold": metrics.get("fold"),
                              "source": metrics.get("source")}.items() if v is not None}
    results = []
    for split in held_out(metrics):
        for key, hub_id, metric_args, label in METRICS:
            value, std = _stat(metrics, split, key)
            if value is None:
                continue
            extra = {"seeds": seeds} if seeds else {}
            if several and std is not None:
                extra["std"] = round(std, 6)
            name = f"{label} ({split}, {protocol} protocol"
            name += f", mean of {len(seeds)} seeds)" if several and len(seeds) > 1 else ")"
            results.append(EvalResult(
                task_type=task_type(config or ""), task_name="Emotion recognition",
                dataset_type=dataset_repo_id, dataset_name=dataset_name or f"CREMA-D {config}",
                dataset_config=config, dataset_split=split, dataset_revision=dataset_revision,
                dataset_args=args or None, metric_type=hub_id, metric_value=round(value, 6), metric_name=name,
                metric_args={**(metric_args or {}), **extra} or None,
            ))
    return results


def model_index(metrics: dict, dataset_repo_id: str, config: str | None = None, *,
                dataset_revision: str | None = None, model_name: str | None = None) -> list[dict]:
    """The `model-index` metadata of a run's card (the list under that key)."""
    from huggingface_hub.repocard_data import eval_results_to_model_index

    name = model_name or f"{metrics.get('model', 'model')}-{config or metrics.get('variant', '')}".rstrip("-")
    return eval_results_to_model_index(name, eval_results(metrics, dataset_repo_id, config,
                                                          dataset_revision=dataset_revision))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _results_table(metrics: dict) -> str:
    from crema_tools.tables import markdown_table

    rows = []
    for split in held_out(metrics):
        cells = []
        for key, *_ in METRICS:
            value, std = _stat(metrics, split, key)
            cells.append(_percent(value) + (f" ± {100 * std:.1f}" if std is not None else ""))
        rows.append([split, metrics["splits"][split]["samples"], *cells])
    return markdown_table(["split", "clips", *(label for *_, label in METRICS)], rows)


def _human_lines(metrics: dict | None, variant: str) -> list[str]:
    lines = []
    for split in held_out(metrics) if metrics else []:
        human = (metrics.get("human") or {}).get(split) or metrics["splits"][split].get("human") or {}
        if _number(human.get("accuracy")):
            kind = human.get("modality") or human.get("ratings") or "matching"
            lines.append(f"- CREMA-D raters ({kind} ratings) on the same {split} clips: {_percent(human['accuracy'])}.")
    v = VARIANTS.get(variant)
    if v is not None:
        kind, accuracy = HUMAN_CREMA_D[v.modality]
        lines.append(f"- CREMA-D raters, {kind}, over the whole corpus (Cao et al., 2014): {_percent(accuracy)}.")
    return lines


def _load_args(cfg) -> str:
    options = cfg.load_options() if hasattr(cfg, "load_options") else (
        {"channels": cfg.input_size[0], **({"pad_to": cfg.frames} if cfg.frames else {})})
    if options.get("channels") == 3:
        options.pop("channels")
    return "".join(f", {k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in options.items())


def render_model_card(model, metrics: dict | None = None, dataset_repo_id: str | None = None, *,
                      repo_id: str | None = None, dataset_revision: str | None = None,
                      evaluation: str | None = None):
    """The `huggingface_hub.ModelCard` of `model` (a ZooModel), with its evaluation when `metrics` is given.

    `dataset_repo_id` (a Hub dataset id) puts `datasets` and `model-index` in the metadata; without it,
    the card names no dataset id and keeps the numbers in its text. `repo_id` is the model's own
    repository, for the snippet. `evaluation` is extra Markdown for the evaluation section.
    """
    from crema_tools.cards import card_template
    from huggingface_hub import ModelCard, ModelCardData

    cfg = model.pretrained_cfg
    if metrics is not None:
        check_metrics(metrics)
    if dataset_repo_id is not None and not is_repo_id(dataset_repo_id):
        raise ModelZooError(f"dataset repo id {dataset_repo_id!r} is not of the form ORG/NAME")
    if metrics is not None and dataset_repo_id is None:
        dataset_repo_id, revision = dataset_repo_of(metrics)
        dataset_revision = dataset_revision or revision
    restricted = cfg.license is not None and "NC" in cfg.license.upper()
    synthetic = (metrics or {}).get("source") == "synthetic"
    base_model = base_model_of(cfg.weights)
    name = (repo_id.split("/", 1)[1] if repo_id else f"{cfg.model_name}-{cfg.variant}")
    results = (eval_results(metrics, dataset_repo_id, cfg.variant, dataset_revision=dataset_revision)
               if metrics is not None and dataset_repo_id else None)
    data = ModelCardData(
        library_name=LIBRARY,
        license="cc-by-nc-4.0" if restricted else "apache-2.0",
        tags=sorted({*TAGS, cfg.variant, cfg.model_name, *(["synthetic"] if synthetic else [])}),
        datasets=[dataset_repo_id] if dataset_repo_id else None,
        base_model=base_model,
        metrics=[hub_id for _, hub_id, *_ in METRICS] if results else None,
        pipeline_tag=task_type(cfg.variant, cfg.frames),
        model_name=name if results else None,
        eval_results=results or None,
        **({"base_model_relation": "finetune"} if base_model else {}),
    )
    v = VARIANTS.get(cfg.variant)
    protocol = (metrics or {}).get("protocol")
    seeds = run_seeds(metrics) if metrics else []
    return ModelCard.from_template(
        card_data=data,
        template_str=card_template("model_card.md"),
        model_name=cfg.model_name,
        variant=cfg.variant,
        repo_id=repo_id or "<this repository or folder>",
        dataset_repo_id=dataset_repo_id or "<dataset repository or folder>",
        labels=", ".join(cfg.label_names),
        num_parameters=f"{model.num_parameters():,}",
        input_shape=str(tuple(cfg.input_shape)),
        mean=list(cfg.mean),
        std=list(cfg.std),
        weights=cfg.weights or "random initialisation",
        weights_license=cfg.license,
        restricted=restricted,
        load_args=_load_args(cfg),
        synthetic=synthetic,
        evaluated=metrics is not None,
        results_table=_results_table(metrics) if metrics is not None else "",
        protocol=protocol,
        split_seed=(metrics or {}).get("seed"),
        fold=(metrics or {}).get("fold"),
        seeds=", ".join(map(str, seeds)),
        several_seeds=len(seeds) > 1 or bool((metrics or {}).get("summary")),
        training_seed=(metrics or {}).get("training_seed"),
        recipe=(metrics or {}).get("recipe"),
        dataset_revision=dataset_revision,
        human_lines="\n".join(_human_lines(metrics, cfg.variant)),
        evaluation=evaluation or "",
        modality=v.modality if v else None,
    )
