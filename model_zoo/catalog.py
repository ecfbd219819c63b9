"""The table of registered models: each name, how to build it, its class, what the paper did with it.

It sits below `base` so that `ZooModel.from_pretrained` can find the class a checkpoint's
config.json names without importing `registry` (which builds on `base`); the classes are therefore
typed as `nn.Module` here, though every one is a `ZooModel`.
"""

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .config import VARIANTS, ModelZooError, get_variant


@dataclass(frozen=True)
class ModelEntry:
    """One registered encoder: how to build it and what the paper did with it."""

    name: str
    builder: Callable[..., nn.Module]  # returns a `model_class`
    model_class: type[nn.Module]  # a ZooModel subclass
    variants: tuple[str, ...]
    default_channels: int
    paper: str  # where the paper reports it, or "future work"
    summary: str
    pretrained: str | None  # what `pretrained=True` loads; None if no published weights
    head: str | None = None  # dotted path of the classification layer (None: no single one)
    dropout_arg: str | None = None  # the constructor argument setting its dropout (None: none to set)
    frames_arg: str | None = None  # the constructor argument fixing its frame count (None: takes any length)

    @property
    def default_variant(self) -> str:
        """The multimodal variant: the paper's subject, so the default (else the model's only or first one)."""
        return next((v for v in self.variants if VARIANTS[v].modality == "multimodal"), self.variants[0])


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    model_class: type[nn.Module],
    variants: tuple[str, ...],
    paper: str,
    summary: str,
    default_channels: int = 3,
    pretrained: str | None = None,
    head: str | None = None,
    dropout_arg: str | None = None,
    frames_arg: str | None = None,
) -> Callable:
    """Decorator registering a builder `fn(variant, num_classes, pretrained, channels, **kwargs)`.

    `head`, `dropout_arg` and `frames_arg` are the facts training and the separate-encoder models
    need, as data: where the classifier sits (replaced to take the features), which argument sets
    dropout, and which fixes the frame count; so no code outside the model's file names a model.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ModelZooError(f"model {name!r} is registered twice")
        for variant in variants:
            get_variant(variant)
        _REGISTRY[name] = ModelEntry(
            name, builder, model_class, tuple(variants), default_channels, paper, summary, pretrained,
            head, dropout_arg, frames_arg,
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
