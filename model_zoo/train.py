"""Fine-tune a zoo encoder on a built CREMA-D config, on one or many GPUs (or CPU processes).

    accelerate launch -m model_zoo.train --recipe resnet18-2d-multimodal --data crema-d-datasets --out runs/r18
    accelerate launch --mixed_precision bf16 -m model_zoo.train --recipe i3d-3d-multimodal \\
        --data crema-d-datasets --out runs/i3d --seeds 0 1 2 --report-to tensorboard

The loop reads like accelerate's complete example. Each process decodes only its own samples
(`crema_tools.load` splits by rank and worker before decoding, reshuffling every epoch); inputs
travel as uint8 and are normalised on the device. Every epoch it validates (the protocol's
validation split, or a seeded clip-stable 10% of train for the paper's protocol), keeps the best
weights by validation UAR, and saves the full training state (`--resume-from`); at the end the
best weights are evaluated on the held-out splits and written with metrics.json and a model card.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

import torch

import crema_tools
from crema_tools.corpus import in_holdout
from crema_tools.format.report import REPORT_NAME, Report
from crema_tools.loading.dataset import collate, resolve
from crema_tools.loading.transforms import to_model_input
from crema_tools.variants import VARIANTS

from .balancing import Outputs, StepContext
from .cli import OneLineParser, one_line_errors  # noqa: F401 - OneLineParser lived here
from .config import ModelZooError
from .evaluate import evaluate_split, split_loader
from .metrics import METRICS, scores_line
from .optimizers import make_optimizer, make_schedule, updates_per_epoch
from .registry import load_model
from .resume import check_resumable, find_checkpoint, load_training_state, write_record
from .run_metrics import RunMetrics
from .train_args import check_model_args, make_model, parse_args  # noqa: F401 - the command line, kept importable here

HOLDOUT = 0.1


def _not_holdout(seed: int, clip_id: str) -> bool:
    return not in_holdout(clip_id, seed, HOLDOUT)


def _holdout(seed: int, clip_id: str) -> bool:
    return in_holdout(clip_id, seed, HOLDOUT)


@dataclass
class TrainState:
    """Where training stands, saved with every checkpoint (accelerate's custom object protocol)."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # batches of the current epoch done
    global_step: int = 0
    best_uar: float = -1.0
    best_epoch: int = 0
    epoch_loss: tuple = (0.0, 0)  # the current epoch's summed loss and samples over all processes, at the save
    history: list = field(default_factory=list)
    method_state: dict = field(default_factory=dict)  # a balancing method's `saved_state` (AGM's running scores)

    def state_dict(self) -> dict:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


def datasets(args, cfg, folder: Path, seed: int):
    """Train and validation streams: the protocol's validation split, or a hold-out of train."""
    report = Report.load(folder / args.variant / REPORT_NAME)
    common = cfg.load_options()
    if "validation" in report.split_names:
        keep_train, validation, val_name = None, crema_tools.load(folder, args.variant, "validation", **common), "validation"
    else:
        keep_train = partial(_not_holdout, seed)
        validation = crema_tools.load(folder, args.variant, "train", select=partial(_holdout, seed), **common)
        val_name = f"held-out {HOLDOUT:.0%} of train (seed {seed}, by clip id)"
    train = crema_tools.load(folder, args.variant, "train", shuffle=not args.no_shuffle, seed=seed, even=True,
                             select=keep_train, **common)
    held_out = [s for s in report.split_names if s not in ("train", "validation")]
    return report, train, validation, val_name, held_out


def recompute_batchnorm(model, loader, cfg, accelerator, max_batches: int) -> None:
    """BatchNorm statistics of the current weights, averaged over training batches ("precise BN").

    The running averages trail the weights: they mix statistics of many past weights (and, after a
    few hundred steps, still part of their initial 0/1). On a small set or early in fine-tuning the
    model in eval mode then sees inputs scaled very differently from training. Recomputing them
    with the weights frozen fixes that; processes average theirs, so every rank evaluates the same model.
    """
    net = accelerator.unwrap_model(model)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or max_batches <= 0:
        return
    inputs = (to_model_input(b, cfg.mean, cfg.std, accelerator.device) for b in islice(loader, max_batches))
    with torch.no_grad():
        torch.optim.swa_utils.update_bn(inputs, net)
    if accelerator.num_processes > 1:
        for m in norms:
            m.running_mean.copy_(accelerator.reduce(m.running_mean, "mean"))
            m.running_var.copy_(accelerator.reduce(m.running_var, "mean"))


def train_one(args, seed: int, out: Path) -> dict:
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, gather_object, set_seed
    from tqdm.auto import tqdm

    accelerator = Accelerator(mixed_precision=args.mixed_precision, log_with=args.report_to,
                              gradient_accumulation_steps=args.gradient_accumulation_steps,
                              project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")))
    set_seed(seed)
    model = make_model(args)
    args.fusion = getattr(model, "fusion_method", args.fusion)  # recorded: the separate model's own default if not given
    if args.sync_batchnorm and accelerator.num_processes > 1 and accelerator.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    cfg = model.pretrained_cfg
    checkpoints = out / "checkpoints"
    resume = find_checkpoint(checkpoints, args.resume_from) if args.resume_from else None
    if resume is not None:
        check_resumable(resume, args, cfg)
    folder = resolve(args.data, args.variant)
    report, train_set, val_set, val_name, held_out = datasets(args, cfg, folder, seed)
    if len(train_set) == 0:
        raise ModelZooError(f"{args.data}: {args.variant} train holds too few samples for {accelerator.num_processes} processes")
    loader_kwargs = dict(batch_size=args.batch_size, num_workers=args.num_workers, collate_fn=collate,
                         pin_memory=accelerator.device.type == "cuda")
    # workers' seeds come from this generator, not the global RNG, so a resumed run draws the same numbers
    train_loader = torch.utils.data.DataLoader(train_set, generator=torch.Generator().manual_seed(seed), **loader_kwargs)
    val_loader = torch.utils.data.DataLoader(val_set, **loader_kwargs)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.momentum or 0.0, args.weight_decay or 0.0)
    steps_per_epoch = math.ceil(len(train_set) / args.batch_size)
    per_epoch = updates_per_epoch(len(train_set), args.batch_size, args.gradient_accumulation_steps)
    scheduler = make_schedule(args.schedule, optimizer, updates=per_epoch * args.epochs, updates_per_epoch=per_epoch,
                              decay_epochs=args.lr_decay_epochs, decay_ratio=args.lr_decay_ratio)
    model, optimizer = accelerator.prepare(model, optimizer)  # the loaders stay ours: they split by rank already
    state = TrainState()
    accelerator.register_for_checkpointing(scheduler, state)
    if resume is not None:
        load_training_state(accelerator, resume, args, cfg)
        accelerator.print(f"resumed at epoch {state.epoch + 1}, batch {state.step_in_epoch}")
    modality, method, method_log = VARIANTS[args.variant].modality, args.balancing, {}
    if method is not None and method.judged_on:  # a unimodal run is read beside the raters of that modality
        modality = method.judged_on
    if method is not None:
        method.restore_state(state.method_state)  # a fresh run's empty state, or the resumed checkpoint's
    run_config = run_record(args, seed, accelerator, report, folder, val_name, len(train_set))
    accelerator.init_trackers("crema-tools", config={k: v for k, v in flat(run_config).items()})

    def save(name: str) -> None:
        """Training state into checkpoints/<name>, complete or not at all (written aside, then renamed)."""
        summed = accelerator.reduce(torch.tensor([total, count], dtype=torch.float64, device=accelerator.device), "sum")
        state.epoch_loss = (float(summed[0]), int(summed[1]))
        state.method_state = method.saved_state() if method is not None else {}
        tmp = checkpoints / f".{name}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            write_record(tmp, args, cfg, state)
            shutil.rmtree(checkpoints / name, ignore_errors=True)
            os.replace(tmp, checkpoints / name)

    def step_context(epoch: int, step: int) -> StepContext:
        """What a balancing method sees; its generator draws the same numbers on every process."""
        return StepContext(accelerator.unwrap_model(model), epoch, step,
                           torch.Generator(accelerator.device).manual_seed(seed * 1_000_003 + step), accelerator,
                           train_loader, lambda b: to_model_input(b, cfg.mean, cfg.std, accelerator.device), optimizer)

    for epoch in range(state.epoch, args.epochs):
        model.train()
        if method is not None:
            method.start_epoch(step_context(epoch, state.global_step))
        train_set.set_epoch(epoch, skip_batches=state.step_in_epoch, batch_size=args.batch_size)
        # a resumed epoch goes on from the loss summed before the interruption (held by the main process)
        total, count = state.epoch_loss if state.step_in_epoch and accelerator.is_main_process else (0.0, 0)
        bar = tqdm(train_loader, total=steps_per_epoch, initial=state.step_in_epoch, desc=f"epoch {epoch + 1}/{args.epochs}",
                   disable=not accelerator.is_local_main_process, file=sys.stderr)
        for batch in bar:
            with accelerator.accumulate(model):
                inputs, labels = to_model_input(batch, cfg.mean, cfg.std, accelerator.device), batch["label"].to(accelerator.device)
                if method is None:
                    loss = torch.nn.functional.cross_entropy(model(inputs), labels)
                    accelerator.backward(loss)
                else:
                    context = step_context(epoch, state.global_step)
                    outputs = Outputs(*model(inputs, return_parts=True), labels, inputs)
                    loss = method.backward(outputs, context)
                    method_log = method.after_backward(outputs, context)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            total, count = total + loss.item() * len(batch["label"]), count + len(batch["label"])
            state.step_in_epoch += 1
            state.global_step += 1
            bar.set_postfix(loss=f"{total / count:.4f}", **({k: f"{v:.3f}" for k, v in method_log.items()} if method else {}))
            if args.checkpointing_steps and state.global_step % args.checkpointing_steps == 0:
                save(f"step_{state.global_step}")
        train_loss = accelerator.reduce(torch.tensor([total, count], dtype=torch.float64, device=accelerator.device), "sum")
        train_set.set_epoch(epoch)
        recompute_batchnorm(model, train_loader, cfg, accelerator, args.precise_bn_batches)
        val = evaluate_split(model, val_loader, accelerator, modality, ablations=False)
        if method is not None and method.judged_on:  # a unimodal run is selected by its own modality's logits
            val = val["modalities"][method.judged_on]
        record = {"epoch": epoch + 1, "train_loss": float(train_loss[0] / train_loss[1]),
                  **{f"val_{spec.key}": val[spec.key] for spec in METRICS}, "lr": scheduler.get_last_lr()[0]}
        accelerator.print(f"epoch {epoch + 1}/{args.epochs}: train loss {record['train_loss']:.4f}, "
                          f"validation accuracy {val['accuracy']:.3f}, UAR {val['uar']:.3f}")
        accelerator.log(record, step=epoch + 1)
        state.history.append(record)
        if val["uar"] > state.best_uar:
            state.best_uar, state.best_epoch = val["uar"], epoch + 1
            if accelerator.is_main_process:
                accelerator.unwrap_model(model).save_pretrained(out / "best")
        state.epoch, state.step_in_epoch, total, count = epoch + 1, 0, 0.0, 0
        save(f"epoch_{epoch + 1}")
    accelerator.wait_for_everyone()

    best = load_model(out / "best").to(accelerator.device)
    metrics = {**run_config, "best_epoch": state.best_epoch, "history": state.history, "splits": {}}
    metrics["splits"]["validation"] = evaluate_split(best, val_loader, accelerator, modality, ablations=False)
    for split in held_out:
        loader = split_loader(folder, args.variant, split, cfg, args.batch_size, args.num_workers)
        metrics["splits"][split] = evaluate_split(best, loader, accelerator, modality)
    metrics["human"] = {s: {"accuracy": m["human"]["accuracy"], "modality": m["human"]["ratings"]}
                        for s, m in metrics["splits"].items()}
    metrics["data"] = {"decoded_per_rank": gather_object([train_set.decoded])
                       if accelerator.num_processes > 1 else [train_set.decoded],
                       "load_options": cfg.load_options()}
    for split, m in metrics["splits"].items():
        accelerator.print(f"{split}: {scores_line(m)} "
                          f"over {m['samples']} clips (best epoch {state.best_epoch})")
    if accelerator.is_main_process:
        best.save_pretrained(out)
        run = RunMetrics(metrics)
        run.save(out / "metrics.json")
        write_card(out, best, run)
    # The DDP model's reducer holds gloo's pending work: freed now, while the process group and the
    # interpreter are alive, not at exit, where it sporadically aborts a finished process
    # ("terminate called without an active exception"); then the process group goes
    model = optimizer = None
    accelerator.free_memory()
    accelerator.end_training()
    return metrics


def write_card(out: Path, model, metrics: RunMetrics) -> None:
    """The model card: the evaluation, and `model-index` when the data came from a Hub dataset."""
    from .card import render_model_card

    render_model_card(model, metrics=metrics).save(out / "README.md")


def run_record(args, seed, accelerator, report, folder: Path, val_name: str, train_samples: int) -> dict:
    """What metrics.json says about how the numbers were made."""
    import accelerate
    import transformers

    revision = folder.name if folder.parent.name == "snapshots" else None  # a Hub snapshot's commit
    return {
        "model": args.model, "variant": args.variant, "recipe": args.recipe,
        **{k: report.provenance[k] for k in ("protocol", "seed", "fold")},
        "split_file": ({k: report.split_file.get(k) for k in ("name", "sha256", "format")}
                       if report.split_file is not None else None),
        "actors_in_more_than_one_split": report.actors_in_several_splits,
        "training_seed": seed, "source": report.provenance["source"],
        "dataset": {"path_or_repo": str(args.data), "revision": revision, "config": args.variant,
                    "built_with": report.get("crema_tools_version")},
        "training": {"epochs": args.epochs, "batch_size": args.batch_size,
                     "global_batch": args.batch_size * accelerator.num_processes * args.gradient_accumulation_steps,
                     "processes": accelerator.num_processes, "gradient_accumulation_steps": args.gradient_accumulation_steps,
                     "precision": accelerator.mixed_precision, "optimizer": args.optimizer, "lr": args.lr,
                     "momentum": args.momentum, "weight_decay": args.weight_decay, "schedule": args.schedule,
                     "lr_decay_epochs": args.lr_decay_epochs, "lr_decay_ratio": args.lr_decay_ratio,
                     "loss": "cross-entropy", "dropout": args.dropout, "fusion": args.fusion,
                     "model_options": getattr(args, "model_options", None) or None,
                     "method": args.method, "method_options": args.balancing.hyperparameters() if args.balancing else None,
                     "channels": args.channels, "frames": args.frames, "pretrained": args.pretrained,
                     "train_samples_per_process": train_samples, "validation": val_name,
                     "selection": "best validation UAR" + (f" of the {args.balancing.judged_on} logits"
                                                           if args.balancing and args.balancing.judged_on else ""),
                     "judged_on": args.balancing.judged_on if args.balancing else None,
                     "precise_bn_batches": args.precise_bn_batches, "recipe": args.recipe_values},
        "versions": {"crema_tools": crema_tools.__version__, "torch": torch.__version__,
                     "accelerate": accelerate.__version__, "transformers": transformers.__version__},
    }


def flat(d: dict, prefix: str = "") -> dict:
    """Tracker configs take scalars."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[f"{prefix}{k}"] = v if v is not None else "none"
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    with one_line_errors():
        if not args.seeds:
            metrics = train_one(args, args.seed, args.out)
        else:
            from .report import summarise_runs

            for seed in args.seeds:
                train_one(args, seed, args.out / f"seed-{seed}")
            metrics = summarise_runs([args.out / f"seed-{s}" for s in args.seeds], args.out)
        if args.push_to_hub:
            from .push import push

            push(args.out, args.push_to_hub)
    return metrics


if __name__ == "__main__":
    main()
