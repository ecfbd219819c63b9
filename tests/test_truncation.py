"""Truncated media are caught where they are read: a WAV against its header's sample count, an FLV
against its tags' sizes and the duration its metadata states; the build skips them with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import shard_metas

from crema_tools.builder.pipeline import build
from crema_tools.media.decode import (
    FLV_END_TOLERANCE_S,
    MediaError,
    flv_truncation,
    read_all_frames,
    read_flv_audio,
    read_middle_frame,
    read_wav,
)

CLIP = "1001_DFA_ANG_XX"
WAV_HEADER = 44  # the synthetic WAVs, as the official ones: a bare RIFF header, then the samples
FLV_READERS = (read_all_frames, read_flv_audio, read_middle_frame)


def cut(src: Path, dst: Path, size: int) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def wav_cut(corpus: Path, dst: Path, fraction: float) -> Path:
    """The clip's WAV cut to `fraction` of its bytes, on a sample boundary."""
    src = corpus / "AudioWAV" / f"{CLIP}.wav"
    samples = (src.stat().st_size - WAV_HEADER) // 2
    return cut(src, dst, WAV_HEADER + 2 * int(samples * fraction))


def tag_starts(data: bytes) -> list[int]:
    """Where each tag of an FLV starts."""
    pos, starts = int.from_bytes(data[5:9], "big") + 4, []
    while pos + 11 <= len(data):
        starts.append(pos)
        pos += 11 + int.from_bytes(data[pos + 1 : pos + 4], "big") + 4
    return starts


@pytest.mark.parametrize("fraction", [0.95, 0.91])
def test_a_wav_cut_on_a_sample_boundary_is_truncated(corpus, tmp_path, fraction):
    whole = read_wav(corpus / "AudioWAV" / f"{CLIP}.wav", "whole.wav")
    wav = wav_cut(corpus, tmp_path / "cut.wav", fraction)
    with pytest.raises(MediaError) as e:
        read_wav(wav, "AudioWAV/cut.wav")
    message = str(e.value)
    assert message.startswith("AudioWAV/cut.wav: truncated: holds ")
    assert f"of the {len(whole.samples)} samples its header promises" in message
    assert "`crema-tools verify`, then `crema-tools fetch`" in message


def test_a_wav_cut_on_an_odd_byte_names_the_file_and_the_truncation(corpus, tmp_path):
    src = corpus / "AudioWAV" / f"{CLIP}.wav"
    wav = cut(src, tmp_path / "odd.wav", src.stat().st_size - 1001)
    with pytest.raises(MediaError, match=r"^AudioWAV/odd\.wav: truncated: .* 1001 bytes missing"):
        read_wav(wav, "AudioWAV/odd.wav")


@pytest.mark.parametrize("fraction", [0.97, 0.93])
def test_an_flv_cut_is_truncated_for_every_reader(corpus, tmp_path, fraction):
    src = corpus / "VideoFlash" / f"{CLIP}.flv"
    flv = cut(src, tmp_path / "cut.flv", int(src.stat().st_size * fraction))
    assert flv_truncation(src.read_bytes()) is None and "bytes short" in flv_truncation(flv.read_bytes())
    for reader in FLV_READERS:
        reader(src, "whole.flv")  # the whole file reads
        with pytest.raises(MediaError, match=r"^VideoFlash/cut\.flv: truncated: .*`crema-tools fetch`"):
            reader(flv, "VideoFlash/cut.flv")


def test_an_flv_that_lost_whole_tags_is_truncated_by_its_stated_duration(corpus, tmp_path):
    """Cut between two tags, an FLV is a valid one: its streams ending early give it away."""
    src = corpus / "VideoFlash" / f"{CLIP}.flv"
    data = src.read_bytes()
    starts = tag_starts(data)
    short = cut(src, tmp_path / "short.flv", starts[-20])  # about 0.3 s of packets gone
    for reader in FLV_READERS:
        with pytest.raises(MediaError, match=r"truncated: its streams end at [\d.]+ s, its metadata states"):
            reader(short, "short.flv")
    # the last tag alone (one MP3 or video frame) is within the tolerance: the file still reads
    assert FLV_END_TOLERANCE_S >= 0.05
    frames, _, _ = read_all_frames(cut(src, tmp_path / "last.flv", starts[-1]), "last.flv")
    assert len(frames) >= len(read_all_frames(src, "whole.flv")[0]) - 1


def test_the_build_skips_truncated_media_with_the_reason(corpus, tmp_path):
    raw, other = tmp_path / "raw", "1002_DFA_SAD_XX"
    for cid in (CLIP, other):
        for rel in (f"VideoFlash/{cid}.flv", f"AudioWAV/{cid}.wav"):
            (raw / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(corpus / rel, raw / rel)
    wav_cut(corpus, raw / "AudioWAV" / f"{CLIP}.wav", 0.95)
    flv = raw / "VideoFlash" / f"{other}.flv"
    flv.write_bytes(flv.read_bytes()[: int(flv.stat().st_size * 0.97)])
    build(raw, tmp_path / "out", ["2d-audio", "3d-vision"], progress=False)
    for variant, skipped, kept in (("2d-audio", CLIP, other), ("3d-vision", other, CLIP)):
        report = json.loads((tmp_path / "out" / variant / "report.json").read_text())
        reasons = {s["clip_id"]: s["reason"] for s in report["skipped"]}
        assert list(reasons) == [skipped] and "truncated" in reasons[skipped], reasons
        assert [m["clip_id"] for m in shard_metas(tmp_path / "out" / variant)] == [kept]
