"""Fine-tuning with accelerate on a built config: one process, and two CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import model_zoo
from crema_tools.builder.pipeline import build
from model_zoo.train import main as train_main


@pytest.fixture(scope="module")
def dataset(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_data")
    build(corpus, out, ["2d-multimodal"], progress=False)
    return out


def check_run(run: Path, dataset: Path) -> dict:
    report = json.loads((dataset / "2d-multimodal/report.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["protocol"] == "paper" and metrics["source"] == "synthetic"
    test = metrics["splits"]["test"]
    assert set(metrics["splits"]) == {"test"}  # every held-out split of the protocol, never train
    assert test["samples"] == report["splits"]["test"]["samples"]  # each clip counted once
    assert sum(map(sum, test["confusion"])) == test["samples"]
    assert test["accuracy"] == pytest.approx(sum(test["confusion"][i][i] for i in range(6)) / test["samples"])
    card = (run / "README.md").read_text()
    assert "Protocol `paper`, seed 0" in card and f"| test | {test['samples']} |" in card
    assert "Trained on the synthetic sample" in card
    return metrics


def test_train_one_process(dataset, tmp_path):
    train_main(["--model", "resnet18", "--variant", "2d-multimodal", "--data", str(dataset),
                "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "8"])
    check_run(tmp_path / "run", dataset)
    model = model_zoo.load_model(tmp_path / "run")
    assert model.pretrained_cfg.model_name == "resnet18" and model.pretrained_cfg.variant == "2d-multimodal"


def test_train_two_cpu_processes(dataset, tmp_path):
    launcher = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "model_zoo.train",
                        "--model", "resnet18", "--variant", "2d-multimodal", "--data", str(dataset),
                        "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("epoch 1/1") == 1  # printed by the main process only
    check_run(tmp_path / "run", dataset)
