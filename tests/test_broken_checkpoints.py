"""A checkpoint that cannot be used is one line naming the file and the fix, wherever it is loaded:
`model_zoo.from_pretrained`, `python -m model_zoo.evaluate`, `crema-tools predict`, `model_zoo.train --resume-from`."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import hub_env, run_python
from hubserver import FakeHub
from typer.testing import CliRunner

import model_zoo
from crema_tools.builder.pipeline import build
from crema_tools.cli import app
from model_zoo.config import ModelZooError
from model_zoo.evaluate import main as evaluate_main
from model_zoo.train import main as train_main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small 2D checkpoint, as `save_pretrained` writes it."""
    root = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    model_zoo.create_model("resnet18", variant="2d-audio").save_pretrained(root / "good")
    return root / "good"


def pickled() -> bytes:
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, buffer)
    return buffer.getvalue()


BROKEN_WEIGHTS = {
    "truncated download": lambda good: good[: len(good) // 3],
    "error page": lambda good: b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>\n",
    "pickle": lambda good: pickled(),
}


def copy_with(checkpoint: Path, folder: Path, weights: bytes | None = None, **config_changes) -> Path:
    shutil.copytree(checkpoint, folder)
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)
    config = json.loads((folder / "config.json").read_text())
    for key, value in config_changes.items():
        if key in config["pretrained_cfg"] and key != "variant" or key == "variant_of_cfg":
            config["pretrained_cfg"][key.removesuffix("_of_cfg")] = value
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def one_line(text: str) -> str:
    assert text.startswith("error: ") and text.count("\n") == 1 and "Traceback" not in text, text
    return text


def evaluate_error(model: Path, tmp_path: Path, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        evaluate_main(["--model", str(model), "--data", str(tmp_path)])
    assert exit_.value.code == 2
    return one_line(capsys.readouterr().err)


def predict_error(model: Path, tmp_path: Path) -> str:
    video = tmp_path / "clip.flv"
    video.write_bytes(b"FLV")  # never read: the model is loaded first
    r = CliRunner().invoke(app, ["predict", str(video), "--model", str(model)])
    assert r.exit_code == 2
    return one_line(r.stderr)


@pytest.mark.parametrize("kind", BROKEN_WEIGHTS)
def test_a_broken_model_safetensors_is_named_with_the_fix(checkpoint, tmp_path, capsys, kind):
    good = (checkpoint / "model.safetensors").read_bytes()
    folder = copy_with(checkpoint, tmp_path / "model", BROKEN_WEIGHTS[kind](good))
    weights = folder / "model.safetensors"
    with pytest.raises(ModelZooError) as e:
        model_zoo.from_pretrained(folder)
    message = str(e.value)
    assert message.startswith(f"{weights}: not a safetensors file (") and "nothing was loaded from it" in message
    assert message.endswith("copy or download the checkpoint's model.safetensors again") and "\n" not in message
    assert f"error: {weights}: not a safetensors file" in evaluate_error(folder, tmp_path, capsys)
    assert f"error: {weights}: not a safetensors file" in predict_error(folder, tmp_path)


def test_missing_weights_and_weights_of_another_model_are_named(checkpoint, tmp_path):
    folder = copy_with(checkpoint, tmp_path / "missing")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelZooError, match=r"model\.safetensors: missing: the folder holds the checkpoint's config\.json"):
        model_zoo.from_pretrained(folder)
    folder = copy_with(checkpoint, tmp_path / "mixed", arch="vgg16", model_name="vgg16")
    with pytest.raises(ModelZooError) as e:
        model_zoo.from_pretrained(folder)
    assert str(e.value).startswith(f"{folder / 'model.safetensors'}: does not fit the model {folder / 'config.json'} describes (")
    assert "restore the files saved together" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("change, what", [
    ({"arch": "resnet99"}, "KeyError: 'resnet99'"),  # the torchvision architecture the class builds
    ({"model_name": "convnext"}, "unknown model 'convnext'"),  # a model a newer crema-tools registers
    ({"variant_of_cfg": "4d-multimodal"}, "unknown variant '4d-multimodal'"),
    ({"num_classes": "six"}, "TypeError"),
])
def test_a_config_json_this_version_cannot_build_is_named_with_the_fix(checkpoint, tmp_path, capsys, change, what):
    folder = copy_with(checkpoint, tmp_path / "model", **change)
    with pytest.raises(ModelZooError) as e:
        model_zoo.from_pretrained(folder)
    message = str(e.value)
    assert message.startswith(f"{folder / 'config.json'}: describes a model crema-tools ") and what in message
    assert "pip install -U crema-tools" in message and "restore the config.json" in message
    assert f"error: {folder / 'config.json'}: describes a model" in evaluate_error(folder, tmp_path, capsys)
    assert f"error: {folder / 'config.json'}: describes a model" in predict_error(folder, tmp_path)


def test_a_broken_download_from_the_hub_says_how_to_download_it_again(checkpoint, tmp_path):
    folder = copy_with(checkpoint, tmp_path / "model", BROKEN_WEIGHTS["error page"](b""))
    code = (
        "from huggingface_hub import HfApi\n"
        "import model_zoo\n"
        "api = HfApi()\n"
        "api.create_repo('org/broken')\n"
        f"api.upload_folder(repo_id='org/broken', folder_path={str(folder)!r})\n"
        "try:\n"
        "    model_zoo.from_pretrained('org/broken')\n"
        "except model_zoo.config.ModelZooError as e:\n"
        "    print(e)\n"
    )
    with FakeHub() as hub:
        r = run_python("-c", code, env=hub_env(tmp_path / "home", hub.endpoint, token="hf_loopback_test_token_0123456789",
                                               drop_tokens=True, progress_bars=False), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    message = r.stdout.strip().splitlines()[-1]
    assert message.startswith("model.safetensors of Hub model org/broken (") and "not a safetensors file" in message
    assert message.endswith("download it again: hf download org/broken model.safetensors --force-download")


# ---------------------------------------------------------------- train --resume-from


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> tuple[Path, Path]:
    """A 2d-audio build and a one-epoch resnet18 run on it, with its training-state checkpoint."""
    root = tmp_path_factory.mktemp("resume")
    build(corpus, root / "data", ["2d-audio"], progress=False)
    train_main(["--model", "resnet18", "--variant", "2d-audio", "--data", str(root / "data"), "--out", str(root / "run"),
                "--epochs", "1", "--batch-size", "8", "--precise-bn-batches", "0"])
    return root / "data", root / "run"


def train_error(argv: list[str], capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        train_main(argv)
    assert exit_.value.code == 2
    return one_line(capsys.readouterr().err)


@pytest.mark.parametrize("model, variant", [("googlenet", "2d-audio"), ("resnet18", "2d-multimodal")])
def test_resuming_from_another_model_or_variant_says_what_the_checkpoint_holds(trained, capsys, model, variant):
    data, run = trained
    checkpoint = run / "checkpoints" / "epoch_1"
    err = train_error(["--model", model, "--variant", variant, "--data", str(data), "--out", str(run),
                       "--resume-from", "latest"], capsys)
    assert err.startswith(f"error: --resume-from {checkpoint}: holds resnet18 on 2d-audio, 3 channel(s) (saved after "
                          f"epoch 1 of 1); this run trains {model} on {variant}, 3 channel(s): ")
    assert "--model resnet18 --variant 2d-audio" in err


def test_a_checkpoint_without_its_record_is_refused_when_its_weights_do_not_fit(trained, tmp_path, capsys):
    """Checkpoints written before the record existed: the weights' strict loading, said in one line."""
    data, run = trained
    checkpoint = tmp_path / "run" / "checkpoints" / "epoch_1"
    shutil.copytree(run / "checkpoints" / "epoch_1", checkpoint)
    (checkpoint / "crema_tools_run.json").unlink()
    err = train_error(["--model", "googlenet", "--variant", "2d-audio", "--data", str(data), "--out", str(tmp_path / "run"),
                       "--resume-from", "latest"], capsys)
    assert err.startswith(f"error: --resume-from {checkpoint}: its weights (Error(s) in loading state_dict for ")
    assert "saved at epoch 1) do not fit this run's googlenet on 2d-audio, 3 channel(s)" in err
