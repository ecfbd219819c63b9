"""The command line as a user meets it: exit codes, one-line errors, the built-in sample."""

import json
import shutil

from helpers import run_cli, shard_samples

from crema_tools.builder.pipeline import build


def test_help_teaches_every_command():
    r = run_cli("--help")
    assert r.returncode == 0
    for command in ("build", "sample", "fetch", "verify", "inspect"):
        assert command in r.stdout
    r = run_cli("build", "--help")
    assert "2d-multimodal" in r.stdout and "speaker" in r.stdout and "--face-crop" in r.stdout


def test_build_without_raw_uses_the_sample_and_says_so(tmp_path):
    # the sample in the usual cache: made once per machine (here or by another test), as users get it
    r = run_cli("build", "--variant", "2d-audio", "--out", "ds", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "SYNTHETIC SAMPLE" in r.stderr
    report = json.loads((tmp_path / "ds/2d-audio/report.json").read_text())
    assert report["source"] == "synthetic" and report["samples"] == 144
    assert "Synthetic sample" in (tmp_path / "ds/README.md").read_text()
    assert "source: synthetic" in (tmp_path / "ds/README.md").read_text()
    assert "2d-audio" in r.stdout and "train" in r.stdout  # the summary of what was written


def test_verify_exit_codes(corpus, tmp_path):
    r = run_cli("verify", "--raw", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    r = run_cli("verify", "--raw", str(corpus), "--what", "wav", "--quick")
    assert r.returncode == 1  # 24 synthetic WAVs are not the official 7,442
    assert "missing" in r.stdout and "size_mismatch" in r.stdout
    r = run_cli("verify", "--raw", str(corpus), "--what", "smell")
    assert r.returncode == 2 and "smell" in r.stderr


def test_fetch_reports_unreachable_mirror(tmp_path):
    r = run_cli("fetch", "--to", str(tmp_path / "dl"), "--what", "wav", "--base-url", "http://127.0.0.1:9", "--jobs", "8",
                env={"no_proxy": "127.0.0.1"})
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    assert "not tried: the first 8 files all failed" in r.stdout  # it stops instead of retrying for hours


def test_audio_falls_back_to_the_flv_track(corpus, tmp_path):
    raw = tmp_path / "raw"
    (raw / "VideoFlash").mkdir(parents=True)
    shutil.copy(corpus / "VideoFlash/1001_DFA_ANG_XX.flv", raw / "VideoFlash")
    report = build(raw, tmp_path / "out", ["2d-audio"], progress=False)["2d-audio"]
    assert report["samples"] == 1
    (_, members), = shard_samples(tmp_path / "out/2d-audio")
    assert json.loads(members["json"])["audio_source"] == "flv"
