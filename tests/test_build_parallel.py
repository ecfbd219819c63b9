"""`accelerate launch -m crema_tools build ...`: two CPU processes write what one process writes."""

import importlib.util
import os
import socket

import pytest
from helpers import files, run_python

from crema_tools.builder.pipeline import build

UNIT = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is None, reason="needs accelerate")
def test_two_processes_write_what_one_process_writes(corpus, tmp_path):
    parallel, serial = tmp_path / "parallel" / "out", tmp_path / "serial" / "out"  # same name: the card shows it
    variants = ["--variant", "2d-audio", "--variant", "2d-vision"]
    r = run_python(
        "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        "-m", "crema_tools", "build", *variants,
        "--raw", str(corpus), "--out", str(parallel), "--workers", "0", "--unit-size", str(UNIT),
        timeout=900, env={**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "process 0 of 2: 3 work unit(s) of 6" in r.stderr and "process 1 of 2: 3 work unit(s) of 6" in r.stderr
    assert r.stdout.count("Wrote ") == 1  # process 0 reports, once
    build(corpus, serial, ["2d-audio", "2d-vision"], progress=False, unit_clips=UNIT)
    assert files(parallel) == files(serial)
