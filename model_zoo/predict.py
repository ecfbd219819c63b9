"""Run a checkpoint on any video: exactly its representation's preprocessing, then its six probabilities.

The model half's: `crema-tools predict` imports it when it runs (the data half never imports model_zoo).

The video goes through the same extraction steps and renderer as a build (middle-frame face crop
and mel for 2D; 24 fps frames and aligned mel chunks for 3D), the rendered members through the
same decoding as `crema_tools.load`, and the tensor through the model's own normalisation: a clip
predicted here gets exactly the output it gets through a built dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from crema_tools.corpus import EMOTIONS
from crema_tools.errors import CremaToolsError
from crema_tools.loading.dataset import collate
from crema_tools.loading.transforms import to_model_input
from crema_tools.media.decode import MediaError
from crema_tools.representations import BuildOptions, get_representation, load_options
from crema_tools.representations.steps import extract_file

VIDEO_SUFFIXES = (".flv", ".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")


class PredictError(CremaToolsError):
    """A video that cannot be used at all for this model (no frame for a vision model, no audio for an audio model)."""


@dataclass
class Prediction:
    """One video's result: its probabilities, or why it could not be used (`error`)."""

    path: str
    probabilities: dict[str, float] | None  # None when the video could not be used
    notes: list[str] = field(default_factory=list)  # what was missing and what was done instead
    error: str | None = None  # why the video could not be used, without its path (None: predicted)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def emotion(self) -> str | None:
        return max(self.probabilities, key=self.probabilities.get) if self.probabilities else None

    def to_dict(self) -> dict:
        return {"path": self.path, "emotion": self.emotion, "probabilities": self.probabilities, "notes": self.notes,
                "error": self.error}


def named(video: Path, message: str) -> str:
    """`<video>: <message>`, naming the video once: media errors already start with the file's name."""
    return message if message.startswith(f"{video}: ") else f"{video}: {message}"


def find_videos(paths) -> list[Path]:
    """The videos named, and those inside named folders (sorted); an empty result is an error."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix.lower() in VIDEO_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise PredictError(f"{p}: no such file or folder")
    if not found:
        raise PredictError(f"no video ({', '.join(VIDEO_SUFFIXES)}) in {', '.join(map(str, paths))}")
    return found


def model_input(video: Path, cfg, wav: Path | None = None, device: str | None = None) -> tuple[torch.Tensor, list[str]]:
    """(1, ...) normalised input for the model whose pretrained config is `cfg`, and notes on what was missing."""
    rep = get_representation(cfg.variant)
    f = extract_file(video, rep.steps(BuildOptions()), wav=wav)
    try:
        notes = rep.fill_in(f)
    except MediaError as e:
        raise PredictError(named(video, str(e))) from None
    members = rep.render(f)
    meta = {"clip_id": video.name, "variant": rep.name, **rep.sample_fields(f)}
    item = rep.decode_inputs(members, meta, load_options(rep, cfg.load_options()), "test")
    batch = collate([{**item, "variant": rep.name}])
    return to_model_input(batch, cfg.mean, cfg.std, device), notes


@torch.no_grad()
def predict(model, videos, wav: Path | None = None, device: str | None = None, keep_going: bool = False) -> list[Prediction]:
    """Probabilities of the six emotions for each video (one at a time: clips differ in length).

    A video that cannot be used raises its `CremaToolsError` (naming it), or with `keep_going` gets
    a `Prediction` whose `error` says why, so that every video of a folder has its result.
    """
    model.eval()
    cfg = model.pretrained_cfg
    out = []
    for video in map(Path, videos):
        try:
            inputs, notes = model_input(video, cfg, wav, device)
        except CremaToolsError as e:
            if not keep_going:
                raise
            out.append(Prediction(str(video), None, error=named(video, str(e)).removeprefix(f"{video}: ")))
            continue
        probs = model(inputs).float().softmax(-1)[0].tolist()
        out.append(Prediction(str(video), dict(zip(cfg.label_names or EMOTIONS, probs)), notes))
    return out


def as_json(predictions: list[Prediction]) -> str:
    return json.dumps([p.to_dict() for p in predictions], indent=2)

