import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import shard_metas

import crema_tools
from crema_tools import synthetic
from crema_tools.builder.pipeline import build
from crema_tools.loading.dataset import LoadError, collate
from crema_tools.loading.transforms import to_model_input
from crema_tools.media.video3d import chunk_bounds, resample_times, source_fps

VARIANTS_3D = ["3d-audio", "3d-vision", "3d-multimodal"]
CLIPS = ["1001_DFA_ANG_XX", "1001_DFA_HAP_XX", "1002_DFA_FEA_XX", "1002_DFA_SAD_XX", "1001_IEO_NEU_XX"]
LONG = "1001_ITH_SAD_XX"  # 3 s: 72 frames at 24 fps


@pytest.fixture(scope="module")
def built3d(corpus, tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw3d")
    for cid in CLIPS:
        for rel in (f"VideoFlash/{cid}.flv", f"AudioWAV/{cid}.wav"):
            (raw / rel).parent.mkdir(exist_ok=True)
            (raw / rel).write_bytes((corpus / rel).read_bytes())
    synthetic.generate_clip(raw, LONG, duration=3.0)
    out = tmp_path_factory.mktemp("out3d")
    build(raw, out, VARIANTS_3D, progress=False)
    return out


def all_items(out, variant, **kw):
    return [x for split in ("train", "test") if split in json.loads((out / variant / "report.json").read_text())["splits"]
            for x in crema_tools.load(out, variant, split, **kw)]


def test_resampling_to_24fps_is_by_timestamp():
    times = [0.05 + i / 30 for i in range(60)]  # 2 s at 30 fps, starting late as FLVs with MP3 do
    assert source_fps(times) == pytest.approx(30.0)
    picks = resample_times(times, 30.0)
    assert len(picks) == 48
    assert picks[:10] == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]  # frame shown at i/24 s
    assert picks[-1] == 58


def test_chunks_cover_the_frames_spans():
    bounds = chunk_bounds(48, 87)  # 2 s of mel at 22,050 / 512 columns per second
    assert all(b > a for a, b in bounds) and bounds[0][0] == 0
    assert all(b1 == a2 for (_, b1), (a2, _) in zip(bounds, bounds[1:]))
    per_second = 22050 / 512
    for i, (a, b) in enumerate(bounds):  # column j is centred at j / per_second seconds
        assert i / 24 <= a / per_second + 1e-9 and (b - 1) / per_second < (i + 1) / 24


@pytest.mark.parametrize("variant, kw, shape", [
    ("3d-audio", {}, (3, 224, 224)),
    ("3d-vision", {}, (3, 224, 224)),
    ("3d-multimodal", {}, (3, 224, 448)),
    ("3d-multimodal", {"multimodal_layout": "squeezed"}, (3, 224, 224)),
])
def test_native_length_shapes(built3d, variant, kw, shape):
    items = all_items(built3d, variant, **kw)
    assert len(items) == len(CLIPS) + 1
    for x in items:
        t = x["inputs"].shape[0]
        assert x["inputs"].shape[1:] == shape and x["length"] == t and bool(x["mask"].all())
        assert t == 72 if x["clip_id"] == LONG else 40 <= t <= 70  # about 24 x duration
        assert 0.0 <= float(x["inputs"].min()) and float(x["inputs"].max()) <= 1.0


def test_padding_to_135_and_even_sampling(built3d):
    native = {x["clip_id"]: x for x in all_items(built3d, "3d-multimodal")}
    for x in all_items(built3d, "3d-multimodal", pad_to=135):
        t = native[x["clip_id"]]["length"]
        assert x["inputs"].shape == (135, 3, 224, 448) and x["length"] == t
        assert bool(x["mask"][:t].all()) and not bool(x["mask"][t:].any())
        assert torch.equal(x["inputs"][:t], native[x["clip_id"]]["inputs"])
        assert float(x["inputs"][t:].abs().max()) == 0.0  # blank frames
    for x in all_items(built3d, "3d-multimodal", sample_frames=16):
        ref = native[x["clip_id"]]["inputs"]
        index = np.linspace(0, len(ref) - 1, 16).round().astype(int)
        assert x["inputs"].shape == (16, 3, 224, 448) and torch.equal(x["inputs"], ref[index])
    squeezed = all_items(built3d, "3d-multimodal", sample_frames=32, multimodal_layout="squeezed")
    assert all(x["inputs"].shape == (32, 3, 224, 224) for x in squeezed)
    batch = next(iter(torch.utils.data.DataLoader(crema_tools.load(built3d, "3d-multimodal", "train", pad_to=135), batch_size=2)))
    assert batch["inputs"].shape == (2, 135, 3, 224, 448) and batch["mask"].shape == (2, 135)


@pytest.mark.parametrize("variant, kw", [
    ("3d-multimodal", {"pad_to": 80}),
    ("3d-multimodal", {"sample_frames": 32, "multimodal_layout": "squeezed"}),
    ("3d-multimodal", {"channels": 1}),
    ("3d-vision", {"sample_frames": 16}),
    ("3d-audio", {}),
])
def test_planes_assembled_on_the_device_are_the_float32_path(built3d, variant, kw):
    """dtype="planes" yields the clip as stored (a fraction of the bytes); `to_model_input` converts,
    resizes (squeezed: Pillow's exact arithmetic), pads and normalises it to the float32 path's
    tensors: within float rounding, far inside the 3 grey levels allowed."""
    mean, std = (0.45, 0.45, 0.45)[: kw.get("channels", 3)], (0.225, 0.225, 0.225)[: kw.get("channels", 3)]
    for split in ("train", "test"):
        batches = [next(iter(torch.utils.data.DataLoader(crema_tools.load(built3d, variant, split, dtype=dtype, **kw),
                                                          batch_size=8, collate_fn=collate))) for dtype in ("float32", "planes")]
        f32, planes = batches
        assert "inputs" not in planes and planes["planes" if variant != "3d-audio" else "mel"].dtype != torch.float32
        loaded = sum(v.numel() * v.element_size() for v in planes.values() if isinstance(v, torch.Tensor))
        assert loaded < f32["inputs"].numel() * 4 / (12 if "pad_to" in kw else 5)  # the compact form is compact
        a, b = to_model_input(f32, mean, std), to_model_input(planes, mean, std)
        assert a.shape == b.shape and torch.equal(f32["mask"], planes["mask"])
        assert f32["clip_id"] == planes["clip_id"] and torch.equal(f32["length"], planes["length"])
        grey_levels = (a - b).abs() * 0.225 * 255
        assert float(grey_levels.max()) < 0.01
        if "pad_to" in kw:  # padded frames are black, normalised
            assert (~planes["mask"]).any() and torch.allclose(b[~planes["mask"]], torch.tensor(-0.45 / 0.225))


def test_multimodal_halves_are_the_single_modalities(built3d):
    mm = {x["clip_id"]: x["inputs"] for x in all_items(built3d, "3d-multimodal")}
    for x in all_items(built3d, "3d-vision"):
        assert torch.equal(mm[x["clip_id"]][..., :224], x["inputs"])
    for x in all_items(built3d, "3d-audio"):
        assert mm[x["clip_id"]].shape[0] == x["inputs"].shape[0]
        assert torch.allclose(mm[x["clip_id"]][..., 224:], x["inputs"])


def test_longer_clip_than_frames_is_an_error_naming_it(built3d):
    with pytest.raises(LoadError, match=f"{LONG}: 72 frames, more than pad_to=64"):
        all_items(built3d, "3d-vision", pad_to=64)
    with pytest.raises(LoadError, match="multimodal_layout"):
        crema_tools.load(built3d, "3d-multimodal", "train", multimodal_layout="tall")


def test_load_dataset_without_torchcodec(built3d):
    from datasets import load_dataset

    assert importlib.util.find_spec("torchcodec") is None
    ds = load_dataset(str(built3d), "3d-multimodal", split="train")
    row = ds[0]
    assert isinstance(row["mp4"], bytes) and np.asarray(row["npy"]).shape[0] == 512
    assert row["json"]["n_frames"] > 0 and ds.features["cls"].names[0] == "ANG"


def test_rebuild_is_byte_identical(built3d, tmp_path):
    raw = Path(str(built3d).replace("out3d", "raw3d"))
    build(raw, tmp_path, ["3d-multimodal"], progress=False, workers=2)
    for a in sorted((built3d / "3d-multimodal").iterdir()):
        assert (tmp_path / "3d-multimodal" / a.name).read_bytes() == a.read_bytes(), a.name


def test_frames_and_chunks_are_aligned(tmp_path):
    """A flash on screen and a burst of sound at 1.0-1.25 s land in the same frames and chunks."""
    raw = tmp_path / "raw"
    (raw / "VideoFlash").mkdir(parents=True)
    (raw / "AudioWAV").mkdir()
    dark = np.full((360, 480, 3), 30, np.uint8)
    frames = [dark + (150 if 1.0 <= i / 30 < 1.25 else 0) for i in range(75)]
    quiet = lambda rate: np.zeros(int(2.5 * rate), np.float32)  # noqa: E731
    t16, t22 = (np.arange(int(2.5 * r)) / r for r in (16000, 22050))
    wav, flv_audio = quiet(16000), quiet(22050)
    wav[(t16 >= 1.0) & (t16 < 1.25)] = 0.5 * np.sin(2 * np.pi * 440 * t16[(t16 >= 1.0) & (t16 < 1.25)])
    flv_audio[(t22 >= 1.0) & (t22 < 1.25)] = 0.5
    wav += 1e-3  # not all silence
    synthetic.write_wav(raw / "AudioWAV" / "1001_DFA_ANG_XX.wav", wav)
    synthetic.write_flv(raw / "VideoFlash" / "1001_DFA_ANG_XX.flv", frames, flv_audio)
    build(raw, tmp_path / "out", ["3d-multimodal"], progress=False)
    item = all_items(tmp_path / "out", "3d-multimodal")[0]
    x = item["inputs"]
    bright = set(torch.nonzero(x[:, :, :, :224].mean(dim=(1, 2, 3)) > 0.4).flatten().tolist())
    level = x[:, :, :, 224:].mean(dim=(1, 2, 3))
    loud = set(torch.nonzero(level > 5 * level.median()).flatten().tolist())  # well above the silence
    # the 24 fps instants i/24 that fall on a bright 30 fps frame ([30/30, 38/30) s): i = 24..30
    assert bright == set(range(24, 31))
    # chunk i holds the mel columns centred in [i/24, (i+1)/24): the burst fills chunks 24..29; the
    # 2048-sample analysis window (93 ms) may spill it into one chunk on either side, no further
    assert set(range(24, 30)) <= loud <= set(range(23, 31))


def test_bad_media_and_the_long_take(bad_corpus, tmp_path):
    reports = build(bad_corpus, tmp_path, ["3d-vision", "3d-audio"], progress=False)
    vision = {s["clip_id"]: s["reason"] for s in reports["3d-vision"]["skipped"]}
    audio = {s["clip_id"]: s["reason"] for s in reports["3d-audio"]["skipped"]}
    assert "not in this protocol's 3D split" in vision["1076_MTI_SAD_XX"]
    assert "far longer than a clip" in vision["1003_TIE_ANG_XX"]
    assert "truncated" in vision["1003_IEO_NEU_XX"] and "Git LFS pointer" in vision["1003_IEO_ANG_HI"]
    assert "truncated" in audio["1003_IEO_HAP_HI"] and "1003_IEO_ANG_HI" not in audio
    lengths = [x["length"] for x in all_items(tmp_path, "3d-vision")]
    assert lengths and max(lengths) < 80  # the 12 s take set nothing


def test_face_crop_tracks_the_face(corpus, tmp_path):
    report = build(corpus, tmp_path / "face", ["3d-vision"], progress=False, clip_ids=CLIPS[:2], face_crop=True)["3d-vision"]
    plain = build(corpus, tmp_path / "plain", ["3d-vision"], progress=False, clip_ids=CLIPS[:2])["3d-vision"]
    assert report["params"]["video"]["face_crop"] is True and plain["params"]["video"]["face_crop"] is False
    metas = shard_metas(tmp_path / "face/3d-vision")
    assert [m["face_keyframes_found"] for m in metas] == [5, 5]  # MTCNN on 5 frames, boxes in between
    cropped = {x["clip_id"]: x["inputs"] for x in all_items(tmp_path / "face", "3d-vision")}
    full = {x["clip_id"]: x["inputs"] for x in all_items(tmp_path / "plain", "3d-vision")}
    for cid, x in cropped.items():
        assert x.shape == full[cid].shape  # same frames on the same 24 fps grid
        # the synthetic background is one flat colour: the face crop has none of it in its centre
        # and varies far more than the whole frame's flat margins
        assert float(x[:, :, 80:144, 80:144].std()) > 0.1
        assert not torch.allclose(x, full[cid], atol=0.05)


def test_face_crop_finds_faces_on_the_build_device_batched_across_clips(corpus, tmp_path, monkeypatch):
    """--face-crop runs MTCNN where the build says. On a GPU the keyframes of 16 clips go in one call
    on --device, between two passes over the video; on a CPU each worker takes its own clip's five
    (faster there). Both give the same bytes, whatever the number of workers."""
    from crema_tools.builder import plan
    from crema_tools.media import faces
    from crema_tools.representations import steps

    calls, alone = [], []
    real = faces.detect_faces
    monkeypatch.setattr(steps, "detect_faces", lambda frames, device=None: calls.append((len(frames), device)) or real(frames, device))
    monkeypatch.setattr(faces, "detect_faces", lambda frames, device=None: alone.append((len(frames), device)) or real(frames, device))

    def crop(out, **kw):
        return build(corpus, tmp_path / out, ["3d-vision"], progress=False, clip_ids=CLIPS[:3], face_crop=True, **kw)

    report = crop("cpu", device="cpu")["3d-vision"]
    assert calls == [] and alone == [(5, "cpu")] * 3 and report["build"]["face_device"] == "cpu"
    calls.clear(), alone.clear()
    monkeypatch.setattr(plan, "FACE_TRACK_BATCHED_ON", ("cpu",))  # the GPU path, run on the CPU
    crop("batched", device="cpu")
    assert calls == [(3 * 5, "cpu")] and alone == []  # 3 clips x 5 keyframes in one call on the given device
    crop("batched-w2", device="cpu", workers=2)
    for a in sorted((tmp_path / "cpu/3d-vision").glob("*.tar")):
        for other in ("batched", "batched-w2"):
            assert a.read_bytes() == (tmp_path / other / "3d-vision" / a.name).read_bytes()
