"""Builds under --protocol hicmae and --split-file: what report.json, the card, inspect and the model zoo's
run record say (split file, skipped clips, actors in more than one split); one folder, one split file."""

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import run_cli, shard_metas

from crema_tools.builder.card import card_record
from crema_tools.builder.pipeline import BuildError, build, plan_build
from crema_tools.corpus import SplitFileError, assign_splits
from crema_tools.format.report import Report
from crema_tools.ops.inspect import inspect_dataset
from crema_tools.ops.publish import validate_dataset

FILE_SPLIT = {"1001_DFA_ANG_XX": "train", "1001_DFA_DIS_XX": "train", "1002_DFA_ANG_XX": "train",
              "1001_DFA_FEA_XX": "test", "1002_DFA_DIS_XX": "test", "1003_DFA_ANG_XX": "train"}  # 1003: not on disk
UNLISTED = "1002_DFA_FEA_XX"  # on disk, not in the file
CLIPS = sorted(set(FILE_SPLIT) - {"1003_DFA_ANG_XX"}) + [UNLISTED]


def _split_file(folder: Path, name: str = "split.csv", split: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("clip_id,split\n" + "".join(f"{c},{s}\n" for c, s in (split or FILE_SPLIT).items()))
    return path


@pytest.fixture(scope="module")
def file_built(corpus, tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("split_file_build")
    path = _split_file(work / "lab")
    out = work / "out"
    build(corpus, out, ["2d-audio"], split_file=path, clip_ids=CLIPS, progress=False, workers=0)
    return out, path


def test_a_split_file_build_holds_the_files_split_and_says_so(file_built):
    out, path = file_built
    report = Report.load(out / "2d-audio" / "report.json")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert report["protocol"] == "split-file" and report["seed"] == 0 and report["fold"] is None
    assert report.split_file["name"] == "split.csv" and report.split_file["sha256"] == sha
    assert report.split_file["format"] == "clip-split-csv" and report.split_file["clips"] == {"train": 4, "test": 2}
    assert report.provenance["split_file"] == sha
    assert {m["clip_id"]: m["split"] for m in shard_metas(out / "2d-audio")} == {c: FILE_SPLIT[c] for c in CLIPS if c != UNLISTED}
    assert report["skipped"] == [{"clip_id": UNLISTED, "reason": "not in the split file split.csv"}]
    assert report["actors"] == {"total": 2, "per_split": {"train": 2, "test": 2}, "in_more_than_one_split": 2,
                                "shared": [1001, 1002]}
    card = (out / "README.md").read_text()
    assert "--protocol split-file --split-file split.csv --seed 0" in card
    assert f"- Split file: `split.csv`, sha256 `{sha}`, clip_id,split CSV: train 4, test 2 clips." in card
    assert "- Speakers: 2 actors (train 2, test 2); 2 of them appear in more than one split" in card and "not speaker-independent" in card
    assert card_record(card)["split_file"] == sha  # the build record the card carries
    assert validate_dataset(out).provenance["split_file"] == sha  # card and reports agree: the folder can be pushed


def test_inspect_names_the_split_file_and_the_shared_actors(file_built, tmp_path):
    out, _ = file_built
    text = inspect_dataset(out, per_emotion=0, sheet_dir=tmp_path).render()
    assert "protocol split-file, seed 0" in text and "split file split.csv (sha256 " in text
    assert "speakers: 2 actors (train 2, test 2); 2 of them appear in more than one split: test (and validation) share" in text


def test_one_folder_holds_one_split_file(file_built, corpus, tmp_path):
    out, path = file_built
    other = _split_file(tmp_path / "other", split={"1001_DFA_ANG_XX": "test"})
    with pytest.raises(BuildError, match=r"already holds 2d-audio built with protocol split-file \(split file split.csv, "
                                         r"sha256 [0-9a-f]{12}\.\.\.\).*use another --out for protocol split-file \(split file split.csv"):
        build(corpus, out, ["3d-audio"], split_file=other, clip_ids=["1001_DFA_ANG_XX"], progress=False, workers=0)
    with pytest.raises(BuildError, match=r"already holds 2d-audio built with protocol split-file .* for protocol paper, seed 0"):
        build(corpus, out, ["3d-audio"], clip_ids=["1001_DFA_ANG_XX"], progress=False, workers=0)
    assert not (out / "3d-audio").exists()
    plan = plan_build(corpus, out, ["3d-audio"], split_file=path, clip_ids=["1001_DFA_ANG_XX"])  # the same file: accepted
    assert plan.protocol == "split-file" and plan.split_file.sha256 == Report.load(out / "2d-audio" / "report.json").split_file_sha256


def test_the_partial_build_fingerprint_holds_the_split_file(corpus, tmp_path):
    a = _split_file(tmp_path / "a", split={"1001_DFA_ANG_XX": "train"})
    b = _split_file(tmp_path / "b", split={"1001_DFA_ANG_XX": "test"})
    plans = [plan_build(corpus, tmp_path / "out", ["2d-audio"], split_file=f, clip_ids=["1001_DFA_ANG_XX"]) for f in (a, b)]
    prints = [p.fingerprint(p.representations[0]) for p in plans]
    assert prints[0]["split_file"] == hashlib.sha256(a.read_bytes()).hexdigest() and prints[0] != prints[1]
    paper = plan_build(corpus, tmp_path / "out", ["2d-audio"], clip_ids=["1001_DFA_ANG_XX"])
    assert "split_file" not in paper.fingerprint(paper.representations[0])  # unfinished builds of the other protocols still resume


def test_a_bad_split_file_builds_nothing(corpus, tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("1001_DFA_ANG_XX,ANG\n1001_DFA_DIS_XX,DIS\n1001_DFA_ANG_XY,ANG\n")
    out = tmp_path / "out"
    with pytest.raises(SplitFileError, match=r"train.csv:3: '1001_DFA_ANG_XY' is not one of the 7,442 official"):
        build(corpus, out, ["2d-audio"], split_file=bad, progress=False, workers=0)
    assert not out.exists() or not any(out.iterdir())
    # the command line: one line, and nothing prepared first (no synthetic sample made for a bad file)
    r = run_cli("build", "--variant", "2d-audio", "--out", str(out), "--split-file", str(bad), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "train.csv:3:" in r.stderr
    assert "SYNTHETIC SAMPLE" not in r.stderr and (not out.exists() or not any(out.iterdir()))


@pytest.mark.parametrize("args, message", [
    (["--protocol", "hicmae", "--fold", "0"], "fold 0 is out of range for protocol 'hicmae' with 5 folds: pass fold=1..5"),
    (["--protocol", "hicmae"], "protocol 'hicmae' needs a fold: pass fold=1..5"),
    (["--protocol", "speaker-kfold", "--fold", "5"], "fold 5 is out of range for protocol 'speaker-kfold' with 5 folds: pass fold=0..4"),
    (["--protocol", "paper", "--split-file", "x.csv"], "--split-file gives the split itself: leave --protocol paper out"),
    (["--protocol", "split-file"], "protocol 'split-file' needs a split file: pass --split-file PATH"),
])
def test_cli_fold_and_split_file_mistakes_are_one_line(corpus, tmp_path, args, message):
    r = run_cli("build", "--variant", "2d-audio", "--raw", str(corpus), "--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and message in r.stderr, r.stderr


def test_a_hicmae_build_leaves_their_left_out_clips_undecoded_and_reported(bad_corpus, tmp_path):
    clips = ["1003_DFA_ANG_XX", "1003_DFA_DIS_XX", "1076_MTI_SAD_XX"]
    plan = plan_build(bad_corpus, tmp_path / "plan", ["2d-audio"], protocol="hicmae", fold=1, clip_ids=clips)
    assert sorted(plan.clip_ids) == clips[:2]  # 1076_MTI_SAD_XX is not decoded
    out = tmp_path / "out"
    reports = build(bad_corpus, out, ["2d-audio"], protocol="hicmae", fold=1, clip_ids=clips, progress=False, workers=0)
    report = reports["2d-audio"]
    assert report["protocol"] == "hicmae" and report["fold"] == 1 and report["split_file"] is None
    assert set(report["splits"]) == {"test"}  # actor 1003 is in fold 1's test block
    assert [s for s in report["skipped"] if s["clip_id"] != "not_a_clip"] == [  # not_a_clip.flv: a stray file
        {"clip_id": "1076_MTI_SAD_XX", "reason": "left out of HiCMAE's folds: documented as broken in the official README"}]
    assert report["actors"]["in_more_than_one_split"] == 0
    card = (out / "README.md").read_text()
    assert "--protocol hicmae --fold 1 --seed 0" in card and "1 actors (test 1); none of them appears in more than one split" in card
    assert {m["split"] for m in shard_metas(out / "2d-audio")} == {assign_splits("hicmae", 0, fold=1)["1003_DFA_ANG_XX"]}


def test_a_paper_build_reports_the_actors_its_splits_share(corpus, tmp_path):
    clips = ["1001_DFA_ANG_XX", "1001_DFA_DIS_XX", "1001_DFA_FEA_XX", "1001_DFA_HAP_XX", "1002_DFA_ANG_XX", "1002_DFA_DIS_XX"]
    report = build(corpus, tmp_path, ["2d-audio"], clip_ids=clips, progress=False, workers=0)["2d-audio"]
    split = assign_splits("paper", 0, "2d")
    parts = {s: {int(c[:4]) for c in clips if split[c] == s} for s in ("train", "test")}
    assert report["actors"]["in_more_than_one_split"] == len(parts["train"] & parts["test"])
    assert report["actors"]["per_split"] == {s: len(a) for s, a in parts.items() if a}
    assert report["split_file"] is None and report.provenance["split_file"] is None


def test_the_run_record_of_a_model_names_the_split_file(file_built):
    from model_zoo.run_metrics import RunMetrics
    from model_zoo.train import run_record

    out, path = file_built
    report = Report.load(out / "2d-audio" / "report.json")
    args = SimpleNamespace(model="resnet18", variant="2d-audio", recipe=None, data=str(out), epochs=1, batch_size=2,
                           gradient_accumulation_steps=1, lr=1e-4, schedule="constant", dropout=0.0, channels=3, frames=None,
                           pretrained=False, precise_bn_batches=0, recipe_values={}, optimizer="adam", momentum=None,
                           weight_decay=None, lr_decay_epochs=None, lr_decay_ratio=None, fusion=None, method=None,
                           balancing=None)
    accelerator = SimpleNamespace(num_processes=1, mixed_precision="no")
    record = run_record(args, 0, accelerator, report, out / "2d-audio", "held-out 10% of train", 4)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["split_file"] == {"name": "split.csv", "sha256": sha, "format": "clip-split-csv"}
    assert record["protocol"] == "split-file" and record["actors_in_more_than_one_split"] == 2
    run = RunMetrics.checked({**record, "splits": {"test": {"samples": 2, "accuracy": 0.5}}})
    assert run.split_file["sha256"] == sha
    assert run.group == ("resnet18", "2d-audio", f"split-file split.csv (sha256 {sha[:12]})", "synthetic")
    with pytest.raises(Exception, match='split_file should be an object {"name", "sha256"}'):
        RunMetrics.checked({**record, "split_file": "split.csv", "splits": {"test": {"samples": 2, "accuracy": 0.5}}})
    json.dumps(record)  # metrics.json takes it as it is
