"""The base class of every zoo model: Hub save/load and the pretrained config."""

import contextlib
import io
from collections.abc import Mapping

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .checkpoint import checkpoint_class
from .config import ModelZooError, PretrainedCfg

LIBRARY_MARKERS = {"library_name": "crema-tools", "model_type": "crema-tools", "architecture": "crema-tools"}
"""Keys config.json carries so that other libraries see whose checkpoint it is: transformers reads
`model_type` ("model type `crema-tools`" is not one it knows), timm `architecture` ("Unknown model
(crema-tools)"); without them both take the timm-style `pretrained_cfg` for a timm checkpoint."""


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
        """Hub mixin's save_pretrained, with the model's current `pretrained_cfg` in config.json.

        config.json also names the library (`LIBRARY_MARKERS`), so that transformers and timm refuse
        the folder with a message naming crema-tools instead of reading the timm-style
        `pretrained_cfg` as a timm checkpoint and building another model.
        """
        if config is None:
            config = {**(self._hub_mixin_config or {}), "pretrained_cfg": self.pretrained_cfg.to_dict()}
        return super().save_pretrained(save_directory, config={**config, **LIBRARY_MARKERS}, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a checkpoint (folder or Hub id) written by `save_pretrained` or `model_zoo.push`.

        On `ZooModel` itself, the class is chosen by config.json's `pretrained_cfg.model_name`
        (as `model_zoo.from_pretrained` does); on a subclass, a checkpoint of another model is an
        error. `kwargs`: `revision`, `cache_dir`, `force_download`, `local_files_only`, `map_location`, ...
        """
        target = checkpoint_class(pretrained_model_name_or_path, revision=kwargs.get("revision"),
                                  cache_dir=kwargs.get("cache_dir"), force_download=kwargs.get("force_download", False),
                                  local_files_only=kwargs.get("local_files_only", False))
        if not issubclass(target, cls):
            raise ModelZooError(f"{pretrained_model_name_or_path} holds a {target.__name__}, not a {cls.__name__}: "
                                "load it with model_zoo.from_pretrained")
        return super(ZooModel, target).from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _from_pretrained(cls, *, strict: bool = True, **kwargs):
        # the mixin prints "Loading weights from local directory" to stdout, which would corrupt
        # the JSON that `crema-tools predict --json` and scripts print there
        with contextlib.redirect_stdout(io.StringIO()):
            return super()._from_pretrained(strict=strict, **kwargs)

    def generate_model_card(self, *args, evaluation: str | None = None, metrics: Mapping | None = None,
                            dataset_repo_id: str | None = None, dataset_revision: str | None = None,
                            repo_id: str | None = None, **kwargs):
        """The Hub card from `cards/model_card.md` (see `model_zoo.card.render_model_card`): input,
        normalisation, initial weights, how to run it; with `metrics` (a `RunMetrics` or its dict), the
        evaluation, and with a Hub dataset id (`dataset_repo_id`, or the one metrics.json names) the
        `model-index` metadata too. Pass them to `save_pretrained` as `model_card_kwargs`."""
        from .card import render_model_card

        return render_model_card(self, metrics, dataset_repo_id, repo_id=repo_id, dataset_revision=dataset_revision,
                                 evaluation=evaluation)

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
