"""hicmae-av: aligned face clips and the fbank, against outside references.

- the similarity transform: a known similarity recovered exactly, and equal to the textbook linear
  least-squares fit (x' = a x - b y + tx, y' = b x + a y + ty), which is the same minimiser;
- the frames the loader picks: HiCMAE's rules reduced below from sunlicai/HiCMAE kinetics_av.py at
  commit cdd28d4 (`VideoClsDatasetFrame.load_video` and the test branch of `__getitem__`);
- the audio: the `fbank` config's stored values byte for byte, and their `load_audio` + `_wav2fbank`
  on the cut WAV (test_speech_inputs.hicmae_wav2fbank) within a measured bound;
- the build on synthetic clips whose face is a photograph: MTCNN, run again on the aligned frames,
  finds the five points where the template puts them.
"""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import shard_samples
from test_speech_inputs import hicmae_wav2fbank

import crema_tools
from crema_tools.builder.pipeline import build
from crema_tools.errors import LoadError
from crema_tools.media import faces, video3d
from crema_tools.representations import BuildOptions, Features, get_representation
from crema_tools.representations import hicmae_av as hav
from crema_tools.representations.steps import extract, find_faces, run_steps
from crema_tools.synthetic import generate_clip

CLIPS = ["1001_DFA_ANG_XX", "1002_IEO_SAD_HI"]
FACELESS = "1001_DFA_HAP_XX"  # a grey square where the face would be: MTCNN finds nothing
BROKEN = "1002_DFA_NEU_XX"  # its FLV is noise: skipped with its reason


# ---------------------------------------------------------------- HiCMAE's rules, reduced


def their_train_index(seg_len: int, clip_len: int, frame_sample_rate: int, end_idx: int) -> list[int]:
    """load_video, mode 'train', num_segment 1; `end_idx` is their np.random.randint(converted_len, seg_len)."""
    converted_len = int(clip_len * frame_sample_rate)
    if seg_len <= converted_len:
        index = np.linspace(0, seg_len, num=seg_len // frame_sample_rate)
        index = np.concatenate((index, np.ones(clip_len - seg_len // frame_sample_rate) * seg_len))
        index = np.clip(index, 0, seg_len - 1).astype(np.int64)
    else:
        str_idx = end_idx - converted_len
        index = np.linspace(str_idx, end_idx, num=clip_len)
        index = np.clip(index, str_idx, end_idx - 1).astype(np.int64)
    return list(index)


def their_test_views(n: int, clip_len: int, frame_sample_rate: int, test_num_segment: int) -> list[tuple[list, int, int]]:
    """load_video, mode 'test', then __getitem__'s temporal crop and audio span, for each chunk_nb."""
    all_index = [x for x in range(0, n, frame_sample_rate)]
    while len(all_index) < clip_len:
        all_index.append(all_index[-1])
    out = []
    for chunk_nb in range(test_num_segment):
        temporal_step = max(1.0 * (len(all_index) - clip_len) / (test_num_segment - 1), 0)
        temporal_start = int(chunk_nb * temporal_step)
        start_frame_idx = all_index[temporal_start]
        end_frame_idx = all_index[min(temporal_start + clip_len - 1, len(all_index) - 1)]
        end_frame_idx = min(end_frame_idx + frame_sample_rate, n - 1)
        out.append((all_index[temporal_start:temporal_start + clip_len], start_frame_idx, end_frame_idx))
    return out


def their_audio_cut(samples: np.ndarray, n: int, start_frame_idx: int, end_frame_idx: int) -> np.ndarray | None:
    """load_audio's cut (VideoReaderFrame.get_frame_timestamp_relative: idx / (n - 1)); None: the whole clip."""
    start, end = start_frame_idx / (n - 1.0), end_frame_idx / (n - 1.0)
    a, b = int(start * len(samples)), int(end * len(samples))
    return None if b - a <= 1024 else samples[a:b]


# ---------------------------------------------------------------- the maths


def test_similarity_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 400, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.5, -40.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = faces.similarity(src, src @ rot.T + shift)
    np.testing.assert_allclose(m, np.column_stack([rot, shift]), atol=1e-9)


@pytest.mark.parametrize("mirrored", [False, True])
def test_similarity_is_the_linear_least_squares_fit(mirrored):
    rng = np.random.default_rng(1)
    src = rng.uniform(100, 300, (5, 2))
    dst = np.asarray(hav.TEMPLATE) + rng.normal(0, 3, (5, 2))
    if mirrored:  # the best fit would mirror: both must give the best rotation and scale instead
        dst[:, 0] = 256 - dst[:, 0]
    rows = [[x, -y, 1, 0] for x, y in src] + [[y, x, 0, 1] for x, y in src]
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)
    m = faces.similarity(src, dst)
    np.testing.assert_allclose(m, [[a, -b, tx], [b, a, ty]], atol=1e-9)
    assert np.linalg.det(m[:, :2]) >= 0


def test_frames_without_face_take_the_nearest_transform():
    face = faces.Face((0, 0, 1, 1), 1.0, tuple(map(tuple, np.asarray(hav.TEMPLATE) / 2)))
    nothing = faces.Face(None, 0.0)
    ms = hav.transforms([nothing, face, nothing, nothing, face], 480, 360)
    np.testing.assert_allclose(ms[1], [[2, 0, 0], [0, 2, 0]], atol=1e-9)
    assert all(np.array_equal(ms[i], ms[1]) for i in (0, 2, 3))
    centre = hav.transforms([nothing], 480, 360)[0]  # no face at all: the centre 360 square to 256
    np.testing.assert_allclose([centre @ [60, 0, 1], centre @ [420, 360, 1]], [[0, 0], [256, 256]], atol=1e-9)


def test_train_frames_are_theirs():
    """Every clip length from 1 frame to 4.6 s at 30 fps, and every window end their draw can give."""
    for n in range(1, 140):
        for end in [None] if n <= 64 else range(64, n):
            drawn = []
            ours = hav.train_indices(n, 16, 4, lambda lo, hi, end=end, drawn=drawn: drawn.append((lo, hi)) or end)
            assert list(ours) == their_train_index(n, 16, 4, end), (n, end)
            assert drawn == ([] if end is None else [(64, n)])  # their np.random.randint(converted_len, seg_len)


def test_test_frames_and_audio_spans_are_theirs():
    for n in range(1, 140):
        for segments in (2, 3):
            ours = [(list(k), a, b) for k, a, b in hav.test_segments(n, 16, 4, segments)]
            assert ours == their_test_views(n, 16, 4, segments), (n, segments)


# ---------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    raw = tmp_path_factory.mktemp("raw")
    generate_clip(raw, CLIPS[0], seed=4)  # 2.2 s or more: over 64 frames, so both of HiCMAE's sampling branches run
    generate_clip(raw, CLIPS[1], seed=4, duration=1.2)
    generate_clip(raw, FACELESS, duration=1.0, face=np.full((120, 100, 3), 128, np.uint8))
    generate_clip(raw, BROKEN)
    (raw / "VideoFlash" / f"{BROKEN}.flv").write_bytes(bytes(range(256)) * 200)
    out = tmp_path_factory.mktemp("out")
    build(raw, out, ["hicmae-av", "fbank"], progress=False, protocol="speaker")
    return raw, out


def samples(out: Path, variant: str) -> dict[str, dict[str, bytes]]:
    return {json.loads(m["json"])["clip_id"]: m for _, m in shard_samples(out / variant)}


def test_report_counts_faces_and_skips_the_broken_clip(built):
    raw, out = built
    report = json.loads((out / "hicmae-av" / "report.json").read_text())
    assert report["face_not_found"] == [FACELESS]
    assert [f["clip_id"] for f in report["flagged"]] == [FACELESS]
    assert "no face found in" in report["flagged"][0]["detail"] and "centre square" in report["flagged"][0]["detail"]
    assert [s["clip_id"] for s in report["skipped"]] == [BROKEN] and report["skipped"][0]["reason"]
    assert report["params"]["video"]["template"]["points"] == [list(p) for p in hav.TEMPLATE]
    card = (out / "README.md").read_text()
    assert "`hicmae-av` video at build: Pillow Image.transform (affine), bilinear, no antialiasing" in card
    assert "`hicmae-av` sampling at load: Pillow Image.resize" in card and "bilinear, antialiased" in card


def test_audio_is_the_fbank_config_byte_for_byte(built):
    _, out = built
    ours, theirs = samples(out, "hicmae-av"), samples(out, "fbank")
    assert sorted(ours) == sorted(CLIPS + [FACELESS])
    for clip, members in ours.items():
        assert members["npy"] == theirs[clip]["npy"]


def test_every_frame_is_aligned_onto_the_template(built):
    raw, out = built
    for clip, members in samples(out, "hicmae-av").items():
        meta = json.loads(members["json"])
        n = len(crema_tools.media.read_all_frames(raw / "VideoFlash" / f"{clip}.flv", clip)[0])
        assert meta["n_frames"] == n and meta["fps"] == 30
        assert meta["frames_with_face"] == (0 if clip == FACELESS else n)
        if clip == FACELESS:
            continue
        frames = hav.pictures(members, meta)
        assert frames.shape == (n, 256, 256, 3)
        picks = (0, n // 2, n - 1)
        source = hav.rgb_frames(raw, Features(clip))
        before = faces.detect_faces([source[i] for i in picks], device="cpu", landmarks=True)
        after = faces.detect_faces([frames[i] for i in picks], device="cpu", landmarks=True)
        for b, a in zip(before, after):  # MTCNN on the stored (H.264) face finds the points where the transform sends them
            m = faces.similarity(b.points, hav.TEMPLATE)
            moved = np.asarray(b.points) @ m[:, :2].T + m[:, 2]
            # MTCNN's landmarks move by up to about 3 px when it runs again on a resampled face (measured
            # here: mean under 1 px, max 2.7 px); a wrong transform misses by tens of pixels
            error = np.abs(np.asarray(a.points) - moved)
            assert error.max() < 4.0 and error.mean() < 1.5
            assert np.abs(moved - np.asarray(hav.TEMPLATE)).max() < 6  # the five points' own misfit to ArcFace's


def test_loaded_as_their_video_and_audio(built):
    raw, out = built
    train = {x["clip_id"]: x for x in crema_tools.load(out, "hicmae-av", "train")}
    test = {x["clip_id"]: x for x in crema_tools.load(out, "hicmae-av", "test")}
    for x in train.values():
        assert x["video"].shape == (3, 16, 160, 160) and x["audio"].shape == (1, 256, 128)
    for x in test.values():
        assert x["video"].shape == (2, 3, 16, 160, 160) and x["audio"].shape == (2, 1, 256, 128)
    clip = next(iter(test))
    members = samples(out, "hicmae-av")[clip]
    meta = json.loads(members["json"])
    rgb = hav.pictures(members, meta)
    views = their_test_views(meta["n_frames"], 16, 4, 2)
    # their test transform: PIL bilinear resize to 160 x 160, ClipToTensor (/255, C T H W), ImageNet Normalize
    from PIL import Image

    clip_frames = np.stack([np.asarray(Image.fromarray(rgb[i]).resize((160, 160), Image.BILINEAR)) for i in views[1][0]])
    want = (torch.from_numpy(clip_frames).float().permute(3, 0, 1, 2) / 255 - torch.tensor(hav.MEAN)[:, None, None, None]) \
        / torch.tensor(hav.STD)[:, None, None, None]
    torch.testing.assert_close(test[clip]["video"][1], want, rtol=0, atol=1e-5)
    assert test[clip]["frame_indices"].tolist() == [v[0] for v in views]


def test_audio_is_theirs_under_the_frames(built):
    """Their audio: the WAV cut under the frames, then _wav2fbank; ours: the stored fbank's rows, to
    the nearest 10 ms. Equal where their cut starts on a row; else the rows lie up to 5 ms apart."""
    raw, out = built
    rep, spans = get_representation("hicmae-av"), {"on a row": 0, "between rows": 0}
    for clip, members in samples(out, "hicmae-av").items():
        meta = json.loads(members["json"])
        n, got = meta["n_frames"], rep.decode_inputs(members, meta, hav.HicmaeOptions(), "test")["audio"]
        with wave.open(str(raw / "AudioWAV" / f"{clip}.wav"), "rb") as w:
            wav = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
        assert meta["audio_samples"] == len(wav)
        for k, (_, first, last) in enumerate(their_test_views(n, 16, 4, 2)):
            cut = their_audio_cut(wav, n, first, last)
            fb = hicmae_wav2fbank(torch.from_numpy(wav if cut is None else cut).float()[None], 16000, 256)
            theirs = (fb - -4.2677393) / (4.5689974 * 2)
            rows = int(np.count_nonzero(fb.abs().sum(dim=1)))
            assert (got[k, 0, rows:] == theirs[rows:]).all()  # the same zero padding after the same rows
            difference = (got[k, 0, :rows] - theirs[:rows]).abs()
            if int(first / (n - 1) * len(wav)) % 160 == 0:
                spans["on a row"] += 1
                assert difference.max() < 1e-3
            else:
                spans["between rows"] += 1
                assert difference.median() < 0.05 and difference.max() < 1.0
    assert spans["on a row"] and spans["between rows"]


def test_gpu_path_gives_the_cpu_path_bytes(tmp_path):
    """Frames found between two passes (the GPU's way, here on the CPU) give the single pass's bytes."""
    generate_clip(tmp_path, CLIPS[0], duration=0.6)
    rep = get_representation("hicmae-av")
    one = extract(tmp_path, CLIPS[0], rep.steps(BuildOptions()))
    two_pass = rep.steps(BuildOptions(batch_faces=True))
    f = extract(tmp_path, CLIPS[0], [s for s in two_pass if not s.after_faces])
    assert f["align_frames"].shape[0] == one["aligned_frames"] > 10
    find_faces([f], "cpu", middle_frames=False)
    run_steps(tmp_path, f, [s for s in two_pass if s.after_faces])
    assert f["aligned_mp4"] == one["aligned_mp4"] and f["aligned_faces_found"] == one["aligned_faces_found"] > 10


def test_options_are_checked(built):
    _, out = built
    with pytest.raises(LoadError, match="num_frames must be a positive whole number"):
        crema_tools.load(out, "hicmae-av", "train", num_frames=0)
    with pytest.raises(LoadError, match="apply to the fbank config only"):
        crema_tools.load(out, "hicmae-av", "train", target_length=512)
    x = next(iter(crema_tools.load(out, "hicmae-av", "train", num_frames=8, sampling_rate=2, input_size=112, audio_length=128)))
    assert x["video"].shape == (3, 8, 112, 112) and x["audio"].shape == (1, 128, 128)


def test_encoded_at_256_and_the_source_rate(built):
    _, out = built
    members = next(iter(samples(out, "hicmae-av").values()))
    import av

    with av.open(io.BytesIO(members["mp4"])) as c:
        s = c.streams.video[0]
        assert (s.width, s.height, s.average_rate) == (256, 256, 30)
    assert video3d.decode_yuv(members["mp4"]).shape[1:] == (384, 256)


def test_load_dataset_reads_it(built):
    from datasets import load_dataset

    _, out = built
    row = load_dataset(str(out), "hicmae-av", split="test")[0]
    assert np.asarray(row["npy"]).shape == (row["json"]["fbank_frames"], 128)
    assert video3d.decode_yuv(row["mp4"]).shape == (row["json"]["n_frames"], 384, 256)
