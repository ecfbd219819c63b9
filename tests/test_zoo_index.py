"""The zoo as data: model_zoo/index.yml, the tables generated from it, and list_pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import run_module

import model_zoo
from model_zoo import index as zoo_index
from model_zoo.report import summarise

REPO = Path(__file__).resolve().parents[1]


def run(seed: int, accuracy: float, model: str = "resnet18_separate", method: str | None = "ogm-ge") -> dict:
    return {"model": model, "variant": "ogm-ge", "protocol": "split-file", "source": "crema-d", "seed": 0,
            "training_seed": seed, "recipe": "resnet18_separate-ogm-ge-modulated",
            "training": {"fusion": "concat", "method": method},
            "splits": {"test": {"samples": 744, "accuracy": accuracy, "uar": accuracy - 0.05, "macro_f1": accuracy - 0.1}}}


def test_the_readme_and_docs_tables_are_the_index():
    """A results table edited by hand, or an index changed without regenerating the docs, fails here."""
    expected = zoo_index.table(zoo_index.load_index())
    for doc in ("README.md", "docs/model_zoo.md"):
        text = (REPO / doc).read_text()
        assert text.split(zoo_index.START, 1)[1].split(zoo_index.END, 1)[0].strip() == expected.strip(), doc


def test_report_rows_go_into_the_index_and_published_ones_are_listed(tmp_path):
    rows = summarise([run(0, 0.70), run(1, 0.74), run(0, 0.65, method=None)])
    assert sorted(r["model"] for r in rows) == ["resnet18_separate (concat)", "resnet18_separate (concat, ogm-ge)"]
    path = tmp_path / "index.yml"
    zoo_index.save_index(zoo_index.entries_from_rows(rows), path)
    entries = {e.model: e for e in zoo_index.load_index(path)}
    ogm = entries["resnet18_separate (concat, ogm-ge)"]
    assert ogm.runs == 2 and ogm.seeds == [0, 1] and ogm.accuracy["mean"] == pytest.approx(0.72)
    assert ogm.accuracy["std"] == pytest.approx(0.0283, abs=1e-4) and ogm.data == "CREMA-D"
    assert zoo_index.list_pretrained(path=path) == []

    # publishing: the weights' repo id survives a later report of the same runs
    published = [zoo_index.ZooEntry(**{**e.__dict__, "weights": "org/r18-ogm-ge"}) if e is ogm else e
                 for e in entries.values()]
    zoo_index.save_index(published, path)
    zoo_index.save_index(zoo_index.merge(zoo_index.load_index(path), zoo_index.entries_from_rows(rows)), path)
    (listed,) = zoo_index.list_pretrained("resnet18*", path=path)
    assert listed.weights == "org/r18-ogm-ge" and listed.model == ogm.model
    assert zoo_index.list_pretrained("i3d*", path=path) == []
    assert "| `org/r18-ogm-ge` |" in zoo_index.table(zoo_index.load_index(path))


def test_the_report_command_writes_the_index_and_the_docs(tmp_path):
    for i, seed in enumerate((0, 1)):
        (tmp_path / "runs" / f"seed-{seed}").mkdir(parents=True)
        (tmp_path / "runs" / f"seed-{seed}" / "metrics.json").write_text(json.dumps(run(seed, 0.7 + 0.04 * i)))
    doc = tmp_path / "zoo.md"
    doc.write_text(f"# Zoo\n\n{zoo_index.START}\nold\n{zoo_index.END}\n\nafter\n")
    index = tmp_path / "index.yml"
    r = run_module("model_zoo.report", str(tmp_path / "runs"), "--out", str(tmp_path / "report"), "--index", str(index),
                   "--update-docs", str(doc))
    assert r.returncode == 0, r.stderr[-2000:]
    (entry,) = zoo_index.load_index(index)
    assert entry.log.count("metrics.json") == 2 and entry.runs == 2
    text = doc.read_text()
    assert "old" not in text and text.endswith("after\n") and "| resnet18_separate (concat, ogm-ge) | ogm-ge |" in text


def test_bad_index_and_docs_without_markers_are_one_line(tmp_path):
    bad = tmp_path / "index.yml"
    bad.write_text("models: [1, 2]\n")
    r = run_module("model_zoo.report", "--index", str(bad), "--update-docs", str(REPO / "README.md"))
    assert r.returncode != 0 and r.stderr.startswith(f"error: {bad}: not a model zoo index") and r.stderr.count("\n") == 1
    doc = tmp_path / "plain.md"
    doc.write_text("# nothing to replace\n")
    r = run_module("model_zoo.report", "--index", str(REPO / "model_zoo" / "index.yml"), "--update-docs", str(doc))
    assert r.returncode != 0 and "no <!-- zoo-index --> ... <!-- /zoo-index --> markers" in r.stderr
    assert doc.read_text() == "# nothing to replace\n"
    assert model_zoo.list_pretrained() == [e for e in zoo_index.load_index() if e.weights]
