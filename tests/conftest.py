"""Shared fixtures: small synthetic corpora in the exact CREMA-D layout, made once per session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from crema_tools.synthetic import generate_clip, generate_corpus, sample_clip_ids  # noqa: E402

GOOD_IDS = sample_clip_ids(actors=(1001, 1002), sentences=("DFA", "IEO"))  # 24 clips, every emotion


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """24 good synthetic clips of actors 1001 and 1002."""
    root = tmp_path_factory.mktemp("corpus")
    generate_corpus(root, GOOD_IDS, seed=0)
    return root


@pytest.fixture(scope="session")
def bad_corpus(tmp_path_factory) -> Path:
    """Three good clips plus one clip for each kind of bad input the build must survive."""
    root = tmp_path_factory.mktemp("bad_corpus")
    generate_corpus(root, ["1003_DFA_ANG_XX", "1003_DFA_DIS_XX", "1003_DFA_FEA_XX",
                           "1076_MTI_SAD_XX", "1006_TIE_HAP_XX", "1003_IEO_ANG_HI", "1003_IEO_DIS_HI",
                           "1003_IEO_FEA_HI", "1003_IEO_HAP_HI", "1003_IEO_NEU_XX"], seed=0)
    video, audio = root / "VideoFlash", root / "AudioWAV"
    (video / "1003_IEO_ANG_HI.flv").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 265922\n")
    (audio / "1003_IEO_DIS_HI.wav").write_bytes(b"")
    (video / "1003_IEO_FEA_HI.flv").write_bytes(bytes(range(256)) * 200)
    wav = audio / "1003_IEO_HAP_HI.wav"
    wav.write_bytes(wav.read_bytes()[: wav.stat().st_size // 2])
    flv = video / "1003_IEO_NEU_XX.flv"
    flv.write_bytes(flv.read_bytes()[: int(flv.stat().st_size * 0.4)])
    generate_clip(root, "1003_IEO_SAD_HI", wav=False, flv_audio=False)
    generate_clip(root, "1003_TIE_ANG_XX", duration=12.0)
    (video / "not_a_clip.flv").write_bytes(b"x")
    return root


@pytest.fixture()
def corpus_copy(corpus, tmp_path) -> Path:
    dst = tmp_path / "raw"
    shutil.copytree(corpus, dst)
    return dst
