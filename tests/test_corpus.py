from collections import Counter

import pytest

from crema_tools.corpus import (
    EMOTIONS,
    Clip,
    ClipIdError,
    SplitError,
    actors,
    assign_splits,
    audeering_speaker_split,
    known_issues_by_file,
    manifest,
    official_clip_ids,
    unusable_reason,
    votes,
)


def test_clip_id_parses_into_its_parts():
    clip = Clip.parse("1001_DFA_ANG_XX")
    assert (clip.actor_id, clip.sentence, clip.emotion, clip.intensity) == (1001, "DFA", "ANG", "XX")
    assert clip.label == 0 and Clip.parse("1091_IEO_SAD_HI").label == 5
    assert clip.id == "1001_DFA_ANG_XX"


@pytest.mark.parametrize("bad, words", [
    ("1001_DFA_ANG", "expected ACTOR_SENTENCE_EMOTION_INTENSITY"),
    ("1001_XYZ_ANG_XX", "sentence XYZ"),
    ("1001_DFA_JOY_XX", "emotion JOY"),
    ("0999_DFA_ANG_XX", "actor 0999"),
    ("1001_DFA_ANG_ZZ", "intensity ZZ"),
])
def test_bad_clip_ids_say_what_is_wrong(bad, words):
    with pytest.raises(ClipIdError, match=words):
        Clip.parse(bad)


def test_label_order_is_the_papers():
    assert EMOTIONS == ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


def test_official_metadata_counts():
    ids = official_clip_ids()
    assert len(ids) == 7442 and len(manifest()) == 22326
    per_emotion = Counter(Clip.parse(c).emotion for c in ids)
    assert per_emotion == {"ANG": 1271, "DIS": 1271, "FEA": 1271, "HAP": 1271, "SAD": 1271, "NEU": 1087}
    assert "1002_TIE_NEU_XX" not in ids  # never recorded
    assert len(actors()) == 91 and Counter(a.sex for a in actors().values()) == {"Male": 48, "Female": 43}
    assert votes()["1001_DFA_ANG_XX"]["voice"] == {"ANG": 6, "DIS": 2, "FEA": 0, "HAP": 0, "NEU": 1, "SAD": 0}


def test_known_issues_are_per_file():
    assert unusable_reason("AudioWAV/1076_MTI_SAD_XX.wav").startswith("known issue (broken_media)")
    assert unusable_reason("AudioWAV/1076_MTI_NEU_XX.wav") is None  # the README says this WAV is fine
    assert unusable_reason("VideoFlash/1076_MTI_NEU_XX.flv") is not None
    assert "duplicate_audio" in unusable_reason("AudioWAV/1006_TIE_HAP_XX.wav")
    assert unusable_reason("VideoFlash/1006_TIE_HAP_XX.flv") is None
    assert unusable_reason("VideoFlash/1005_IWW_DIS_XX.flv") is None  # fixed upstream
    assert len(known_issues_by_file()["VideoFlash/1064_IEO_DIS_MD.flv"]) == 1


def test_paper_split_sizes():
    assert Counter(assign_splits("paper", 0, "2d").values()) == {"train": 5209, "test": 2233}
    three_d = assign_splits("paper", 0, "3d")
    assert Counter(three_d.values()) == {"train": 5951, "test": 1488}
    assert "1076_MTI_SAD_XX" not in three_d and "1064_IEO_DIS_MD" in three_d


def test_split_depends_on_the_seed_only():
    a, b = assign_splits("paper", 0, "2d"), assign_splits("paper", 1, "2d")
    assert a == assign_splits.__wrapped__("paper", 0, "2d")
    assert sum(a[c] != b[c] for c in a) > 1000


def test_speaker_split_is_actor_disjoint_and_balanced_by_sex():
    split = assign_splits("speaker", 0)
    parts: dict[str, set] = {}
    for cid, part in split.items():
        parts.setdefault(part, set()).add(Clip.parse(cid).actor_id)
    assert set(parts) == {"train", "validation", "test"}
    assert not (parts["train"] & parts["test"]) and not (parts["train"] & parts["validation"])
    assert not (parts["validation"] & parts["test"])
    sexes = {p: Counter(actors()[a].sex for a in ids) for p, ids in parts.items()}
    assert sexes["test"] == {"Male": 10, "Female": 9} and sexes["validation"] == {"Male": 10, "Female": 9}
    assert assign_splits("speaker", 1) != split


def test_audeering_split_matches_the_published_one():
    split = assign_splits("audeering", 0)
    assert Counter(split.values()) == {"train": 4573, "validation": 1476, "test": 1393}
    assert split["1076_MTI_SAD_XX"] == "test"
    assert len(audeering_speaker_split()["train"]) == 56


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(SplitError, match="unknown protocol 'random'.*paper, speaker, audeering"):
        assign_splits("random", 0)
