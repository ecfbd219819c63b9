import io
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import shard_metas
from PIL import Image

from crema_tools.builder.pipeline import build
from crema_tools.corpus import EMOTIONS
from crema_tools.format.shards import ShardWriter
from crema_tools.loading import LoadError
from crema_tools.media.pictures import THUMB
from crema_tools.media.pictures import video_panel as strip_panel
from crema_tools.ops.inspect import inspect_dataset
from crema_tools.synthetic import generate_corpus, sample_clip_ids

VARIANTS_2D = ["2d-audio", "2d-vision", "2d-multimodal"]
LFS_CLIP = "1001_DFA_ANG_XX"
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 265922\n"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """12 synthetic clips, one of whose FLV is a Git LFS pointer."""
    root = tmp_path_factory.mktemp("raw")
    generate_corpus(root, sample_clip_ids(actors=(1001, 1002), sentences=("DFA",)))
    (root / "VideoFlash" / f"{LFS_CLIP}.flv").write_text(LFS_POINTER)
    return root


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    build(raw, out, VARIANTS_2D, progress=False)
    return out


@pytest.fixture(scope="module")
def inspected(built, tmp_path_factory):
    return inspect_dataset(built, sheet_dir=tmp_path_factory.mktemp("sheets"))


def report_of(out: Path, variant: str) -> dict:
    return json.loads((out / variant / "report.json").read_text())


def test_counts_match_report_and_shards(built, inspected):
    assert [v.name for v in inspected.variants] == sorted(VARIANTS_2D) and inspected.ok
    for v in inspected.variants:
        report = report_of(built, v.name)
        for split, info in report["splits"].items():
            assert dict(v.count("emotion", split)) == info["per_emotion"]
            assert sum(v.count("emotion", split).values()) == info["samples"]
            metas = [m for m in shard_metas(built / v.name) if m["split"] == split]
            assert v.count("intensity", split) == Counter(m["intensity"] for m in metas)
            assert v.count("sex", split) == Counter(m["actor_sex"] for m in metas)
        assert sum(sh.samples for sh in v.shards) == report["samples"]
        assert {sh.name for sh in v.shards} == {p.name for p in (built / v.name).glob("*.tar")}


def test_render_names_splits_skips_and_synthetic(built, inspected):
    text = inspected.render()
    assert text.splitlines()[0].startswith("!!!") and "SYNTHETIC DATA" in text.split("\n\n")[0]
    for variant in VARIANTS_2D:
        assert f"== {variant}:" in text
        for split in report_of(built, variant)["splits"]:
            assert f"  {split}  " in text
    vision = inspected.render().split("== 2d-vision:")[1]
    assert "Skipped clips: 1" in vision and LFS_CLIP in vision and "Git LFS pointer" in vision
    assert "Face detection failures: none" in vision
    audio = text.split("== 2d-audio:")[1].split("== ")[0]
    assert "Skipped clips: none" in audio and "face" not in audio.lower()


def test_contact_sheets_have_a_row_per_emotion(inspected):
    assert set(inspected.sheets) == set(VARIANTS_2D)
    for name, path in inspected.sheets.items():
        assert path.is_file() and path.parent.name.startswith("sheets")
        width, height = Image.open(path).size
        cols = max(len(p) for p in inspected.variants[[v.name for v in inspected.variants].index(name)].picks.values())
        assert height > len(EMOTIONS) * THUMB and width > cols * THUMB * (2 if name == "2d-multimodal" else 1)
    assert not list(Path(inspected.folder).rglob("*.png"))  # nothing written into the dataset


def test_sheet_samples_are_deterministic_and_capped(built, tmp_path):
    a = inspect_dataset(built, ["2d-vision"], sheet_dir=tmp_path / "a", per_emotion=1)
    inspect_dataset(built, ["2d-vision"], sheet_dir=tmp_path / "b", per_emotion=1)
    assert (tmp_path / "a" / "2d-vision.png").read_bytes() == (tmp_path / "b" / "2d-vision.png").read_bytes()
    picks = a.variants[0].picks
    assert all(len(p) == 1 for p in picks.values())
    assert picks["DIS"][0].meta["split"] == "test"  # held-out samples come first
    none = inspect_dataset(built, ["2d-vision"], sheet_dir=tmp_path / "c", per_emotion=0)
    assert none.sheets == {} and not (tmp_path / "c").exists()


def test_default_sheet_dir_is_under_the_working_directory(built, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = inspect_dataset(built, ["2d-audio"], per_emotion=1)
    assert report.sheets == {"2d-audio": Path("crema-tools-inspect/2d-audio.png")}
    assert (tmp_path / "crema-tools-inspect" / "2d-audio.png").is_file()


def test_bad_input_raises_load_error(built, tmp_path):
    with pytest.raises(LoadError, match="no such folder"):
        inspect_dataset(tmp_path / "nope", sheet_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoadError, match=r"empty: no built config"):
        inspect_dataset(tmp_path / "empty", sheet_dir=tmp_path)
    with pytest.raises(LoadError, match=r"'3d-nope' is not built here \(built: 2d-audio, 2d-multimodal, 2d-vision\)"):
        inspect_dataset(built, ["3d-nope"], sheet_dir=tmp_path)


def test_shards_that_disagree_with_the_report_are_problems(built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built / "2d-audio", out / "2d-audio")
    (out / "2d-audio" / "test-00000.tar").unlink()
    report = inspect_dataset(out, sheet_dir=tmp_path / "sheets", per_emotion=1)
    assert not report.ok
    assert any("test-00000.tar: listed in report.json but missing" in p for p in report.variants[0].problems)
    assert "PROBLEMS" in report.render()


def _mp4(frames: int, rng: np.random.Generator) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        stream = c.add_stream("libx264", rate=24)
        stream.width = stream.height = 224
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.full((224, 224, 3), i * 255 // frames, np.uint8)
            img[:, : 20 + i] = rng.integers(0, 255, 3, dtype=np.uint8)
            c.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(stream.encode())
    return buf.getvalue()


def _npy(rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    np.save(buf, rng.uniform(-80, 0, (512, 90)).astype(np.float16))
    return buf.getvalue()


def test_3d_members_are_drawn_as_strips_and_spectrograms(tmp_path):
    """Hand-made 3d-multimodal shards (mp4 + npy), so the 3D drawing is tested before the 3D build."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "out" / "3d-multimodal"
    folder.mkdir(parents=True)
    writer = ShardWriter(folder, "test")
    for emotion in EMOTIONS:
        cid = f"1001_DFA_{emotion}_XX"
        meta = {"clip_id": cid, "emotion": emotion, "intensity": "XX", "actor_sex": "Male", "split": "test",
                "face_found": None, "label": EMOTIONS.index(emotion)}
        writer.write(cid, {"mp4": _mp4(30, rng), "npy": _npy(rng), "json": json.dumps(meta).encode(), "cls": b"0"})
    writer.close()
    (folder / "report.json").write_text(json.dumps({
        "variant": "3d-multimodal", "description": "video and spectrogram", "shape": "(3, 16, 224, 224)",
        "protocol": "paper", "seed": 0, "source": "crema-d", "samples": 6, "skipped": [], "face_not_found": [],
        "splits": {"test": {"samples": 6, "shards": writer.shards, "per_emotion": {e: 1 for e in EMOTIONS}}}}))
    report = inspect_dataset(tmp_path / "out", sheet_dir=tmp_path / "sheets")
    assert report.ok, report.variants[0].problems
    assert "SYNTHETIC" not in report.render()
    width, height = Image.open(report.sheets["3d-multimodal"]).size
    assert width > 6 * 90 and height > 6 * (90 + 120)  # a 6-frame strip above a spectrogram, per row


def test_strip_spans_the_whole_clip():
    strip = np.asarray(strip_panel(_mp4(30, np.random.default_rng(1)), n=6).convert("L"), dtype=float)
    first, last = strip[:, 30:90].mean(), strip[:, -60:].mean()  # right of the coloured bars
    assert first < 20 and last > 220  # frame 0 is black, frame 29 near white


def test_hub_repo_ids_go_through_resolve(built, tmp_path, monkeypatch):
    import crema_tools.ops.inspect as inspect_module

    asked = []
    monkeypatch.setattr(inspect_module, "resolve", lambda repo, variant: asked.append((repo, variant)) or built)
    monkeypatch.setattr(inspect_module, "hub_variants", lambda repo: ["2d-audio", "2d-vision"])
    report = inspect_dataset("someone/crema-d", sheet_dir=tmp_path, per_emotion=0)
    assert [v.name for v in report.variants] == ["2d-audio", "2d-vision"]
    assert asked == [("someone/crema-d", "2d-audio"), ("someone/crema-d", "2d-vision")]
    with pytest.raises(LoadError, match=r"'3d-vision' is not built in this Hub repo \(its card lists: 2d-audio, "):
        inspect_dataset("someone/crema-d", ["3d-vision"], sheet_dir=tmp_path)


def test_a_real_3d_build(raw, tmp_path):
    build(raw, tmp_path / "out", ["3d-multimodal"], progress=False)
    report = inspect_dataset(tmp_path / "out", sheet_dir=tmp_path / "sheets", per_emotion=1)
    assert report.ok, report.variants[0].problems
    assert report.variants[0].report["samples"] == 11 and LFS_CLIP in report.render()
    width, height = Image.open(report.sheets["3d-multimodal"]).size
    assert width > 6 * 90 and height > 6 * (90 + 120)
