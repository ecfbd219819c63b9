"""One spec of the metrics (`model_zoo.metrics.METRICS`) and one type for metrics.json (`RunMetrics`)."""

import json

import numpy as np
import pytest

from model_zoo.card import MetricsError
from model_zoo.metrics import METRICS, scores, scores_line
from model_zoo.run_metrics import RunMetrics

RUN = {"model": "resnet18", "variant": "2d-audio", "recipe": None, "protocol": "paper", "seed": 0, "fold": None,
       "training_seed": 3, "source": "synthetic", "dataset": {"path_or_repo": "org/crema-d", "revision": "abc"},
       "best_epoch": 1, "history": [{"epoch": 1, "train_loss": 1.7, "val_accuracy": 0.5, "val_uar": 0.5,
                                     "val_macro_f1": 0.4, "lr": 0.0001}],
       "splits": {"validation": {"samples": 4, "accuracy": 0.5, "uar": 0.5, "macro_f1": 0.4},
                  "test": {"samples": 6, "accuracy": 0.5, "uar": 0.45, "macro_f1": 0.4,
                           "human": {"accuracy": 0.6, "ratings": "voice"}}},
       "human": {"test": {"accuracy": 0.6, "modality": "voice"}}, "data": {"decoded_per_rank": [12]},
       "unknown_to_this_version": [1, 2]}


def test_scores_hold_the_spec_metrics_in_order_computed_by_the_spec():
    m = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
    result = scores(m)
    assert list(result) == ["samples", *(spec.key for spec in METRICS), "per_emotion", "confusion"]
    assert result["accuracy"] == pytest.approx(5 / 8) and result["uar"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert all(result[spec.key] == spec.compute(m) for spec in METRICS)
    assert scores_line(result) == "accuracy 0.625, UAR 0.625, macro-F1 0.714"  # F1s 6/7 and 4/7; the absent emotion left out
    assert [(s.title, s.column, s.hub_type) for s in METRICS] == [
        ("Accuracy", "accuracy (WAR)", "accuracy"), ("UAR", "UAR", "recall"), ("Macro-F1", "macro-F1", "f1")]


def test_metrics_json_round_trips_unchanged_through_run_metrics(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(RUN, indent=2) + "\n")
    run = RunMetrics.load(path)
    run.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()
    assert dict(run) == RUN and run["unknown_to_this_version"] == [1, 2]  # a mapping, as the dict it replaces
    assert (run.model, run.variant, run.split_seed, run.training_seed, run.group) == (
        "resnet18", "2d-audio", 0, 3, ("resnet18", "2d-audio", "paper", "synthetic"))
    assert run.held_out() == ["validation", "test"] and run.samples("test") == 6
    assert run.stat("test", "uar") == (0.45, None) and run.human("test") == (0.6, "voice")
    assert run.dataset_repo() == ("org/crema-d", "abc") and run.training_seeds() == [3] and not run.several_runs
    several = run.with_summary({"test": {"uar": {"mean": 0.5, "std": 0.1}}}, [3, 4])
    assert several.stat("test", "uar") == (0.5, 0.1) and several.several_runs and several.training_seeds() == [3, 4]
    assert "summary" not in run  # the original is left as it was


def test_a_metrics_json_that_is_not_a_run_names_the_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("{")
    with pytest.raises(MetricsError, match="metrics.json: cannot be read as JSON"):
        RunMetrics.load(path)
    with pytest.raises(MetricsError, match="metrics: splits.test.samples should be an integer"):
        RunMetrics.checked({"splits": {"test": {"accuracy": 0.5}}})
