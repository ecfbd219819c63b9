"""A build stopped at any point and run again does only the unfinished work and ends byte-identical.

In-process interruptions (Ctrl-C at a unit boundary) test the bookkeeping cheaply; a real build
process stopped by SIGTERM and then SIGKILL tests signals, the decoding workers and the lock.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import files, run_python

from crema_tools.builder import unit as build_unit_module
from crema_tools.builder.outdir import LOCK_NAME, describe_partial
from crema_tools.builder.pipeline import BuildInterrupted, build
from crema_tools.format.shards import TMP_MARK, sha256_file
from crema_tools.ops.inspect import inspect_dataset

UNIT = 4  # 24 clips: 6 work units
BUILD_UNIT = build_unit_module.build_unit


@pytest.fixture(scope="module")
def clean(corpus, tmp_path_factory) -> Path:
    """An uninterrupted 2d-audio build: what every resumed build must equal (in a folder of the
    same name, which the card's snippets show)."""
    out = tmp_path_factory.mktemp("clean") / "out"
    build(corpus, out, ["2d-audio"], progress=False, unit_clips=UNIT)
    return out


def interrupt_after(monkeypatch, units: int) -> list[int]:
    """Ctrl-C once `units` work units are finished; returns the list of units started."""
    started: list[int] = []

    def unit(plan, u, clips, todo):
        if len(started) == units:
            raise KeyboardInterrupt
        started.append(u)
        BUILD_UNIT(plan, u, clips, todo)

    monkeypatch.setattr(build_unit_module, "build_unit", unit)
    return started


def test_report_records_each_shard(clean):
    report = json.loads((clean / "2d-audio/report.json").read_text())
    assert report["build"]["units"] == 6 and report["build"]["unit_clips"] == UNIT
    for info in report["splits"].values():
        assert [s["name"] for s in info["shard_info"]] == info["shards"]
        assert sum(s["samples"] for s in info["shard_info"]) == info["samples"]
        for shard in info["shard_info"]:
            path = clean / "2d-audio" / shard["name"]
            assert shard["sha256"] == sha256_file(path) and shard["bytes"] == path.stat().st_size
            assert len(shard["clip_ids"]) == shard["samples"]
    for name in ("av", "ffmpeg", "x264", "torch", "torchaudio", "facenet-pytorch"):
        assert report["versions"][name]


def test_interrupted_build_keeps_the_old_config_and_resumes_to_the_same_bytes(corpus, clean, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    old = sorted(p.stem for p in (corpus / "AudioWAV").iterdir())[:3]
    build(corpus, out, ["2d-audio"], progress=False, unit_clips=UNIT, clip_ids=old)
    before = files(out)

    started = interrupt_after(monkeypatch, 2)
    with pytest.raises(BuildInterrupted, match=r"interrupted by SIGINT: finished work units \(2 2d-audio, of 6 each\)"):
        build(corpus, out, ["2d-audio"], progress=False, unit_clips=UNIT)
    assert started == [0, 1]
    partial = out / ".2d-audio.partial"
    assert {k: v for k, v in files(out).items() if not k.startswith(".")} == before  # the old config is untouched
    assert not (out / LOCK_NAME).exists()
    assert not [p for p in out.rglob("*") if TMP_MARK in p.name]  # nothing half-written is left
    finished = sorted(p.name for p in (partial / "config").iterdir())
    assert finished and all(n.endswith(("-00000.tar", "-00001.tar")) for n in finished)
    assert any("2 of 6 work units done" in line for line in describe_partial(out))
    assert "Unfinished build of 2d-audio: 2 of 6 work units done" in inspect_dataset(out, per_emotion=0).render()
    stamps = {n: ((partial / "config" / n).stat().st_ino, (partial / "config" / n).stat().st_mtime_ns) for n in finished}

    started = interrupt_after(monkeypatch, 99)
    capsys.readouterr()
    build(corpus, out, ["2d-audio"], progress=False, unit_clips=UNIT)
    assert started == [2, 3, 4, 5]  # only the unfinished units
    assert "resuming 2d-audio: 2 of 6 work units already built" in capsys.readouterr().err
    assert files(out) == files(clean)
    for n, stamp in stamps.items():  # finished shards were moved into place, never written again
        assert ((out / "2d-audio" / n).stat().st_ino, (out / "2d-audio" / n).stat().st_mtime_ns) == stamp
    assert describe_partial(out) == []


def test_an_unfinished_build_with_other_options_is_discarded(corpus, tmp_path, monkeypatch, capsys):
    interrupt_after(monkeypatch, 1)
    with pytest.raises(BuildInterrupted):
        build(corpus, tmp_path, ["2d-audio"], progress=False, unit_clips=UNIT, seed=1)
    started = interrupt_after(monkeypatch, 99)
    build(corpus, tmp_path, ["2d-audio"], progress=False, unit_clips=UNIT, seed=2)
    assert "discarding the unfinished build of 2d-audio" in capsys.readouterr().err
    assert started == list(range(6))
    assert json.loads((tmp_path / "2d-audio/report.json").read_text())["seed"] == 2


def test_a_unit_whose_media_changed_is_built_again(corpus_copy, tmp_path, monkeypatch, capsys):
    interrupt_after(monkeypatch, 2)
    with pytest.raises(BuildInterrupted):
        build(corpus_copy, tmp_path, ["2d-audio"], progress=False, unit_clips=UNIT)
    status = json.loads((tmp_path / ".2d-audio.partial/status/00001.json").read_text())
    wav = corpus_copy / "AudioWAV" / f"{status['clips'][0]}.wav"
    wav.write_bytes(wav.read_bytes())  # same bytes, a new modification time: as after a re-download
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    started = interrupt_after(monkeypatch, 99)
    build(corpus_copy, tmp_path, ["2d-audio"], progress=False, unit_clips=UNIT)
    assert started == [1, 2, 3, 4, 5]
    assert "1 finished work unit(s) read media that changed since" in capsys.readouterr().err


# ---------------------------------------------------------------- real signals, a real process


def children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (read from /proc: no psutil needed)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def wait_until(condition, timeout: float = 120.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def statuses(out: Path) -> int:
    return len(list((out / ".2d-vision.partial" / "status").glob("*.json")))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_and_sigkill_leave_no_worker_and_the_build_resumes(corpus, tmp_path):
    out = tmp_path / "out"
    args = ["-m", "crema_tools", "build", "--variant", "2d-vision", "--variant", "2d-audio",
            "--raw", str(corpus), "--out", str(out), "--workers", "2", "--unit-size", "2"]

    def start_and_wait(units: int) -> tuple[subprocess.Popen, set[int]]:
        p = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: statuses(out) >= units or p.poll() is not None, what=f"{units} finished units")
        workers = children(p.pid)
        assert p.poll() is None and len(workers) == 2, "the build ended before it could be stopped"
        return p, workers

    p, workers = start_and_wait(2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM
    last = err.strip().replace("\r", "\n").splitlines()[-1]
    assert last.startswith("error: interrupted by SIGTERM: finished work units") and "Traceback" not in err
    wait_until(lambda: not any(alive(w) for w in workers), 10, "the workers to end")
    assert not (out / LOCK_NAME).exists()

    done = statuses(out)
    p, workers = start_and_wait(done + 2)
    p.kill()
    p.communicate(timeout=60)
    wait_until(lambda: not any(alive(w) for w in workers), 10, "the workers to die with their parent")
    assert (out / LOCK_NAME).exists()  # SIGKILL leaves the lock file, not the lock

    r = run_python(*args, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "taking over" in r.stderr and f"pid {p.pid}" in r.stderr
    assert "resuming 2d-vision" in r.stderr
    reference = tmp_path / "reference" / "out"
    build(corpus, reference, ["2d-vision", "2d-audio"], progress=False, unit_clips=2)
    assert files(out) == files(reference)
