"""The one adaptation shared by the torchvision 2D CNNs (ResNet18, GoogLeNet, VGG16).

Each architecture file only says where its first conv and its head live; this module builds the
torchvision model with a `num_classes` head, swaps the first conv for a 1-channel one when asked
(filters summed), and loads ImageNet weights through torchvision's weights API into that adapted
model (first conv summed the same way, ImageNet head dropped).

torchvision is imported when a model is built, not with `model_zoo`: importing it costs seconds
(it pulls in torch._dynamo), which every `python -m model_zoo.* --help` would pay.
"""

# no `from __future__ import annotations`: the Hub mixin reads __init__'s annotations as types
import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

from .base import ZooModel, check_input
from .config import (
    HEIGHT,
    IMAGENET_GRAY_MEAN,
    IMAGENET_GRAY_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelZooError,
    PretrainedCfg,
    check_channels,
    get_variant,
)
from .weights import conv_with_in_channels, sum_rgb_filters


@dataclass(frozen=True)
class TorchvisionSpec:
    """Where one torchvision classifier keeps the parts the adaptation touches."""

    builder: str  # the torchvision.models builder, e.g. "resnet18"
    weights: str  # its weights enum in torchvision.models, e.g. "ResNet18_Weights"
    first_conv: str  # dotted path of the first nn.Conv2d
    head: str  # dotted path of the final nn.Linear
    build_kwargs: Callable[[int], dict] = lambda channels: {}  # extra builder kwargs per channel count
    skip_pretrained: tuple[str, ...] = ()  # checkpoint key prefixes the adapted model does not have
    gray_mean: tuple[float, ...] = IMAGENET_GRAY_MEAN
    gray_std: tuple[float, ...] = IMAGENET_GRAY_STD


TORCHVISION_SPECS: dict[str, TorchvisionSpec] = {}


def _torchvision_models(name: str):
    """An attribute of torchvision.models, imported on first use."""
    return getattr(importlib.import_module("torchvision.models"), name)


def register_torchvision_arch(name: str, spec: TorchvisionSpec) -> TorchvisionSpec:
    TORCHVISION_SPECS[name] = spec
    return spec


class TorchvisionClassifier(ZooModel):
    """A torchvision CNN with a `num_classes` head and 1- or 3-channel input.

    The network is `self.net` (torchvision's own module layout); global average pooling in all
    three architectures makes the 224x448 multimodal input work unchanged.
    """

    def __init__(
        self,
        arch: str,
        variant: str = "2d-multimodal",
        num_classes: int = 6,
        channels: int = 3,
        pretrained_cfg: PretrainedCfg | None = None,
    ):
        super().__init__()
        spec = TORCHVISION_SPECS[arch]
        self.arch = arch
        self.channels = check_channels(channels)
        self.net = _torchvision_models(spec.builder)(weights=None, num_classes=num_classes, **spec.build_kwargs(channels))
        first_conv = self.net.get_submodule(spec.first_conv)
        self.net.set_submodule(spec.first_conv, conv_with_in_channels(first_conv, channels))
        width = get_variant(variant).width
        self.pretrained_cfg = pretrained_cfg or PretrainedCfg(
            model_name=arch,
            variant=variant,
            input_size=(channels, HEIGHT, width),
            mean=IMAGENET_MEAN if channels == 3 else spec.gray_mean,
            std=IMAGENET_STD if channels == 3 else spec.gray_std,
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, 224, W) normalised images -> (B, num_classes) logits."""
        check_input(images, 4, self.channels, self.arch)
        return self.net(images)

    def load_torchvision_weights(self, weights: "WeightsEnum") -> None:
        """Load torchvision `weights` (downloaded once to $TORCH_HOME/hub/checkpoints, then cached).

        The checkpoint's head is dropped (this model's head stays freshly initialised for its own
        classes) and its first conv is summed to one channel for grayscale models; everything
        else must match exactly.
        """
        spec = TORCHVISION_SPECS[self.arch]
        state = weights.get_state_dict(progress=True, check_hash=True, weights_only=True)
        head_keys = {f"{spec.head}.weight", f"{spec.head}.bias"}
        state = {
            key: value
            for key, value in state.items()
            if key not in head_keys and not key.startswith(spec.skip_pretrained)
        }
        if self.channels == 1:
            conv_key = f"{spec.first_conv}.weight"
            state[conv_key] = sum_rgb_filters(state[conv_key])
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if set(missing) != head_keys or unexpected:
            raise RuntimeError(f"{weights} does not fit {self.arch}: missing {missing}, unexpected {unexpected}")


def resolve_torchvision_weights(spec: TorchvisionSpec, pretrained: bool | str) -> "WeightsEnum | None":
    """False -> None; True -> torchvision's DEFAULT weights; a string -> that weights name."""
    if pretrained is False:
        return None
    weights = _torchvision_models(spec.weights)
    if pretrained is True:
        return weights.DEFAULT
    try:
        return weights[pretrained]
    except KeyError:
        names = [w.name for w in weights]
        raise ModelZooError(f"unknown weights {pretrained!r} for {spec.weights}; choose from {names}") from None


def build_torchvision_classifier(
    arch: str, *, variant: str, num_classes: int, pretrained: bool | str, channels: int
) -> TorchvisionClassifier:
    """Build `arch` for `variant`, optionally with ImageNet weights (the shared builder)."""
    spec = TORCHVISION_SPECS[arch]
    weights = resolve_torchvision_weights(spec, pretrained)
    model = TorchvisionClassifier(arch, variant, num_classes, channels)
    if weights is not None:
        model.load_torchvision_weights(weights)
        model.pretrained_cfg = replace(model.pretrained_cfg, weights=f"torchvision:{weights}")
    return model
