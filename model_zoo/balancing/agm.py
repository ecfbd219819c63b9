"""AGM: adaptive gradient modulation (Li et al., ICCV 2023), as the authors' training loop does it.

The rule of lihong2303/AGM_ICCV2023 (commit 5a65542), run/CREMAD_main.py `train` with
`--methods AGM` and model/CREMAD_net.py `GradMod` around their late-fusion `AVClassifier`:

- Mono-modal outputs (Shapley values of the two modalities, without the empty input's f(0, 0)): beside the
  fused logits f(a, v) of the training forward, the model runs in eval mode (BatchNorm's running
  statistics, no dropout), with gradients, on the input whose vision part is set to zero, f(a, 0),
  and on the input whose audio part is, f(0, v). Audio's output is
  m_a = (f(a, v) - f(0, v) + f(a, 0)) / 2, vision's m_v = (f(a, v) - f(a, 0) + f(0, v)) / 2; they
  add up to f(a, v), so the loss's value is the fused cross-entropy.
- Scores: each modality's batch mean of -log softmax(m)[label], a probability under 1e-8 counted
  as 1e-8 (lower is better).
- Coefficients: with s this step's scores and S the running scores (the mean of every earlier
  step's scores since training began; 0 before the first), `coeff_a = exp(alpha * min(exp(S_v - S_a)
  - exp(s_v - s_a), 10))` and `coeff_v` the same with a and v swapped: a modality doing better
  against the other than it did on average so far is slowed down, the other sped up. S then takes
  this step's scores (a cumulative mean, updated in and outside the epoch window).
- Modulation, inside the epoch window: the loss is the cross-entropy of m_a + m_v, and the
  gradient reaching m_a is multiplied by coeff_a, that reaching m_v by coeff_v (their backward
  hooks on two identity modules; ours an autograd function). So f(a, v) receives (coeff_a +
  coeff_v) / 2 times the fused gradient and f(a, 0), f(0, v) +-(coeff_a - coeff_v) / 2 times it:
  every parameter, both encoders and the fusion head, moves by that combination.
- Clipping, every step: if an entry of the fusion head's output-layer weight gradient lies
  outside [-1, 1], all gradients are clipped to a total norm of 1.

Ours, here: the trainer's forward gives f(a, v); `backward` reruns the encoders in eval mode
(`model.encode`) on the real parts and on a zero part, and the fusion head on their features.
The zeroed part is encoded once, as a batch of one, and repeated over the batch: in eval mode
each sample is encoded on its own, so the output and its gradient equal theirs on a batch of
zeros. Their f(0, 0), computed each step and used nowhere, is not. Outside the window the eval
passes run without gradient (only the scores need them) and the loss is the fused cross-entropy,
which is their update with both coefficients 1.

Under several processes: the scores are summed over the global batch (`global_sum`), so every
process computes the same coefficients and running scores; the eval passes go through the
unwrapped model, whose gradients DDP averages with the rest in the one backward. The eval passes
read each process's BatchNorm running statistics, which DDP makes rank 0's at each forward and the
training pass then updates with the process's own share: the same on every process with
`--sync-batchnorm`, slightly different without. The running scores are saved in every training
checkpoint (`saved_state`; theirs keeps them in their checkpoint too), so a resumed run goes on
with them.

Differences from their code: outside the epoch window their hooks keep the last coefficients
(they are only set inside it), ours go back to 1 (with their CREMA-D window, the whole run, the
two never differ); their CREMA-D model has the concat head only, ours applies the rule to every
fusion head, the clipping check reading its output layers (`fc_out`; `sum`: `fc_x` and `fc_y`).

Defaults: alpha 1.5 and modulation through the whole run, the values the authors give for CREMA-D
(lihongcs/AGM issues 3, 5 and 10: alpha 1.5, 1500 epochs, window 0..1500 in their epochs counted
from 1; their argparse defaults are alpha 1.0 and window 0..20). `--modulation-starts` and
`--modulation-ends` count epochs from 0 as the trainer does: their window [s, e] is ours
[max(s - 1, 0), e - 1]. BalanceBenchmark's AGM_trainer.py differs (docs/balancing.md).
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelZooError
from .base import BalancingMethod, Outputs, StepContext, check_positive, check_window

SCORE_FLOOR = 1e-8  # their probability floor in the scores
RATIO_CAP = 10.0  # their `min(optimal_ratio - ratio, 10)`
CLIP = 1.0  # their gradient check (an entry beyond +-1) and clipping norm (1.0)


class _ScaleGradient(torch.autograd.Function):
    """The identity, whose backward multiplies the gradient by `scale` (their `hooka` / `hookv`)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


@contextmanager
def eval_mode(model: nn.Module):
    """The model in eval mode, then every module back in the mode it was in (theirs: `net.eval()`,
    then `net.train()`)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def output_layers(fusion: nn.Module) -> list[nn.Linear]:
    """The fusion head's layers that give the logits: their clipping check reads `fc_out`'s weights."""
    return [fusion.fc_x, fusion.fc_y] if fusion.method == "sum" else [fusion.fc_out]


def scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each sample's -log softmax(logits)[label], a probability under 1e-8 counted as 1e-8."""
    p = logits.detach().float().softmax(dim=1)[torch.arange(len(labels), device=labels.device), labels]
    return -torch.log(p.clamp(min=SCORE_FLOOR))


@dataclass(frozen=True)
class AGM(BalancingMethod):
    alpha: float = 1.5  # the authors' CREMA-D value (lihongcs/AGM issues 3, 5, 10); argparse default 1.0
    modulation_starts: int = 0
    modulation_ends: int = 1499  # their CREMA-D window 0..1500 over 1500 epochs counted from 1: the whole run

    name = "agm"
    summary = ("Shapley mono-modal outputs from eval-mode passes with one input zeroed; each modality's "
               "gradient scaled by exp(alpha x (its running score ratio - its current one))")
    paper = "Li et al., ICCV 2023; lihong2303/AGM_ICCV2023 run/CREMAD_main.py and model/CREMAD_net.py (--methods AGM)"
    modulates_each_step = True

    def check(self, epochs: int) -> None:
        check_positive(self.name, "alpha", self.alpha)
        if self.alpha * RATIO_CAP > 700:
            raise ModelZooError(f"{self.name}: --alpha {self.alpha} is too large: coefficients reach "
                                f"exp(alpha x {RATIO_CAP:g}), beyond a float's range above alpha 70")
        check_window(self.name, self.modulation_starts, self.modulation_ends, epochs, "modulation")

    def saved_state(self) -> dict:
        return {k: self.state[k] for k in ("running_scores", "steps") if k in self.state}

    def mono_modal(self, out: Outputs, context: StepContext, gradients: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(m_a, m_v): each modality's Shapley output from f(a, v) (the training forward) and the
        eval-mode f(a, 0) and f(0, v)."""
        if out.inputs is None:
            raise ModelZooError("agm reruns the encoders with one modality's input zeroed: give Outputs the step's inputs")
        model = context.model
        audio, vision = model.split(out.inputs)
        autocast = context.accelerator.autocast() if context.accelerator is not None else nullcontext()
        with torch.set_grad_enabled(gradients), eval_mode(model), autocast:
            a, v = model.encode("audio", audio), model.encode("vision", vision)
            a0 = model.encode("audio", torch.zeros_like(audio[:1])).expand_as(a)
            v0 = model.encode("vision", torch.zeros_like(vision[:1])).expand_as(v)
            without_vision, without_audio = model.fusion(a, v0), model.fusion(a0, v)
        total = out.logits
        return (0.5 * (total - without_audio + without_vision), 0.5 * (total - without_vision + without_audio))

    def coefficients(self, m_a: torch.Tensor, m_v: torch.Tensor, labels: torch.Tensor,
                     context: StepContext) -> tuple[float, float, float, float]:
        """(coeff_a, coeff_v, score_a, score_v) from the global batch's scores and the running ones
        before this step; then the running scores take this step's."""
        sums = torch.stack([scores(m_a, labels).double().sum(), scores(m_v, labels).double().sum(),
                            torch.tensor(float(len(labels)), dtype=torch.float64, device=labels.device)])
        total_a, total_v, samples = context.global_sum(sums).tolist()
        score_a, score_v = total_a / samples, total_v / samples
        if not (math.isfinite(score_a) and math.isfinite(score_v)):  # theirs: ValueError on NaN outputs
            raise ModelZooError(f"agm: the mono-modal outputs are not finite at step {context.step} "
                                f"(scores {score_a}, {score_v}): the training diverged; lower --lr or --alpha")
        running_a, running_v = self.state.get("running_scores", (0.0, 0.0))
        coeff_a = math.exp(self.alpha * min(math.exp(running_v - running_a) - math.exp(score_v - score_a), RATIO_CAP))
        coeff_v = math.exp(self.alpha * min(math.exp(running_a - running_v) - math.exp(score_a - score_v), RATIO_CAP))
        steps = self.state.get("steps", 0) + 1
        self.state["running_scores"] = (running_a * (steps - 1) / steps + score_a / steps,
                                        running_v * (steps - 1) / steps + score_v / steps)
        self.state["steps"] = steps
        return coeff_a, coeff_v, score_a, score_v

    def backward(self, out: Outputs, context: StepContext) -> torch.Tensor:
        modulate = self.modulation_starts <= context.epoch <= self.modulation_ends
        m_a, m_v = self.mono_modal(out, context, gradients=modulate)
        coeff_a, coeff_v, score_a, score_v = self.coefficients(m_a, m_v, out.labels, context)
        if modulate:
            loss = F.cross_entropy(_ScaleGradient.apply(m_a, coeff_a) + _ScaleGradient.apply(m_v, coeff_v), out.labels)
        else:
            loss = F.cross_entropy(out.logits, out.labels)
            coeff_a = coeff_v = 1.0
        context.backward(loss)
        self.state["log"] = {"coeff_audio": coeff_a, "coeff_vision": coeff_v, "score_audio": score_a, "score_vision": score_v}
        return loss

    @torch.no_grad()
    def after_backward(self, out: Outputs, context: StepContext) -> dict[str, float]:
        """Their clipping: an entry of the output layer's weight gradient beyond +-1 clips all to norm 1."""
        model, accelerator = context.model, context.accelerator
        grads = [layer.weight.grad for layer in output_layers(model.fusion) if layer.weight.grad is not None]
        scaler = getattr(accelerator, "scaler", None)
        limit = CLIP * (scaler.get_scale() if scaler is not None else 1.0)  # fp16: the gradients are still scaled
        clipped = bool(grads) and max(g.abs().max().item() for g in grads) > limit
        if clipped:
            if accelerator is not None:
                accelerator.clip_grad_norm_(model.parameters(), CLIP)
            else:
                nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        return {**self.state.get("log", {}), "clipped": float(clipped)}
