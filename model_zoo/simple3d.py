"""Simple3D: the paper's 3D baseline, six 3D convolutions and a linear classifier (about 3.3K parameters).

The paper gives only the layer counts and its parameter total (3262); widths and strides here are
chosen to land near that total (3310 with RGB input) while shrinking a (T, 224, 448) clip fast
enough that T = 135 frames fits in memory: strided convolutions do the downsampling, then global
average pooling feeds the classifier, so any T and either width works.
"""

import torch
from torch import nn

from .base import ZooModel, check_input
from .config import VARIANTS_3D, ModelZooError, PretrainedCfg, check_channels
from .registry import InputSpec, default_cfg, register_model

PAPER_FRAMES = 135  # clips padded with blank frames to the longest clip (section 5.6)
WIDTHS = (4, 4, 4, 4, 6, 6)
STRIDES = ((1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 1, 1))  # (T, H, W)


class Simple3D(ZooModel):
    """Six Conv3d(3x3x3) + ReLU layers, global average pooling, dropout, one linear layer."""

    def __init__(
        self,
        variant: str = "3d-multimodal",
        num_classes: int = 6,
        channels: int = 3,
        widths: tuple[int, ...] = WIDTHS,
        dropout: float = 0.0,
        pretrained_cfg: PretrainedCfg | None = None,
    ):
        super().__init__()
        widths = tuple(widths)
        if len(widths) != len(STRIDES):
            raise ModelZooError(f"Simple3D has {len(STRIDES)} conv layers; got {len(widths)} widths")
        self.channels = check_channels(channels)
        layers = []
        for in_width, out_width, stride in zip((channels, *widths), widths, STRIDES):
            layers += [nn.Conv3d(in_width, out_width, kernel_size=3, stride=stride, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)
        self.pretrained_cfg = pretrained_cfg or default_cfg("simple3d", variant, channels)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, C, 224, W) normalised clips -> (B, num_classes) logits."""
        check_input(clips, 5, self.channels, "simple3d")
        features = self.pool(self.features(clips.transpose(1, 2))).flatten(1)
        return self.classifier(self.dropout(features))


@register_model(
    "simple3d",
    model_class=Simple3D,
    variants=VARIANTS_3D,
    input=InputSpec(mean=(0.5,) * 3, std=(0.5,) * 3, frames=PAPER_FRAMES, temporal="pad"),
    paper="Tables 1-3, 3D CNN (from scratch; 3262 parameters in the paper)",
    summary="six Conv3d layers + linear, about 3.3K parameters",
    head="classifier",
    dropout_arg="dropout",
)
def simple3d(*, variant: str, num_classes: int = 6, pretrained: bool | str = False, channels: int = 3, **kwargs):
    """The paper's 3D baseline; kwargs: `widths` (six conv widths), `dropout`."""
    return Simple3D(variant, num_classes, channels, **kwargs)
