"""The base class of every zoo model: Hub save/load and the pretrained config."""

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .config import PretrainedCfg


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
        raise ValueError(f"{model} expects {layout} with C={channels}, got shape {tuple(x.shape)}")
