"""The output folder is the user's: a lock, no foreign file touched, no empty config, one-line
errors for a full disk or an unreadable folder; media whose content lies about itself."""

import errno
import io
import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers import files, shard_metas, shard_samples
from typer.testing import CliRunner

from crema_tools import synthetic
from crema_tools.builder.outdir import LOCK_NAME, describe_partial
from crema_tools.builder.pipeline import BuildError, build
from crema_tools.cli import app
from crema_tools.format.shards import TMP_MARK

CLIPS = ["1001_DFA_ANG_XX", "1001_DFA_HAP_XX", "1002_DFA_SAD_XX", "1002_IEO_NEU_XX"]
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 265922\n"


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def last_line(text: str) -> str:
    return text.strip().replace("\r", "\n").splitlines()[-1]


@pytest.fixture()
def raw(corpus, tmp_path) -> Path:
    """A few good clips of the shared corpus, in a folder this test may change."""
    root = tmp_path / "raw"
    for cid in CLIPS:
        for rel in (f"VideoFlash/{cid}.flv", f"AudioWAV/{cid}.wav"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(corpus / rel, root / rel)
    return root


def test_a_second_build_into_the_same_out_is_refused_naming_the_first(raw, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, pathlib; from crema_tools.builder.outdir import OutLock; "
         "OutLock.acquire(pathlib.Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BuildError) as e:
            build(raw, out, ["2d-audio"], progress=False)
        message = str(e.value)
        assert "another build is writing there" in message and f"pid {holder.pid} on " in message
        assert "\n" not in message
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing else was written
    finally:
        holder.kill()
        holder.wait()
    capsys.readouterr()
    build(raw, out, ["2d-audio"], progress=False)  # a dead holder's lock file is taken over
    assert f"the build that left it is no longer running (pid {holder.pid}" in capsys.readouterr().err
    assert not (out / LOCK_NAME).exists() and (out / "2d-audio" / "report.json").is_file()


def test_files_crema_tools_did_not_write_are_never_touched(raw, tmp_path):
    out = tmp_path / "out"
    (out / "2d-audio").mkdir(parents=True)
    (out / "README.md").write_text("# my own notes\n")
    (out / "2d-audio" / "notes.txt").write_text("mine")
    (out / "LICENSE").write_text("mine too")
    before = files(out)
    r = cli("build", "--variant", "2d-audio", "--raw", str(raw), "--out", str(out), "--workers", "0")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert "README.md (not a dataset card written by crema-tools)" in r.stderr and "2d-audio/" in r.stderr
    assert "--force" in r.stderr and "Load it" not in r.stdout
    assert files(out) == before

    build(raw, out, ["2d-audio"], progress=False, force=True)
    assert "crema_tools:" in (out / "README.md").read_text() and not (out / "2d-audio" / "notes.txt").exists()
    assert (out / "LICENSE").read_text() == "mine too"  # outside what the build writes: never touched

    (out / "2d-audio" / "extra.bin").write_bytes(b"x")  # a stranger in a folder crema-tools wrote
    with pytest.raises(BuildError, match=r"2d-audio/extra\.bin"):
        build(raw, out, ["2d-audio"], progress=False)
    assert (out / "2d-audio" / "extra.bin").exists()
    (out / "2d-audio" / "extra.bin").unlink()
    build(raw, out, ["2d-audio"], progress=False)  # its own output, it replaces without asking


def test_a_config_with_no_sample_keeps_the_previous_one(raw, tmp_path):
    out = tmp_path / "out"
    build(raw, out, ["2d-vision"], progress=False)
    before = files(out)
    for flv in (raw / "VideoFlash").iterdir():  # now an LFS-only clone of the videos
        flv.write_text(LFS_POINTER)
    r = cli("build", "--variant", "2d-vision", "--variant", "2d-audio", "--raw", str(raw), "--out", str(out),
            "--workers", "0")
    assert r.exit_code == 2 and "Load it" not in r.stdout
    line = last_line(r.stderr)
    assert line.startswith("error: no sample to write for 2d-vision (2d-audio written): 2d-vision: 4 skipped")
    assert "Git LFS pointer" in line and "the previous config is kept" in line
    after = files(out)
    assert {k: v for k, v in after.items() if k.startswith("2d-vision/")} == \
        {k: v for k, v in before.items() if k.startswith("2d-vision/")}
    assert "2d-audio/report.json" in after and not [p for p in out.iterdir() if p.name.startswith(".")]

    with pytest.raises(BuildError, match="no sample to write for 2d-vision: .*nothing written"):
        build(raw, tmp_path / "fresh", ["2d-vision"], progress=False)
    assert list((tmp_path / "fresh").iterdir()) == []


@pytest.fixture()
def small_disk(tmp_path, monkeypatch):
    """A 256 kB file system (a tmpfs, when this process may mount one; else writes fail with ENOSPC
    past 256 kB) and a function that gives it room."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = os.geteuid() == 0 and shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True).returncode == 0
    if mounted:
        yield mount, lambda: subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)
        subprocess.run(["umount", str(mount)], check=False)
        return
    from crema_tools.format import shards

    written, write = [0], shards._Hashing.write

    def full(self, data):
        written[0] += len(data)
        if written[0] > 256_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(self, data)

    monkeypatch.setattr(shards._Hashing, "write", full)
    yield mount, lambda: monkeypatch.setattr(shards._Hashing, "write", write)


def test_a_full_disk_is_one_line_and_keeps_finished_units(corpus, small_disk):
    disk, grow = small_disk
    out = disk / "out"
    args = ["build", "--variant", "2d-vision", "--raw", str(corpus), "--out", str(out), "--workers", "0", "--unit-size", "2"]
    r = cli(*args)
    assert r.exit_code == 2 and "Traceback" not in r.output
    line = last_line(r.stderr)
    assert line.startswith(f"error: --out {out}: disk full while writing ") and "No space left on device" in line
    assert "the same command resumes from there" in line
    assert not [p for p in out.rglob("*") if TMP_MARK in p.name] and not (out / LOCK_NAME).exists()
    assert any(line.startswith("Unfinished build of 2d-vision:") for line in describe_partial(out))
    grow()
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert "resuming 2d-vision" in r.stderr
    assert json.loads((out / "2d-vision" / "report.json").read_text())["samples"] == 24


def test_an_unreadable_media_folder_is_one_line(raw, tmp_path, monkeypatch):
    if os.geteuid() != 0:
        (raw / "AudioWAV").chmod(0)
    else:  # root reads everything: the kernel's answer to anyone else, given by the folder listing
        real = Path.iterdir

        def iterdir(self):
            if self.name == "AudioWAV":
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real(self)

        monkeypatch.setattr(Path, "iterdir", iterdir)
    try:
        r = cli("build", "--variant", "2d-audio", "--raw", str(raw), "--out", str(tmp_path / "out"))
    finally:
        (raw / "AudioWAV").chmod(0o755)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "cannot read AudioWAV/ (Permission denied)" in r.stderr


def _as_mp4(flv: Path) -> bytes:
    """The FLV's frames re-encoded into an MP4 container."""
    import av

    buf = io.BytesIO()
    with av.open(str(flv)) as src, av.open(buf, "w", format="mp4") as dst:
        stream = dst.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            out = av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
            out.pts, out.time_base = i, Fraction(1, 30)
            dst.mux(stream.encode(out))
        dst.mux(stream.encode())
    return buf.getvalue()


def test_media_whose_content_lies_is_skipped_and_a_flat_voice_is_flagged(raw, tmp_path):
    mp4, flat, flv_in_wav = CLIPS[:3]
    (raw / f"VideoFlash/{mp4}.flv").write_bytes(_as_mp4(raw / f"VideoFlash/{mp4}.flv"))
    noise = 1e-3 * np.random.default_rng(0).standard_normal(40_000).astype(np.float32)
    synthetic.write_wav(raw / f"AudioWAV/{flat}.wav", noise)
    shutil.copy(raw / f"VideoFlash/{flv_in_wav}.flv", raw / f"AudioWAV/{flv_in_wav}.wav")
    reports = build(raw, tmp_path / "out", ["2d-audio", "2d-vision"], progress=False)
    vision = {s["clip_id"]: s["reason"] for s in reports["2d-vision"]["skipped"]}
    audio = {s["clip_id"]: s["reason"] for s in reports["2d-audio"]["skipped"]}
    assert set(vision) == {mp4} and "holds MP4 content, not the FLV its extension names" in vision[mp4]
    assert set(audio) == {flv_in_wav} and "holds FLV content, not the WAV its extension names" in audio[flv_in_wav]
    (flag,) = reports["2d-audio"]["flagged"]  # kept, with the flag: see crema_tools.media
    assert flag["clip_id"] == flat and flag["flag"] == "low_dynamic_range" and flag["kept"] is True
    assert float(flag["detail"].split(" spans ")[1].split(" dB")[0]) < 10
    kept = {m["clip_id"] for m in shard_metas(tmp_path / "out/2d-audio")}
    assert flat in kept and flv_in_wav not in kept
    assert reports["2d-vision"]["flagged"] == []


def test_no_nan_enters_a_shard(raw, tmp_path, monkeypatch):
    from crema_tools.media import spectrogram

    real, calls = spectrogram.to_db, []

    def to_db(power):
        calls.append(1)
        db = real(power)
        return db * float("nan") if len(calls) == 2 else db

    monkeypatch.setattr(spectrogram, "to_db", to_db)
    report = build(raw, tmp_path / "out", ["3d-audio"], progress=False, workers=0)["3d-audio"]
    (skipped,) = report["skipped"]
    assert "mel spectrogram holds NaN or infinite values" in skipped["reason"]
    samples = [m for _, m in shard_samples(tmp_path / "out/3d-audio")]
    assert len(samples) == len(CLIPS) - 1 == report["samples"]
    assert skipped["clip_id"] not in {json.loads(m["json"])["clip_id"] for m in samples}
    assert all(np.isfinite(np.load(io.BytesIO(m["npy"]))).all() for m in samples)
