"""OGM-GE's four fusion heads, MLA's shared head, and the per-modality logits training loops read off them.

The heads are those of GeWu-Lab/OGM-GE_CVPR2022 (models/fusion_modules.py, commit 343dc1d), with
`x` the audio features and `y` the vision features as in its `AVClassifier`: `sum` (a linear
head per modality, logits added), `concat` (one linear head over both), `film` (the audio
features scale and shift the vision features, FiLM) and `gated` (a sigmoid gate from the audio
features multiplies the vision features). `shared` is MLA's (Cecile-hi/Multimodal-Learning-with-
Alternating-Unimodal-Adaptation, main.py, commit ab6c184): one linear head that reads either
modality's features; its fused logits are MLA's test-time dynamic fusion, each modality's logits
weighted by how certain (low-entropy) its prediction is.

`unimodal_logits` is each modality's own prediction, which balancing methods and the evaluation
need. For `sum` and `concat` it is OGM-GE's (main.py, `train_epoch`): each modality's head alone,
or its half of the concat weights with half the bias. OGM-GE's code has none for `film` and
`gated` (its slicing of `fc_out` fails with a shape error there), so ours is the fused head with
the other modality's features set to zero, stated where it is reported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelZooError

FUSIONS = ("sum", "concat", "film", "gated", "shared")


class FusionHead(nn.Module):
    """(audio features, vision features) -> fused logits; `unimodal_logits` gives each modality's."""

    def __init__(self, method: str, features: int, num_classes: int):
        super().__init__()
        if method not in FUSIONS:
            raise ModelZooError(f"unknown fusion {method!r}: choose from {', '.join(FUSIONS)}")
        self.method, self.features = method, features
        if method == "sum":
            self.fc_x, self.fc_y = nn.Linear(features, num_classes), nn.Linear(features, num_classes)
        elif method == "concat":
            self.fc_out = nn.Linear(2 * features, num_classes)
        elif method == "film":
            self.fc = nn.Linear(features, 2 * features)
            self.fc_out = nn.Linear(features, num_classes)
        elif method == "gated":
            self.fc_x, self.fc_y = nn.Linear(features, features), nn.Linear(features, features)
            self.fc_out = nn.Linear(features, num_classes)
        else:  # shared: one head for either modality's features
            self.fc_out = nn.Linear(features, num_classes)

    def forward(self, audio: torch.Tensor, vision: torch.Tensor) -> torch.Tensor:
        if self.method == "sum":
            return self.fc_x(audio) + self.fc_y(vision)
        if self.method == "concat":
            return self.fc_out(torch.cat((audio, vision), dim=1))
        if self.method == "film":
            gamma, beta = torch.split(self.fc(audio), self.features, dim=1)
            return self.fc_out(gamma * vision + beta)
        if self.method == "shared":
            return entropy_weighted(self.fc_out(audio), self.fc_out(vision))
        return self.fc_out(torch.sigmoid(self.fc_x(audio)) * self.fc_y(vision))

    def unimodal_logits(self, audio: torch.Tensor, vision: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each modality's logits, as OGM-GE's training loop computes them (sum, concat), the shared head
        on its features (shared), or the fused head with the other modality's features zeroed (film, gated)."""
        if self.method == "shared":
            return {"audio": self.fc_out(audio), "vision": self.fc_out(vision)}
        if self.method == "sum":
            return {"audio": self.fc_x(audio), "vision": self.fc_y(vision)}
        if self.method == "concat":
            w, b = self.fc_out.weight, self.fc_out.bias
            return {"audio": audio @ w[:, : self.features].T + b / 2, "vision": vision @ w[:, self.features:].T + b / 2}
        return {"audio": self(audio, torch.zeros_like(vision)), "vision": self(torch.zeros_like(audio), vision)}


def entropy_weighted(*logits: torch.Tensor) -> torch.Tensor:
    """MLA's test-time dynamic fusion: each modality's logits weighted, sample by sample, by
    exp(-entropy of its prediction), normalised over the modalities (their `calculate_gating_weights`
    subtracts the largest entropy first, which cancels). Per sample, as BalanceBenchmark and the line
    their `calculate_entropy` leaves commented out; theirs takes the softmax over the batch (dim 0) and
    sums over it: one weight per batch, so a clip's prediction would depend on the clips beside it.
    log_softmax instead of their log(softmax), which is NaN where a probability underflows to 0."""
    entropy = torch.stack([-(F.softmax(x, dim=1) * F.log_softmax(x, dim=1)).sum(dim=1) for x in logits])
    weights = F.softmax(-entropy, dim=0)  # (modalities, B)
    return sum(w.unsqueeze(1) * x for w, x in zip(weights, logits))
