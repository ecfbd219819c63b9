"""The unimodal runs: each modality's encoder trained alone, the floor every balancing method is read against.

The balanced-multimodal papers report an audio-only and a visual-only model beside the joint baseline
(OGM-GE's Table 1; BalanceBenchmark's `unimodal_trainer.py`: cross-entropy of a one-modality model).
Here the run keeps the separate-encoder model, so the config, split, recipe and evaluation are the
comparison's own: the loss is the cross-entropy of one modality's own logits (`FusionHead.unimodal_logits`),
the other encoder never changes (its gradients are dropped before the optimizer step, so neither momentum
nor weight decay moves it), and the run is selected and reported by that modality's logits (`judged_on`),
not by the fused ones, which hold an untrained half. (The other modality's part of the head gets zero
gradients, which weight decay still shrinks; it reads only the other modality's features, so the judged
logits do not see it.)

With `sum` fusion a modality's logits are its own linear head, exactly a unimodal model. With `concat` (OGM-GE's
default) they are its half of the shared weights plus half the shared bias, so the bias learns at half the rate
of a unimodal model's; nothing else differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import BalancingMethod, Outputs, StepContext


@dataclass(frozen=True)
class AudioOnly(BalancingMethod):
    name = "audio-only"
    summary = "trains the audio encoder alone, on its own logits (the unimodal floor)"
    paper = "the unimodal baseline of OGM-GE (Peng et al., CVPR 2022) and BalanceBenchmark's unimodal_trainer.py"
    judged_on = "audio"

    def loss(self, out: Outputs) -> torch.Tensor:
        # the other modality's logits join with weight 0, so every parameter takes part in the backward
        # pass (DDP's reducer expects that); after_backward drops their (zero) gradients
        other = out.parts[self.other]
        return F.cross_entropy(out.parts[self.judged_on], out.labels) + 0.0 * other.sum()

    @property
    def other(self) -> str:
        return "vision" if self.judged_on == "audio" else "audio"

    def after_backward(self, out: Outputs, context: StepContext) -> dict[str, float]:
        for p in context.encoder(self.other).parameters():
            p.grad = None  # the optimizer skips a parameter without a gradient
        return {}


@dataclass(frozen=True)
class VisionOnly(AudioOnly):
    name = "vision-only"
    summary = "trains the vision encoder alone, on its own logits (the unimodal floor)"
    judged_on = "vision"
