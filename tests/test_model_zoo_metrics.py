"""One spec of the metrics (`model_zoo.metrics.METRICS`)."""

import numpy as np
import pytest

from model_zoo.metrics import METRICS, scores, scores_line


def test_scores_hold_the_spec_metrics_in_order_computed_by_the_spec():
    m = np.array([[3, 1, 0], [0, 2, 2], [0, 0, 0]])
    result = scores(m)
    assert list(result) == ["samples", *(spec.key for spec in METRICS), "per_emotion", "confusion"]
    assert result["accuracy"] == pytest.approx(5 / 8) and result["uar"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert all(result[spec.key] == spec.compute(m) for spec in METRICS)
    assert scores_line(result) == "accuracy 0.625, UAR 0.625, macro-F1 0.714"  # F1s 6/7 and 4/7; the absent emotion left out
    assert [(s.title, s.column, s.hub_type) for s in METRICS] == [
        ("Accuracy", "accuracy (WAR)", "accuracy"), ("UAR", "UAR", "recall"), ("Macro-F1", "macro-F1", "f1")]
