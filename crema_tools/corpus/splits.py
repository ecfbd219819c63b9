"""Train/test splits as a pure function of (official clip list, protocol, seed, family[, fold]).

A clip's split never depends on which files are on disk: a build of a subset agrees with a build
of the whole corpus, and two groups using the same protocol and seed get the same split. The one
exception is the `split-file` protocol (`SPLIT_FILE`), whose split is a lab's published file
(`crema_tools.corpus.split_files`): a pure function of that file's bytes instead.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

from ..errors import CremaToolsError
from . import metadata
from .clips import Clip

if TYPE_CHECKING:
    from .split_files import SplitFile

PAPER_VIDEO_UNUSABLE = ("1064_TIE_SAD_XX", "1076_MTI_NEU_XX", "1076_MTI_SAD_XX")
"""The three clips whose video cannot be used at all (no duration, very short, error picture).

The paper's 3D split covers 7,439 clips: the 7,442 official ones less these.
"""


DEFAULT_FOLDS = 5
"""Number of folds of a cross-validation protocol when none is given."""


class SplitError(CremaToolsError, ValueError):
    """An unknown protocol or family, or a fold argument that does not fit the protocol."""


@dataclass(frozen=True)
class Protocol:
    """A split protocol.

    `assign(ids, seed, family)` maps clip ids to split names; for a protocol with `folds` it is
    `assign(ids, seed, family, fold, folds)` and the split also depends on the fold.
    """

    name: str
    description: str
    splits: tuple[str, ...]
    assign: Callable[..., dict[str, str]]
    folds: bool = False
    first_fold: int = 0
    """The number of the first fold (HiCMAE counts its folds from 1)."""
    fixed_folds: int | None = None
    """The number of folds when the protocol fixes it (a published set of folds), else None."""
    fold_note: str = ""
    """Said after the range of valid folds, when that range may surprise."""
    left_out: Callable[[str], str | None] | None = None
    """Why the protocol leaves a clip out of every split (None: it does not), for protocols that
    leave clips out whatever the family: the build does not decode those clips and reports them as
    skipped with this reason. None for the protocols that came before it, whose builds decode
    every clip (their shards stay byte for byte what they were)."""

    def fold_range(self, folds: int = DEFAULT_FOLDS) -> tuple[int, int]:
        """The first and last valid fold numbers."""
        n = self.fixed_folds or folds
        return self.first_fold, self.first_fold + n - 1


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


def _ogm_ge(ids: tuple[str, ...], seed: int, family: str) -> dict[str, str]:
    """The OGM-GE release's clip split as shipped; the same for both families and every seed.

    All clips are kept, the three with unusable video included: a 3D build reports those as
    skipped, like any broken file, so the parts stay exactly the published ones.
    """
    split = metadata.ogm_ge_split()
    missing = [cid for cid in ids if cid not in split]
    if missing:
        raise SplitError(f"the OGM-GE split does not cover {len(missing)} official clips, e.g. {missing[0]}")
    return {cid: split[cid] for cid in ids}


def _speaker_folds(seed: int, folds: int) -> dict[int, int]:
    """Actor id -> fold, dealt round-robin within each sex so every fold has the same mix.

    The deal carries on from one sex to the next, so fold sizes differ by at most one actor in
    total and by at most one actor of each sex.
    """
    rng = random.Random(seed)
    by_sex: dict[str, list[int]] = {}
    for actor in metadata.actors().values():
        by_sex.setdefault(actor.sex, []).append(actor.actor_id)
    fold_of_actor: dict[int, int] = {}
    dealt = 0
    for sex in sorted(by_sex):
        group = sorted(by_sex[sex])
        rng.shuffle(group)
        for actor_id in group:
            fold_of_actor[actor_id] = dealt % folds
            dealt += 1
    return fold_of_actor


def _speaker_kfold(ids: tuple[str, ...], seed: int, family: str, fold: int, folds: int) -> dict[str, str]:
    """Fold k: test = the actors of fold k, validation = those of fold (k+1) mod K, train = the rest."""
    fold_of_actor = _speaker_folds(seed, folds)
    validation_fold = (fold + 1) % folds

    def part(actor_id: int) -> str:
        f = fold_of_actor[actor_id]
        return "test" if f == fold else "validation" if f == validation_fold else "train"

    return {cid: part(Clip.parse(cid).actor_id) for cid in ids}


HICMAE_LEFT_OUT = {
    "1076_MTI_NEU_XX": "documented as broken in the official README",
    "1076_MTI_SAD_XX": "documented as broken in the official README",
    "1064_TIE_SAD_XX": "documented as broken in the official README",
    "1064_IEO_DIS_MD": "documented as broken in the official README",
    "1040_ITH_SAD_XX": "its WAV was misnamed in the official release",
}
"""The five clips HiCMAE's folds leave out, and why (their preprocess/creamd_av.py)."""
HICMAE_FOLDS = 5
HICMAE_FOLD_ACTORS = 18


def _hicmae_test_actors(fold: int) -> range:
    """Fold k (1..5) tests the k-th block of 18 actors in id order; the last block also takes the 91st."""
    first = min(metadata.actors()) + HICMAE_FOLD_ACTORS * (fold - 1)
    last = max(metadata.actors()) if fold == HICMAE_FOLDS else first + HICMAE_FOLD_ACTORS - 1
    return range(first, last + 1)


def _hicmae(ids: tuple[str, ...], seed: int, family: str, fold: int, folds: int) -> dict[str, str]:
    """HiCMAE's folds (sunlicai/HiCMAE, also used by MAE-DFER and AVF-MAE++), computed by their rule.

    Their preprocess/creamd_av.py sorts the 91 actors by id and gives fold k (1..5) the actors
    1001 + 18(k-1) .. 1001 + 18k - 1 as test, the last fold also actor 1091; the other actors
    train; there is no validation part. It leaves out the five clips of `HICMAE_LEFT_OUT`, so
    every fold holds 7,437 clips, the same for both families and every seed.

    Computed rather than read: the rule is stated where it is used, in a few lines anyone can hold
    against their code, and it is what their files were made by. Their ten published split files
    ship as package data all the same (`hicmae_split0K_{train,test}.txt`, MIT license), as the
    evidence: tests/test_protocols.py checks this function against them clip for clip, fold by
    fold, so the two cannot drift apart unnoticed (and `--split-file` reads those files as they are).
    """
    tested = _hicmae_test_actors(fold)
    return {cid: "test" if Clip.parse(cid).actor_id in tested else "train" for cid in ids if cid not in HICMAE_LEFT_OUT}


def _hicmae_left_out(clip_id: str) -> str | None:
    why = HICMAE_LEFT_OUT.get(clip_id)
    return f"left out of HiCMAE's folds: {why}" if why else None


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
        Protocol(
            "ogm-ge",
            "the OGM-GE release's split over clips (GeWu-Lab/OGM-GE_CVPR2022, data/CREMAD/train.csv and "
            "test.csv, MIT license; actors shared between parts): 6,698/744 of all 7,442 clips, the same "
            "for 2D and 3D and for every seed",
            ("train", "test"),
            _ogm_ge,
        ),
        Protocol(
            "speaker-kfold",
            f"speaker-independent K-fold cross-validation (K={DEFAULT_FOLDS} unless given): the 91 actors "
            "dealt into K folds within each sex; fold k tests on the actors of fold k, validates on those "
            "of fold (k+1) mod K and trains on the rest, so every actor is tested in exactly one fold; "
            "needs fold=0..K-1",
            ("train", "validation", "test"),
            _speaker_kfold,
            folds=True,
        ),
        Protocol(
            "hicmae",
            "HiCMAE's 5 speaker-independent folds (sunlicai/HiCMAE, MIT license; also used by MAE-DFER and "
            "AVF-MAE++): actors in id order, fold k tests actors 1001+18(k-1)..1018+18(k-1) (fold 5 also 1091) "
            "and trains on the rest, no validation part; 7,437 clips per fold (the four clips documented as "
            "broken and 1040_ITH_SAD_XX left out), the same for 2D and 3D and for every seed; needs fold=1..5",
            ("train", "test"),
            _hicmae,
            folds=True,
            first_fold=1,
            fixed_folds=HICMAE_FOLDS,
            fold_note="HiCMAE's numbering; speaker-kfold counts from 0",
            left_out=_hicmae_left_out,
        ),
    )
}


def _needs_a_file(*args) -> dict[str, str]:
    raise SplitError("protocol 'split-file' needs a split file: pass --split-file PATH (split_file= in Python)")


SPLIT_FILE = Protocol(
    "split-file",
    "a lab's published split, read from --split-file (OGM-GE / PMR `clip_id,label` CSV, HiCMAE `path path label` "
    "lines, EmoBox JSON lines, or `clip_id,split` CSV): each clip in the split the file gives it, the same for 2D "
    "and 3D and for every seed; clips the file does not list are left out",
    ("train", "validation", "test"),
    _needs_a_file,
)
"""The protocol of a build given --split-file. Not in PROTOCOLS, whose splits are pure functions of
(official list, protocol, seed, fold): this one is a function of the file's bytes
(`crema_tools.corpus.split_files.SplitFile`)."""

FAMILIES = ("2d", "3d")


def protocol_names() -> list[str]:
    """Every protocol name `--protocol` takes."""
    return [*PROTOCOLS, SPLIT_FILE.name]


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`, split-file included; a SplitError lists the names."""
    if name == SPLIT_FILE.name:
        return SPLIT_FILE
    if name not in PROTOCOLS:
        raise SplitError(f"unknown protocol {name!r}: choose one of {', '.join(protocol_names())}")
    return PROTOCOLS[name]


def resolve_protocol(protocol: str | None, split_file: object | None = None) -> str:
    """The protocol a build uses: `paper` when none is named, `split-file` when a split file is given.

    A split file goes with the split-file protocol only, and that protocol needs one.
    """
    if protocol is None:
        return SPLIT_FILE.name if split_file is not None else "paper"
    get_protocol(protocol)
    if split_file is not None and protocol != SPLIT_FILE.name:
        raise SplitError(f"--split-file gives the split itself: leave --protocol {protocol} out "
                         f"(or pass --protocol {SPLIT_FILE.name})")
    if split_file is None and protocol == SPLIT_FILE.name:
        _needs_a_file()
    return protocol


def left_out_reason(protocol: str, split_file: SplitFile | None = None) -> Callable[[str], str | None] | None:
    """Why the protocol leaves a clip out of every split, for protocols whose builds do not decode
    the clips they leave out (hicmae, split-file); None for the others."""
    if protocol == SPLIT_FILE.name and split_file is not None:
        return split_file.left_out_reason
    return get_protocol(protocol).left_out


def _fold_text(p: Protocol, folds: int = DEFAULT_FOLDS, note: bool = True) -> str:
    first, last = p.fold_range(folds)
    return f"fold={first}..{last}" + (f" ({p.fold_note})" if note and p.fold_note else "")


def _check_folds(p: Protocol, fold: int | None, folds: int) -> None:
    """One line per mistake, saying the valid folds of the protocol at hand."""
    if not p.folds:
        with_folds = ", or ".join(f"({name}) with {_fold_text(q, note=False)}" for name, q in PROTOCOLS.items() if q.folds)
        for arg, given in (("fold", fold is not None), ("folds", folds != DEFAULT_FOLDS)):
            if given:
                raise SplitError(
                    f"protocol {p.name!r} has no folds: leave {arg} out, or use a protocol with folds "
                    f"{with_folds}"
                )
        return
    if p.fixed_folds is not None:
        if folds not in (DEFAULT_FOLDS, p.fixed_folds):
            raise SplitError(f"protocol {p.name!r} has exactly {p.fixed_folds} folds, as published: leave folds out")
        folds = p.fixed_folds
    n_actors = len(metadata.actors())
    if isinstance(folds, bool) or not isinstance(folds, int) or not 3 <= folds <= n_actors:
        raise SplitError(
            f"protocol {p.name!r} needs folds between 3 and {n_actors} (test, validation and train "
            f"each take at least one fold), got {folds!r}"
        )
    first, last = p.fold_range(folds)
    if fold is None:
        raise SplitError(
            f"protocol {p.name!r} needs a fold: pass {_fold_text(p, folds)} "
            f"(one run per fold, {folds} in all)"
        )
    if isinstance(fold, bool) or not isinstance(fold, int) or not first <= fold <= last:
        raise SplitError(
            f"fold {fold!r} is out of range for protocol {p.name!r} with {folds} folds: "
            f"pass {_fold_text(p, folds)}"
        )


def check_fold(protocol: str, fold: int | None, folds: int = DEFAULT_FOLDS) -> None:
    """Whether `fold` (and `folds`) fit the protocol: a SplitError saying its valid folds if not."""
    _check_folds(get_protocol(protocol), fold, folds)


@lru_cache(maxsize=64)
def assign_splits(
    protocol: str, seed: int = 0, family: str = "2d", *, fold: int | None = None, folds: int = DEFAULT_FOLDS,
    split_file: SplitFile | None = None,
) -> dict[str, str]:
    """Map every official clip id covered by the protocol to its split name.

    `fold` picks the fold of a cross-validation protocol (`speaker-kfold`: 0..folds-1; `hicmae`:
    1..5, HiCMAE's numbering); it is required there and refused elsewhere. `split_file` (a
    `SplitFile`) is the split of the `split-file` protocol, required there and refused elsewhere.
    """
    p = get_protocol(protocol)
    if family not in FAMILIES:
        raise SplitError(f"unknown family {family!r}: choose one of {', '.join(FAMILIES)}")
    _check_folds(p, fold, folds)
    if p is SPLIT_FILE:
        if split_file is None:
            _needs_a_file()
        return dict(split_file.assignment)
    if split_file is not None:
        resolve_protocol(protocol, split_file)  # says to leave --protocol out
    if p.folds:
        return p.assign(metadata.official_clip_ids(), seed, family, fold, folds)
    return p.assign(metadata.official_clip_ids(), seed, family)


def in_holdout(clip_id: str, seed: int = 0, fraction: float = 0.1) -> bool:
    """Whether a clip falls in the seeded validation hold-out carved out of a training split.

    Clip-stable: decided by a hash of (seed, clip id) alone, so a clip's part never depends on which
    other clips were built; about `fraction` of any set of clips is held out.
    """
    digest = hashlib.sha256(f"holdout-{seed}-{clip_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64
