"""Train/test splits as a pure function of (official clip list, protocol, seed, family).

A clip's split never depends on which files are on disk: a build of a subset agrees with a build
of the whole corpus, and two groups using the same protocol and seed get the same split.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from . import metadata
from ..errors import CremaToolsError
from .clips import Clip

PAPER_VIDEO_UNUSABLE = ("1064_TIE_SAD_XX", "1076_MTI_NEU_XX", "1076_MTI_SAD_XX")
"""The three clips whose video cannot be used at all (no duration, very short, error picture).

The paper's 3D split covers 7,439 clips: the 7,442 official ones less these.
"""


class SplitError(CremaToolsError, ValueError):
    """An unknown protocol or family."""


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    splits: tuple[str, ...]
    assign: Callable[[tuple[str, ...], int, str], dict[str, str]]


def _seeded_holdout(ids: list[str], seed: int, test_fraction: float) -> dict[str, str]:
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    n_test = round(test_fraction * len(order))
    return {cid: ("test" if i < n_test else "train") for i, cid in enumerate(order)}


def _paper(ids: tuple[str, ...], seed: int, family: str) -> dict[str, str]:
    if family == "2d":
        return _seeded_holdout(list(ids), seed, 0.3)
    usable = [c for c in ids if c not in PAPER_VIDEO_UNUSABLE]
    return _seeded_holdout(usable, seed, 0.2)


def _speaker(ids: tuple[str, ...], seed: int, family: str) -> dict[str, str]:
    """Actor-disjoint 60/20/20, drawn separately within each sex so every part is balanced."""
    rng = random.Random(seed)
    part_of_actor: dict[int, str] = {}
    by_sex: dict[str, list[int]] = {}
    for actor in metadata.actors().values():
        by_sex.setdefault(actor.sex, []).append(actor.actor_id)
    for sex in sorted(by_sex):
        group = sorted(by_sex[sex])
        rng.shuffle(group)
        n_val = n_test = round(0.2 * len(group))
        for i, actor_id in enumerate(group):
            part_of_actor[actor_id] = "test" if i < n_test else "validation" if i < n_test + n_val else "train"
    return {cid: part_of_actor[Clip.parse(cid).actor_id] for cid in ids}


def _audeering(ids: tuple[str, ...], seed: int, family: str) -> dict[str, str]:
    names = {"train": "train", "dev": "validation", "test": "test"}
    part_of_actor = {
        actor: names[part] for part, actors in metadata.audeering_speaker_split().items() for actor in actors
    }
    return {cid: part_of_actor[Clip.parse(cid).actor_id] for cid in ids}


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "paper",
            "the reference paper's random split over clips (actors shared between parts): "
            "2D 70/30 of all 7,442 clips (5,209/2,233), 3D 80/20 of the 7,439 with usable video (5,951/1,488)",
            ("train", "test"),
            _paper,
        ),
        Protocol(
            "speaker",
            "speaker-independent: actors drawn 60/20/20 into train/validation/test within each sex",
            ("train", "validation", "test"),
            _speaker,
        ),
        Protocol(
            "audeering",
            "speaker-independent: the published actor split of the audb packaging (56/18/17 actors)",
            ("train", "validation", "test"),
            _audeering,
        ),
    )
}

FAMILIES = ("2d", "3d")


@lru_cache(maxsize=16)
def assign_splits(protocol: str, seed: int = 0, family: str = "2d") -> dict[str, str]:
    """Map every official clip id covered by the protocol to its split name."""
    if protocol not in PROTOCOLS:
        raise SplitError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    if family not in FAMILIES:
        raise SplitError(f"unknown family {family!r}: choose one of {', '.join(FAMILIES)}")
    return PROTOCOLS[protocol].assign(metadata.official_clip_ids(), seed, family)
