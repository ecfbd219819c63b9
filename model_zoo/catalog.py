"""The table of registered models: each name, how to build it, its class, what the paper did with it.

It sits below `base` so that `ZooModel.from_pretrained` can find the class a checkpoint's
config.json names without importing `registry` (which builds on `base`); the classes are therefore
typed as `nn.Module` here, though every one is a `ZooModel`.
"""

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from torch import nn

from .config import HEIGHT, VARIANTS, ModelZooError, PretrainedCfg, get_variant


@dataclass(frozen=True)
class WeightSource:
    """Initial weights a model can load, declared by tag in its entry (`pretrained="<tag>"`).

    `source` is what a model records in `pretrained_cfg.weights` once loaded: a scheme and a name
    ("torchvision:ResNet18_Weights.IMAGENET1K_V1", "hf:microsoft/wavlm-large",
    "pytorch-i3d:rgb_imagenet.pt"); the scheme says which loader reads it.
    """

    source: str
    trained_on: str  # the data (and the training) behind the weights
    license: str | None = None  # as the weights' publisher states it; None where none is recorded here
    url: str | None = None  # where a file source downloads from

    @property
    def name(self) -> str:
        """The source without its scheme: the Hub id, the torchvision weights, the file."""
        return self.source.split(":", 1)[1]

    def describe(self) -> str:
        return f"{self.trained_on}: {self.source}" + (f" ({self.license})" if self.license else "")


@dataclass(frozen=True)
class InputSpec:
    """A model's default input, as data: the `PretrainedCfg` it gets for a variant and channel count.

    Inputs are images in [0, 1] normalised per channel; 1-channel inputs (the paper's grayscale option)
    take `gray_mean`/`gray_std`, or the first RGB value where a model uses the same one for every channel.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    gray_mean: tuple[float, ...] | None = None
    gray_std: tuple[float, ...] | None = None
    frames: int | None = None  # 3D models: frames per clip
    temporal: str | None = None  # 3D: "pad" or "sample" (see PretrainedCfg)
    width: int | None = None  # a fixed width (VideoMAE's square input); None: the variant's
    input_size: tuple[int, ...] | None = None  # a fixed input size (the waveform's (1,)); None: (channels, 224, width)
    load: dict | None = None  # `crema_tools.load` options, for inputs outside the paper's configs

    def cfg(self, model_name: str, variant: str, channels: int, **changes) -> PretrainedCfg:
        """The default `PretrainedCfg` of `model_name` on `variant` with `channels` channels."""
        gray = channels == 1
        cfg = PretrainedCfg(
            model_name=model_name, variant=variant,
            input_size=self.input_size or (channels, HEIGHT, self.width or get_variant(variant).width),
            frames=self.frames, temporal=self.temporal,
            mean=(self.gray_mean or self.mean[:1]) if gray else self.mean,
            std=(self.gray_std or self.std[:1]) if gray else self.std,
            load=self.load,
        )
        return replace(cfg, **changes)


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how to build it, its default input and weights, what the paper did with it."""

    name: str
    builder: Callable[..., nn.Module]  # returns a `model_class`
    model_class: type[nn.Module]  # a ZooModel subclass
    variants: tuple[str, ...]
    default_channels: int
    paper: str  # where the paper reports it, or "future work"
    summary: str
    input: InputSpec | None = None  # None: composed from its encoders' (the separate-encoder models)
    weights: Mapping[str, WeightSource] = field(default_factory=dict)  # by tag; the first is `pretrained=True`
    head: str | None = None  # dotted path of the classification layer (None: no single one)
    dropout_arg: str | None = None  # the constructor argument setting its dropout (None: none to set)
    frames_arg: str | None = None  # the constructor argument fixing its frame count (None: takes any length)

    @property
    def default_variant(self) -> str:
        """The multimodal variant: the paper's subject, so the default (else the model's only or first one)."""
        return next((v for v in self.variants if VARIANTS[v].modality == "multimodal"), self.variants[0])

    @property
    def pretrained(self) -> str | None:
        """What `pretrained=True` loads, in words; None if the model has no published weights."""
        return next(iter(self.weights.values())).describe() if self.weights else None

    def weight_source(self, pretrained) -> WeightSource | None:
        """The declared source `pretrained` names: True (the first tag), a tag, or a source itself;
        None for anything else (a file, a folder or Hub id, which the model's builder reads)."""
        if isinstance(pretrained, WeightSource):
            return pretrained
        if pretrained is True:
            return next(iter(self.weights.values()), None)
        return self.weights.get(pretrained) if isinstance(pretrained, str) else None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    model_class: type[nn.Module],
    variants: tuple[str, ...],
    paper: str,
    summary: str,
    default_channels: int = 3,
    input: InputSpec | None = None,
    weights: Mapping[str, WeightSource] | None = None,
    head: str | None = None,
    dropout_arg: str | None = None,
    frames_arg: str | None = None,
) -> Callable:
    """Decorator registering a builder `fn(variant, num_classes, pretrained, channels, **kwargs)`.

    The rest is the model as data: `input` its default input (normalisation, frames, size),
    `weights` its initial weights by tag; `head`, `dropout_arg` and `frames_arg` the facts training
    and the separate-encoder models need: where the classifier sits (replaced to take the features),
    which argument sets dropout, and which fixes the frame count; so no code outside the model's
    file names a model.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ModelZooError(f"model {name!r} is registered twice")
        for variant in variants:
            get_variant(variant)
        _REGISTRY[name] = ModelEntry(
            name, builder, model_class, tuple(variants), default_channels, paper, summary, input,
            dict(weights or {}), head, dropout_arg, frames_arg,
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


def default_cfg(name: str, variant: str, channels: int, **changes) -> PretrainedCfg:
    """The `PretrainedCfg` a model's constructor starts from: its entry's declared input."""
    spec = get_model_entry(name).input
    if spec is None:
        raise ModelZooError(f"{name} declares no input of its own")
    return spec.cfg(name, variant, channels, **changes)
