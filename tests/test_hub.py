"""The real Hub download paths, against a loopback stand-in of the Hub (tests/hubserver.py)."""

import json
from pathlib import Path

import pytest
import torch
from helpers import hub_env, run_python
from hubserver import FakeHub

import crema_tools
import model_zoo
from crema_tools.builder.pipeline import build


def run_with_hub(hub: FakeHub, code: str, home: Path) -> str:
    r = run_python("-c", code, env=hub_env(home, hub.endpoint), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def dataset_repo(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hub_dataset")
    build(corpus, out, ["2d-audio", "2d-vision"], progress=False, clip_ids=["1001_DFA_ANG_XX", "1002_DFA_SAD_XX", "1001_DFA_HAP_XX"])
    return out


def test_load_from_a_hub_dataset_repo_fetches_only_that_config(dataset_repo, tmp_path):
    with FakeHub.from_folder("crema-tools/crema-d-test", "dataset", dataset_repo) as hub:
        out = run_with_hub(hub, "import crema_tools\n"
                                "ds = crema_tools.load('crema-tools/crema-d-test', '2d-audio', 'train')\n"
                                "items = list(ds)\n"
                                "print(len(items), tuple(items[0]['inputs'].shape))", tmp_path / "home")
        downloaded = [r.split("/resolve/", 1)[1].split("/", 1)[1] for r in hub.requests if r.startswith("GET") and "/resolve/" in r]
    n_train = json.loads((dataset_repo / "2d-audio/report.json").read_text())["splits"]["train"]["samples"]
    assert out.split() == [str(n_train), "(3,", "224,", "224)"]
    assert downloaded and all(p.startswith("2d-audio/") or p == "README.md" for p in downloaded)


def test_load_model_from_a_hub_model_repo(tmp_path):
    model = model_zoo.create_model("simple3d", variant="3d-audio")
    model.save_pretrained(tmp_path / "ckpt")
    with FakeHub.from_folder("crema-tools/simple3d-test", "model", tmp_path / "ckpt") as hub:
        run_with_hub(hub, "import model_zoo, torch\n"
                          "m = model_zoo.load_model('crema-tools/simple3d-test')\n"
                          f"torch.save(m.state_dict(), {str(tmp_path / 'loaded.pt')!r})", tmp_path / "home")
    loaded = torch.load(tmp_path / "loaded.pt", weights_only=True)
    assert loaded.keys() == model.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


def test_streaming_from_a_hub_dataset_repo_reads_shards_as_they_arrive(dataset_repo, tmp_path):
    with FakeHub.from_folder("crema-tools/crema-d-test", "dataset", dataset_repo) as hub:
        out = run_with_hub(hub, "import crema_tools\n"
                                "ds = crema_tools.load('crema-tools/crema-d-test', '2d-audio', 'train', streaming=True)\n"
                                "print(sorted(x['clip_id'] for x in ds))", tmp_path / "home")
    local = sorted(x["clip_id"] for x in crema_tools.load(dataset_repo, "2d-audio", "train"))
    assert out.strip() == str(local)
    assert not (tmp_path / "home" / "hub").exists() or not list((tmp_path / "home" / "hub").rglob("*.tar"))  # nothing cached
