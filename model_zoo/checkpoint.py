"""What a checkpoint folder or Hub model repo holds, read from its config.json before any weights,
and how its files are named in errors (with the fix: download again, upgrade, restore)."""

import json
import os
from dataclasses import fields
from pathlib import Path

from torch import nn

from crema_tools import __version__
from crema_tools.errors import CremaToolsError

from .catalog import get_model_entry
from .config import ModelZooError, PretrainedCfg, get_variant

NEWER_OR_EDITED = ("written by a newer crema-tools (upgrade: pip install -U crema-tools) or edited by hand (restore the "
                   "config.json saved with the weights)")


def checkpoint_file(name_or_path: str | os.PathLike, filename: str, local_path: str | os.PathLike | None = None) -> str:
    """How an error names one file of a checkpoint: its path in a folder, or the Hub repo's file and,
    when downloaded, where the Hub cache keeps it."""
    source = os.fspath(name_or_path)
    if os.path.isdir(source):
        return os.path.join(source, filename)
    return f"{filename} of Hub model {source}" + (f" ({os.fspath(local_path)})" if local_path else "")


def cannot_build(name_or_path: str | os.PathLike, error: Exception) -> ModelZooError:
    """A config.json describing a model this crema-tools cannot build: an unknown architecture,
    model or variant, or arguments it does not know."""
    return ModelZooError(f"{checkpoint_file(name_or_path, 'config.json')}: describes a model crema-tools {__version__} "
                         f"cannot build ({error.__class__.__name__}: {(str(error).splitlines() or [''])[0]}): {NEWER_OR_EDITED}")


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


def checkpoint_class(name_or_path: str | os.PathLike, **download) -> type[nn.Module]:
    """The zoo class (a ZooModel subclass) a checkpoint holds, from its config.json's `pretrained_cfg.model_name`."""
    config = read_checkpoint_config(name_or_path, **download)
    try:
        model_name = config["pretrained_cfg"]["model_name"]
    except (KeyError, TypeError):
        raise ModelZooError(f"{os.fspath(name_or_path)} is not a model_zoo checkpoint "
                            "(no pretrained_cfg in config.json)") from None
    try:
        entry = get_model_entry(model_name)
        known = {f.name for f in fields(PretrainedCfg)}
        get_variant(PretrainedCfg(**{k: v for k, v in config["pretrained_cfg"].items() if k in known}).variant)
    except (TypeError, ValueError, CremaToolsError) as e:
        raise cannot_build(name_or_path, e) from None
    return entry.model_class
