"""The joint baseline: the fused logits' cross-entropy and nothing else (OGM-GE's `Normal`)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import BalancingMethod


@dataclass(frozen=True)
class Joint(BalancingMethod):
    name = "joint"
    summary = "cross-entropy of the fused logits; every method's baseline"
    paper = "OGM-GE's --modulation Normal (GeWu-Lab/OGM-GE_CVPR2022)"
