"""Training recipes as data: one YAML file per (encoder, modality), the paper's Table 4, and the
balanced-multimodal line's baselines (OGM-GE's optimizer, schedule and modulation).

`read_from_table` lists the values printed in the table's own row; the others come from cells the
published table merges across rows (or prints unreadably), and each file's comment says which.
Any command-line flag of `model_zoo.train` overrides a recipe value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from importlib import resources

import yaml

from ..config import ModelZooError


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    variant: str
    batch_size: int = 16
    lr: float = 1e-4
    epochs: int = 10
    optimizer: str = "adam"  # the paper's only optimizer; "sgd" for OGM-GE's line
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"  # the paper's; "cosine", or "step" (every `lr_decay_epochs` by `lr_decay_ratio`)
    lr_decay_epochs: int | None = None
    lr_decay_ratio: float = 0.1
    loss: str = "cross-entropy"
    method: str | None = None  # a balancing method (model_zoo.balancing), for separate-encoder models
    method_options: dict = field(default_factory=dict)  # its hyperparameters, e.g. {alpha: 0.8}
    fusion: str | None = None  # separate-encoder models: sum, concat, film, gated or shared (MLA)
    dropout: float | None = None  # None: the model's own default
    channels: int | None = None  # None: the model's default (3; ViT 1)
    frames: int | None = None  # 3D: padded length (CNNs) or frames sampled (VideoMAE)
    pretrained: bool = False
    read_from_table: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {**asdict(self), "read_from_table": list(self.read_from_table), "method_options": dict(self.method_options)}


def list_recipes() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def load_recipe(name: str) -> Recipe:
    """The recipe called `name` (e.g. "resnet18-2d-multimodal"); the error lists them all."""
    path = resources.files(__name__) / f"{name}.yaml"
    if not path.is_file():
        raise ModelZooError(f"unknown recipe {name!r}: choose from {', '.join(list_recipes())}")
    values = yaml.safe_load(path.read_text())
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ModelZooError(f"recipe {name}: unknown keys {', '.join(unknown)}")
    values["read_from_table"] = tuple(values.get("read_from_table") or ())
    values["method_options"] = dict(values.get("method_options") or {})
    return Recipe(name=name, **values)
