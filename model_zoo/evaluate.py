"""Evaluate a checkpoint on a built split: the numbers the field reports, and where they come from.

    python -m model_zoo.evaluate --model runs/resnet18-2d-mm --data crema-d-datasets --split test
    accelerate launch -m model_zoo.evaluate --model ORG/NAME --data ORG/DATASET --split test

Writes `<out>/eval-<split>.json` (accuracy = WAR, UAR, macro-F1, per-emotion scores, confusion
matrix, breakdowns by intensity and actor sex, the CREMA-D raters' accuracy on the same clips) and
`<out>/confusion-<split>.png`. Multimodal models are also scored with each modality blanked (the
paper's "Ablated I3D"). Separate-encoder models also report each modality's own logits' scores
(`modalities`). Each clip counts exactly once, whatever the number of processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import gather_object

import crema_tools
from crema_tools.loading import collate, resolve
from crema_tools.loading.transforms import to_model_input
from crema_tools.variants import get_variant

from .cli import OneLineParser, one_line_errors
from .metrics import METRICS, Prediction, evaluation, plot_confusion, scores_line


@torch.no_grad()
def predict(model, loader, accelerator, ablate: str | None = None,
            per_modality: dict[str, list[Prediction]] | None = None) -> list[Prediction]:
    """Every clip of the loader's split once, over all processes (each process runs its share).

    With `per_modality` (a dict) and a separate-encoder model, each modality's own predictions
    are put in it too, from the same pass."""
    model.eval()
    net = accelerator.unwrap_model(model)
    cfg, modalities = net.pretrained_cfg, getattr(net, "modalities", None) if per_modality is not None else None
    mine, mine_parts = [], {m: [] for m in modalities or ()}
    for batch in loader:
        inputs = to_model_input(batch, cfg.mean, cfg.std, accelerator.device, blank=ablate)
        logits, parts = model(inputs, return_parts=True)[:2] if modalities else (model(inputs), {})
        for cid, label, pred in zip(batch["clip_id"], batch["label"].tolist(), logits.argmax(-1).tolist()):
            mine.append(Prediction(cid, label, pred))
        for m, part in parts.items():
            mine_parts[m] += [Prediction(c, y, p) for c, y, p in zip(batch["clip_id"], batch["label"].tolist(),
                                                                      part.argmax(-1).tolist())]
    for m, preds in mine_parts.items():
        per_modality[m] = sorted(gather_object(preds) if accelerator.num_processes > 1 else preds, key=lambda p: p.clip_id)
    everyone = gather_object(mine) if accelerator.num_processes > 1 else mine
    return sorted(everyone, key=lambda p: p.clip_id)


def split_loader(folder, variant: str, split: str, cfg, batch_size: int, num_workers: int, **load_kwargs):
    dataset = crema_tools.load(folder, variant, split, **cfg.load_options(), **load_kwargs)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)


def evaluate_split(model, loader, accelerator, modality: str, ablations: bool = True) -> dict:
    """The split's metrics; for multimodal models also with the audio and the vision part blanked."""
    per_modality: dict[str, list[Prediction]] = {}
    preds = predict(model, loader, accelerator, per_modality=per_modality)
    result = evaluation(preds, modality)
    result["predictions"] = [[p.clip_id, p.label, p.predicted] for p in preds]
    if per_modality:  # a separate-encoder model: each modality's own logits
        result["modalities"] = {}
        for part, part_preds in per_modality.items():
            scores = evaluation(part_preds, modality)
            result["modalities"][part] = {"samples": scores["samples"], **{spec.key: scores[spec.key] for spec in METRICS}}
    if ablations and modality == "multimodal":
        result["ablation"] = {}
        for part in ("audio", "vision"):
            scores = evaluation(predict(model, loader, accelerator, ablate=part), modality)
            result["ablation"][f"{part}_blanked"] = {"samples": scores["samples"], **{spec.key: scores[spec.key] for spec in METRICS}}
    return result


def parse_args(argv=None):
    ap = OneLineParser(description="Evaluate a model_zoo checkpoint on a split of a built CREMA-D config.")
    ap.add_argument("--model", required=True, help="a checkpoint folder (save_pretrained / train --out) or Hub model id")
    ap.add_argument("--data", required=True, help="a built dataset folder or Hub dataset repo id")
    ap.add_argument("--split", default="test", help="which split (default test)")
    ap.add_argument("--variant", default=None, help="the config to read (default: the model's variant)")
    ap.add_argument("--out", type=Path, default=None, help="folder for eval-<split>.json and the PNG (default: --model if a folder, else .)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader workers per process")
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    from accelerate import Accelerator

    from .registry import load_model

    args = parse_args(argv)
    with one_line_errors():
        accelerator = Accelerator()
        model = load_model(args.model).to(accelerator.device)
        cfg = model.pretrained_cfg
        variant = args.variant or cfg.variant
        folder = resolve(args.data, variant)
        loader = split_loader(folder, variant, args.split, cfg, args.batch_size, args.num_workers)
        modality = get_variant(variant).modality
        result = evaluate_split(model, loader, accelerator, modality)
        accelerator.end_training()  # the process group destroyed before exit, where gloo's teardown can abort
    out = args.out or (Path(args.model) if Path(args.model).is_dir() else Path("."))
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        report = loader.dataset.report
        provenance = report.provenance
        result = {"model": cfg.model_name, "variant": variant, "split": args.split,
                  **{k: provenance[k] for k in ("protocol", "seed", "fold", "source")},
                  "split_file": report.split_file and {k: report.split_file.get(k) for k in ("name", "sha256", "format")},
                  **result}
        (out / f"eval-{args.split}.json").write_text(json.dumps(result, indent=2) + "\n")
        plot_confusion(np.array(result["confusion"]), out / f"confusion-{args.split}.png",
                       f"{cfg.model_name} on {variant} {args.split} ({report['protocol']}): "
                       f"acc {result['accuracy']:.3f}, UAR {result['uar']:.3f}")
        print(f"{args.split}: {scores_line(result)} over {result['samples']} clips; raters "
              f"{result['human']['accuracy'] or float('nan'):.3f} -> {out / f'eval-{args.split}.json'}")
    return result


if __name__ == "__main__":
    main()
