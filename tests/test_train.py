"""Training, evaluation and reports: it learns, it resumes exactly, processes agree, bad input is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

import crema_tools
import model_zoo
from crema_tools.builder.pipeline import build
from crema_tools.corpus import in_holdout
from crema_tools.synthetic import ensure_sample
from model_zoo.train import main as train_main
from model_zoo.train import parse_args

CPU_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_module(module: str, *args: str, launch: int = 0, timeout: int = 900) -> subprocess.CompletedProcess:
    if launch:
        launcher = Path(sys.executable).with_name("accelerate")
        cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", str(launch), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", module, *args]
        env = {**CPU_ENV, "ACCELERATE_USE_CPU": "true"}
    else:
        cmd, env = [sys.executable, "-m", module, *args], CPU_ENV
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def small(corpus, tmp_path_factory) -> Path:
    """2d-audio of the 24-clip corpus: enough to train a few steps in seconds."""
    out = tmp_path_factory.mktemp("train_small")
    build(corpus, out, ["2d-audio"], progress=False)
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The built-in 144-clip sample in the three 2D views (one pass)."""
    out = tmp_path_factory.mktemp("train_sample")
    build(ensure_sample(progress=False), out, ["2d-audio", "2d-vision", "2d-multimodal"], progress=False)
    return out


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("argv, message", [
    (["--model", "nosuch", "--variant", "2d-audio"], "unknown model 'nosuch'"),
    (["--recipe", "nosuch"], "unknown recipe 'nosuch': choose from googlenet-2d-audio"),
    (["--model", "resnet18", "--variant", "3d-audio"], "resnet18 supports variants"),
    (["--model", "resnet18", "--variant", "2d-audio", "--dropout", "0.3"], "resnet18 has no dropout option"),
    (["--model", "resnet18", "--variant", "2d-audio", "--frames", "32"], "--frames applies to 3D models"),
    (["--model", "resnet18"], "give --recipe, or --model and --variant"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args([*argv, "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_the_command_line_says_one_line_not_a_traceback(tmp_path):
    r = run_module("model_zoo.train", "--model", "nosuch", "--variant", "2d-audio", "--data", str(tmp_path),
                   "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and r.stderr.startswith("error: unknown model 'nosuch'") and r.stderr.count("\n") == 1


def test_bad_paths_in_evaluate_and_report_are_one_line(tmp_path, small):
    r = run_module("model_zoo.evaluate", "--model", str(tmp_path / "missing"), "--data", str(small))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error: ")
    r = run_module("model_zoo.report", str(tmp_path))
    assert r.returncode == 2 and "no metrics.json under" in r.stderr and "Traceback" not in r.stderr


def test_help_lists_models_variants_and_recipes():
    r = run_module("model_zoo.train", "--help")
    assert r.returncode == 0
    for name in (*model_zoo.list_models(), "3d-multimodal", "i3d-3d-multimodal", "vit-2d-vision"):
        assert name in r.stdout


def test_recipes_reach_every_option_the_paper_used(tmp_path):
    vit = parse_args(["--recipe", "vit-2d-vision", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert (vit.model, vit.batch_size, vit.lr, vit.dropout, vit.channels, vit.epochs) == ("vit", 32, 1e-4, 0.2, 1, 50)
    i3d = parse_args(["--recipe", "i3d-3d-multimodal", "--data", str(tmp_path), "--out", str(tmp_path), "--lr", "3e-4"])
    assert (i3d.batch_size, i3d.epochs, i3d.frames, i3d.pretrained, i3d.lr) == (4, 16, 135, True, 3e-4)  # a flag overrides
    from model_zoo.train import make_model

    # VideoMAE at the paper's 32 frames: the model is built for them, and the loader samples 32
    mae = parse_args(["--recipe", "videomae-3d-multimodal", "--data", str(tmp_path), "--out", str(tmp_path),
                      "--no-pretrained"])
    cfg = make_model(mae).pretrained_cfg
    assert cfg.input_shape == (32, 3, 224, 224)
    assert cfg.load_options() == {"channels": 3, "dtype": "planes", "sample_frames": 32,
                                  "multimodal_layout": "squeezed"}
    cnn = make_model(parse_args(["--model", "simple3d", "--variant", "3d-vision", "--data", str(tmp_path),
                                 "--out", str(tmp_path)])).pretrained_cfg
    assert cnn.load_options() == {"channels": 3, "dtype": "planes", "pad_to": 135}


# ---------------------------------------------------------------- it learns


def test_learns_the_sample_in_eval_mode_and_fusion_beats_each_modality(sample, tmp_path):
    """The sample is designed so that only both modalities separate all six emotions."""
    acc = {}
    for variant in ("2d-audio", "2d-vision", "2d-multimodal"):
        run = tmp_path / variant
        train_main(["--model", "resnet18", "--variant", variant, "--data", str(sample), "--out", str(run),
                    "--epochs", "2", "--batch-size", "16", "--lr", "1e-3", "--precise-bn-batches", "2"])
        m = metrics(run)
        test = m["splits"]["test"]
        assert test["samples"] == json.loads((sample / variant / "report.json").read_text())["splits"]["test"]["samples"]
        assert sum(map(sum, test["confusion"])) == test["samples"]
        acc[variant] = test["accuracy"]
    chance = 1 / 6
    assert acc["2d-multimodal"] > 0.6 > 2 * chance
    assert acc["2d-multimodal"] > acc["2d-audio"] + 0.1 and acc["2d-multimodal"] > acc["2d-vision"] + 0.1

    # the multimodal model needs both halves: blanking either costs accuracy
    mm = metrics(tmp_path / "2d-multimodal")["splits"]["test"]
    for part in ("audio_blanked", "vision_blanked"):
        assert mm["ablation"][part]["accuracy"] < mm["accuracy"] - 0.1
    human = mm["human"]
    assert human["ratings"] == "multimodal" and 0 < human["accuracy"] < 1 and human["clips"] == mm["samples"]

    # the report: one table per modality with the raters' row, and the figure
    r = run_module("model_zoo.report", str(tmp_path), "--out", str(tmp_path / "report"))
    assert r.returncode == 0, r.stderr[-2000:]
    table = (tmp_path / "report" / "summary.md").read_text()
    for heading in ("### audio", "### vision", "### multimodal", "CREMA-D raters", "synthetic sample"):
        assert heading in table
    assert (tmp_path / "report" / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_3d_model_trains_and_evaluates_on_the_stored_planes(corpus, tmp_path):
    """3D training takes the loader's planes form and finishes it on the device: steps, precise BN,
    validation, test and the modality ablations all run on it."""
    clips = ["1001_DFA_ANG_XX", "1001_DFA_HAP_XX", "1002_DFA_FEA_XX", "1002_DFA_SAD_XX", "1001_IEO_NEU_XX", "1002_IEO_DIS_XX"]
    build(corpus, tmp_path / "data", ["3d-multimodal"], progress=False, clip_ids=clips)
    train_main(["--model", "simple3d", "--variant", "3d-multimodal", "--data", str(tmp_path / "data"), "--out",
                str(tmp_path / "run"), "--epochs", "1", "--batch-size", "2", "--frames", "80", "--precise-bn-batches", "1"])
    m = metrics(tmp_path / "run")
    assert m["data"]["load_options"] == {"channels": 3, "dtype": "planes", "pad_to": 80, "multimodal_layout": "wide"}
    report = json.loads((tmp_path / "data" / "3d-multimodal" / "report.json").read_text())
    test = m["splits"]["test"]
    assert test["samples"] == report["splits"]["test"]["samples"] > 0
    assert {p: test["ablation"][p]["samples"] for p in ("audio_blanked", "vision_blanked")} == dict.fromkeys(
        ("audio_blanked", "vision_blanked"), test["samples"])


# ---------------------------------------------------------------- resume, processes, seeds


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", "resnet18", "--variant", "2d-audio", "--data", str(data), "--out", str(out),
            "--epochs", "2", "--batch-size", "4", "--checkpointing-steps", "1", *extra]


def test_a_run_killed_mid_epoch_resumes_to_the_same_result(small, tmp_path):
    full = tmp_path / "full"
    r = run_module("model_zoo.train", *_train_args(small, full))
    assert r.returncode == 0, r.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "model_zoo.train", *_train_args(small, killed)], env=CPU_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (killed / "checkpoints" / "step_2").is_dir():  # mid-way through the first epoch
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    r = run_module("model_zoo.train", *_train_args(small, killed, "--resume-from", "latest"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at epoch 1, batch " in r.stdout

    a, b = metrics(full), metrics(killed)
    assert [h["train_loss"] for h in a["history"]] == pytest.approx([h["train_loss"] for h in b["history"]], rel=1e-6)
    assert a["splits"]["test"]["predictions"] == b["splits"]["test"]["predictions"]
    assert a["splits"]["test"]["accuracy"] == b["splits"]["test"]["accuracy"]

    # evaluate reads the checkpoint back and gives the same numbers, with a confusion matrix picture
    r = run_module("model_zoo.evaluate", "--model", str(full), "--data", str(small), "--split", "test")
    assert r.returncode == 0, r.stderr[-3000:]
    ev = json.loads((full / "eval-test.json").read_text())
    assert ev["predictions"] == a["splits"]["test"]["predictions"] and ev["uar"] == a["splits"]["test"]["uar"]
    assert set(ev["breakdowns"]) == {"intensity", "sex"} and ev["protocol"] == "paper"
    assert (full / "confusion-test.png").read_bytes()[:4] == b"\x89PNG"


def _kept(seed: int, clip_id: str) -> bool:
    return not in_holdout(clip_id, seed)


def _even_seed(data: Path) -> int:
    """A training seed whose train part (less the validation hold-out) splits evenly over 2 processes."""
    for seed in range(50):
        if crema_tools.load(data, "2d-audio", "train", select=partial(_kept, seed)).samples % 2 == 0:
            return seed
    raise AssertionError("no seed gives an even train part")


def test_two_processes_match_one_with_the_same_global_batch(small, tmp_path):
    """ViT (LayerNorm, no dropout: per-sample computations only) without reshuffling: one process with
    batch 4 and two with batch 2 see the same samples in every step, so they must agree up to float
    summation order (the two halves' gradients are averaged by all-reduce): relative 1e-4 on losses."""
    seed = str(_even_seed(small))
    common = ["--model", "vit", "--variant", "2d-audio", "--data", str(small), "--epochs", "2", "--no-shuffle",
              "--seed", seed, "--lr", "1e-4"]
    r = run_module("model_zoo.train", *common, "--batch-size", "4", "--out", str(tmp_path / "one"))
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_module("model_zoo.train", *common, "--batch-size", "2", "--out", str(tmp_path / "two"), launch=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("epoch 2/2: train loss") == 1  # printed by the main process only
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert one["training"]["global_batch"] == two["training"]["global_batch"] == 4
    assert two["training"]["processes"] == 2
    assert [h["train_loss"] for h in one["history"]] == pytest.approx([h["train_loss"] for h in two["history"]], rel=1e-4)
    assert one["splits"]["test"]["predictions"] == two["splits"]["test"]["predictions"]
    # each process decoded its own training samples and no others: 2 epochs of its share
    per_rank = two["training"]["train_samples_per_process"]
    assert two["data"]["decoded_per_rank"] == [2 * per_rank, 2 * per_rank]
    assert one["data"]["decoded_per_rank"] == [2 * 2 * per_rank]
    test = json.loads((small / "2d-audio" / "report.json").read_text())["splits"]["test"]["samples"]
    assert two["splits"]["test"]["samples"] == test  # every test clip once, none padded in


def test_several_seeds_give_mean_and_std(small, tmp_path):
    r = run_module("model_zoo.train", "--model", "resnet18", "--variant", "2d-audio", "--data", str(small),
                   "--out", str(tmp_path), "--epochs", "1", "--batch-size", "8", "--seeds", "0", "1",
                   "--report-to", "tensorboard")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    (row,) = summary["rows"]
    runs = [metrics(tmp_path / f"seed-{s}")["splits"]["test"]["accuracy"] for s in (0, 1)]
    assert row["runs"] == 2 and row["seeds"] == [0, 1]
    assert row["accuracy"]["mean"] == pytest.approx(sum(runs) / 2)
    assert "±" in (tmp_path / "summary.md").read_text()
    assert list((tmp_path / "seed-1" / "logs").rglob("events.out.tfevents*"))  # the tracker wrote its log


def test_report_summarises_folds_and_seeds_as_mean_and_std():
    from model_zoo.report import markdown, summarise, zoo_table

    def run(fold, accuracy):
        return {"model": "i3d", "variant": "3d-vision", "protocol": "speaker-kfold", "source": "crema-d", "fold": fold,
                "training_seed": 0, "recipe": "i3d-3d-vision",
                "splits": {"test": {"accuracy": accuracy, "uar": accuracy - 0.1, "macro_f1": accuracy - 0.2,
                                    "human": {"accuracy": 0.58}}}}

    accs = [0.5, 0.6, 0.7, 0.6, 0.6]
    (row,) = summarise([run(f, a) for f, a in enumerate(accs)])
    assert row["folds"] == [0, 1, 2, 3, 4] and row["runs"] == 5
    assert row["accuracy"]["mean"] == pytest.approx(0.6) and row["accuracy"]["std"] == pytest.approx(0.0707107, rel=1e-5)
    table = markdown([row])
    assert "speaker-kfold (5 folds)" in table and "0.600 ± 0.071" in table and "| CREMA-D raters" in table
    cells = [c.strip() for c in zoo_table([row], {}).splitlines()[-1].strip("|").split("|")]
    assert cells[:6] == ["i3d", "3d-vision", "speaker-kfold (5 folds)", "CREMA-D", "0.600 ± 0.071", "0.500 ± 0.071"]
