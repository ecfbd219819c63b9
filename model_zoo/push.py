"""Publish a training run on the Hugging Face Hub: its weights, config, card and metrics.

    python -m model_zoo.push runs/i3d-3d-mm --repo-id my-org/i3d-crema-d-3d-multimodal

    from model_zoo.push import push_run                  # e.g. for model_zoo.train --push-to-hub
    push_run("runs/i3d-3d-mm", "my-org/i3d-crema-d-3d-multimodal", dataset_repo_id="my-org/crema-d")

A run folder (model_zoo.train --out) holds model.safetensors, config.json, README.md and
metrics.json. `push_run` loads the checkpoint as a user will (strictly: one that does not load is
not pushed), checks metrics.json, renders the card with its `model-index` for the dataset
repository the run was evaluated on, and uploads weights, config.json (naming the library), card
and metrics.json in one commit. The run folder is left as it is. Call it from the main process only.

The token comes from huggingface_hub alone (`hf auth login` or HF_TOKEN); none is taken here.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from crema_tools.hub import hub_errors, repo_url, require_repo_id, require_token

from .cli import OneLineParser, one_line_errors
from .config import ModelZooError
from .metrics import METRICS
from .registry import from_pretrained
from .run_metrics import GROUP, RunMetrics


@dataclass
class PushedRun:
    repo_id: str
    revision: str
    commit: str | None
    url: str
    dataset_repo_id: str


def push_run(run_dir: str | Path, repo_id: str, *, dataset_repo_id: str | None = None,
             dataset_revision: str | None = None, private: bool = False, revision: str | None = None,
             commit_message: str | None = None) -> PushedRun:
    """Upload the training run in `run_dir` to the Hub model repository `repo_id`.

    `dataset_repo_id` (ORG/NAME) is the Hub dataset the run was evaluated on, named in the card's
    `model-index`; by default the one metrics.json names, which must then be a Hub repo id (a run
    on a local folder needs it given: the repository that folder was pushed to). The repository is
    created if missing (private if `private`); `revision` is a branch, created from main if missing.
    """
    from huggingface_hub import HfApi

    run = Path(run_dir)
    require_repo_id(repo_id)
    if dataset_repo_id is not None:
        require_repo_id(dataset_repo_id, "--dataset-repo-id")
    if not run.is_dir():
        raise ModelZooError(f"{run}: no such folder; give the --out folder of model_zoo.train")
    seed_runs = sorted(p.parent.name for p in run.glob("*/model.safetensors"))
    if not (run / "model.safetensors").is_file() and seed_runs:
        raise ModelZooError(f"{run} holds several runs ({', '.join(seed_runs)}): push one of them, e.g. {run / seed_runs[0]}; "
                            "its card gives the mean and std over all of them")
    for name in ("model.safetensors", "config.json", "metrics.json"):
        if not (run / name).is_file():
            raise ModelZooError(f"{run}: no {name}; push a folder written by model_zoo.train "
                                "(a checkpoint without an evaluation: ZooModel.push_to_hub)")
    model = from_pretrained(run)
    cfg = model.pretrained_cfg
    metrics = with_summary(RunMetrics.load(run / "metrics.json"), run.parent / "summary.json")
    for key, recorded, expected in (("model", metrics.model, cfg.model_name), ("variant", metrics.variant, cfg.variant)):
        if recorded not in (None, expected):
            raise ModelZooError(f"{run}: metrics.json is for {key} {recorded!r}, the checkpoint for {expected!r}")
    if dataset_repo_id is None:
        dataset_repo_id, recorded_revision = metrics.dataset_repo()
        dataset_revision = dataset_revision or recorded_revision
        if dataset_repo_id is None:
            source = metrics.dataset_source
            raise ModelZooError(f"{run}: metrics.json names {('the dataset ' + repr(source)) if source else 'no dataset'}, "
                                "not a Hub repo id: give --dataset-repo-id ORG/NAME, the dataset repository the run's "
                                "data was pushed to (crema-tools push), for the card's model-index")
    require_token()
    api = HfApi()
    with tempfile.TemporaryDirectory(prefix="crema-tools-push-") as tmp:
        staging = Path(tmp)
        model.save_pretrained(staging, model_card_kwargs={
            "metrics": metrics, "dataset_repo_id": dataset_repo_id, "dataset_revision": dataset_revision,
            "repo_id": repo_id})
        shutil.copyfile(run / "metrics.json", staging / "metrics.json")
        where = f"model repo {repo_id}" + (f" (revision {revision})" if revision else "")
        with hub_errors(where):
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, repo_type="model", branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=staging, revision=revision,
                                     commit_message=commit_message or f"model_zoo.push: {cfg.model_name} {cfg.variant}")
    return PushedRun(repo_id, revision or "main", getattr(info, "oid", None), repo_url(repo_id, "model", revision),
                     dataset_repo_id)


push = push_run
"""The name `model_zoo.train --push-to-hub` calls."""


def with_summary(metrics: RunMetrics | dict, summary_file: Path) -> RunMetrics:
    """The run's metrics plus, for one seed of a several-seed training (`model_zoo.train --seeds`), the
    mean and std over the seeds from the `summary.json` beside it, when metrics.json has none."""
    metrics = RunMetrics.of(metrics)
    if metrics.summary or not summary_file.is_file():
        return metrics
    import json

    try:
        rows = json.loads(summary_file.read_text(encoding="utf-8")).get("rows") or []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return metrics
    mine = [r for r in rows if isinstance(r, dict) and tuple(r.get(k) for k in GROUP) == metrics.group]
    summary = {r["split"]: {spec.key: {"mean": r[spec.key]["mean"], "std": r[spec.key]["std"]} for spec in METRICS
                            if isinstance(r.get(spec.key), dict)} for r in mine if r.get("runs", 0) > 1}
    if not summary:
        return metrics
    seeds = sorted({s for r in mine for s in r.get("seeds") or [] if isinstance(s, int)})
    return metrics.with_summary(summary, seeds)


def main(argv=None) -> int:
    ap = OneLineParser(
        prog="python -m model_zoo.push",
        description="Upload a model_zoo.train run (weights, config, card with model-index, metrics) to a Hub "
                    "model repository. The token comes from `hf auth login` or HF_TOKEN.")
    ap.add_argument("run_dir", type=Path, help="the --out folder of model_zoo.train")
    ap.add_argument("--repo-id", required=True, help="Hub model repository ORG/NAME; created if missing")
    ap.add_argument("--dataset-repo-id", help="Hub dataset repository ORG/NAME the run was evaluated on "
                                              "(default: the one metrics.json names)")
    ap.add_argument("--dataset-revision", help="its revision (default: the one metrics.json names)")
    ap.add_argument("--private", action="store_true", help="create the repository private")
    ap.add_argument("--revision", help="branch to push to, created from main if missing (default: main)")
    args = ap.parse_args(argv)
    with one_line_errors():
        pushed = push_run(args.run_dir, args.repo_id, dataset_repo_id=args.dataset_repo_id,
                          dataset_revision=args.dataset_revision, private=args.private, revision=args.revision)
    revision_arg = f', revision="{pushed.revision}"' if pushed.revision != "main" else ""
    print(f"pushed to {pushed.url} (revision {pushed.revision}, commit {pushed.commit}); "
          f"model-index names the dataset {pushed.dataset_repo_id}")
    print(f'Load it: model_zoo.from_pretrained("{pushed.repo_id}"{revision_arg})')
    return 0


if __name__ == "__main__":
    sys.exit(main())
