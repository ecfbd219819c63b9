"""timm-style registry: `list_models`, `create_model`, and `load_model` for saved checkpoints."""

import fnmatch
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .base import ZooModel
from .config import VARIANTS, ModelZooError, check_channels, get_variant


@dataclass(frozen=True)
class ModelEntry:
    """One registered encoder: how to build it and what the paper did with it."""

    name: str
    builder: Callable[..., ZooModel]
    model_class: type[ZooModel]
    variants: tuple[str, ...]
    default_channels: int
    paper: str  # where the paper reports it, or "future work"
    summary: str
    pretrained: str | None  # what `pretrained=True` loads; None if no published weights

    @property
    def default_variant(self) -> str:
        """The multimodal variant: the paper's subject, so the default."""
        return next(v for v in self.variants if VARIANTS[v].modality == "multimodal")


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    model_class: type[ZooModel],
    variants: tuple[str, ...],
    paper: str,
    summary: str,
    default_channels: int = 3,
    pretrained: str | None = None,
) -> Callable:
    """Decorator registering a builder `fn(variant, num_classes, pretrained, channels, **kwargs)`."""

    def decorator(builder: Callable[..., ZooModel]) -> Callable[..., ZooModel]:
        if name in _REGISTRY:
            raise ModelZooError(f"model {name!r} is registered twice")
        for variant in variants:
            get_variant(variant)
        _REGISTRY[name] = ModelEntry(
            name, builder, model_class, tuple(variants), default_channels, paper, summary, pretrained
        )
        return builder

    return decorator


def list_models(filter: str = "*", variant: str | None = None) -> list[str]:
    """Registered model names matching the glob `filter`, optionally only those supporting `variant`."""
    names = fnmatch.filter(_REGISTRY, filter)
    if variant is not None:
        get_variant(variant)
        names = [name for name in names if variant in _REGISTRY[name].variants]
    return sorted(names)


def get_model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelZooError(f"unknown model {name!r}; available: {list_models()}") from None


def create_model(
    name: str,
    variant: str | None = None,
    num_classes: int = 6,
    pretrained: bool | str = False,
    **kwargs,
) -> ZooModel:
    """Build a registered model for one of the paper's input variants.

    Args:
        name: a name from `list_models()`.
        variant: "2d-audio", "2d-vision", "2d-multimodal", "3d-audio", "3d-vision" or
            "3d-multimodal"; defaults to the model's multimodal variant.
        num_classes: size of the classification head (6 CREMA-D emotions).
        pretrained: False for random init; True for the encoder's published weights (ImageNet,
            rgb_imagenet.pt, Kinetics); a string for a specific source (a torchvision weights name,
            an I3D state-dict file, a VideoMAE folder or Hub id). Checkpoints written by
            `save_pretrained` are read with `load_model`.
        **kwargs: model options, e.g. `channels=1` for the grayscale inputs, ViT's `dropout`,
            VideoMAE's `num_frames` and `size`.
    """
    entry = get_model_entry(name)
    variant = variant or entry.default_variant
    if variant not in entry.variants:
        raise ModelZooError(f"{name} supports variants {list(entry.variants)}, not {variant!r}")
    if pretrained and entry.pretrained is None:
        raise ModelZooError(f"{name} has no published weights; load a trained checkpoint with load_model")
    channels = check_channels(kwargs.pop("channels", entry.default_channels))
    return entry.builder(variant=variant, num_classes=num_classes, pretrained=pretrained, channels=channels, **kwargs)


def load_model(name_or_path: str | os.PathLike, **kwargs) -> ZooModel:
    """Load a checkpoint written by any zoo model's `save_pretrained` (local folder or Hub id).

    The model is rebuilt from config.json (its `pretrained_cfg.model_name` picks the class) and the
    safetensors weights are loaded strictly. `kwargs` go to `from_pretrained` (e.g. `map_location`).
    """
    source = os.fspath(name_or_path)
    if os.path.isdir(source):
        config_file = Path(source) / "config.json"
    else:
        from huggingface_hub import hf_hub_download

        config_file = Path(hf_hub_download(source, "config.json"))
    config = json.loads(config_file.read_text(encoding="utf-8"))
    try:
        model_name = config["pretrained_cfg"]["model_name"]
    except (KeyError, TypeError):
        raise ModelZooError(f"{source} is not a model_zoo checkpoint (no pretrained_cfg in config.json)") from None
    return get_model_entry(model_name).model_class.from_pretrained(source, **kwargs)
