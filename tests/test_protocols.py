"""Every split protocol: sizes, disjointness, and the two protocols added after the paper's."""

from collections import Counter
from importlib import resources

import pytest

from crema_tools.corpus import (
    EMOTIONS,
    OGM_GE_CLASS_ORDER,
    PROTOCOLS,
    Clip,
    SplitError,
    actors,
    assign_splits,
    official_clip_ids,
    ogm_ge_rows,
    ogm_ge_split,
)
from crema_tools.corpus.metadata import parse_ogm_ge_csv
from crema_tools.corpus.splits import HICMAE_LEFT_OUT, PAPER_VIDEO_UNUSABLE

FAMILIES = ("2d", "3d")
ALL = 7442


def _parts(split: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for cid, part in split.items():
        out.setdefault(part, set()).add(cid)
    return out


def _actors(clips: set[str]) -> set[int]:
    return {Clip.parse(c).actor_id for c in clips}


def _every_split():
    for name, protocol in PROTOCOLS.items():
        for family in FAMILIES:
            if protocol.folds:
                first, last = protocol.fold_range()  # speaker-kfold 0..4, hicmae 1..5
                for fold in range(first, last + 1):
                    yield name, family, fold
            else:
                yield name, family, None


SIZES = {
    ("paper", "2d"): {"train": 5209, "test": 2233},
    ("paper", "3d"): {"train": 5951, "test": 1488},
    ("speaker", "2d"): {"train": 4345, "validation": 1546, "test": 1551},
    ("audeering", "2d"): {"train": 4573, "validation": 1476, "test": 1393},
    ("ogm-ge", "2d"): {"train": 6698, "test": 744},
}
SIZES[("speaker", "3d")] = SIZES[("speaker", "2d")]
SIZES[("audeering", "3d")] = SIZES[("audeering", "2d")]
SIZES[("ogm-ge", "3d")] = SIZES[("ogm-ge", "2d")]

KFOLD_SIZES = {  # seed 0, folds of 19/18/18/18/18 actors
    0: {"train": 4415, "validation": 1470, "test": 1557},
    1: {"train": 4502, "validation": 1470, "test": 1470},
    2: {"train": 4497, "validation": 1475, "test": 1470},
    3: {"train": 4497, "validation": 1470, "test": 1475},
    4: {"train": 4415, "validation": 1557, "test": 1470},
}
HICMAE_SIZES = {  # HiCMAE's README: train/test per fold
    1: {"train": 5974, "test": 1463}, 2: {"train": 5967, "test": 1470}, 3: {"train": 5962, "test": 1475},
    4: {"train": 5963, "test": 1474}, 5: {"train": 5882, "test": 1555},
}


@pytest.mark.parametrize("protocol, family, fold", list(_every_split()))
def test_every_split_covers_the_corpus_in_disjoint_parts(protocol, family, fold):
    split = assign_splits(protocol, 0, family, fold=fold)
    parts = _parts(split)
    assert set(parts) == set(PROTOCOLS[protocol].splits)
    assert sum(len(p) for p in parts.values()) == len(split)  # a dict: each clip in one part
    expected_clips = set(official_clip_ids())
    if protocol == "paper" and family == "3d":
        expected_clips -= set(PAPER_VIDEO_UNUSABLE)
    if protocol == "hicmae":
        expected_clips -= set(HICMAE_LEFT_OUT)
    assert set(split) == expected_clips
    sizes = {p: len(c) for p, c in parts.items()}
    if protocol == "hicmae":
        assert sizes == HICMAE_SIZES[fold]
    else:
        assert sizes == (KFOLD_SIZES[fold] if fold is not None else SIZES[(protocol, family)])
    if protocol in ("speaker", "audeering", "speaker-kfold", "hicmae"):
        names = list(parts)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                assert not _actors(parts[a]) & _actors(parts[b]), (a, b)


# ogm-ge


def _read_shipped(name: str) -> list[tuple[str, str]]:
    """Read a shipped OGM-GE file from its bytes, independently of the package's loader."""
    blob = resources.files("crema_tools.corpus").joinpath("data", name).read_bytes()
    if blob.startswith(b"\xef\xbb\xbf"):
        blob = blob[3:]
    assert blob.endswith(b"\r\n") and b"\n" not in blob.replace(b"\r\n", b"")  # CRLF throughout
    lines = blob.decode("ascii").split("\r\n")[:-1]
    return [tuple(line.split(",")) for line in lines]


def test_ogm_ge_split_is_the_shipped_files_clip_for_clip():
    train, test = _read_shipped("ogm_ge_train.csv"), _read_shipped("ogm_ge_test.csv")
    assert (len(train), len(test)) == (6698, 744)
    expected = {cid: "train" for cid, _ in train} | {cid: "test" for cid, _ in test}
    assert len(expected) == ALL  # no clip twice, in a file or across the two
    assert ogm_ge_split() == expected
    for family in FAMILIES:
        for seed in (0, 1):
            assert assign_splits("ogm-ge", seed, family) == expected
    assert [(c, e) for c, e, _ in ogm_ge_rows()] == train + test


@pytest.mark.parametrize("blob", [
    b"\xef\xbb\xbf1001_DFA_ANG_XX,ANG\r\n1001_DFA_DIS_XX,DIS\r\n",
    b"1001_DFA_ANG_XX,ANG\r\n1001_DFA_DIS_XX,DIS",
    b"1001_DFA_ANG_XX,ANG\n1001_DFA_DIS_XX,DIS\n\n",
])
def test_ogm_ge_reader_accepts_a_bom_and_any_line_ending(blob):
    assert parse_ogm_ge_csv(blob) == [("1001_DFA_ANG_XX", "ANG"), ("1001_DFA_DIS_XX", "DIS")]


def test_ogm_ge_keeps_the_clips_with_unusable_video():
    split = assign_splits("ogm-ge", 0, "3d")
    assert all(cid in split for cid in PAPER_VIDEO_UNUSABLE)


def test_ogm_ge_labels_agree_with_the_clip_ids():
    rows = ogm_ge_rows()
    disagreements = [(cid, emotion) for cid, emotion, _ in rows if Clip.parse(cid).emotion != emotion]
    assert disagreements == []
    assert Counter(e for _, e, _ in rows) == Counter(Clip.parse(c).emotion for c in official_clip_ids())


def test_ogm_ge_class_order():
    assert OGM_GE_CLASS_ORDER == ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
    assert sorted(OGM_GE_CLASS_ORDER) == sorted(EMOTIONS)


def test_ogm_ge_description_names_source_and_license():
    description = PROTOCOLS["ogm-ge"].description
    assert "OGM-GE" in description and "MIT" in description


def test_ogm_ge_license_is_shipped():
    data = resources.files("crema_tools.corpus").joinpath("data")
    license_text = data.joinpath("ogm_ge_LICENSE.txt").read_text()
    assert license_text.startswith("MIT License") and "GeWu-Lab" in license_text
    assert license_text.strip() in data.joinpath("README.md").read_text()


# speaker-kfold


def _kfold_actor_parts(seed: int, folds: int = 5) -> list[dict[str, set[int]]]:
    splits = [assign_splits("speaker-kfold", seed, fold=k, folds=folds) for k in range(folds)]
    return [{part: _actors(clips) for part, clips in _parts(split).items()} for split in splits]


@pytest.mark.parametrize("folds", [5, 3, 10])
def test_speaker_kfold_tests_every_actor_exactly_once(folds):
    per_fold = _kfold_actor_parts(0, folds)
    tested = Counter(a for parts in per_fold for a in parts["test"])
    assert set(tested) == set(actors()) and set(tested.values()) == {1}
    for k, parts in enumerate(per_fold):
        assert parts["validation"] == per_fold[(k + 1) % folds]["test"]
        assert parts["train"] | parts["validation"] | parts["test"] == set(actors())
        assert not parts["train"] & (parts["validation"] | parts["test"])
        assert not parts["validation"] & parts["test"]


@pytest.mark.parametrize("folds", [5, 3, 10])
def test_speaker_kfold_folds_are_balanced_by_sex(folds):
    per_fold = _kfold_actor_parts(0, folds)
    for sex in ("Male", "Female"):
        counts = [sum(actors()[a].sex == sex for a in parts["test"]) for parts in per_fold]
        assert max(counts) - min(counts) <= 1, (sex, counts)
    sizes = [len(parts["test"]) for parts in per_fold]
    assert max(sizes) - min(sizes) <= 1


def test_speaker_kfold_depends_on_the_seed_only():
    a = assign_splits("speaker-kfold", 0, fold=2)
    assert a == assign_splits.__wrapped__("speaker-kfold", 0, fold=2)
    assert a == assign_splits("speaker-kfold", 0, "3d", fold=2)
    b = assign_splits("speaker-kfold", 1, fold=2)
    assert _actors(_parts(a)["test"]) != _actors(_parts(b)["test"])
    assert assign_splits("speaker-kfold", 0, fold=2) != assign_splits("speaker-kfold", 0, fold=3)


@pytest.mark.parametrize("kwargs, words", [
    ({}, r"protocol 'speaker-kfold' needs a fold: pass fold=0\.\.4"),
    ({"fold": 5}, r"fold 5 is out of range for protocol 'speaker-kfold' with 5 folds: pass fold=0\.\.4"),
    ({"fold": -1}, r"fold -1 is out of range .* pass fold=0\.\.4"),
    ({"fold": 3, "folds": 3}, r"fold 3 is out of range .* with 3 folds: pass fold=0\.\.2"),
    ({"fold": 0, "folds": 2}, r"needs folds between 3 and 91 .* got 2"),
    ({"fold": 0, "folds": 92}, r"needs folds between 3 and 91"),
])
def test_bad_fold_arguments_say_how_to_fix_them(kwargs, words):
    with pytest.raises(SplitError, match=words):
        assign_splits("speaker-kfold", 0, **kwargs)


@pytest.mark.parametrize("protocol", ["paper", "speaker", "audeering", "ogm-ge"])
def test_fold_is_refused_for_protocols_without_folds(protocol):
    no_folds = f"protocol '{protocol}' has no folds"
    fix = r"use a protocol with folds \(speaker-kfold\)"
    with pytest.raises(SplitError, match=f"{no_folds}: leave fold out, or {fix}"):
        assign_splits(protocol, 0, fold=0)
    with pytest.raises(SplitError, match=f"{no_folds}: leave folds out"):
        assign_splits(protocol, 0, folds=3)
    assert not PROTOCOLS[protocol].folds and PROTOCOLS["speaker-kfold"].folds


# hicmae


def _hicmae_shipped(k: int, part: str) -> list[str]:
    """The clip ids of one of HiCMAE's shipped fold files (`clip_id label` lines), read from its bytes."""
    blob = resources.files("crema_tools.corpus").joinpath("data", f"hicmae_split0{k}_{part}.txt").read_bytes()
    return [line.split(" ")[0] for line in blob.decode("ascii").split("\n") if line]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_hicmae_is_their_published_folds_clip_for_clip(k):
    train, test = _hicmae_shipped(k, "train"), _hicmae_shipped(k, "test")
    expected = {cid: "train" for cid in train} | {cid: "test" for cid in test}
    assert len(expected) == len(train) + len(test) == 7437
    for family in FAMILIES:
        for seed in (0, 1):
            assert assign_splits("hicmae", seed, family, fold=k) == expected


def test_hicmae_leaves_out_the_broken_clips_and_the_misnamed_wav():
    left_out = set(official_clip_ids()) - set(assign_splits("hicmae", 0, fold=1))
    assert left_out == {"1076_MTI_NEU_XX", "1076_MTI_SAD_XX", "1064_TIE_SAD_XX", "1064_IEO_DIS_MD", "1040_ITH_SAD_XX"}
    reason = PROTOCOLS["hicmae"].left_out
    assert reason("1040_ITH_SAD_XX") == "left out of HiCMAE's folds: its WAV was misnamed in the official release"
    assert reason("1064_IEO_DIS_MD").startswith("left out of HiCMAE's folds: documented as broken")
    assert reason("1001_DFA_ANG_XX") is None
    assert all(PROTOCOLS[name].left_out is None for name in ("paper", "speaker", "audeering", "ogm-ge", "speaker-kfold"))


def test_hicmae_tests_every_actor_exactly_once_in_blocks_of_18():
    tested = [_actors(_parts(assign_splits("hicmae", 0, fold=k))["test"]) for k in range(1, 6)]
    assert [len(t) for t in tested] == [18, 18, 18, 18, 19]
    assert sorted(a for t in tested for a in t) == sorted(actors())
    assert tested[0] == set(range(1001, 1019)) and tested[4] == set(range(1073, 1092))


@pytest.mark.parametrize("kwargs, words", [
    ({}, r"protocol 'hicmae' needs a fold: pass fold=1\.\.5 \(HiCMAE's numbering; speaker-kfold counts from 0\)"),
    ({"fold": 0}, r"fold 0 is out of range for protocol 'hicmae' with 5 folds: pass fold=1\.\.5 \(HiCMAE's numbering"),
    ({"fold": 6}, r"fold 6 is out of range .* pass fold=1\.\.5"),
    ({"fold": 1, "folds": 3}, r"protocol 'hicmae' has exactly 5 folds, as published: leave folds out"),
])
def test_hicmae_fold_errors_say_its_own_range(kwargs, words):
    with pytest.raises(SplitError, match=words):
        assign_splits("hicmae", 0, **kwargs)
    assert assign_splits("hicmae", 0, fold=5, folds=5) == assign_splits("hicmae", 0, fold=5)


def test_a_stray_fold_names_each_protocol_with_folds_and_its_range():
    with pytest.raises(SplitError, match=r"use a protocol with folds \(speaker-kfold\) with fold=0\.\.4, "
                                         r"or \(hicmae\) with fold=1\.\.5$"):
        assign_splits("paper", 0, fold=3)


def test_hicmae_description_names_source_and_license():
    description = PROTOCOLS["hicmae"].description
    assert "HiCMAE" in description and "MIT" in description and "7,437" in description
