"""The optimizers, learning-rate schedules and losses a recipe may name, as data.

The paper trains every encoder with Adam at a constant rate; OGM-GE and its successors use SGD
with momentum 0.9, weight decay 1e-4 and a step decay (their main.py: StepLR(70, 0.1)).
"""

from __future__ import annotations

import math

import torch

from .config import ModelZooError

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "step")
LOSSES = ("cross-entropy",)


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
    if name == "adam":
        if momentum:
            raise ModelZooError("--momentum applies to sgd; adam has none")
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ModelZooError(f"unknown optimizer {name!r}: choose from {', '.join(OPTIMIZERS)}")


def make_schedule(name: str, optimizer, *, updates: int, updates_per_epoch: int, decay_epochs: int | None = None,
                  decay_ratio: float = 0.1):
    """The schedule stepped once per optimizer update: `step` decays by `decay_ratio` every
    `decay_epochs` epochs (OGM-GE steps its StepLR once per epoch; the same in updates)."""
    if name == "constant":
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=updates)
    if name == "step":
        if not decay_epochs or decay_epochs < 1:
            raise ModelZooError("--schedule step needs --lr-decay-epochs N (N >= 1)")
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=decay_epochs * updates_per_epoch, gamma=decay_ratio)
    raise ModelZooError(f"unknown schedule {name!r}: choose from {', '.join(SCHEDULES)}")


def check_loss(name: str) -> str:
    if name not in LOSSES:
        raise ModelZooError(f"unknown loss {name!r}: choose from {', '.join(LOSSES)}")
    return name


def updates_per_epoch(samples: int, batch_size: int, accumulation: int) -> int:
    return math.ceil(math.ceil(samples / batch_size) / accumulation)
