"""What a checkpoint folder or Hub model repo holds, read from its config.json before any weights."""

import json
import os
from pathlib import Path

from torch import nn

from .catalog import get_model_entry
from .config import ModelZooError


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
    return get_model_entry(model_name).model_class
