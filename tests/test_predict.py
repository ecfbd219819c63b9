"""`crema-tools predict`: any video, the model's own preprocessing, the same output as through a built dataset."""

from __future__ import annotations

import csv
import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import run_cli
from typer.testing import CliRunner

import crema_tools
import model_zoo
from crema_tools.builder.pipeline import build
from crema_tools.cli import app
from crema_tools.loading.transforms import to_model_input
from crema_tools.media.decode import read_all_frames, read_wav
from model_zoo.predict import predict

CLIP = "1001_DFA_ANG_XX"


def reencode(corpus: Path, dst: Path, video_codec: str, audio_codec: str | None, rate: int = 48_000,
             blank: bool = False) -> Path:
    """The clip's frames (or grey frames) and its WAV, written to another container and codecs."""
    frames, _, _ = read_all_frames(corpus / "VideoFlash" / f"{CLIP}.flv", CLIP)
    audio = read_wav(corpus / "AudioWAV" / f"{CLIP}.wav", CLIP)
    with av.open(str(dst), "w") as out:
        v = out.add_stream(video_codec, rate=30)
        v.width, v.height, v.pix_fmt = 480, 360, "yuv420p"
        a = None
        if audio_codec:
            a = out.add_stream(audio_codec, rate=rate)
            a.layout = "mono"
        for frame in frames:
            image = np.full_like(frame, 128) if blank else frame
            out.mux(v.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(v.encode(None))
        if a is not None:
            samples = np.interp(np.arange(0, audio.duration, 1 / rate), np.arange(len(audio.samples)) / audio.rate,
                                audio.samples).astype(np.float32)
            resampler = av.AudioResampler(format=a.format.name, layout="mono", rate=rate)
            chunk = a.frame_size or 1024
            for i in range(0, len(samples), chunk):
                frame = av.AudioFrame.from_ndarray(samples[None, i: i + chunk], format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
                for f in resampler.resample(frame):
                    out.mux(a.encode(f))
            out.mux(a.encode(None))
    return dst


@pytest.fixture(scope="module")
def setup(corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    build(corpus, root / "data", ["2d-multimodal"], progress=False, clip_ids=[CLIP, "1002_DFA_SAD_XX"])
    torch.manual_seed(0)
    model_zoo.create_model("resnet18", variant="2d-multimodal").save_pretrained(root / "model")
    return root


def test_prediction_equals_the_model_on_the_built_sample(setup, corpus):
    model = model_zoo.from_pretrained(setup / "model").eval()
    cfg = model.pretrained_cfg
    split = next(s for s in ("train", "test") for x in crema_tools.load(setup / "data", "2d-multimodal", s)
                 if x["clip_id"] == CLIP)
    item = next(x for x in crema_tools.load(setup / "data", "2d-multimodal", split, dtype="uint8") if x["clip_id"] == CLIP)
    with torch.no_grad():
        expected = model(to_model_input(item["inputs"][None], cfg.mean, cfg.std)).softmax(-1)[0]
    (got,) = predict(model, [corpus / "VideoFlash" / f"{CLIP}.flv"], wav=corpus / "AudioWAV" / f"{CLIP}.wav")
    assert list(got.probabilities) == list(cfg.label_names)
    assert torch.allclose(torch.tensor(list(got.probabilities.values())), expected, atol=1e-6)
    assert got.notes == []


def test_a_3d_prediction_equals_the_model_on_the_built_clip(corpus, tmp_path):
    """predict assembles the stored planes on the device; the reference is the loader's float32 path."""
    from dataclasses import replace

    build(corpus, tmp_path / "data", ["3d-multimodal"], progress=False, clip_ids=[CLIP, "1002_DFA_SAD_XX"])
    torch.manual_seed(0)
    model = model_zoo.create_model("simple3d", variant="3d-multimodal").eval()
    model.pretrained_cfg = cfg = replace(model.pretrained_cfg, frames=80)
    item = next(x for s in ("train", "test") for x in crema_tools.load(tmp_path / "data", "3d-multimodal", s, pad_to=80)
                if x["clip_id"] == CLIP)
    with torch.no_grad():
        expected = model(to_model_input(item["inputs"][None], cfg.mean, cfg.std)).softmax(-1)[0]
    (got,) = predict(model, [corpus / "VideoFlash" / f"{CLIP}.flv"], wav=corpus / "AudioWAV" / f"{CLIP}.wav")
    assert torch.allclose(torch.tensor(list(got.probabilities.values())), expected, atol=1e-5)


@pytest.mark.parametrize("name, video_codec, audio_codec", [("clip.mp4", "libx264", "aac"),
                                                            ("clip.webm", "libvpx", "libopus")])
def test_other_containers_with_their_own_audio(setup, corpus, tmp_path, name, video_codec, audio_codec):
    model = model_zoo.from_pretrained(setup / "model")
    video = reencode(corpus, tmp_path / name, video_codec, audio_codec)
    (got,) = predict(model, [video])
    assert got.notes == [] and sum(got.probabilities.values()) == pytest.approx(1.0)
    # the same clip through the FLV's own track: close, not equal (another codec, another audio path)
    (flv,) = predict(model, [corpus / "VideoFlash" / f"{CLIP}.flv"])
    assert max(abs(got.probabilities[e] - flv.probabilities[e]) for e in got.probabilities) < 0.2


def test_no_audio_track_and_no_face_are_said_and_the_cli_prints_json(setup, corpus, tmp_path):
    silent = reencode(corpus, tmp_path / "silent.mp4", "libx264", None)
    grey = reencode(corpus, tmp_path / "grey.mp4", "libx264", "aac", blank=True)
    r = run_cli("predict", str(tmp_path), "--model", str(setup / "model"), "--json", "--csv", str(tmp_path / "out.csv"),
                module="crema_tools", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    results = {Path(x["path"]).name: x for x in json.loads(r.stdout)}
    assert set(results) == {silent.name, grey.name}
    assert any("no usable audio" in n and "silence" in n for n in results["silent.mp4"]["notes"])
    assert any("no face found" in n for n in results["grey.mp4"]["notes"])
    assert "silent.mp4: no usable audio" in r.stderr
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0].startswith("path,emotion,ANG,DIS,FEA,HAP,NEU,SAD") and len(rows) == 3


def test_bad_input_is_one_line(setup, tmp_path):
    r = run_cli("predict", str(tmp_path / "missing.mp4"), "--model", str(setup / "model"), module="crema_tools", timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_a_folder_with_bad_files_gives_every_file_its_row(setup, corpus, tmp_path):
    """One unreadable file costs its own row, not the folder's: table, --json and --csv hold every file."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(corpus / "VideoFlash" / f"{CLIP}.flv", folder / "good.flv")
    (folder / "notes.mp4").write_text("a text file named .mp4\n")
    (folder / "empty.mp4").write_bytes(b"")
    model = str(setup / "model")
    r = CliRunner().invoke(app, ["predict", str(folder), "--model", model, "--json", "--csv", str(tmp_path / "out.csv")])
    assert r.exit_code == 1, r.output
    rows = {Path(x["path"]).name: x for x in json.loads(r.stdout)}
    assert set(rows) == {"good.flv", "notes.mp4", "empty.mp4"}
    (alone,) = predict(model_zoo.from_pretrained(setup / "model"), [folder / "good.flv"])
    assert rows["good.flv"]["error"] is None and rows["good.flv"]["probabilities"] == pytest.approx(alone.probabilities)
    assert rows["empty.mp4"] == {"path": str(folder / "empty.mp4"), "emotion": None, "probabilities": None, "notes": [],
                                 "error": "file is empty (0 bytes)"}
    assert rows["notes.mp4"]["probabilities"] is None and rows["notes.mp4"]["error"].startswith("not a readable media file")
    assert str(folder) not in rows["notes.mp4"]["error"]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert f"error: {folder / 'empty.mp4'}: file is empty (0 bytes)" in errors and len(errors) == 2  # the path once
    with open(tmp_path / "out.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [Path(row["path"]).name for row in table] == [Path(x["path"]).name for x in json.loads(r.stdout)]
    by_name = {Path(row["path"]).name: row for row in table}
    assert by_name["empty.mp4"]["error"] == "file is empty (0 bytes)" and by_name["empty.mp4"]["ANG"] == ""
    assert by_name["good.flv"]["error"] == "" and float(by_name["good.flv"]["ANG"]) == pytest.approx(alone.probabilities["ANG"], abs=1e-6)

    r = CliRunner().invoke(app, ["predict", str(folder), "--model", model])
    assert r.exit_code == 1 and "could not be read" in r.stdout.splitlines()[0]
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert set(lines) == {"good.flv", "notes.mp4", "empty.mp4"} and lines["empty.mp4"].endswith("file is empty (0 bytes)")
    assert "1 when one or more could not be" in " ".join(CliRunner().invoke(app, ["predict", "--help"]).output.split())


def test_a_file_that_cannot_be_read_is_named_once(setup, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("empty.mp4").write_bytes(b"")
    r = CliRunner().invoke(app, ["predict", "empty.mp4", "--model", str(setup / "model")])
    assert r.exit_code == 1 and r.stderr == "error: empty.mp4: file is empty (0 bytes)\n"
    assert r.stdout.splitlines()[1].split() == ["empty.mp4", "-", *"------", "file", "is", "empty", "(0", "bytes)"]
