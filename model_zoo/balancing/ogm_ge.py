"""OGM and OGM-GE: on-the-fly gradient modulation (Peng et al., CVPR 2022), as their loop does it.

The rule of GeWu-Lab/OGM-GE_CVPR2022, main.py `train_epoch` (commit 343dc1d): after backward,
each modality's score is the sum over the batch of its softmax probability of the true label;
with ratio rho = score_v / score_a, the dominant modality's coefficient is
`1 - tanh(alpha * relu(rho))` (the other keeps 1); within the epoch window
(`modulation_starts <= epoch <= modulation_ends`, epochs counted from 0) each encoder's
convolution weight gradients are multiplied by its coefficient, and OGM-GE adds Gaussian noise
with the gradient's own standard deviation (+1e-8).

Differences from their code, none of which changes a one-process update: the scores are summed
over the global batch (all processes), not over one GPU's share; noise is drawn from a generator
seeded by (training seed, step) on every process alike, not from the global RNG; "convolution
weights" are 4-D gradients in their 2D ResNets and also the 5-D ones of 3D encoders here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import BalancingMethod, Outputs, StepContext, check_positive, check_window


@dataclass(frozen=True)
class OGM(BalancingMethod):
    alpha: float = 0.8  # their README's CREMA-D command (--alpha 0.8); their flag has no default
    modulation_starts: int = 0
    modulation_ends: int = 50

    name = "ogm"
    summary = "scales the dominant modality's encoder gradients down by 1 - tanh(alpha * ratio)"
    paper = "Peng et al., CVPR 2022; GeWu-Lab/OGM-GE_CVPR2022 main.py (--modulation OGM)"
    modulates_each_step = True
    gaussian_noise = False

    def check(self, epochs: int) -> None:
        check_positive(self.name, "alpha", self.alpha)
        check_window(self.name, self.modulation_starts, self.modulation_ends, epochs, "modulation")

    def coefficients(self, out: Outputs, context: StepContext) -> tuple[float, float]:
        """(audio, vision) coefficients from the global batch's scores."""
        rows = torch.arange(len(out.labels), device=out.labels.device)
        scores = torch.stack([part.detach().softmax(dim=1)[rows, out.labels].sum() for part in
                              (out.parts["audio"], out.parts["vision"])]).double()
        score_a, score_v = context.global_sum(scores).tolist()
        ratio_v = score_v / score_a
        if ratio_v > 1:
            return 1.0, 1 - math.tanh(self.alpha * max(ratio_v, 0.0))
        return 1 - math.tanh(self.alpha * max(1 / ratio_v, 0.0)), 1.0

    def after_backward(self, out: Outputs, context: StepContext) -> dict[str, float]:
        coeff_a, coeff_v = self.coefficients(out, context)
        if self.modulation_starts <= context.epoch <= self.modulation_ends:
            for modality, coeff in (("audio", coeff_a), ("vision", coeff_v)):
                for p in context.encoder(modality).parameters():
                    if p.grad is None or p.grad.ndim < 4:
                        continue
                    if self.gaussian_noise:
                        noise = torch.empty_like(p.grad).normal_(0, p.grad.std().item() + 1e-8,
                                                                 generator=context.generator)
                        p.grad = p.grad * coeff + noise
                    else:
                        p.grad *= coeff
        return {"coeff_audio": coeff_a, "coeff_vision": coeff_v}


@dataclass(frozen=True)
class OGMGE(OGM):
    name = "ogm-ge"
    summary = "OGM plus Gaussian noise of each gradient's own std (generalisation enhancement)"
    paper = "Peng et al., CVPR 2022; GeWu-Lab/OGM-GE_CVPR2022 main.py (--modulation OGM_GE, their default)"
    gaussian_noise = True
