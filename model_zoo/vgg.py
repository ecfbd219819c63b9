"""VGG16 (Simonyan and Zisserman, 2014) from torchvision: the paper's largest 2D CNN (134M parameters)."""

from .config import VARIANTS_2D
from .registry import register_model
from .torchvision_2d import (
    TorchvisionClassifier,
    TorchvisionSpec,
    build_torchvision_classifier,
    register_torchvision_arch,
)

register_torchvision_arch(
    "vgg16", TorchvisionSpec(builder="vgg16", weights="VGG16_Weights", first_conv="features.0", head="classifier.6")
)


@register_model(
    "vgg16",
    model_class=TorchvisionClassifier,
    variants=VARIANTS_2D,
    paper="Tables 1-3, 2D CNN (ImageNet init); best 2D vision, 70.4%",
    summary="torchvision VGG16 (no batch norm), 6-way head",
    pretrained="ImageNet, torchvision VGG16_Weights.IMAGENET1K_V1",
)
def vgg16(*, variant: str, num_classes: int = 6, pretrained: bool | str = False, channels: int = 3):
    """VGG16 for a 2D variant; `pretrained=True` loads torchvision's ImageNet weights."""
    return build_torchvision_classifier(
        "vgg16", variant=variant, num_classes=num_classes, pretrained=pretrained, channels=channels
    )
