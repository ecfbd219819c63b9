"""GoogLeNet (Szegedy et al., 2015) from torchvision: the paper's best 2D encoder (66.1% multimodal)."""

from .config import VARIANTS_2D
from .registry import register_model
from .torchvision_2d import (
    TorchvisionClassifier,
    TorchvisionSpec,
    build_torchvision_classifier,
    register_torchvision_arch,
)


def _googlenet_kwargs(channels: int) -> dict:
    # No auxiliary heads (torchvision drops them after loading ImageNet weights too). The ImageNet
    # weights were trained on inputs scaled to [-1, 1]; torchvision's transform_input re-maps
    # ImageNet-normalised RGB to that, but it indexes three channels, so grey inputs skip it and
    # are normalised with mean 0.5, std 0.5 instead (see gray_mean/gray_std below).
    return {"aux_logits": False, "transform_input": channels == 3, "init_weights": True}


register_torchvision_arch(
    "googlenet",
    TorchvisionSpec(
        builder="googlenet",
        weights="GoogLeNet_Weights",
        first_conv="conv1.conv",
        head="fc",
        build_kwargs=_googlenet_kwargs,
        skip_pretrained=("aux1.", "aux2."),
        gray_mean=(0.5,),
        gray_std=(0.5,),
    ),
)


@register_model(
    "googlenet",
    model_class=TorchvisionClassifier,
    variants=VARIANTS_2D,
    paper="Tables 1-3, 2D CNN (ImageNet init); best 2D multimodal, 66.1%",
    summary="torchvision GoogLeNet without auxiliary heads, 6-way head",
    pretrained="ImageNet, torchvision GoogLeNet_Weights.IMAGENET1K_V1",
)
def googlenet(*, variant: str, num_classes: int = 6, pretrained: bool | str = False, channels: int = 3):
    """GoogLeNet for a 2D variant; `pretrained=True` loads torchvision's ImageNet weights."""
    return build_torchvision_classifier(
        "googlenet", variant=variant, num_classes=num_classes, pretrained=pretrained, channels=channels
    )
