"""The model card of a zoo checkpoint: Hub metadata (model-index, base model, licenses) and text.

    card = render_model_card(model, metrics=RunMetrics.load("runs/x/metrics.json"), dataset_repo_id="org/crema-d")
    card.save("runs/x/README.md")
    model_index(metrics, "org/crema-d")            # the `model-index` list alone

The card is rendered with huggingface_hub's `ModelCard` from `cards/model_card.md`, so its metadata
round-trips through `ModelCard.load`. `model-index` follows the Hub's spec: one result per
evaluated split that exists in the dataset, with exactly what `load_dataset` takes to open it
(dataset repo id, `config` = the representation, `split`, `revision`; no other `args`), and
accuracy, UAR (macro recall) and macro-F1, each the mean over training seeds when the run has
several. A `validation` that was a hold-out of train (the paper's protocol has no validation split)
is not in it; its numbers, the protocol, split seed, fold, training seeds and standard deviations
are in the card's text. It needs a Hub dataset id: without one the card keeps the numbers in its
text only.
"""

from __future__ import annotations

import json
from pathlib import Path

from crema_tools.hub import is_repo_id
from crema_tools.variants import VARIANTS

from .config import ModelZooError
from .metrics import METRICS
from .run_metrics import MetricsError, RunMetrics, check_metrics  # noqa: F401 - MetricsError and check_metrics lived here

LIBRARY = "crema-tools"
"""The card's `library_name`: this library, although the Hub has no entry for it (no "Use this model"
snippet on the model page); the card's "Use" section carries the snippet instead. No library the Hub
knows loads these checkpoints (transformers and timm refuse them: `base.LIBRARY_MARKERS`; the
PyTorchModelHubMixin they are saved with is no Hub library, and its `library_name` is meant for the
library built on it), and leaving the field out is worse: the Hub's model-card docs say that without
it a repository holding a config.json is taken for transformers, whose snippet fails here."""
TAGS = ("crema-d", "emotion-recognition", "audio-visual")
HUMAN_CREMA_D = {"audio": ("voice only", 0.409), "vision": ("face only", 0.582), "multimodal": ("audio-visual", 0.636)}
"""The CREMA-D raters' accuracy over the whole corpus, as the CREMA-D paper reports it."""


def base_model_of(weights: str | None) -> str | None:
    """The Hub model id the initial weights came from (`hf:ORG/NAME`), if they came from the Hub."""
    if weights and weights.startswith("hf:"):
        weights = weights[3:]
    return weights if weights and is_repo_id(weights) else None


def task_type(variant: str, frames: int | None = None) -> str:
    v = VARIANTS.get(variant)
    return "video-classification" if (v.family == "3d" if v else frames) else "image-classification"


def eval_results(metrics: RunMetrics | dict, dataset_repo_id: str, config: str | None = None, *,
                 dataset_revision: str | None = None, dataset_name: str | None = None):
    """`huggingface_hub.EvalResult`s of a run: one per metric and evaluated split that the dataset has.

    The dataset fields are exactly `load_dataset(dataset_repo_id, config, split=..., revision=...)`'s
    arguments; metric arguments are the metric's own (`average: macro`). Protocol, seeds and standard
    deviations are no `load_dataset` or metric arguments: the card's text gives them.
    """
    from huggingface_hub import EvalResult

    run = RunMetrics.checked(metrics)
    config = config or run.variant
    seeds = run.training_seeds()
    mean_of = f", mean of {len(seeds)} training seeds" if run.several_runs and len(seeds) > 1 else ""
    results = []
    for split in filter(run.is_dataset_split, run.held_out()):
        for spec in METRICS:
            value, _ = run.stat(split, spec.key)
            if value is None:
                continue
            results.append(EvalResult(
                task_type=task_type(config or ""), task_name="Emotion recognition",
                dataset_type=dataset_repo_id,
                dataset_name=dataset_name or f"CREMA-D {config}" + (f", {run.protocol} protocol" if run.protocol else ""),
                dataset_config=config, dataset_split=split, dataset_revision=dataset_revision,
                metric_type=spec.hub_type, metric_value=round(value, 6), metric_name=f"{spec.title} ({split}{mean_of})",
                metric_args=dict(spec.hub_args) or None,
            ))
    return results


def model_index(metrics: RunMetrics | dict, dataset_repo_id: str, config: str | None = None, *,
                dataset_revision: str | None = None, model_name: str | None = None) -> list[dict]:
    """The `model-index` metadata of a run's card (the list under that key)."""
    from huggingface_hub.repocard_data import eval_results_to_model_index

    run = RunMetrics.of(metrics)
    name = model_name or f"{run.model or 'model'}-{config or run.variant or ''}".rstrip("-")
    return eval_results_to_model_index(name, eval_results(run, dataset_repo_id, config,
                                                          dataset_revision=dataset_revision))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _results_table(run: RunMetrics) -> str:
    from crema_tools.tables import markdown_table

    rows = []
    for split in run.held_out():
        cells = []
        for spec in METRICS:
            value, std = run.stat(split, spec.key)
            cells.append(_percent(value) + (f" ± {100 * std:.1f}" if std is not None else ""))
        rows.append([split if run.is_dataset_split(split) else f"{split} ¹", run.samples(split), *cells])
    return markdown_table(["split", "clips", *(spec.title for spec in METRICS)], rows)


def _holdout_note(run: RunMetrics | None) -> str:
    """What a `validation` that is no split of the dataset was, for the line under the results table; and
    whose logits a unimodal run's scores are."""
    notes = []
    if run is not None and run.judged_on:
        notes.append(f"Scores of the {run.judged_on} encoder's own logits (`model(x, return_parts=True)[1]"
                     f"[\"{run.judged_on}\"]`): a unimodal run, whose other encoder never trained, so its fused logits are not its result.")
    if run is not None and "validation" in run.held_out() and not run.is_dataset_split("validation"):
        notes.append(f"¹ Not a split of the dataset: {run.validation_source or 'a held-out part of train'}, on which "
                     "training picked its best epoch; the model-index metadata lists the dataset's own splits only.")
    return "\n\n".join(notes)


def _human_lines(run: RunMetrics | None, variant: str) -> list[str]:
    lines = []
    for split in run.held_out() if run else []:
        accuracy, ratings = run.human(split)
        if accuracy is not None:
            lines.append(f"- CREMA-D raters ({ratings or 'matching'} ratings) on the same {split} clips: {_percent(accuracy)}.")
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




def render_model_card(model, metrics: RunMetrics | dict | None = None, dataset_repo_id: str | None = None, *,
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
    run = RunMetrics.checked(metrics) if metrics is not None else None
    if dataset_repo_id is not None and not is_repo_id(dataset_repo_id):
        raise ModelZooError(f"dataset repo id {dataset_repo_id!r} is not of the form ORG/NAME")
    if run is not None and dataset_repo_id is None:
        dataset_repo_id, revision = run.dataset_repo()
        dataset_revision = dataset_revision or revision
    restricted = cfg.license is not None and "NC" in cfg.license.upper()
    synthetic = run is not None and run.source == "synthetic"
    base_model = base_model_of(cfg.weights)
    name = (repo_id.split("/", 1)[1] if repo_id else f"{cfg.model_name}-{cfg.variant}")
    results = (eval_results(run, dataset_repo_id, cfg.variant, dataset_revision=dataset_revision)
               if run is not None and dataset_repo_id else None)
    data = ModelCardData(
        library_name=LIBRARY,
        license="cc-by-nc-4.0" if restricted else "apache-2.0",
        tags=sorted({*TAGS, cfg.variant, cfg.model_name, *(["synthetic"] if synthetic else [])}),
        datasets=[dataset_repo_id] if dataset_repo_id else None,
        base_model=base_model,
        metrics=[spec.hub_type for spec in METRICS] if results else None,
        pipeline_tag=task_type(cfg.variant, cfg.frames),
        model_name=name if results else None,
        eval_results=results or None,
        **({"base_model_relation": "finetune"} if base_model else {}),
    )
    v = VARIANTS.get(cfg.variant)
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
        evaluated=run is not None,
        results_table=_results_table(run) if run is not None else "",
        holdout_note=_holdout_note(run),
        protocol=run.protocol if run else None,
        split_seed=run.split_seed if run else None,
        fold=run.fold if run else None,
        seeds=", ".join(map(str, run.training_seeds() if run else [])),
        several_seeds=run.several_runs if run else False,
        training_seed=run.training_seed if run else None,
        recipe=run.recipe if run else None,
        dataset_revision=dataset_revision,
        human_lines="\n".join(_human_lines(run, cfg.variant)),
        evaluation=evaluation or "",
        modality=v.modality if v else None,
    )


# What this module offered before metrics.json had a type; the card itself reads `RunMetrics`.


def read_metrics(path: str | Path) -> dict:
    """A training run's metrics.json as a dict, checked where the card relies on it (`RunMetrics.load`)."""
    return RunMetrics.load(path).to_dict()


def held_out(metrics: RunMetrics | dict) -> list[str]:
    return RunMetrics.of(metrics).held_out()


def dataset_repo_of(metrics: RunMetrics | dict) -> tuple[str | None, str | None]:
    return RunMetrics.of(metrics).dataset_repo()


def run_seeds(metrics: RunMetrics | dict) -> list[int]:
    return RunMetrics.of(metrics).training_seeds()
