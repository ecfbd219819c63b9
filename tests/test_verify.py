"""verify on synthetic trees: each verdict, extras, known problems, quick mode, folder errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crema_tools.corpus.metadata import ManifestEntry
from crema_tools.ops.verify import RawFolderError, parse_kinds, verify

KINDS = {"VideoFlash": "video_flv", "AudioWAV": "audio_wav", "AudioMP3": "audio_mp3"}
POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n"

OK = "AudioWAV/1001_DFA_ANG_XX.wav"
MISSING = "AudioWAV/1001_DFA_DIS_XX.wav"
STUB = "VideoFlash/1001_DFA_ANG_XX.flv"
WRONG_SIZE = "AudioMP3/1001_DFA_ANG_XX.mp3"
WRONG_HASH = "AudioMP3/1001_DFA_DIS_XX.mp3"
KNOWN_BROKEN = "AudioWAV/1076_MTI_SAD_XX.wav"  # documented open issue: official, reported for information
EXTRA = "AudioWAV/9999_XXX_ANG_XX.wav"


def content(path: str) -> bytes:
    return hashlib.shake_256(path.encode()).digest(2000 + len(path) * 37)


def entry(path: str) -> ManifestEntry:
    data = content(path)
    return ManifestEntry(path, KINDS[path.split("/")[0]], Path(path).stem, len(data), hashlib.sha256(data).hexdigest())


def write(root: Path, path: str, data: bytes) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)


@pytest.fixture
def entries():
    return [entry(p) for p in (OK, MISSING, STUB, WRONG_SIZE, WRONG_HASH, KNOWN_BROKEN)]


@pytest.fixture
def complete_tree(tmp_path, entries):
    for e in entries:
        write(tmp_path, e.path, content(e.path))
    return tmp_path


@pytest.fixture
def broken_tree(complete_tree, entries):
    root = complete_tree
    (root / MISSING).unlink()
    stub = next(e for e in entries if e.path == STUB)
    write(root, STUB, POINTER.format(sha=stub.sha256, size=stub.size_bytes).encode())
    write(root, WRONG_SIZE, content(WRONG_SIZE)[:-10])
    write(root, WRONG_HASH, bytes(b ^ 1 for b in content(WRONG_HASH)))
    write(root, EXTRA, b"RIFF not official")
    write(root, "AudioWAV/.DS_Store", b"ignored: not media-looking")
    return root


def statuses(report) -> dict[str, str]:
    return {c.path: c.status for c in report.checks}


def test_each_problem_is_classified(broken_tree, entries):
    report = verify(broken_tree, entries=entries, progress=False)
    assert statuses(report) == {
        OK: "ok", MISSING: "missing", STUB: "lfs_pointer", WRONG_SIZE: "size_mismatch",
        WRONG_HASH: "hash_mismatch", KNOWN_BROKEN: "ok",
    }
    assert [x.path for x in report.extras] == [EXTRA]
    assert not report.complete_and_official
    stub = next(c for c in report.checks if c.path == STUB)
    assert f"oid sha256:{entry(STUB).sha256}" in stub.detail and "git lfs pull" in stub.fix
    assert "crema-tools fetch --to" in next(c for c in report.checks if c.path == MISSING).fix


def test_counts_and_rendered_table(broken_tree, entries):
    report = verify(broken_tree, entries=entries, progress=False)
    counts = report.counts()
    assert counts["audio_wav"]["ok"] == 2 and counts["audio_wav"]["missing"] == 1 and counts["audio_wav"]["extra"] == 1
    assert counts["video_flv"]["lfs_pointer"] == 1
    assert counts["audio_mp3"]["size_mismatch"] == 1 and counts["audio_mp3"]["hash_mismatch"] == 1
    text = report.render()
    for needle in ("kind", "lfs_pointer", "hash_mismatch", "total", STUB, MISSING, EXTRA, "git lfs pull",
                   f"crema-tools fetch --to {broken_tree}", "NOT complete and official"):
        assert needle in text, needle
    assert "Problems (first 2 of 5)" in report.render(max_problems=2)


def test_known_open_problems_are_listed_but_do_not_fail(complete_tree, entries):
    report = verify(complete_tree, entries=entries, progress=True)
    assert report.complete_and_official
    assert [p.path for p in report.known_problems] == [KNOWN_BROKEN]
    assert report.known_problems[0].category == "broken_media"
    text = report.render()
    assert "Documented problem files present" in text and "Result: complete and official." in text


def test_quick_checks_sizes_only(broken_tree, entries):
    report = verify(broken_tree, entries=entries, quick=True, progress=False)
    found = statuses(report)
    assert found[WRONG_HASH] == "ok"  # same size: only a hash tells
    assert found[WRONG_SIZE] == "size_mismatch" and found[STUB] == "lfs_pointer"
    assert "--quick" in report.render()


def test_what_restricts_kinds_and_extras(broken_tree, entries):
    report = verify(broken_tree, what="video", entries=entries, progress=False)
    assert statuses(report) == {STUB: "lfs_pointer"}
    assert report.extras == [] and report.kinds == ("video_flv",)
    assert "--what video" in report.checks[0].fix


def test_old_misnamed_wav_points_to_the_rename(tmp_path):
    new = "AudioWAV/1040_ITH_SAD_XX.wav"
    write(tmp_path, "AudioWAV/1040_ITH_SAD_X.wav", content(new))
    report = verify(tmp_path, entries=[entry(new)], progress=False)
    assert statuses(report) == {new: "missing"}
    assert "old name" in report.checks[0].detail and report.checks[0].fix.startswith("mv ")
    assert [x.path for x in report.extras] == ["AudioWAV/1040_ITH_SAD_X.wav"]
    assert "old name of " + new in report.extras[0].detail and report.extras[0].fix == report.checks[0].fix
    assert report.fixes() == [report.checks[0].fix]  # one repair, not listed twice


def test_unfinished_download_is_an_extra(complete_tree, entries):
    write(complete_tree, OK + ".part", b"partial")
    report = verify(complete_tree, entries=entries, progress=False)
    assert [x.path for x in report.extras] == [OK + ".part"]
    assert "unfinished download" in report.extras[0].detail and "crema-tools fetch" in report.extras[0].fix
    assert not report.complete_and_official


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RawFolderError, match="no such folder.*crema-tools fetch --to"):
        verify(tmp_path / "nowhere", entries=[])


def test_folder_without_media_folders_is_a_clear_error(tmp_path):
    (tmp_path / "README.md").write_text("not a CREMA-D copy")
    with pytest.raises(RawFolderError, match="none of VideoFlash/, AudioWAV/, AudioMP3/"):
        verify(tmp_path, entries=[])


def test_shipped_manifest_is_the_default(tmp_path):
    (tmp_path / "AudioWAV").mkdir()
    report = verify(tmp_path, quick=True, progress=False)
    assert len(report.checks) == 22_326
    assert {c.status for c in report.checks} == {"missing"}
    assert "22,326" in report.render()


def test_parse_kinds():
    assert parse_kinds(None) == ("video_flv", "audio_wav", "audio_mp3")
    assert parse_kinds("mp3, video") == ("video_flv", "audio_mp3")
    assert parse_kinds(["wav"]) == ("audio_wav",)
    assert parse_kinds("all") == parse_kinds(None)
    with pytest.raises(ValueError, match="unknown media kind avi"):
        parse_kinds("avi")
