"""timm-style registry: `list_models`, `create_model`, and `load_model` for saved checkpoints.

The table of registered models is `catalog` and reading a checkpoint's config.json is `checkpoint`,
both below `base`; their names are exported here too, where the architectures and users find them.
"""

import os
from dataclasses import replace

from .base import ZooModel
from .catalog import InputSpec, ModelEntry, WeightSource, default_cfg, get_model_entry, list_models, register_model
from .checkpoint import checkpoint_class, read_checkpoint_config
from .config import ModelZooError, check_channels

__all__ = ["InputSpec", "ModelEntry", "WeightSource", "checkpoint_class", "default_cfg", "create_model", "from_pretrained", "get_model_entry", "list_models",
           "load_model", "read_checkpoint_config", "register_model"]


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
        pretrained: False for random init; True for the model's first declared weights (ImageNet,
            rgb_imagenet.pt, Kinetics; `get_model_entry(name).weights` lists them by tag); a tag
            for another of them; or a specific source (a torchvision weights name, an I3D state-dict
            file, a VideoMAE or speech folder or Hub id). Checkpoints written by `save_pretrained`
            are read with `load_model`.
        **kwargs: model options, e.g. `channels=1` for the grayscale inputs, ViT's `dropout`,
            VideoMAE's `num_frames` and `size`.
    """
    entry = get_model_entry(name)
    variant = variant or entry.default_variant
    if variant not in entry.variants:
        raise ModelZooError(f"{name} supports variants {list(entry.variants)}, not {variant!r}")
    if pretrained and not entry.weights:
        raise ModelZooError(f"{name} has no published weights; load a trained checkpoint with load_model")
    channels = check_channels(kwargs.pop("channels", entry.default_channels))
    # a declared source reaches the builder as itself, and is recorded here, the same way for every model
    source = entry.weight_source(pretrained)
    model = entry.builder(variant=variant, num_classes=num_classes, pretrained=source or pretrained, channels=channels,
                          **kwargs)
    if source is not None:
        model.pretrained_cfg = replace(model.pretrained_cfg, weights=source.source, license=source.license)
    return model


def from_pretrained(name_or_path: str | os.PathLike, *, revision: str | None = None, **kwargs) -> ZooModel:
    """Load a checkpoint written by any zoo model's `save_pretrained` or by `model_zoo.push`.

    `name_or_path` is a local folder or a Hub model repo id ("ORG/NAME", read through the Hub cache;
    `revision` picks a branch, tag or commit). The model is rebuilt from config.json (its
    `pretrained_cfg.model_name` picks the class), with its `pretrained_cfg` (input size, frames,
    mean, std, label names: the preprocessing), and the safetensors weights are loaded strictly.
    `kwargs` go to the class's `from_pretrained` (e.g. `map_location`, `cache_dir`, `local_files_only`).
    """
    return ZooModel.from_pretrained(name_or_path, revision=revision, **kwargs)


def load_model(name_or_path: str | os.PathLike, **kwargs) -> ZooModel:
    """The same as `from_pretrained` (kept as the zoo's first name for it)."""
    return from_pretrained(name_or_path, **kwargs)
