"""Resuming training (`model_zoo.train --resume-from`): which checkpoint, and whether it is this run's.

Every training-state checkpoint holds, next to accelerate's files, `crema_tools_run.json`: the model,
the variant and the input it was trained on, and how far it got. A checkpoint of another model,
variant or input is refused in one line saying what it holds and what this run is, before any data
is read; one written before the record existed is refused, in one line too, when its weights do not
fit the model.
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import ModelZooError

CHECKPOINT_RECORD = "crema_tools_run.json"


def find_checkpoint(checkpoints: Path, which: str) -> Path:
    """The checkpoint folder `which` names: a path, a folder under `checkpoints`, or 'latest'."""
    if which != "latest":
        path = Path(which)
        path = path if path.is_dir() else checkpoints / which
        if not path.is_dir():
            raise ModelZooError(f"--resume-from {which}: no such checkpoint folder")
        return path
    done = [p for p in checkpoints.glob("*_*") if p.is_dir() and not p.name.startswith(".")]
    if not done:
        raise ModelZooError(f"--resume-from latest: no checkpoint in {checkpoints}")
    return max(done, key=lambda p: p.stat().st_mtime_ns)


def write_record(folder: Path, args, cfg, state) -> None:
    """The record of a training state being saved into `folder` (state: the loop's TrainState)."""
    record = {**run_identity(args, cfg), "epoch": state.epoch, "step_in_epoch": state.step_in_epoch,
              "global_step": state.global_step, "epochs": args.epochs}
    (folder / CHECKPOINT_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def run_identity(args, cfg) -> dict:
    """What a training state belongs to: the model, the variant and the input it takes."""
    return {"model": args.model, "variant": args.variant, "input_size": list(cfg.input_size), "frames": cfg.frames}


def _describe(identity: dict) -> str:
    channels = (identity.get("input_size") or [None])[0]
    return (f"{identity.get('model')} on {identity.get('variant')}" + (f", {channels} channel(s)" if channels else "")
            + (f", {identity['frames']} frames" if identity.get("frames") else ""))


def check_resumable(path: Path, args, cfg) -> None:
    """A checkpoint of another model, variant or input is refused in one line saying what it holds."""
    try:
        record = json.loads((path / CHECKPOINT_RECORD).read_text())
    except FileNotFoundError:
        return  # written before the record existed: loading the state says whether its weights fit
    except (OSError, ValueError) as e:
        raise ModelZooError(f"--resume-from {path}: {CHECKPOINT_RECORD} does not read ({e}); resume from another "
                            "checkpoint, or train into another --out") from None
    here = run_identity(args, cfg)
    held = {key: record.get(key) for key in here}
    if held == here:
        return
    epoch, step = record.get("epoch", 0), record.get("step_in_epoch", 0)
    progress = (f"saved in epoch {epoch + 1} after batch {step}" if step else f"saved after epoch {epoch} of {record.get('epochs')}")
    raise ModelZooError(f"--resume-from {path}: holds {_describe(held)} ({progress}); this run trains {_describe(here)}: "
                        f"resume with the options it was trained with (--model {held['model']} --variant {held['variant']} "
                        "...), or train this model into another --out")


def load_training_state(accelerator, path: Path, args, cfg) -> None:
    """accelerate's load_state, with weights that do not fit this run's model said in one line."""
    from safetensors import SafetensorError

    try:
        accelerator.load_state(str(path))
    except SafetensorError as e:
        raise ModelZooError(f"--resume-from {path}: a file of it is no safetensors file ({e}); resume from another "
                            "checkpoint") from None
    except RuntimeError as e:  # a checkpoint without its record: the model's strict loading
        if "state_dict" not in str(e):
            raise
        kind, _, count = path.name.partition("_")
        saved = f", saved at {kind} {count}" if kind in ("epoch", "step") and count.isdigit() else ""
        raise ModelZooError(f"--resume-from {path}: its weights ({str(e).splitlines()[0].rstrip(':')}{saved}) do not fit "
                            f"this run's {_describe(run_identity(args, cfg))}: it holds another model, variant or input; "
                            "resume with the options it was trained with, or train into another --out") from None
