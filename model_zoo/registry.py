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


def read_checkpoint_config(name_or_path: str | os.PathLike, **download) -> dict:
    """config.json of a checkpoint folder or Hub model repo; `download`: revision, cache_dir, ..."""
    source = os.fspath(name_or_path)
    if os.path.isdir(source):
        config_file = Path(source) / "config.json"
        if not config_file.is_file():
            raise ModelZooError(f"{source} is not a model_zoo checkpoint (no config.json)")
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

        from crema_tools.hub import is_repo_id

        if not is_repo_id(source):
            raise ModelZooError(f"{source}: no such folder, and not a Hub model repo id of the form ORG/NAME")
        try:
            config_file = Path(hf_hub_download(source, "config.json", **{k: v for k, v in download.items() if v is not None}))
        except (RepositoryNotFoundError, RevisionNotFoundError) as e:
            raise ModelZooError(f"{source}: no such Hub model repo or revision, or not visible with this token "
                                f"({e.__class__.__name__})") from None
        except EntryNotFoundError:
            raise ModelZooError(f"{source} is not a model_zoo checkpoint (no config.json)") from None
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelZooError(f"{source}: config.json is not JSON ({e})") from None


def checkpoint_class(name_or_path: str | os.PathLike, **download) -> type[ZooModel]:
    """The zoo class a checkpoint holds, from its config.json's `pretrained_cfg.model_name`."""
    config = read_checkpoint_config(name_or_path, **download)
    try:
        model_name = config["pretrained_cfg"]["model_name"]
    except (KeyError, TypeError):
        raise ModelZooError(f"{os.fspath(name_or_path)} is not a model_zoo checkpoint "
                            "(no pretrained_cfg in config.json)") from None
    return get_model_entry(model_name).model_class


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
