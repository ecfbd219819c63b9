"""The base class of every zoo model: Hub save/load and the pretrained config."""

import os
from collections.abc import Mapping

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from crema_tools.errors import CremaToolsError

from .checkpoint import cannot_build, checkpoint_class, checkpoint_file
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
    def _from_pretrained(cls, *, model_id: str, revision, cache_dir, force_download: bool, local_files_only: bool, token,
                         map_location: str = "cpu", strict: bool = True, **model_kwargs):
        """The Hub mixin's loading (the model rebuilt from config.json, then its weights, strictly), with
        what a user can fix said in one line naming the file: a config.json this version cannot build,
        a model.safetensors that is no safetensors file (a truncated download, an error page, a pickle:
        never unpickled). Nothing is printed: `crema-tools predict --json` prints JSON on stdout."""
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError
        from safetensors import SafetensorError

        try:
            model = cls(**model_kwargs)
        except (KeyError, TypeError, ValueError, CremaToolsError) as e:
            raise cannot_build(model_id, e) from None
        if os.path.isdir(model_id):
            model_file, load = os.path.join(model_id, constants.SAFETENSORS_SINGLE_FILE), cls._load_as_safetensor
            if not os.path.isfile(model_file):
                raise ModelZooError(f"{model_file}: missing: the folder holds the checkpoint's config.json but not its "
                                    "weights; copy or download its model.safetensors too")
        else:
            download = dict(repo_id=model_id, revision=revision, cache_dir=cache_dir, force_download=force_download,
                            token=token, local_files_only=local_files_only)
            try:
                model_file, load = hf_hub_download(filename=constants.SAFETENSORS_SINGLE_FILE, **download), cls._load_as_safetensor
            except EntryNotFoundError:  # the mixin's fallback, kept: torch.load(weights_only=True) unpickles no code
                model_file, load = hf_hub_download(filename=constants.PYTORCH_WEIGHTS_NAME, **download), cls._load_as_pickle
        name = checkpoint_file(model_id, os.path.basename(model_file), model_file)
        try:
            return load(model, model_file, map_location, strict)
        except SafetensorError as e:
            again = (f"copy or download the checkpoint's {os.path.basename(model_file)} again" if os.path.isdir(model_id)
                     else f"download it again: hf download {model_id} {os.path.basename(model_file)} --force-download"
                     + (f" --revision {revision}" if revision else ""))
            raise ModelZooError(f"{name}: not a safetensors file ({e}): a truncated download, an error page or "
                                f"another format saved under that name; nothing was loaded from it; {again}") from None
        except RuntimeError as e:  # strict loading: the weights of another model than config.json describes
            if "state_dict" not in str(e) or not model_file.endswith(".safetensors"):
                raise
            raise ModelZooError(f"{name}: does not fit the model {checkpoint_file(model_id, 'config.json')} describes "
                                f"({_misfit(model, model_file)}): the two files come from different checkpoints, or "
                                "config.json was edited; restore the files saved together") from None

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


def _misfit(model: nn.Module, weights_file: str) -> str:
    """How a safetensors file's tensors differ from a model's (read from the file's header only)."""
    from safetensors import safe_open

    with safe_open(weights_file, framework="pt") as f:
        saved = {key: list(f.get_slice(key).get_shape()) for key in f.keys()}
    own = {key: list(value.shape) for key, value in model.state_dict().items()}
    reshaped = sum(saved[key] != own[key] for key in own.keys() & saved.keys())
    return (f"{len(own.keys() - saved.keys())} of the model's tensors missing, {len(saved.keys() - own.keys())} "
            f"not the model's, {reshaped} of another shape")


def check_input(x: torch.Tensor, ndim: int, channels: int, model: str) -> None:
    """Fail early with the expected layout instead of deep inside a conv."""
    channel_dim = 1 if ndim == 4 else 2
    if x.ndim != ndim or x.shape[channel_dim] != channels:
        layout = "(B, C, H, W)" if ndim == 4 else "(B, T, C, H, W)"
        raise ModelZooError(f"{model} expects {layout} with C={channels}, got shape {tuple(x.shape)}")
