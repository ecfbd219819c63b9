"""Balancing methods for separate-encoder models: one module each, one line each in `METHODS`.

    method = model_zoo.balancing.get_method("ogm-ge", alpha=0.8)
    accelerate launch -m model_zoo.train --model resnet18_separate --variant ogm-ge --method ogm-ge --alpha 0.8 ...
"""

from __future__ import annotations

from dataclasses import fields

from ..config import ModelZooError
from .agm import AGM
from .base import BalancingMethod, Outputs, StepContext
from .joint import Joint
from .mla import MLA
from .mmpareto import MMPareto
from .ogm_ge import OGM, OGMGE
from .pmr import PMR
from .reconboost import ReconBoost
from .unimodal import AudioOnly, VisionOnly

METHODS: dict[str, type[BalancingMethod]] = {
    "joint": Joint,
    "audio-only": AudioOnly,
    "vision-only": VisionOnly,
    "ogm": OGM,
    "ogm-ge": OGMGE,
    "pmr": PMR,
    "mmpareto": MMPareto,
    "agm": AGM,
    "mla": MLA,
    "reconboost": ReconBoost,
}

__all__ = ["METHODS", "BalancingMethod", "Outputs", "StepContext", "get_method", "hyperparameter_names",
           "hyperparameter_types"]


def hyperparameter_names() -> list[str]:
    """Every method's hyperparameters (the training flags), each once."""
    return list(hyperparameter_types())


def hyperparameter_types() -> dict[str, type]:
    """Every method's hyperparameters with the type of their default (an epoch is an int, a weight a
    float; a float where two methods disagree), by name."""
    types: dict[str, type] = {}
    for method in METHODS.values():
        for f in fields(method):
            kind = type(f.default)
            types[f.name] = kind if types.get(f.name, kind) is kind else float
    return dict(sorted(types.items()))


def get_method(name: str, **hyperparameters) -> BalancingMethod:
    """The method `name` with `hyperparameters` (None values: the method's defaults); one-line errors
    for an unknown method or a hyperparameter it does not take."""
    try:
        method = METHODS[name]
    except KeyError:
        raise ModelZooError(f"unknown balancing method {name!r}: choose from {', '.join(METHODS)}") from None
    given = {k: v for k, v in hyperparameters.items() if v is not None}
    own = {f.name for f in fields(method)}
    foreign = sorted(set(given) - own)
    if foreign:
        raise ModelZooError(f"{name} takes no --{foreign[0].replace('_', '-')}"
                            + (f" (it takes {', '.join('--' + o.replace('_', '-') for o in sorted(own))})" if own else ""))
    return method(**given)
