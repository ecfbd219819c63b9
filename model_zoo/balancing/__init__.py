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
from .mmpareto import MMPareto
from .ogm_ge import OGM, OGMGE
from .pmr import PMR

METHODS: dict[str, type[BalancingMethod]] = {
    "joint": Joint,
    "ogm": OGM,
    "ogm-ge": OGMGE,
    "pmr": PMR,
    "mmpareto": MMPareto,
    "agm": AGM,
}

__all__ = ["METHODS", "BalancingMethod", "Outputs", "StepContext", "get_method", "hyperparameter_names"]


def hyperparameter_names() -> list[str]:
    """Every method's hyperparameters (the training flags), each once."""
    return sorted({f.name for method in METHODS.values() for f in fields(method)})


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
