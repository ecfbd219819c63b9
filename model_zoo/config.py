"""Variants, labels and the pretrained config every zoo model carries.

The names here are the contract with the dataset side: a variant fixes the input layout, and
`PretrainedCfg` says how to normalise inputs and how to read the logits.
"""

from dataclasses import asdict, dataclass

from crema_tools.corpus import EMOTIONS
from crema_tools.errors import CremaToolsError
from crema_tools.variants import (  # noqa: F401 - the dataset side's facts, re-exported for model code
    HEIGHT,
    SQUARE_WIDTH,
    VARIANTS,
    VARIANTS_2D,
    VARIANTS_3D,
    WIDE_WIDTH,
    Variant,
    VariantError,
    get_variant,
)

LABEL_NAMES = EMOTIONS
"""CREMA-D emotions in logit order: the corpus's label order, by definition."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# timm's convention for a grey input to an ImageNet model: the mean of the RGB statistics.
IMAGENET_GRAY_MEAN = (0.449,)
IMAGENET_GRAY_STD = (0.226,)


class ModelZooError(CremaToolsError, ValueError):
    """An unknown model, a variant or option a model does not take, a folder that is no checkpoint."""


def check_channels(channels: int) -> int:
    """Models take RGB (3) or the paper's grayscale option (1)."""
    if channels not in (1, 3):
        raise ModelZooError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    return channels


@dataclass(frozen=True)
class PretrainedCfg:
    """What a model expects as input and what its initial weights were.

    Saved in config.json next to the weights (timm's `pretrained_cfg`), so a checkpoint says how to
    feed it without the code that trained it. Inputs are images scaled to [0, 1], then normalised
    per channel as `(x - mean) / std`; a model that wants another range (I3D's [-1, 1]) converts
    inside and says so with mean 0 and std 1.
    """

    model_name: str
    variant: str
    input_size: tuple[int, int, int]  # (channels, height, width) of one image or frame
    frames: int | None = None  # frames per clip for 3D models; None for 2D models
    temporal: str | None = None  # 3D: "pad" (clips padded with blank frames to `frames`) or "sample" (taken evenly)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    label_names: tuple[str, ...] = LABEL_NAMES
    weights: str | None = None  # where the initial weights came from; None for random init
    license: str | None = None  # licence of those weights where it restricts use
    load: dict | None = None  # the `crema_tools.load` options it takes, for configs outside the paper's (else derived)

    def __post_init__(self):
        # JSON gives lists back; keep the dataclass hashable and comparable.
        for name in ("input_size", "mean", "std", "label_names"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample without the batch dimension: (C, H, W) or (T, C, H, W)."""
        return self.input_size if self.frames is None else (self.frames, *self.input_size)

    def load_options(self) -> dict:
        """The `crema_tools.load` options that give this model its input (layout, frames, channels),
        as `load` gives them, or for the paper's configs in the loader's most compact form
        (`crema_tools.transforms.to_model_input` finishes it on the device)."""
        if self.load is not None:
            return dict(self.load)
        options: dict = {"channels": self.input_size[0], "dtype": "planes" if self.frames is not None else "uint8"}
        if self.frames is not None:
            options["sample_frames" if self.temporal == "sample" else "pad_to"] = self.frames
        if self.variant == "3d-multimodal":
            options["multimodal_layout"] = "squeezed" if self.input_size[2] == SQUARE_WIDTH else "wide"
        return options

    def to_dict(self) -> dict:
        return asdict(self)
