"""The numbers every CREMA-D result should carry, from per-clip predictions.

`METRICS` declares them once: accuracy is the weighted average recall (WAR); UAR is the unweighted
mean of per-emotion recalls (the corpus has fewer neutral clips); macro-F1 averages per-emotion F1.
Evaluation computes them from it, training logs them, the report tabulates them, the card and push
publish them, all by reading it. Breakdowns by intensity, actor sex and emotion use the corpus
metadata; the human baseline comes from the CREMA-D raters' votes on the same clips.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable

import numpy as np

from crema_tools.corpus import EMOTIONS, Clip, actors, votes

HUMAN_MODALITY = {"audio": "voice", "vision": "face", "multimodal": "multimodal"}
"""Which raters' votes match a variant's modality (voice-only, face-only or audio-visual ratings)."""


@dataclass(frozen=True)
class Prediction:
    clip_id: str
    label: int
    predicted: int


def confusion(preds: Iterable[Prediction], num_classes: int = len(EMOTIONS)) -> np.ndarray:
    """(true, predicted) counts."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p in preds:
        m[p.label, p.predicted] += 1
    return m


def per_emotion(m: np.ndarray) -> tuple[np.ndarray, ...]:
    """(support, recall, precision, F1, present) per emotion of a confusion matrix.

    An emotion absent from the true labels is not `present`: its recall is undefined, so UAR and
    macro-F1 leave it out and a subset without neutral clips is not scored as if every one were missed.
    """
    support = m.sum(1)
    predicted = m.sum(0)
    tp = np.diag(m).astype(float)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=present)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    return support, recall, precision, f1, present


def weighted_average_recall(m: np.ndarray) -> float:
    """The share of clips classified right (accuracy)."""
    total = int(m.sum())
    return float(np.diag(m).astype(float).sum() / total) if total else 0.0


def unweighted_average_recall(m: np.ndarray) -> float:
    _, recall, _, _, present = per_emotion(m)
    return float(recall[present].mean()) if present.any() else 0.0


def macro_f1(m: np.ndarray) -> float:
    _, _, _, f1, present = per_emotion(m)
    return float(f1[present].mean()) if present.any() else 0.0


@dataclass(frozen=True)
class MetricSpec:
    """One number every evaluation reports, and the names each place shows it under."""

    key: str  # its key in metrics.json, eval-<split>.json and summary.json
    label: str  # what text calls it: "accuracy 0.612, UAR 0.598, macro-F1 0.590"
    hub_type: str  # the Hub metric id in a card's model-index
    hub_args: Mapping[str, str]  # that metric's arguments
    description: str
    compute: Callable[[np.ndarray], float]  # from a (true, predicted) confusion matrix
    also_called: str | None = None  # the field's other name for it, in the report's table header

    @property
    def title(self) -> str:
        """The label heading a card's table column or starting a sentence: "Accuracy", "UAR", "Macro-F1"."""
        return self.label[:1].upper() + self.label[1:]

    @property
    def column(self) -> str:
        """The report's table header: "accuracy (WAR)", "UAR", "macro-F1"."""
        return f"{self.label} ({self.also_called})" if self.also_called else self.label


METRICS = (
    MetricSpec("accuracy", "accuracy", "accuracy", MappingProxyType({}),
               "weighted average recall: the share of clips classified right", weighted_average_recall, also_called="WAR"),
    MetricSpec("uar", "UAR", "recall", MappingProxyType({"average": "macro"}),
               "unweighted average recall: the mean of the per-emotion recalls, each emotion weighing the same",
               unweighted_average_recall),
    MetricSpec("macro_f1", "macro-F1", "f1", MappingProxyType({"average": "macro"}),
               "the mean of the per-emotion F1 scores", macro_f1),
)
"""The metrics every evaluation computes and every report, card and Hub push shows, in this order."""


def scores_line(scores: Mapping) -> str:
    """The metrics as the command lines print them: "accuracy 0.612, UAR 0.598, macro-F1 0.590"."""
    return ", ".join(f"{spec.label} {scores[spec.key]:.3f}" for spec in METRICS)


def scores(m: np.ndarray) -> dict:
    """The `METRICS` and per-emotion recall/precision/F1 from a confusion matrix.

    Emotions absent from the true labels are left out of UAR and macro-F1 (and reported as None),
    so a subset without neutral clips is not scored as if every neutral were missed.
    """
    support, recall, precision, f1, present = per_emotion(m)
    names = EMOTIONS[: len(m)]
    return {
        "samples": int(m.sum()),
        **{spec.key: spec.compute(m) for spec in METRICS},
        "per_emotion": {
            e: {"support": int(support[i]), "recall": round(float(recall[i]), 4) if present[i] else None,
                "precision": round(float(precision[i]), 4), "f1": round(float(f1[i]), 4)}
            for i, e in enumerate(names)
        },
        "confusion": m.tolist(),
    }


def breakdowns(preds: list[Prediction]) -> dict:
    """Accuracy and UAR per intensity and per actor sex."""
    groups: dict[str, dict[str, list[Prediction]]] = {"intensity": defaultdict(list), "sex": defaultdict(list)}
    people = actors()
    for p in preds:
        clip = Clip.parse(p.clip_id)
        groups["intensity"][clip.intensity].append(p)
        groups["sex"][people[clip.actor_id].sex].append(p)
    out = {}
    for name, by in groups.items():
        out[name] = {}
        for key in sorted(by):
            s = scores(confusion(by[key]))
            out[name][key] = {"samples": s["samples"], "accuracy": round(s["accuracy"], 4), "uar": round(s["uar"], 4)}
    return out


def human_accuracy(clip_ids: Iterable[str], modality: str) -> dict:
    """The raters' accuracy on these clips: the share of all their responses naming the intended emotion.

    This is the response-level definition (every vote counts); over the whole corpus it gives about
    40.0 / 57.4 / 63.1 % for voice / face / audio-visual, against 40.9 / 58.2 / 63.6 % in the CREMA-D
    paper, which counts a little differently.
    """
    kind = HUMAN_MODALITY[modality]
    table = votes()
    right = total = clips = 0
    for cid in clip_ids:
        counts = table.get(cid, {}).get(kind)
        if not counts:
            continue
        clips += 1
        right += counts.get(Clip.parse(cid).emotion, 0)
        total += sum(counts.values())
    return {"accuracy": right / total if total else None, "responses": total, "clips": clips,
            "ratings": kind, "definition": "share of all responses naming the intended emotion"}


def evaluation(preds: list[Prediction], modality: str) -> dict:
    """Everything one split's evaluation reports."""
    return {**scores(confusion(preds)), "breakdowns": breakdowns(preds),
            "human": human_accuracy([p.clip_id for p in preds], modality)}


def plot_confusion(m: np.ndarray, path, title: str) -> None:
    """The confusion matrix as a PNG: row-normalised colours, counts written in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5, 4.4), dpi=120)
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    names = EMOTIONS[: len(m)]
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if rows[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
