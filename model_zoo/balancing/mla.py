"""MLA: multimodal learning with alternating unimodal adaptation (Zhang et al., CVPR 2024).

What it changes: no joint loss. Each batch trains one modality after the other through a head
SHARED by the modalities (the model's `shared` fusion head): the audio features through the head,
cross-entropy, an optimizer step of the audio encoder and the head; then the vision features
through the updated head, cross-entropy, a step of the vision encoder and the head (the loop's own
step is this last one). Before each step the head's weight gradient is multiplied by an orthogonal
projector P (their `GSPlugin`, orthogonal weight modification): with r the batch's mean feature of
the modality being trained, k = P r, P <- P - k k^T / (alpha + r^T k), then P <- P / |P|_F and
grad <- grad P^T, alpha = projection_alpha ** (1 + batch / batches per epoch), so the head keeps what
the other modality taught it. P starts as the identity and is neither updated nor applied at the
run's very first update (their `exp_count`); it then carries over all batches and epochs. The bias
gradient is not projected. At test time the fused logits are the `shared` head's entropy-weighted
sum of the two modalities' logits (`model_zoo.fusion.entropy_weighted`).

Source: Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation, main.py `train_epoch`
(the `gs_flag` branch), `valid` and `calculate_gating_weights`, utils/utils.py `GSPlugin`,
models/basic_model.py `AVClassifier` (commit ab6c184).

How ours gets there under several processes: DDP's reducer expects one backward per forward,
reaching every parameter once, and MLA makes two that each reach one encoder. So the audio
gradients (its encoder and the head) come from `torch.autograd.grad`, which DDP does not see,
averaged over the processes by one all-reduce (`global_mean`, which also carries the features'
sum and count, so r is the global batch's mean) and set as the parameters' `.grad`; the
intermediate step is `context.optimizer`'s. The vision loss then takes the forward's one
backward, DDP averaging it, with the audio encoder in it at weight 0 (its gradient is dropped
before the loop's step, the vision step): one DDP backward per step, as `mmpareto` makes.

Differences from their code:
- their `GSPlugin.before_update` projects only a parameter named "module.weight", but it is given
  the bare `fc_out` Linear, whose weight is named "weight": in their released code the projection
  never runs. Ours applies it: the paper's head gradient modification, as their plugin is written.
  BalanceBenchmark (balancemm/trainer/MLA_trainer.py, commit 4c1482f) matches "weight" but ADDS the
  projected gradient to the gradient (grad + grad P^T) instead of replacing it.
- their plugin's denominator `alpha + torch.mm(k, r)` is the (d, d) outer product k r^T, dividing
  k k^T elementwise (entries that can cross zero once P has negative entries); ours divides by the
  scalar alpha + r^T k of orthogonal weight modification (Zeng et al., 2019), which their update
  otherwise follows and which makes P r ~ 0: the projection they describe. BalanceBenchmark keeps
  their outer product.
- their pinned torch 1.8.1 `zero_grad` leaves zero gradients (not None) on the audio encoder after
  the audio step, so the vision step also moves the audio encoder by weight decay and momentum;
  ours, like their code under torch >= 2 and BalanceBenchmark, leaves the idle encoder alone.
- dynamic fusion per sample (BalanceBenchmark; the line their code leaves commented out), not per
  batch (theirs: softmax over the batch dimension, one weight per batch); see
  `model_zoo.fusion.entropy_weighted`. Their fixed
  fusion (`av_alpha` 0.55, without `--dynamic`) is not offered.
- the loss logged is the mean of the two modalities' (theirs weights them 0.55 / 0.45).
- P and its update count are saved in every checkpoint (`saved_state`): a resumed run goes on with them.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import ModelZooError
from .base import BalancingMethod, Outputs, StepContext, check_positive

MODALITIES = ("audio", "vision")


def update_projector(projector: torch.Tensor, mean_feature: torch.Tensor, alpha: float) -> torch.Tensor:
    """One recursive step of the orthogonal projector, normalised: their `GSPlugin.before_update` with
    OWM's scalar denominator alpha + r k (theirs: the outer product k r, dividing elementwise)."""
    r = mean_feature.reshape(1, -1)
    k = projector @ r.T
    projector = projector - (k @ k.T) / (alpha + r @ k)
    return projector / torch.linalg.matrix_norm(projector)


@dataclass(frozen=True)
class MLA(BalancingMethod):
    projection_alpha: float = 0.1  # their GSPlugin: alpha = 0.1 ** (1 + batch / batches per epoch)

    name = "mla"
    summary = ("alternating unimodal steps through one shared head, its weight gradient projected away from "
               "what the other modality taught it; entropy-weighted fusion at test time")
    paper = ("Zhang et al., CVPR 2024; Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation "
             "main.py (--gs_flag --dynamic)")
    modulates_each_step = True
    fusion = "shared"

    def check(self, epochs: int) -> None:
        check_positive(self.name, "projection_alpha", self.projection_alpha)

    def start_epoch(self, context: StepContext) -> None:
        if getattr(context.model.fusion, "method", None) != "shared":
            raise ModelZooError(f"{self.name} trains one head shared by the modalities: build the model with "
                                f"fusion='shared' (--fusion shared), not {getattr(context.model.fusion, 'method', None)!r}")
        self.state["batches"] = len(context.train_loader)  # their len(dataloader): alpha's schedule

    def backward(self, out: Outputs, context: StepContext) -> torch.Tensor:
        """One step per modality; the loop makes the last. Returns the mean of the two losses."""
        if context.optimizer is None:
            raise ModelZooError(f"{self.name} steps the optimizer between the modalities: give the StepContext its optimizer")
        accelerator, head = context.accelerator, context.model.fusion.fc_out
        scaler = getattr(accelerator, "scaler", None)
        scale = scaler.scale if scaler is not None else (lambda x: x)
        autocast = accelerator.autocast if accelerator is not None else nullcontext
        batch = context.step - context.epoch * self.state["batches"]  # within the epoch, from 0
        alpha = self.projection_alpha ** (batch / self.state["batches"] + 1)
        losses, log = [], {}
        for i, modality in enumerate(MODALITIES):
            if i:  # the previous modality's update, then its gradients cleared
                context.optimizer.step()
                context.optimizer.zero_grad(set_to_none=True)
            features = out.features[modality]
            with autocast():
                loss = F.cross_entropy(head(features), out.labels)  # the head as the previous step left it
            params = [p for p in context.encoder(modality).parameters() if p.requires_grad] + list(head.parameters())
            stats = [features.detach().sum(dim=0).float(),
                     torch.tensor([len(features), loss.item()], dtype=torch.float32, device=features.device)]
            if modality != MODALITIES[-1]:
                grads = torch.autograd.grad(scale(loss), params, allow_unused=True)
                flat = context.global_mean(torch.cat([  # one all-reduce: the gradients, the features' sum and count, the loss
                    *((torch.zeros_like(p) if g is None else g).reshape(-1).float() for p, g in zip(params, grads)), *stats]))
                offset = 0
                for p, g in zip(params, grads):
                    if g is not None:
                        p.grad = flat[offset:offset + p.numel()].view_as(p).to(p.dtype)
                    offset += p.numel()
                stats = flat[offset:]
            else:  # the forward's one backward, which DDP averages; the idle encoder is not stepped (no weight
                # decay, no momentum), as their loop leaves it
                context.backward_reaching_only(loss)
                stats = context.global_mean(torch.cat(stats))
            mean_feature = stats[:-2] / stats[-2]
            if self.state.get("updates", 0):  # their exp_count: not at the run's first update
                projector = self.state.get("projector")
                if projector is None:
                    projector = torch.eye(features.shape[1], device=head.weight.device)
                projector = projector.to(head.weight.device)  # a resumed one comes from the checkpoint on the CPU
                projector = update_projector(projector, mean_feature, alpha)
                self.state["projector"] = projector
                head.weight.grad = head.weight.grad @ projector.T.to(head.weight.grad.dtype)
            self.state["updates"] = self.state.get("updates", 0) + 1
            losses.append(loss.detach())
            log[f"loss_{modality}"] = float(stats[-1])
        self.state["log"] = {**log, "alpha": alpha}
        return sum(losses) / len(losses)

    def after_backward(self, out: Outputs, context: StepContext) -> dict[str, float]:
        return self.state.pop("log", {})

    def saved_state(self) -> dict:
        return {k: self.state[k] for k in ("projector", "updates") if k in self.state}
