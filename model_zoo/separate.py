"""Separate encoders with fusion: one encoder per modality and a fusion head, the other side of the
paper's question (shared versus separate encoders) and the model of the balanced-multimodal line.

    model = model_zoo.create_model("resnet18_separate", variant="2d-multimodal", fusion="concat")
    logits = model(x)                                  # x: the multimodal input, as for a shared model
    logits, per_modality, features = model(x, return_parts=True)  # {"audio": ..., "vision": ...} each

A model takes its config's input unchanged, so training, evaluation, the modality ablation and
`predict` treat it like any zoo model: the paper's multimodal images and clips are split where
their representation puts the two parts side by side (the face or frame first, the mel second),
and the `ogm-ge` config's `layout="parts"` gives the two parts already apart. Each part goes
through its own copy of a registered encoder with its classifier replaced by the identity (the
entry's `head`), then through one of OGM-GE's fusion heads (`model_zoo.fusion`).

`resnet18_separate` on the `ogm-ge` config is OGM-GE's baseline (their `AVClassifier`): a ResNet18
on the 1-channel spectrogram, one on the frames (each frame encoded, features averaged over time,
as their pooling over T, H and W does), concat fusion.
"""

# no `from __future__ import annotations`: the Hub mixin reads __init__'s annotations as types
from dataclasses import replace

import torch
from torch import nn

from .base import ZooModel
from .catalog import get_model_entry, register_model
from .config import HEIGHT, SQUARE_WIDTH, ModelZooError, PretrainedCfg, check_channels, get_variant
from .fusion import FUSIONS, FusionHead

PARTS = {"2d-multimodal": ("2d-audio", "2d-vision"), "3d-multimodal": ("3d-audio", "3d-vision"),
         "ogm-ge": ("2d-audio", "2d-vision")}
"""Each multimodal config and the unimodal configs whose input its two parts are (audio, vision)."""
ENCODERS = ("resnet18", "googlenet", "vgg16", "vit", "simple3d", "i3d")
"""The registered models used as encoders: the paper's 2D CNNs and ViT, Simple3D and I3D."""


def take_features(model: nn.Module) -> int:
    """Replace a zoo model's classifier (its registry entry's `head`) by the identity, so that it
    returns the features the classifier read; returns their width."""
    path = get_model_entry(model.pretrained_cfg.model_name).head
    layer = next(m for m in model.get_submodule(path).modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)))
    model.set_submodule(path, nn.Identity())
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


class SeparateEncoders(ZooModel):
    """An audio encoder and a vision encoder (same architecture, own weights) and a fusion head."""

    modalities = ("audio", "vision")

    def __init__(
        self,
        encoder: str = "resnet18",
        variant: str = "2d-multimodal",
        num_classes: int = 6,
        channels: int = 3,
        fusion: str = "concat",
        audio_channels: int = 0,
        encoder_options: dict | None = None,
        pretrained_cfg: PretrainedCfg | None = None,
    ):
        super().__init__()
        from .registry import create_model

        if encoder not in ENCODERS:
            raise ModelZooError(f"{encoder!r} cannot be a separate encoder; choose from {', '.join(ENCODERS)}")
        if variant not in PARTS:
            raise ModelZooError(f"separate encoders take {', '.join(PARTS)}, not {variant!r}")
        if fusion not in FUSIONS:
            raise ModelZooError(f"unknown fusion {fusion!r}: choose from {', '.join(FUSIONS)}")
        self.encoder, self.fusion_method, self.variant = encoder, fusion, variant
        self.channels = check_channels(channels)
        self.parts_given = get_variant(variant).layout not in ("image", "clip")  # the ogm-ge config's parts layout
        audio_channels = check_channels(audio_channels or (1 if self.parts_given else channels))
        audio_variant, vision_variant = PARTS[variant]
        options = dict(encoder_options or {})
        self.audio = create_model(encoder, variant=audio_variant, num_classes=num_classes, channels=audio_channels, **options)
        self.vision = create_model(encoder, variant=vision_variant, num_classes=num_classes, channels=channels, **options)
        features = take_features(self.audio)
        take_features(self.vision)
        self.fusion = FusionHead(fusion, features, num_classes)
        vision_cfg = self.vision.pretrained_cfg
        self.pretrained_cfg = pretrained_cfg or replace(
            vision_cfg, model_name=f"{encoder}_separate", variant=variant, weights=None,
            input_size=vision_cfg.input_size if self.parts_given else (channels, HEIGHT, get_variant(variant).width),
            # the ogm-ge config's parts come normalised as OGM-GE's loader does it
            mean=(0.0,) if self.parts_given else vision_cfg.mean, std=(1.0,) if self.parts_given else vision_cfg.std,
            load={"layout": "parts"} if self.parts_given else None,
        )

    def split(self, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio, vision) of one input: the parts given, or the two sides of a paper multimodal input."""
        if isinstance(inputs, dict):
            return inputs["audio"], inputs["vision"]
        return inputs[..., SQUARE_WIDTH:], inputs[..., :SQUARE_WIDTH]

    def encode(self, modality: str, part: torch.Tensor) -> torch.Tensor:
        """One modality's part of the input (as `split` gives it) through its encoder -> (B, features)."""
        if modality not in self.modalities:
            raise ModelZooError(f"no modality {modality!r}: choose from {', '.join(self.modalities)}")
        if modality == "vision" and self.parts_given and part.ndim == 5:  # (B, C, T, H, W) frames through a 2D encoder
            b, c, t = part.shape[:3]
            frames = part.transpose(1, 2).reshape(b * t, c, *part.shape[-2:])
            return self.vision(frames).view(b, t, -1).mean(dim=1)
        return getattr(self, modality)(part)

    def features(self, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        audio, vision = self.split(inputs)
        return self.encode("audio", audio), self.encode("vision", vision)

    def forward(self, inputs, return_parts: bool = False):
        """The config's input -> (B, num_classes) fused logits; with `return_parts`, also each
        modality's logits (`FusionHead.unimodal_logits`) and features, as {"audio": ..., "vision": ...}."""
        audio, vision = self.features(inputs)
        logits = self.fusion(audio, vision)
        if not return_parts:
            return logits
        return logits, self.fusion.unimodal_logits(audio, vision), {"audio": audio, "vision": vision}


def _register(encoder: str) -> None:
    entry = get_model_entry(encoder)
    variants = tuple(v for v, (audio, _) in PARTS.items() if audio in entry.variants and
                     (v != "ogm-ge" or encoder == "resnet18"))

    def build(*, variant: str, num_classes: int = 6, pretrained=False, channels: int = 3,
              fusion: str = "concat", audio_channels: int = 0, **encoder_options) -> SeparateEncoders:
        model = SeparateEncoders(encoder, variant, num_classes, channels, fusion, audio_channels, encoder_options)
        if pretrained:
            from .registry import create_model

            for part, part_variant in zip((model.audio, model.vision), PARTS[variant]):
                source = create_model(encoder, variant=part_variant, num_classes=num_classes,
                                      channels=part.pretrained_cfg.input_size[0], pretrained=pretrained, **encoder_options)
                take_features(source)
                part.load_state_dict(source.state_dict())
                part.pretrained_cfg = source.pretrained_cfg
            model.pretrained_cfg = replace(model.pretrained_cfg, weights=model.vision.pretrained_cfg.weights,
                                           license=model.vision.pretrained_cfg.license)
        return model

    build.__doc__ = f"Separate {encoder} encoders for audio and vision with a fusion head ({', '.join(FUSIONS)})."
    register_model(f"{encoder}_separate", model_class=SeparateEncoders, variants=variants, paper=(
        "the paper's question (shared vs separate encoders); OGM-GE's baseline on the ogm-ge config"
        if encoder == "resnet18" else "the paper's question (shared vs separate encoders)"),
        summary=f"one {encoder} per modality (classifier removed) + OGM-GE fusion head",
        default_channels=entry.default_channels, weights=entry.weights,
        dropout_arg=entry.dropout_arg, frames_arg=entry.frames_arg)(build)


for _encoder in ENCODERS:
    _register(_encoder)
