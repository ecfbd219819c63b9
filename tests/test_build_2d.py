import json
from pathlib import Path

import pytest
import torch
from helpers import run_cli, shard_metas, shard_samples

import crema_tools
from crema_tools.builder.pipeline import BuildError, build
from crema_tools.corpus import assign_splits
from crema_tools.errors import CremaToolsError
from crema_tools.variants import VariantError

VARIANTS_2D = ["2d-audio", "2d-vision", "2d-multimodal"]


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out2d")
    build(corpus, out, VARIANTS_2D, progress=False, workers=0)
    return out


def test_layout_counts_and_splits(built, corpus):
    expected = assign_splits("paper", 0, "2d")
    for variant in VARIANTS_2D:
        report = json.loads((built / variant / "report.json").read_text())
        assert report["samples"] == 24 and report["skipped"] == [] and report["source"] == "synthetic"
        assert sum(s["samples"] for s in report["splits"].values()) == 24
        for split, info in report["splits"].items():
            assert [p.name for p in sorted((built / variant).glob(f"{split}-*.tar"))] == info["shards"]
        metas = shard_metas(built / variant)
        assert len(metas) == 24
        for meta in metas:  # a clip's split is the corpus-wide one, whatever else is on disk
            assert meta["split"] == expected[meta["clip_id"]]
            assert meta["label"] == ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"].index(meta["emotion"])
        if variant != "2d-audio":
            assert all(m["face_found"] and m["face_probability"] > 0.9 and len(m["face_box"]) == 4 for m in metas)
    card = (built / "README.md").read_text()
    assert "license: odbl" in card and "config_name: 2d-multimodal" in card and "Synthetic sample" in card
    assert "2d-vision/test-*.tar" in card


def test_load_dataset_from_the_folder(built):
    from datasets import load_dataset

    ds = load_dataset(str(built), "2d-multimodal", split="train")
    assert ds.features["cls"].names == ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
    row = ds[0]
    assert row["png"].size == (448, 224) and row["cls"] == row["json"]["label"]
    assert len(ds) == json.loads((built / "2d-multimodal/report.json").read_text())["splits"]["train"]["samples"]


@pytest.mark.parametrize("variant, shape", [("2d-audio", (3, 224, 224)), ("2d-vision", (3, 224, 224)),
                                            ("2d-multimodal", (3, 224, 448))])
def test_crema_tools_load_shapes(built, variant, shape):
    ds = crema_tools.load(built, variant, "train")
    items = list(ds)
    assert len(items) == len(ds) > 0
    x = items[0]["inputs"]
    assert x.shape == shape and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert {"label", "clip_id", "actor_id"} <= items[0].keys()
    gray = next(iter(crema_tools.load(built, variant, "train", channels=1)))["inputs"]
    assert gray.shape == (1, *shape[1:])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)))
    assert batch["inputs"].shape == (4, *shape)


def test_spectrogram_half_of_multimodal_is_the_audio_image(built):
    audio = {k: m["png"] for k, m in shard_samples(built / "2d-audio")}
    mm = next(iter(crema_tools.load(built, "2d-multimodal", "train")))
    au = [x for x in crema_tools.load(built, "2d-audio", "train") if x["clip_id"] == mm["clip_id"]][0]
    assert torch.equal(mm["inputs"][0, :, 224:], au["inputs"][0]) and mm["clip_id"] in audio


def test_rebuild_is_byte_identical_whatever_the_workers(built, corpus, tmp_path):
    build(corpus, tmp_path, ["2d-multimodal"], progress=False, workers=2)
    for a in sorted((built / "2d-multimodal").iterdir()):
        assert (tmp_path / "2d-multimodal" / a.name).read_bytes() == a.read_bytes(), a.name


def test_subset_and_seed(corpus, tmp_path):
    report = build(corpus, tmp_path / "s1", ["2d-audio"], seed=1, progress=False, clip_ids=["1001_DFA_ANG_XX", "1002_DFA_SAD_XX"])
    assert report["2d-audio"]["samples"] == 2
    expected = assign_splits("paper", 1, "2d")
    metas = shard_metas(tmp_path / "s1" / "2d-audio")
    assert {m["clip_id"]: m["split"] for m in metas} == {c: expected[c] for c in ("1001_DFA_ANG_XX", "1002_DFA_SAD_XX")}


def test_speaker_protocol_has_three_actor_disjoint_splits(corpus, tmp_path):
    report = build(corpus, tmp_path, ["2d-audio"], protocol="audeering", progress=False)["2d-audio"]
    assert set(report["splits"]) == {"train"}  # actors 1001 and 1002 are both in audeering's train part
    assert report["protocol"] == "audeering"


def test_bad_inputs_are_skipped_with_their_reason(bad_corpus, tmp_path):
    reports = build(bad_corpus, tmp_path, VARIANTS_2D, progress=False)
    reasons = {v: {s["clip_id"]: s["reason"] for s in r["skipped"]} for v, r in reports.items()}
    audio, vision, mm = reasons["2d-audio"], reasons["2d-vision"], reasons["2d-multimodal"]
    assert "known issue (broken_media)" in audio["1076_MTI_SAD_XX"] and "1076_MTI_SAD_XX" in vision
    assert "duplicate_audio" in audio["1006_TIE_HAP_XX"] and "1006_TIE_HAP_XX" not in vision
    assert "Git LFS pointer" in vision["1003_IEO_ANG_HI"] and "git lfs pull" in vision["1003_IEO_ANG_HI"]
    assert "1003_IEO_ANG_HI" not in audio
    assert "empty" in audio["1003_IEO_DIS_HI"]
    assert "not a readable media file" in vision["1003_IEO_FEA_HI"]
    assert "truncated" in audio["1003_IEO_HAP_HI"]
    assert "truncated" in vision["1003_IEO_NEU_XX"]
    assert "no audio stream" in audio["1003_IEO_SAD_HI"] and "1003_IEO_SAD_HI" not in vision
    assert "far longer than a clip" in vision["1003_TIE_ANG_XX"]
    assert "not_a_clip" in vision and "not a CREMA-D clip id" in vision["not_a_clip"]
    for v in VARIANTS_2D:  # the good clips are all there
        good = {m["clip_id"] for m in shard_metas(tmp_path / v)}
        assert {"1003_DFA_ANG_XX", "1003_DFA_DIS_XX", "1003_DFA_FEA_XX"} <= good
        assert good.isdisjoint(reasons[v])
    assert set(mm) == set(audio) | set(vision)


def test_argument_errors_leave_nothing_behind(corpus, tmp_path):
    with pytest.raises(VariantError, match="unknown variant '4d-smell'"):
        build(corpus, tmp_path / "o1", ["4d-smell"])
    with pytest.raises(BuildError, match="unknown protocol 'random'"):
        build(corpus, tmp_path / "o2", ["2d-audio"], protocol="random")
    with pytest.raises(BuildError, match="no such folder"):
        build(tmp_path / "nope", tmp_path / "o3", ["2d-audio"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BuildError, match="holds neither VideoFlash/ nor AudioWAV/"):
        build(tmp_path / "empty", tmp_path / "o4", ["2d-audio"])
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3", "o4"))


def test_cli_one_line_errors(corpus, tmp_path):
    r = run_cli("build", "--variant", "4d-smell", "--raw", str(corpus), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "unknown variant '4d-smell'" in r.stderr
    r = run_cli("build", "--variant", "2d-audio", "--raw", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "no such folder" in r.stderr and "Traceback" not in r.stderr
    # arguments are checked before anything is prepared: no synthetic sample is made for a typo
    r = run_cli("build", "--variant", "4d-smell", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 2 and "SYNTHETIC SAMPLE" not in r.stderr and r.stderr.strip().count("\n") == 0
    from crema_tools.builder.pipeline import check_options

    for bad, message in (({"seed": -1}, "--seed -1: seeds are non-negative"),
                         ({"workers": 1000}, "--workers 1000: this machine has"),
                         ({"protocol": "speaker-kfold"}, "needs a fold")):
        with pytest.raises(CremaToolsError, match=message):
            check_options(["2d-audio"], **{"protocol": "paper", **bad})
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = run_cli("build", "--variant", "2d-audio", "--raw", str(corpus), "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "cannot write there" in r.stderr and "Traceback" not in r.stderr


def test_cli_build_reports_skips_and_exits_zero(bad_corpus, tmp_path):
    r = run_cli("build", "--variant", "2d-vision", "--raw", str(bad_corpus), "--out", str(tmp_path / "o"), "--workers", "0")
    assert r.returncode == 0, r.stderr
    assert "skipped clips: 2d-vision" in r.stderr and "report.json" in r.stderr
    assert (tmp_path / "o" / "2d-vision" / "report.json").is_file()


def _nearest_centroid_loo(x, y) -> float:
    """Leave-one-out accuracy of a nearest-centroid classifier on standardised features."""
    import numpy as np

    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    hits = 0
    for i in range(len(x)):
        rest = np.arange(len(x)) != i
        centroids = {c: x[rest & (y == c)].mean(0) for c in set(y[rest])}
        hits += min(centroids, key=lambda c: np.linalg.norm(x[i] - centroids[c])) == y[i]
    return hits / len(x)


def test_synthetic_emotions_need_both_modalities(built):
    """The built sample is learnable and complementary: each modality alone tells only its groups."""
    import numpy as np

    from crema_tools.synthetic import AUDIO_GROUP, VISION_GROUP

    items = [x for split in ("train", "test") for x in crema_tools.load(built, "2d-multimodal", split)]
    face, spec = [x["inputs"][:, :, :224] for x in items], [x["inputs"][0, :, 224:] for x in items]
    tint = np.array([[f[0].mean() - f[2].mean(), f[1].mean() - (f[0].mean() + f[2].mean()) / 2] for f in face])
    pitch = np.array([[float(np.argmax(s.mean(dim=1).numpy()[::-1][:60]))] for s in spec])  # lowest strong band
    label = np.array([x["label"] for x in items])
    emotion = [x["emotion"] for x in items]
    assert _nearest_centroid_loo(tint, np.array([VISION_GROUP[e] for e in emotion])) >= 0.95
    assert _nearest_centroid_loo(pitch, np.array([AUDIO_GROUP[e] for e in emotion])) >= 0.95
    assert _nearest_centroid_loo(tint, label) <= 0.67  # three groups of two: 1/2 at best
    assert _nearest_centroid_loo(pitch, label) <= 0.42  # two groups of three: 1/3 at best
    assert _nearest_centroid_loo(np.c_[tint, pitch], label) >= 0.95


def test_one_folder_holds_one_protocol(corpus, tmp_path):
    build(corpus, tmp_path, ["2d-audio"], progress=False, clip_ids=["1001_DFA_ANG_XX"])
    with pytest.raises(BuildError, match="already holds 2d-audio built with protocol paper, seed 0"):
        build(corpus, tmp_path, ["2d-vision"], protocol="speaker", progress=False, clip_ids=["1001_DFA_ANG_XX"])
    assert not (tmp_path / "2d-vision").exists()
    build(corpus, tmp_path, ["2d-audio"], seed=3, progress=False, clip_ids=["1001_DFA_ANG_XX"])  # a rebuild may change it
    assert json.loads((tmp_path / "2d-audio/report.json").read_text())["seed"] == 3


def test_raw_without_any_clip_is_an_error(tmp_path):
    (tmp_path / "raw" / "VideoFlash").mkdir(parents=True)
    with pytest.raises(BuildError, match="no CREMA-D clip"):
        build(tmp_path / "raw", tmp_path / "out", ["2d-vision"], progress=False)
    assert not any((tmp_path / "out").iterdir())


def test_dataloader_workers_share_a_single_shard(built):
    ds = crema_tools.load(built, "2d-audio", "train")
    assert len(ds.shards) == 1
    seen = [cid for batch in torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2) for cid in batch["clip_id"]]
    assert sorted(seen) == sorted(x["clip_id"] for x in ds) and len(seen) == len(ds)


def test_how_images_were_resized_is_recorded(built):
    """Kernel and antialiasing of every resize, in report.json and the card: a researcher who resizes
    the mel image another way gets pixels about 0.8 dB apart."""
    report = json.loads((built / "2d-multimodal" / "report.json").read_text())
    assert report["params"]["face"]["resize"]["kernel"].startswith("bilinear") and report["params"]["face"]["resize"]["antialias"]
    assert report["params"]["spectrogram"]["resize"]["antialias"] is False
    card = (built / "README.md").read_text()
    assert "`2d-audio` spectrogram at build: torch.nn.functional.interpolate, bilinear, no antialiasing" in card
    assert "`2d-vision` face at build: Pillow Image.resize, bilinear (triangle), antialiased" in card
