"""The model zoo's command lines share one convention: what a user can fix is one line `error: ...`
on stderr and exit status 2, never a traceback; `--help` works. Run in-process through each main(argv)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

ENTRY_POINTS = ("train", "evaluate", "report", "push")
A_FLAG = {"train": "--recipe", "evaluate": "--split", "report": "--out", "push": "--repo-id"}


def main_of(module: str):
    return importlib.import_module(f"model_zoo.{module}").main


def bad_arguments(module: str, tmp_path) -> tuple[list[str], str]:
    """An argv each entry point refuses while parsing, and what the error says."""
    return {
        "train": (["--model", "resnet18", "--variant", "2d-audio", "--data", str(tmp_path), "--out", str(tmp_path),
                   "--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
        "evaluate": (["--model", str(tmp_path), "--data", str(tmp_path), "--batch-size", "many"],
                     "argument --batch-size: invalid int value: 'many'"),
        "report": (["--out", str(tmp_path)], "give run folders, or --index INDEX_YML --update-docs FILES"),
        "push": ([str(tmp_path), "--private=yes", "--repo-id", "org/name"], "argument --private: ignored explicit argument 'yes'"),
    }[module]


def refused_work(module: str, tmp_path) -> tuple[list[str], str]:
    """Valid arguments whose work stops with a `ModelZooError`, and what the error says."""
    return {
        "train": (["--model", "nosuch", "--variant", "2d-audio", "--data", str(tmp_path), "--out", str(tmp_path / "run")],
                  "unknown model 'nosuch'"),
        "evaluate": (["--model", str(tmp_path / "missing"), "--data", str(tmp_path)], "no such folder"),
        "report": ([str(tmp_path)], "no metrics.json under"),
        "push": ([str(tmp_path / "missing"), "--repo-id", "org/name"], "no such folder"),
    }[module]


def one_line_exit_2(main, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out = capsys.readouterr()
    assert exit_.value.code == 2, out.err
    assert out.err.startswith("error: ") and out.err.count("\n") == 1 and "Traceback" not in out.err, out.err
    return out.err


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_a_bad_argument_is_one_line_and_exit_2(module, tmp_path, capsys):
    argv, message = bad_arguments(module, tmp_path)
    err = one_line_exit_2(main_of(module), argv, capsys)
    assert message in err and err.rstrip().endswith("(see --help)")


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_a_model_zoo_error_is_one_line_and_exit_2(module, tmp_path, capsys):
    argv, message = refused_work(module, tmp_path)
    assert message in one_line_exit_2(main_of(module), argv, capsys)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_works(module, capsys):
    with pytest.raises(SystemExit) as exit_:
        main_of(module)(["--help"])
    out = capsys.readouterr()
    assert exit_.value.code == 0 and out.out.startswith("usage: ") and A_FLAG[module] in out.out and out.err == ""


def test_push_from_the_command_line_is_one_line_too(tmp_path):
    r = subprocess.run([sys.executable, "-m", "model_zoo.push", str(tmp_path / "missing"), "--repo-id", "org/name"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "no such folder" in r.stderr and r.stderr.count("\n") == 1


def test_a_multi_line_message_is_still_one_line(capsys):
    from model_zoo.cli import one_line_errors
    from model_zoo.config import ModelZooError

    with pytest.raises(SystemExit) as exit_, one_line_errors():
        raise ModelZooError("first\nsecond")
    assert exit_.value.code == 2 and capsys.readouterr().err == "error: first second\n"


def test_the_parser_keeps_its_old_home():
    from model_zoo.cli import OneLineParser
    from model_zoo.train import OneLineParser as from_train

    assert from_train is OneLineParser
