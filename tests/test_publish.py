"""Publishing: card templates as package data, dataset checks, and pushes to a loopback Hub.

The pushes run the real command lines in subprocesses against tests/hubserver.py (HF_ENDPOINT is
read when huggingface_hub is imported), with HF_HUB_DISABLE_XET=1 so that uploads take the Git
LFS path the stand-in speaks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from helpers import files, hub_env, run_python
from hubserver import FakeHub
from huggingface_hub import DatasetCard, ModelCard
from typer.testing import CliRunner

import model_zoo
from crema_tools.builder.card import card_record, render_card
from crema_tools.builder.pipeline import build
from crema_tools.cli import app
from crema_tools.ops.publish import PublishError, validate_dataset
from crema_tools.synthetic import generate_corpus
from crema_tools.variants import VARIANTS
from model_zoo.config import ModelZooError
from model_zoo.push import push_run

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_loopback_test_token_0123456789"
CLIPS = ["1001_DFA_ANG_XX", "1002_DFA_SAD_XX", "1001_DFA_HAP_XX", "1002_IEO_NEU_XX"]


def run(args: list[str], hub: FakeHub | None, home: Path, token: str | None = TOKEN, cwd: Path | None = None):
    env = hub_env(home, hub.endpoint if hub is not None else None, token=token, drop_tokens=True, progress_bars=False)
    return run_python(*args, env=env, timeout=300, cwd=cwd)


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stderr[-3000:]
    assert TOKEN not in r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """2d-audio and 3d-multimodal built from four synthetic clips."""
    root = tmp_path_factory.mktemp("publish")
    generate_corpus(root / "raw", CLIPS, seed=0)
    build(root / "raw", root / "crema-d-sample", ["2d-audio", "3d-multimodal"], progress=False)
    return root / "crema-d-sample"


@pytest.fixture()
def folder(dataset, tmp_path) -> Path:
    """A copy of the built folder a test may change."""
    return Path(shutil.copytree(dataset, tmp_path / dataset.name))


# --- card templates ---------------------------------------------------------------------------


def test_wheel_installed_with_target_holds_the_templates_and_renders_cards(dataset, tmp_path):
    """`pip install --target` (like --user) puts no data under sys.prefix: the templates must be package data."""
    pip = ["-m", "pip"]
    r = run_python(*pip, "wheel", "--no-deps", "-v", "-w", str(tmp_path / "dist"), str(REPO), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    warned = re.findall(r"[A-Z]\w*Warning: .*", r.stdout + r.stderr)  # the build backend's, e.g. a data folder not listed
    assert not warned, warned
    wheel = next((tmp_path / "dist").glob("crema_tools-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"crema_tools/cards/dataset_card.md", "crema_tools/cards/model_card.md", "crema_tools/cards/__init__.py"} <= names
    assert not any(n.startswith(("cards/", "share/")) or ".data/" in n for n in names)
    source = {p.relative_to(REPO).as_posix() for d in ("crema_tools", "model_zoo") for p in (REPO / d).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    missing = sorted(n for n in source if n not in names)
    assert not missing, f"left out of the wheel (list the package or its data in [tool.setuptools]): {missing}"

    target = tmp_path / "target"
    r = run_python(*pip, "install", "--no-deps", "-q", "--target", str(target), str(wheel), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    shutil.copytree(dataset / "2d-audio", tmp_path / "ds" / "2d-audio")
    code = (
        "import sys, crema_tools, crema_tools.cards, model_zoo\n"
        "from pathlib import Path\n"
        "from crema_tools.builder.card import write_card\n"
        f"target = Path({str(target)!r})\n"
        "assert all(Path(m.__file__).is_relative_to(target) for m in (crema_tools, crema_tools.cards, model_zoo))\n"
        "write_card(Path('ds'), 'org/from-wheel')\n"
        "model_zoo.create_model('simple3d', variant='3d-audio').save_pretrained('model')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    r = run_python("-c", code, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    card = DatasetCard.load(tmp_path / "ds" / "README.md")
    assert [c["config_name"] for c in card.data.configs] == ["2d-audio"] and 'load_dataset("org/from-wheel"' in card.text
    assert ModelCard.load(tmp_path / "model" / "README.md").data.library_name == "crema-tools"


# --- the dataset card -------------------------------------------------------------------------


def fake_report(variant: str, fold: int | None = None, source: str = "crema-d", **changes) -> dict:
    v = VARIANTS[variant]
    splits = {"train": {"samples": 5209, "shards": ["train-00000.tar"]}, "test": {"samples": 2233, "shards": ["test-00000.tar"]}}
    return {"variant": variant, "description": v.description, "shape": v.shape, "protocol": "speaker-kfold",
            "protocol_description": "actor-disjoint 5-fold cross-validation", "seed": 3, "fold": fold,
            "source": source, "splits": splits, "samples": 7442, "skipped": [], "members": v.members,
            "metadata_fields": v.metadata_fields, **changes}


def test_dataset_card_metadata_round_trips_and_its_table_holds():
    reports = [fake_report("2d-multimodal", fold=2, description="face crop | spectrogram, side by side"),
               fake_report("3d-vision", fold=2)]
    text = render_card(reports, "my-org/crema-d")
    card = DatasetCard(text)
    data = card.data.to_dict()
    assert data["license"] == "odbl" and data["language"] == ["en"] and data["size_categories"] == ["1K<n<10K"]
    assert set(data["task_categories"]) == {"audio-classification", "image-classification", "video-classification"}
    assert "audio-emotion-recognition" in data["task_ids"] and "synthetic" not in data["tags"]
    assert [c["config_name"] for c in data["configs"]] == ["2d-multimodal", "3d-vision"]
    record = card_record(text)  # the build's record: in the card's text, not in the header (not a Hub card field)
    assert record["fold"] == 2 and record["samples"]["3d-vision"] == {"train": 5209, "test": 2233}
    assert DatasetCard(str(card)).data.to_dict() == data  # what the card writes, it reads back
    rows = [line for line in card.text.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and all(line.replace("\\|", "").count("|") == 6 for line in rows)  # 5 cells each
    assert "face crop \\| spectrogram" in card.text
    assert 'load_dataset("my-org/crema-d", "2d-multimodal"' in card.text
    assert "`speaker-kfold` fold 2 with seed 3" in card.text and "--fold 2 --seed 3" in card.text
    assert "stays raw bytes" in card.text and "crema_tools.load" in card.text  # the 3d-vision mp4 note

    synthetic = DatasetCard(render_card([fake_report("2d-audio", source="synthetic")]))
    assert "synthetic" in synthetic.data.tags and "<your-org>/" in synthetic.text and "stays raw bytes" not in synthetic.text


HUB_CARD_FIELDS = {"language", "license", "license_name", "license_link", "license_details", "tags", "annotations_creators",
                   "language_creators", "language_details", "pretty_name", "size_categories", "source_datasets",
                   "task_categories", "task_ids", "paperswithcode_id", "configs", "dataset_info", "extra_gated_fields",
                   "extra_gated_prompt", "viewer"}
"""The dataset card metadata the Hub documents (its datasetcard.md spec, and `viewer` from its viewer docs)."""


def test_the_card_header_holds_hub_fields_only_and_marks_the_headline_config_default():
    data = DatasetCard(render_card([fake_report(v) for v in ("2d-audio", "2d-vision", "2d-multimodal")])).data.to_dict()
    assert set(data) <= HUB_CARD_FIELDS
    assert [c["config_name"] for c in data["configs"] if c.get("default")] == ["2d-multimodal"]
    reports = [fake_report(v) for v in ("2d-audio", "3d-audio", "3d-multimodal", "2d-multimodal")]
    card = DatasetCard(render_card(reports))
    assert [c["config_name"] for c in card.data.configs if c.get("default")] == ["3d-multimodal"]
    assert "opens `3d-multimodal` first" in card.text and 'load_dataset("<your-org>/crema-d", "3d-multimodal"' in card.text
    assert "the `mp4` member of `3d-multimodal`\n" in card.text  # the config named, not spelled out letter by letter
    assert [c["config_name"] for c in DatasetCard(render_card([fake_report("2d-audio"), fake_report("3d-vision")])).data.configs
            if c.get("default")] == ["2d-audio"]  # no multimodal config: the first


def test_load_dataset_without_a_config_opens_the_default_one(dataset):
    from datasets import load_dataset

    ds = load_dataset(str(dataset), split="train")
    assert "mp4" in ds.features and "npy" in ds.features and ds[0]["json"]["variant"] == "3d-multimodal"


def test_a_card_of_an_earlier_version_with_its_record_in_the_header_is_still_read(folder):
    from crema_tools.builder.outdir import is_our_card

    text = (folder / "README.md").read_text()
    record = card_record(text)
    header, body = text.split("---", 2)[1:]
    old = "---" + header + yaml.safe_dump({"crema_tools": record}, sort_keys=False) + "---" + body.split("The build's record")[0]
    (folder / "README.md").write_text(old)
    assert card_record(old) == record and is_our_card(folder / "README.md")
    assert validate_dataset(folder).samples == {n: s for n, s in record["samples"].items()}
    (folder / "README.md").write_text("---\nlicense: odbl\n---\n# my own card\n")
    assert card_record((folder / "README.md").read_text()) is None and not is_our_card(folder / "README.md")


# --- checks before a push ---------------------------------------------------------------------


def test_validate_accepts_a_build_and_names_what_is_wrong(folder):
    check = validate_dataset(folder)
    assert check.configs == ["2d-audio", "3d-multimodal"] and "README.md" in check.files
    reports = {n: json.loads((folder / n / "report.json").read_text()) for n in check.configs}
    assert check.samples == {n: {s: v["samples"] for s, v in r["splits"].items()} for n, r in reports.items()}

    (folder / ".3d-multimodal.partial").mkdir()
    shard = sorted((folder / "2d-audio").glob("train-*.tar"))[0]
    shutil.copyfile(shard, folder / "2d-audio" / "train-00009.tar")
    report = json.loads((folder / "3d-multimodal" / "report.json").read_text())
    report["splits"]["train"]["samples"] += 1
    (folder / "3d-multimodal" / "report.json").write_text(json.dumps(report))
    with pytest.raises(PublishError) as e:
        validate_dataset(folder)
    message = str(e.value)
    assert ".3d-multimodal.partial" in message and "2d-audio/train-00009.tar" in message
    assert "3d-multimodal train: the report says" in message and "\n" not in message

    shutil.rmtree(folder / ".3d-multimodal.partial")
    (folder / "2d-audio" / "train-00009.tar").unlink()
    report["splits"]["train"]["samples"] -= 1
    test = report["splits"]["test"]
    shard = folder / "3d-multimodal" / test["shards"][0]
    test["shard_info"] = [{"name": shard.name, "samples": test["samples"], "bytes": shard.stat().st_size, "sha256": "0" * 64}]
    (folder / "3d-multimodal" / "report.json").write_text(json.dumps(report))
    with pytest.raises(PublishError, match=f"3d-multimodal/{shard.name}: its sha256 is not the one the report records"):
        validate_dataset(folder)

    (folder / "README.md").write_text("---\nconfigs: [unclosed\n---\n")
    with pytest.raises(PublishError, match="YAML header does not parse"):
        validate_dataset(folder)


def test_push_checks_first_and_uploads_nothing_when_a_check_fails(folder):
    (folder / "3d-multimodal" / "test-00000.tar").unlink()
    with FakeHub() as hub:
        result = CliRunner().invoke(app, ["push", str(folder), "--repo-id", "org/broken"])
        assert hub.requests == []
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "3d-multimodal/test-00000.tar: listed in the report but missing" in result.output


def test_push_takes_the_token_from_the_environment_only(dataset, tmp_path):
    help_text = CliRunner().invoke(app, ["push", "--help"]).output
    assert "--token" not in help_text and "HF_TOKEN" in help_text
    with FakeHub() as hub:
        r = run(["-m", "crema_tools", "push", str(dataset), "--repo-id", "org/no-token"], hub, tmp_path / "home", token=None)
        assert hub.requests == []
    assert r.returncode == 2 and r.stderr.startswith("error: not logged in") and r.stderr.count("\n") == 1


# --- the whole story: push both, load both back by repo id ------------------------------------


def test_push_dataset_and_checkpoint_then_load_both_by_repo_id(folder, tmp_path):
    model = model_zoo.create_model("simple3d", variant="3d-multimodal")
    run_dir = tmp_path / "run"
    model.save_pretrained(run_dir)
    metrics = {"model": "simple3d", "variant": "3d-multimodal", "protocol": "paper", "seed": 0, "seeds": [0, 1],
               "source": "synthetic", "dataset": {"path_or_repo": str(folder), "revision": None}, "recipe": None,
               "splits": {"test": {"samples": 2, "accuracy": 0.5, "uar": 0.5, "macro_f1": 0.3333}},
               "summary": {"test": {"accuracy": {"mean": 0.5, "std": 0.1}, "uar": {"mean": 0.5, "std": 0.2},
                                    "macro_f1": {"mean": 0.3333, "std": 0.05}}},
               "human": {"test": {"accuracy": 0.625, "modality": "multimodal"}}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    home = tmp_path / "home"
    ds_repo, model_repo = "crema-org/crema-d-sample", "crema-org/simple3d-3d-multimodal"

    with FakeHub() as hub:
        out = ok(run(["-m", "crema_tools", "push", str(folder), "--repo-id", ds_repo, "--revision", "v1", "--private"],
                     hub, home))
        assert f"{hub.endpoint}/datasets/{ds_repo}/tree/v1" in out
        uploads = sum(r.startswith("PUT /lfs/") for r in hub.requests)
        ok(run(["-m", "crema_tools", "push", str(folder), "--repo-id", ds_repo, "--revision", "v1"], hub, home))
        assert sum(r.startswith("PUT /lfs/") for r in hub.requests) == uploads  # a second push sends no shard again

        with pytest.raises(ModelZooError, match="--dataset-repo-id"):  # a run on a local folder names no Hub dataset
            push_run(run_dir, model_repo)
        ok(run(["-m", "model_zoo.push", str(run_dir), "--repo-id", model_repo, "--dataset-repo-id", ds_repo,
                "--dataset-revision", "v1"], hub, home))

        repo = hub.repos[("dataset", ds_repo)]
        remote, main = hub.files("dataset", ds_repo, "v1"), hub.files("dataset", ds_repo, "main")
        model_files = hub.files("model", model_repo)
        assert ("model", ds_repo) not in hub.repos and ("dataset", model_repo) not in hub.repos
        assert repo.private and main == {} and len(repo.messages) == 2  # created, then one commit on v1
        assert remote == files(folder)  # every file, byte for byte, on the branch asked for
        assert hub.auth == {TOKEN}
        card_path = tmp_path / "model_card.md"
        card_path.write_bytes(model_files["README.md"])
        card = ModelCard.load(card_path)
        opens = sorted({(r.dataset_type, r.dataset_config, r.dataset_split, r.dataset_revision, json.dumps(r.dataset_args))
                        for r in card.data.eval_results})
        assert opens == [(ds_repo, "3d-multimodal", "test", "v1", "null")]  # exactly load_dataset's arguments

        code = (
            "import json, torch, crema_tools, model_zoo\n"
            "from datasets import load_dataset\n"
            f"ds = load_dataset({ds_repo!r}, '3d-multimodal', split='train', revision='v1')\n"
            f"path, name, split, revision, args = {opens[0]!r}\n"  # as the card's model-index names it
            "test = load_dataset(path, name, split=split, revision=revision, **(json.loads(args) or {}))\n"
            f"items = list(crema_tools.load({ds_repo!r}, '2d-audio', 'train', revision='v1'))\n"
            f"m = model_zoo.from_pretrained({model_repo!r})\n"
            f"z = model_zoo.ZooModel.from_pretrained({model_repo!r})\n"
            f"torch.save(m.state_dict(), {str(tmp_path / 'loaded.pt')!r})\n"
            "print(json.dumps({'rows': len(ds), 'mp4': type(ds[0]['mp4']).__name__, 'names': ds.features['cls'].names,\n"
            "                  'items': len(items), 'classes': [type(m).__name__, type(z).__name__],\n"
            "                  'cfg': m.pretrained_cfg.to_dict(), 'test': len(test)}))\n"
        )
        loaded = json.loads(ok(run(["-c", code], hub, home)).strip().splitlines()[-1])

    reports = {n: json.loads((folder / n / "report.json").read_text()) for n in ("2d-audio", "3d-multimodal")}
    assert loaded["rows"] == reports["3d-multimodal"]["splits"]["train"]["samples"] and loaded["mp4"] == "bytes"
    assert loaded["names"] == ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
    assert loaded["items"] == reports["2d-audio"]["splits"]["train"]["samples"]
    assert loaded["classes"] == ["Simple3D", "Simple3D"]
    assert loaded["cfg"] == json.loads(json.dumps(model.pretrained_cfg.to_dict()))
    assert loaded["test"] == reports["3d-multimodal"]["splits"]["test"]["samples"] > 0
    state = torch.load(tmp_path / "loaded.pt", weights_only=True)
    assert state.keys() == model.state_dict().keys() and all(torch.equal(state[k], v) for k, v in model.state_dict().items())

    dataset_card = DatasetCard(remote["README.md"].decode())
    assert f'load_dataset("{ds_repo}", "3d-multimodal"' in dataset_card.text and "synthetic" in dataset_card.data.tags
    assert {"model.safetensors", "config.json", "README.md", "metrics.json"} == set(model_files)
    assert json.loads(model_files["config.json"])["library_name"] == "crema-tools"
    assert json.loads(model_files["metrics.json"]) == metrics
    assert card.data.datasets == [ds_repo] and card.data.library_name == "crema-tools"
    results = {(r.dataset_split, r.metric_type): r for r in card.data.eval_results}
    for key, hub_id in (("accuracy", "accuracy"), ("uar", "recall"), ("macro_f1", "f1")):
        r = results[("test", hub_id)]
        assert r.metric_value == pytest.approx(metrics["summary"]["test"][key]["mean"])
        assert r.metric_name.endswith("(test, mean of 2 training seeds)") and r.task_type == "video-classification"
    assert f'model_zoo.from_pretrained("{model_repo}")' in card.text and "62.5%" in card.text  # the human baseline
    assert "50.0% ± 10.0" in card.text and "Training seeds: 0, 1" in card.text  # the std and seeds: in the text
    assert yaml.safe_load(model_files["README.md"].decode().split("---")[1])["model-index"][0]["name"]
