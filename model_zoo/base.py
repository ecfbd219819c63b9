"""The base class of every zoo model: Hub save/load and the pretrained config."""

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .config import ModelZooError, PretrainedCfg


class ZooModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="crema-tools",
    tags=["crema-d", "emotion-recognition", "audio-visual"],
):
    """A CREMA-D classifier: maps a batch of its variant's inputs to (B, num_classes) logits.

    Subclasses take only JSON-able constructor arguments, so `save_pretrained` writes them to
    config.json (with `pretrained_cfg`) next to model.safetensors and `from_pretrained` rebuilds
    the same model. Loading is strict: a checkpoint that does not fit is an error, not a silently
    half-initialised model.
    """

    pretrained_cfg: PretrainedCfg

    def save_pretrained(self, save_directory, *, config: dict | None = None, **kwargs):
        """Hub mixin's save_pretrained, with the model's current `pretrained_cfg` in config.json."""
        if config is None:
            config = {**(self._hub_mixin_config or {}), "pretrained_cfg": self.pretrained_cfg.to_dict()}
        return super().save_pretrained(save_directory, config=config, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, strict: bool = True, **kwargs):
        return super()._from_pretrained(strict=strict, **kwargs)

    def generate_model_card(self, *args, evaluation: str | None = None, **kwargs):
        """The Hub card from `cards/model_card.md`: input, normalisation, initial weights, how to run it."""
        from huggingface_hub import ModelCard, ModelCardData

        from crema_tools.cards import card_template

        cfg = self.pretrained_cfg
        restricted = cfg.license is not None and "NC" in cfg.license.upper()
        data = ModelCardData(
            library_name="crema-tools",
            license="cc-by-nc-4.0" if restricted else "apache-2.0",
            tags=sorted({"crema-d", "emotion-recognition", "audio-visual", cfg.variant, cfg.model_name}),
            datasets=["CREMA-D"],
            pipeline_tag="video-classification" if cfg.frames else "image-classification",
        )
        return ModelCard.from_template(
            card_data=data,
            template_str=card_template("model_card.md"),
            model_name=cfg.model_name,
            variant=cfg.variant,
            labels=", ".join(cfg.label_names),
            num_parameters=f"{self.num_parameters():,}",
            input_shape=str(tuple(cfg.input_shape)),
            mean=list(cfg.mean),
            std=list(cfg.std),
            weights=cfg.weights or "random initialisation",
            weights_license=cfg.license,
            load_args=f", frames={cfg.frames}" if cfg.frames else "",
            evaluation=evaluation or "Not fine-tuned on CREMA-D yet: these are the initial weights only.",
        )

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _update_hub_config(self, **values) -> None:
        """Keep config.json in step when a method changes a constructor argument (e.g. the head)."""
        config = getattr(self, "_hub_mixin_config", None)
        if isinstance(config, dict):
            config.update(values)


def check_input(x: torch.Tensor, ndim: int, channels: int, model: str) -> None:
    """Fail early with the expected layout instead of deep inside a conv."""
    channel_dim = 1 if ndim == 4 else 2
    if x.ndim != ndim or x.shape[channel_dim] != channels:
        layout = "(B, C, H, W)" if ndim == 4 else "(B, T, C, H, W)"
        raise ModelZooError(f"{model} expects {layout} with C={channels}, got shape {tuple(x.shape)}")
