"""ReconBoost: modality-alternating boosting (Hua et al., ICML 2024), as the authors' loop does it.

The rule of huacong/ReconBoost, train.py `main` with models/dynamic_net.py and schedule.py (commit
14ab57a, the CREMA-D branch with `--use_pretrain`, `--use_ga` and `common_space` on). Training runs
in stages; stage s trains one modality's learner, audio in even stages and vision in odd ones:

- Boosting, `boosting_epochs` epochs (their `--epochs_per_stage`): only that learner (its encoder
  and the head its logits come from) is updated, with a fresh SGD optimizer. With p its softmax
  and q the softmax of the other learners' ensemble (their logits, no gradient), each sample's loss
  is `(ce_weight - reconcile_weight * q_y) * (-log p_y) / num_classes` (their `boosting_loss`,
  `--weight1`, `--weight2`; the division is their mean over the classes of the one-hot product):
  samples the other modality already gets right weigh less.
- Global rectification, `rectification_epochs` epochs (their `--correct_epoch`): every learner is
  updated on the cross-entropy of the ensemble, the sum of the learners' logits, with another fresh
  SGD optimizer.

Ours, here: the phase of an epoch follows from its index (stage = epoch // (boosting_epochs +
rectification_epochs)), so it is the same on every process and after a resume. The ensemble is
the fusion head's: for `sum` and `concat` fusion its fused logits are exactly the sum of the
modalities' logits (`FusionHead.unimodal_logits`), so rectification is the fused cross-entropy and
the evaluation's predictions are their ensemble's; `film` and `gated` have no such sum and are
refused. In a boosting epoch, every parameter the boosting loss does not reach (the other encoder,
and with `sum` fusion the other modality's linear head) ends the backward with no gradient (None),
so the optimizer leaves it, momentum and weight decay included, as their optimizer over the
trained learner alone does; under DDP those parameters take part in the backward with a zero
gradient, as DDP wants every parameter in each backward, and lose it after
(`StepContext.backward_reaching_only`).
Their fresh optimizer per phase is our optimizer's state cleared when a phase starts
(`StepContext.optimizer`; not when a run resumes within that epoch: its saved state goes on).
The loss is per sample, so several processes make the update one makes on their global batch.

Differences from their code: their learners share one head (`Head`, 512-256-6 MLP, the modules'
`fc` replaced by it), ours are the fusion head's per-modality parts, so with `sum` fusion each
modality keeps its own linear head (with `concat`, the whole head trains in both boosting phases
and the other modality's half of its weights moves by weight decay only). Their ensemble is
multiplied by `boost_rate`, a scalar learned in rectification from 1.0 (its argmax is the sum's
while it stays positive); ours is the plain sum. Their `--alpha` (0.5) weights an MSE
between two detached softmaxes, a term without gradient that changes only their logged loss: left
out. Their `--m_lr` and `--e_lr` (both 0.01 for CREMA-D) are one learning rate here. From stage 1 on
they run the other learner twice per step in train mode, so its BatchNorm running averages move
twice; ours once. Their stage 0 without `--use_pretrain` uses a constant ensemble (q_y = 1); ours, as
theirs with it, the other modality's logits from the first stage.

Defaults: their README's CREMA-D command (`--epochs_per_stage 4 --correct_epoch 4 --weight1 5.0
--weight2 1.0 --m_lr 0.01 --e_lr 0.01 --batch_size 64`, SGD momentum 0.9, weight decay 5e-4, the
rates divided by 10 every 30 stages). BalanceBenchmark (GeWu-Lab/BalanceBenchmark,
balancemm/trainer/ReconBoost_trainer.py and configs/trainer_config.yaml, commit 4c1482f) uses one
epoch for each phase (`T_epochs: 1`), one optimizer for the whole run (momentum kept across phases),
a shared linear head, `boost_rate` learned from 0.01, and an epoch window 0..80 after which its
`training_step1` reads an unassigned `loss` (an error).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import ModelZooError
from .base import BalancingMethod, Outputs, StepContext, check_positive

MODALITIES = ("audio", "vision")
SUMMED_FUSIONS = ("sum", "concat")  # fusion heads whose fused logits are the sum of the modalities' logits


@dataclass(frozen=True)
class ReconBoost(BalancingMethod):
    boosting_epochs: int = 4  # their --epochs_per_stage
    rectification_epochs: int = 4  # their --correct_epoch
    ce_weight: float = 5.0  # their --weight1
    reconcile_weight: float = 1.0  # their --weight2: how much the ensemble's probability of the label lowers a sample's weight

    name = "reconboost"
    summary = ("alternates stages: one modality's learner trained on a cross-entropy down-weighted where the "
               "other modality is already right, then every learner on the ensemble's cross-entropy")
    paper = "Hua et al., ICML 2024; huacong/ReconBoost train.py"

    def check(self, epochs: int) -> None:
        for name, least in (("boosting_epochs", 1), ("rectification_epochs", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise ModelZooError(f"{self.name}: --{name.replace('_', '-')} must be a whole number of at least "
                                    f"{least}, got {value}")
        check_positive(self.name, "ce_weight", self.ce_weight)
        if not 0 <= self.reconcile_weight <= self.ce_weight:
            raise ModelZooError(f"{self.name}: --reconcile-weight must be in [0, --ce-weight = {self.ce_weight}] (above, "
                                f"samples the other modality gets right have their loss pushed up), got {self.reconcile_weight}")
        vision_starts = self.boosting_epochs + self.rectification_epochs
        if epochs <= vision_starts:
            raise ModelZooError(f"{self.name}: {epochs} epochs never reach the vision stage (epoch {vision_starts}, "
                                f"counted from 0); train at least {vision_starts + 1} epochs or lower "
                                "--boosting-epochs / --rectification-epochs")

    def phase(self, epoch: int) -> tuple[str | None, bool]:
        """(the modality boosted in this epoch, or None in rectification; whether the phase starts with it)."""
        stage, offset = divmod(epoch, self.boosting_epochs + self.rectification_epochs)
        if offset < self.boosting_epochs:
            return MODALITIES[stage % 2], offset == 0
        return None, offset == self.boosting_epochs

    def start_epoch(self, context: StepContext) -> None:
        fusion = getattr(getattr(context.model, "fusion", None), "method", None)
        if fusion not in SUMMED_FUSIONS:
            raise ModelZooError(f"{self.name} sums the modalities' logits into its ensemble: train with --fusion sum or "
                                f"concat (their fused logits are that sum), not {fusion}")
        _, starts = self.phase(context.epoch)
        at_epoch_start = context.train_loader is None or context.step == context.epoch * len(context.train_loader)
        if starts and at_epoch_start and context.optimizer is not None:
            context.optimizer.state.clear()  # their fresh optimizer for each phase

    def backward(self, out: Outputs, context: StepContext) -> torch.Tensor:
        boosted, _ = self.phase(context.epoch)
        if boosted is None:
            loss = F.cross_entropy(out.logits, out.labels)  # the ensemble's: the sum of the learners' logits
            self.state["log"] = {}
            context.backward(loss)
            return loss
        other = MODALITIES[1 - MODALITIES.index(boosted)]
        rows = torch.arange(len(out.labels), device=out.labels.device)
        ensemble_prob = out.parts[other].detach().softmax(dim=1)[rows, out.labels]
        weight = (self.ce_weight - self.reconcile_weight * ensemble_prob) / out.logits.shape[1]
        loss = (weight * F.cross_entropy(out.parts[boosted], out.labels, reduction="none")).mean()
        count = torch.tensor(len(rows), dtype=torch.float64, device=rows.device)
        summed = context.global_sum(torch.stack([ensemble_prob.sum().double(), count]))  # the global batch's mean
        self.state["log"] = {"ensemble_prob": (summed[0] / summed[1]).item()}
        context.backward_reaching_only(loss)  # the other learner: no gradient, so the optimizer leaves it
        return loss

    def after_backward(self, out: Outputs, context: StepContext) -> dict[str, float]:
        return dict(self.state.get("log", {}))
