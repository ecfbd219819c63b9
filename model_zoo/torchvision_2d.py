"""The paper's three torchvision 2D CNNs (ResNet18, GoogLeNet, VGG16): one table, one adaptation.

`TORCHVISION_SPECS` says, per architecture, where its first conv and its head live and what the
paper did with it; each row is registered as a zoo model. This module builds the torchvision
model with a `num_classes` head, swaps the first conv for a 1-channel one when asked (filters
summed), and loads ImageNet weights through torchvision's weights API into that adapted
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
from .catalog import InputSpec, WeightSource, default_cfg, register_model
from .config import (
    IMAGENET_GRAY_MEAN,
    IMAGENET_GRAY_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    VARIANTS_2D,
    ModelZooError,
    PretrainedCfg,
    check_channels,
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
    input: InputSpec = InputSpec(IMAGENET_MEAN, IMAGENET_STD, IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD)
    paper: str = ""  # where the paper reports it
    summary: str = ""

    @property
    def imagenet(self) -> dict[str, WeightSource]:
        """The weights the paper started from, by torchvision's tag. Other members of the weights enum
        load by name too (`pretrained="IMAGENET1K_FEATURES"`), but only these are declared: their
        normalisation is `input`'s. torchvision states no licence of its own for the weights; they
        carry the terms of their training data (its documentation says so)."""
        return {"IMAGENET1K_V1": WeightSource(f"torchvision:{self.weights}.IMAGENET1K_V1", "ImageNet-1k classification")}


def _googlenet_kwargs(channels: int) -> dict:
    # No auxiliary heads (torchvision drops them after loading ImageNet weights too). The ImageNet
    # weights were trained on inputs scaled to [-1, 1]; torchvision's transform_input re-maps
    # ImageNet-normalised RGB to that, but it indexes three channels, so grey inputs skip it and
    # are normalised with mean 0.5, std 0.5 instead (see gray_mean/gray_std below).
    return {"aux_logits": False, "transform_input": channels == 3, "init_weights": True}


TORCHVISION_SPECS: dict[str, TorchvisionSpec] = {
    "resnet18": TorchvisionSpec(
        builder="resnet18", weights="ResNet18_Weights", first_conv="conv1", head="fc",
        paper="Tables 1-3, 2D CNN (ImageNet init)", summary="torchvision ResNet18, 6-way head"),
    "googlenet": TorchvisionSpec(
        builder="googlenet", weights="GoogLeNet_Weights", first_conv="conv1.conv", head="fc",
        build_kwargs=_googlenet_kwargs, skip_pretrained=("aux1.", "aux2."),
        input=InputSpec(IMAGENET_MEAN, IMAGENET_STD, gray_mean=(0.5,), gray_std=(0.5,)),
        paper="Tables 1-3, 2D CNN (ImageNet init); best 2D multimodal, 66.1%",
        summary="torchvision GoogLeNet without auxiliary heads, 6-way head"),
    "vgg16": TorchvisionSpec(
        builder="vgg16", weights="VGG16_Weights", first_conv="features.0", head="classifier.6",
        paper="Tables 1-3, 2D CNN (ImageNet init); best 2D vision, 70.4%",
        summary="torchvision VGG16 (no batch norm), 6-way head"),
}


def _torchvision_models(name: str):
    """An attribute of torchvision.models, imported on first use."""
    return getattr(importlib.import_module("torchvision.models"), name)


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
        self.pretrained_cfg = pretrained_cfg or default_cfg(arch, variant, channels)

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


def resolve_torchvision_weights(spec: TorchvisionSpec, pretrained: bool | str | WeightSource) -> "WeightsEnum | None":
    """False -> None; a declared source or a weights name (e.g. "IMAGENET1K_FEATURES") -> that member
    of the architecture's weights enum."""
    if pretrained is False:
        return None
    weights = _torchvision_models(spec.weights)
    name = pretrained.name.rsplit(".", 1)[1] if isinstance(pretrained, WeightSource) else pretrained
    try:
        return weights[name]
    except KeyError:
        names = [w.name for w in weights]
        raise ModelZooError(f"unknown weights {pretrained!r} for {spec.weights}; choose from {names}") from None


def build_torchvision_classifier(
    arch: str, *, variant: str, num_classes: int, pretrained: bool | str | WeightSource, channels: int
) -> TorchvisionClassifier:
    """Build `arch` for `variant`, optionally with ImageNet weights (the shared builder)."""
    spec = TORCHVISION_SPECS[arch]
    weights = resolve_torchvision_weights(spec, pretrained)
    model = TorchvisionClassifier(arch, variant, num_classes, channels)
    if weights is not None:
        model.load_torchvision_weights(weights)
        model.pretrained_cfg = replace(model.pretrained_cfg, weights=f"torchvision:{weights}")
    return model


def _register(arch: str, spec: TorchvisionSpec) -> None:
    def build(*, variant: str, num_classes: int = 6, pretrained: bool | str = False, channels: int = 3):
        return build_torchvision_classifier(arch, variant=variant, num_classes=num_classes, pretrained=pretrained,
                                            channels=channels)

    build.__doc__ = f"{arch} for a 2D variant; `pretrained=True` loads torchvision's ImageNet weights."
    register_model(arch, model_class=TorchvisionClassifier, variants=VARIANTS_2D, paper=spec.paper, summary=spec.summary,
                   input=spec.input, weights=spec.imagenet, head=f"net.{spec.head}")(build)


for _arch, _spec in TORCHVISION_SPECS.items():
    _register(_arch, _spec)
