"""ResNet18 (He et al., 2016) from torchvision: the paper's mid-sized 2D CNN."""

from .config import VARIANTS_2D
from .registry import register_model
from .torchvision_2d import (
    TorchvisionClassifier,
    TorchvisionSpec,
    build_torchvision_classifier,
    register_torchvision_arch,
)

register_torchvision_arch(
    "resnet18", TorchvisionSpec(builder="resnet18", weights="ResNet18_Weights", first_conv="conv1", head="fc")
)


@register_model(
    "resnet18",
    model_class=TorchvisionClassifier,
    variants=VARIANTS_2D,
    paper="Tables 1-3, 2D CNN (ImageNet init)",
    summary="torchvision ResNet18, 6-way head",
    pretrained="ImageNet, torchvision ResNet18_Weights.IMAGENET1K_V1",
)
def resnet18(*, variant: str, num_classes: int = 6, pretrained: bool | str = False, channels: int = 3):
    """ResNet18 for a 2D variant; `pretrained=True` loads torchvision's ImageNet weights."""
    return build_torchvision_classifier(
        "resnet18", variant=variant, num_classes=num_classes, pretrained=pretrained, channels=channels
    )
