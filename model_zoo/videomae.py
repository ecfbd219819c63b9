"""VideoMAE (Tong et al., 2022) from transformers, and the paper's future-work 3D CNN stem in front of it.

The paper fine-tuned Kinetics weights with 32 frames sampled evenly per clip; multimodal clips use
the "squeezed" layout (frame resized to 208 wide + spectrogram chunk 16 wide = 224x224), so every
variant takes (B, T, 3, 224, 224). The frame count is fixed by the config (position embeddings are
built for it): 16 by default, `num_frames=32` for the paper's setting. Classification mean-pools
the tokens (`use_mean_pooling=True`).

Licence: the official VideoMAE weights (MCG-NJU/*, Kinetics-400 fine-tuned and pre-trained) are
CC BY-NC 4.0, non-commercial use only; models initialised from them inherit that restriction.

transformers is imported when a VideoMAE is built, not with `model_zoo` (it costs seconds).
"""

# no `from __future__ import annotations`: the Hub mixin reads __init__'s annotations as types
import os
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import VideoMAEForVideoClassification

from .base import ZooModel, check_input
from .config import (
    HEIGHT,
    IMAGENET_GRAY_MEAN,
    IMAGENET_GRAY_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LABEL_NAMES,
    SQUARE_WIDTH,
    VARIANTS_3D,
    ModelZooError,
    PretrainedCfg,
    check_channels,
)
from .registry import InputSpec, WeightSource, default_cfg, register_model
from .weights import conv_with_in_channels

KINETICS_CHECKPOINT = "MCG-NJU/videomae-base-finetuned-kinetics"
KINETICS_LICENSE = "CC-BY-NC-4.0"
WEIGHTS = {
    "kinetics-400": WeightSource(f"hf:{KINETICS_CHECKPOINT}", "Kinetics-400: self-supervised pre-training, then "
                                 "fine-tuned to its 400 classes", KINETICS_LICENSE),
    "kinetics-400-pretrain": WeightSource("hf:MCG-NJU/videomae-base", "Kinetics-400, self-supervised pre-training only",
                                          KINETICS_LICENSE),
}
# VideoMAE's image processor normalises with ImageNet's statistics; the input is square (see above)
INPUT = InputSpec(IMAGENET_MEAN, IMAGENET_STD, IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD, temporal="sample", width=SQUARE_WIDTH)
DEFAULT_FRAMES = 16
PAPER_FRAMES = 32
SIZES = {
    "base": {},  # transformers' VideoMAEConfig defaults are ViT-B: 768 wide, 12 layers, 12 heads
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
}
# Parameters a classification checkpoint may lack or have in another shape; anything else is an error.
NEW_HEAD_KEYS = {"classifier.weight", "classifier.bias", "fc_norm.weight", "fc_norm.bias"}


class ConvStem3d(nn.Module):
    """Small 3D CNN before VideoMAE (the paper's future work, sections 5.7.4 and 6).

    It halves frames, height and width, so VideoMAE attends over 8x fewer tokens (joint
    space-time attention is quadratic in them), and it can learn to suppress the spatially
    redundant parts of face clips. It outputs 3 channels so pretrained RGB patch embeddings apply.
    """

    def __init__(self, channels: int = 3, width: int = 8):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv3d(channels, width, kernel_size=3, stride=(1, 2, 2), padding=1, bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.Conv3d(width, 3, kernel_size=3, stride=(2, 1, 1), padding=1),
        )

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, T/2, 3, H/2, W/2)."""
        return self.layers(clips.transpose(1, 2)).transpose(1, 2)


class VideoMAEClassifier(ZooModel):
    """transformers' `VideoMAEForVideoClassification` as a zoo model (`self.net`), optionally behind a stem.

    `videomae_config` is the full VideoMAEConfig as a dict, so config.json rebuilds the exact
    backbone whether it came from the base config, the tiny test config or a checkpoint.
    """

    def __init__(
        self,
        variant: str = "3d-multimodal",
        num_classes: int = 6,
        channels: int = 3,
        videomae_config: dict | None = None,
        conv_stem: bool = False,
        pretrained_cfg: PretrainedCfg | None = None,
    ):
        super().__init__()
        from transformers import VideoMAEConfig, VideoMAEForVideoClassification

        self.channels = check_channels(channels)
        config = VideoMAEConfig.from_dict(videomae_config or {})
        if config.num_labels != num_classes:
            raise ModelZooError(f"videomae_config has {config.num_labels} labels, num_classes is {num_classes}")
        self.stem = ConvStem3d(channels) if conv_stem else None
        self.net = VideoMAEForVideoClassification(config)
        self.frames = config.num_frames * (2 if conv_stem else 1)
        name = "videomae_conv_stem" if conv_stem else "videomae"
        self.pretrained_cfg = pretrained_cfg or default_cfg(name, variant, channels, frames=self.frames)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, C, 224, 224) normalised clips, T fixed by the config -> (B, num_classes) logits."""
        check_input(clips, 5, self.channels, "videomae")
        if clips.shape[1] != self.frames or clips.shape[-2:] != (HEIGHT, SQUARE_WIDTH):
            raise ModelZooError(f"videomae expects (B, {self.frames}, C, 224, 224), got {tuple(clips.shape)}")
        if self.stem is not None:
            clips = self.stem(clips)
        return self.net(pixel_values=clips).logits


def _label_maps(num_classes: int) -> dict:
    if num_classes != len(LABEL_NAMES):
        return {"num_labels": num_classes}
    return {
        "num_labels": num_classes,
        "id2label": dict(enumerate(LABEL_NAMES)),
        "label2id": {name: i for i, name in enumerate(LABEL_NAMES)},
    }


def _load_backbone(source: str, overrides: dict) -> "VideoMAEForVideoClassification":
    """Load VideoMAE weights from a local folder or Hub id, with a fresh head for our classes.

    Pre-training checkpoints (no classifier, decoder weights) and Kinetics classifiers (400-way
    head) both work; a checkpoint that leaves any other parameter uninitialised raises.
    """
    from transformers import VideoMAEForVideoClassification

    net, info = VideoMAEForVideoClassification.from_pretrained(
        source, ignore_mismatched_sizes=True, output_loading_info=True, dtype=torch.float32, **overrides
    )
    fresh = set(info["missing_keys"]) | {key for key, *_ in info["mismatched_keys"]}
    if fresh - NEW_HEAD_KEYS:
        raise ModelZooError(f"{source} does not fit VideoMAE: uninitialised {sorted(fresh - NEW_HEAD_KEYS)}")
    return net


def _build(
    variant: str,
    num_classes: int,
    pretrained: bool | str | WeightSource,
    channels: int,
    num_frames: int,
    size: str,
    conv_stem: bool,
    config_overrides: dict,
) -> VideoMAEClassifier:
    if conv_stem and num_frames % 2:
        raise ModelZooError("the conv stem halves the frames: num_frames must be even")
    backbone_channels = 3 if conv_stem else channels
    overrides = {
        "num_frames": num_frames // 2 if conv_stem else num_frames,
        "image_size": HEIGHT // 2 if conv_stem else HEIGHT,
        "use_mean_pooling": True,
        **_label_maps(num_classes),
        **config_overrides,
    }
    from transformers import VideoMAEConfig

    if not pretrained:
        if size not in SIZES:
            raise ModelZooError(f"size must be one of {sorted(SIZES)}")
        config = VideoMAEConfig(**SIZES[size], num_channels=backbone_channels, **overrides)
        return VideoMAEClassifier(variant, num_classes, channels, config.to_diff_dict(), conv_stem)

    declared = isinstance(pretrained, WeightSource)
    source = pretrained.name if declared else os.fspath(pretrained)
    net = _load_backbone(source, overrides)
    if backbone_channels == 1:  # the grayscale option on RGB weights: sum the patch filters
        patches = net.videomae.embeddings.patch_embeddings
        patches.projection = conv_with_in_channels(patches.projection, 1)
        patches.num_channels = net.config.num_channels = 1
    model = VideoMAEClassifier(variant, num_classes, channels, net.config.to_diff_dict(), conv_stem)
    model.net = net
    if not declared:  # a declared source is recorded by `create_model`
        is_local = os.path.exists(source)
        model.pretrained_cfg = replace(
            model.pretrained_cfg,
            weights=f"local:{os.path.basename(os.path.normpath(source))}" if is_local else f"hf:{source}",
            license=KINETICS_LICENSE if source.startswith("MCG-NJU/") else None,
        )
    return model


@register_model(
    "videomae",
    model_class=VideoMAEClassifier,
    variants=VARIANTS_3D,
    paper="Tables 1-3, Transformer (Kinetics init, 32 frames)",
    summary="transformers VideoMAEForVideoClassification, mean pooling",
    input=INPUT,
    weights=WEIGHTS,
    dropout_arg="hidden_dropout_prob",
    frames_arg="num_frames",
)
def videomae(
    *,
    variant: str,
    num_classes: int = 6,
    pretrained: bool | str | WeightSource = False,
    channels: int = 3,
    num_frames: int = DEFAULT_FRAMES,
    size: str = "base",
    **config_overrides,
) -> VideoMAEClassifier:
    """VideoMAE; `pretrained` True (Kinetics, CC BY-NC 4.0), a tag of `WEIGHTS`, a local folder or a Hub id.

    `size` ("base" or "tiny", for tests) applies to random init; with `pretrained` the
    checkpoint's config decides. Other kwargs override VideoMAEConfig fields (e.g.
    `hidden_dropout_prob`).
    """
    return _build(variant, num_classes, pretrained, channels, num_frames, size, False, config_overrides)


@register_model(
    "videomae_conv_stem",
    model_class=VideoMAEClassifier,
    variants=VARIANTS_3D,
    paper="future work (sections 5.7.4 and 6): small 3D CNN before VideoMAE",
    summary="ConvStem3d (halves T, H, W) + VideoMAE on 112x112",
    input=INPUT,
    weights=WEIGHTS,  # the backbone's; the stem starts from random
    dropout_arg="hidden_dropout_prob",
    frames_arg="num_frames",
)
def videomae_conv_stem(
    *,
    variant: str,
    num_classes: int = 6,
    pretrained: bool | str | WeightSource = False,
    channels: int = 3,
    num_frames: int = PAPER_FRAMES,
    size: str = "base",
    **config_overrides,
) -> VideoMAEClassifier:
    """VideoMAE behind `ConvStem3d`; `num_frames` counts input frames (the backbone sees half)."""
    return _build(variant, num_classes, pretrained, channels, num_frames, size, True, config_overrides)
