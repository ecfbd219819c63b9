"""PMR: prototypical modal rebalance (Fan et al., CVPR 2023), as the authors' training loop does it.

The rule of fanyunfeng-bit/Modal-Imbalance-PMR, main_Prototype_grad.py (`--modulation Proto`;
`calculate_prototype` and `train_epoch`, commit 3615e48):

- Prototypes: each class's mean encoder feature per modality, with the model in eval mode and no
  gradient, over the first `len(train_loader) // 10` training batches (at least one; their loader
  shuffles, so a different tenth each epoch), once before training and again after each epoch.
  From the third epoch on (their update after epoch index 1 onwards) the new prototypes are
  `(1 - momentum_coef) * new + momentum_coef * previous`.
- Each step, each modality's similarity to the prototypes is minus the Euclidean distance
  of its features to them; its score is the batch's summed softmax probability of the true label.
  With `ratio = score_audio / score_vision`, inside the epoch window the step's loss is the fused
  cross-entropy plus `alpha` times the prototype cross-entropy of the modality that trails
  (audio if ratio < 1, vision if ratio > 1, neither if equal); outside it, the fused cross-entropy.

Ours, here: prototypes in `start_epoch` (the same computation before epoch k as theirs after epoch
k - 1, on the model in the same state); `prototype_fraction` is their tenth. Under several
processes each process reads its first share of those batches, and features and counts are summed
over the processes (`global_sum`): the prototypes of exactly the batches one process would read
with the global batch. The scores are summed over the global batch in the same way, so every
process picks the same modality; the loss is each process's batch mean, which DDP averages into
the global batch's gradient.

Differences from their code: a class with no sample in the batches read keeps its previous
prototype (or zeros in the first epoch) where theirs divides by zero (NaN; it does not happen on
CREMA-D's train split, whose tenth holds every class); a resumed run recomputes the resumed epoch's
prototypes without the momentum term (the previous ones are not checkpointed); the batches read are
the loader's current order (the previous epoch's), the same on every process.

Defaults: their README/bash.sh command for CREMA-D (`--modulation Proto --fusion_method sum
--alpha 5.0 --momentum_coef 0.0 --modulation_starts 0 --modulation_ends 100`, with 130 epochs and
learning rate 5e-4; its film command uses alpha 3.0); their argparse defaults are alpha 1.0,
momentum_coef 0.2. BalanceBenchmark (GeWu-Lab/BalanceBenchmark, configs/trainer_config.yaml and
balancemm/trainer/PMR_trainer.py, commit 4c1482f) uses alpha 0.6, momentum_coef 0.5,
modulation_ends 80, and applies the momentum already before the second epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import ModelZooError
from .base import BalancingMethod, Outputs, StepContext, check_positive, check_window

MODALITIES = ("audio", "vision")


def similarity(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """(B, D) features, (C, D) prototypes -> (B, C): minus the Euclidean distance to each prototype."""
    return -(features[:, None, :] - prototypes[None, :, :]).pow(2).sum(dim=2).sqrt()


@dataclass(frozen=True)
class PMR(BalancingMethod):
    alpha: float = 5.0  # their CREMA-D command (sum fusion); 3.0 in its film command
    momentum_coef: float = 0.0  # their CREMA-D command; argparse default 0.2
    prototype_fraction: float = 0.1  # their `len(dataloader) // 10` batches
    modulation_starts: int = 0
    modulation_ends: int = 100

    name = "pmr"
    summary = "adds alpha x the prototype cross-entropy of the trailing modality (prototypes: class mean features)"
    paper = "Fan et al., CVPR 2023; fanyunfeng-bit/Modal-Imbalance-PMR main_Prototype_grad.py (--modulation Proto)"
    modulates_each_step = True  # the trailing modality is the step's global batch's

    def check(self, epochs: int) -> None:
        check_positive(self.name, "alpha", self.alpha)
        if not 0 <= self.momentum_coef < 1:
            raise ModelZooError(f"{self.name}: --momentum-coef must be in [0, 1), got {self.momentum_coef}")
        if not 0 < self.prototype_fraction <= 1:
            raise ModelZooError(f"{self.name}: --prototype-fraction must be in (0, 1] (the share of training batches "
                                f"the prototypes average), got {self.prototype_fraction}")
        check_window(self.name, self.modulation_starts, self.modulation_ends, epochs, "rebalancing")

    def batches(self, loader) -> int:
        """How many of each process's training batches the prototypes average (theirs: a tenth, at least one)."""
        return max(1, math.floor(len(loader) * self.prototype_fraction))

    @torch.no_grad()
    def start_epoch(self, context: StepContext) -> None:
        if context.train_loader is None:
            raise ModelZooError("pmr computes prototypes from the training batches: give StepContext a train_loader")
        model, sums, counts = context.model, {}, None
        training = model.training
        model.eval()
        try:
            for i, batch in enumerate(context.train_loader):
                if i >= self.batches(context.train_loader):
                    break
                logits, _, features = model(context.model_input(batch), return_parts=True)
                labels = batch["label"].to(logits.device)
                if counts is None:
                    counts = torch.zeros(logits.shape[1], dtype=torch.float64, device=logits.device)
                    sums = {m: torch.zeros(logits.shape[1], features[m].shape[1], dtype=torch.float64,
                                           device=logits.device) for m in MODALITIES}
                counts.index_add_(0, labels, torch.ones_like(labels, dtype=torch.float64))
                for m in MODALITIES:
                    sums[m].index_add_(0, labels, features[m].double())
        finally:
            model.train(training)
        if counts is None:
            raise ModelZooError("pmr: the training loader gave no batch to compute prototypes from")
        counts = context.global_sum(counts)
        previous = self.state.get("prototypes")
        prototypes = {}
        for m in MODALITIES:
            mean = context.global_sum(sums[m]) / counts.clamp(min=1)[:, None]
            fallback = previous[m].double() if previous is not None else torch.zeros_like(mean)
            fresh = torch.where((counts > 0)[:, None], mean, fallback)
            if previous is not None and context.epoch >= 2:  # theirs: momentum from the update after epoch index 1
                fresh = (1 - self.momentum_coef) * fresh + self.momentum_coef * previous[m].double()
            prototypes[m] = fresh.to(features[m].dtype)
        self.state["prototypes"] = prototypes

    def backward(self, out: Outputs, context: StepContext) -> torch.Tensor:
        loss = self.rebalanced_loss(out, context)
        context.backward(loss)
        return loss

    def rebalanced_loss(self, out: Outputs, context: StepContext) -> torch.Tensor:
        """The step's loss: the fused cross-entropy, plus alpha x the trailing modality's prototype
        cross-entropy inside the window (which modality trails: from the global batch's scores)."""
        loss = F.cross_entropy(out.logits, out.labels)
        if "prototypes" not in self.state:
            raise ModelZooError("pmr: no prototypes yet; start_epoch computes them before the epoch's first step")
        sims = {m: similarity(out.features[m], self.state["prototypes"][m]) for m in MODALITIES}
        rows = torch.arange(len(out.labels), device=out.labels.device)
        scores = torch.stack([sims[m].detach().softmax(dim=1)[rows, out.labels].sum() for m in MODALITIES]).double()
        score_a, score_v = context.global_sum(scores).tolist()
        ratio = score_a / score_v
        coeff_a, coeff_v = (0.0, self.alpha) if ratio > 1 else (self.alpha, 0.0) if ratio < 1 else (0.0, 0.0)
        if self.modulation_starts <= context.epoch <= self.modulation_ends:
            if coeff_a:
                loss = loss + coeff_a * F.cross_entropy(sims["audio"], out.labels)
            if coeff_v:
                loss = loss + coeff_v * F.cross_entropy(sims["vision"], out.labels)
        else:
            coeff_a = coeff_v = 0.0
        self.state["log"] = {"ratio_audio": ratio, "proto_audio": coeff_a, "proto_vision": coeff_v}
        return loss

    def after_backward(self, out: Outputs, context: StepContext) -> dict[str, float]:
        return dict(self.state.get("log", {}))
