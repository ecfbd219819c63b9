"""Run a checkpoint on any video: exactly its variant's preprocessing, then its six probabilities.

The video goes through the same extraction steps and renderer as a build (middle-frame face crop
and mel for 2D; 24 fps frames and aligned mel chunks for 3D), the rendered members through the
same decoding as `crema_tools.load`, and the tensor through the model's own normalisation: a clip
predicted here gets exactly the output it gets through a built dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import spectrogram
from .builder.extract import bind_steps, extract_file
from .builder.render import get_renderers
from .corpus import EMOTIONS
from .errors import CremaToolsError
from .faces import detect_faces
from .loading import LoadOptions, collate, sample_item
from .transforms import to_model_input

VIDEO_SUFFIXES = (".flv", ".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")


class PredictError(CremaToolsError):
    """A video that cannot be used at all for this model (no frame for a vision model, no audio for an audio model)."""


@dataclass
class Prediction:
    path: str
    probabilities: dict[str, float]
    notes: list[str] = field(default_factory=list)  # what was missing and what was done instead

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    def to_dict(self) -> dict:
        return {"path": self.path, "emotion": self.emotion, "probabilities": self.probabilities, "notes": self.notes}


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
    renderer = get_renderers([cfg.variant])[0]
    f = extract_file(video, bind_steps(renderer.steps), wav=wav)
    notes = []
    if "mel" in f.errors and "mel" in renderer.steps:
        if renderer.variant.modality == "audio":
            raise PredictError(f"{video}: no usable audio ({f.errors['mel']}); pass --wav, or use a vision model")
        notes.append(f"no usable audio ({f.errors.pop('mel')}): the spectrogram part is blank (silence)")
    vision_steps = [s for s in renderer.steps if s != "mel"]
    failed = [f.errors[s] for s in vision_steps if s in f.errors]
    if failed:
        raise PredictError(f"{video}: {failed[0]}")
    if renderer.uses_face:
        f.face = detect_faces([f.middle_frame])[0]
        if not f.face.found:
            notes.append("no face found in the middle frame: the centre square was used, as the build does")
    if f.mel_db is None and "mel" in renderer.steps:  # silence: the floor everywhere, as the ablations blank it
        columns = int(f.video_duration * spectrogram.SAMPLE_RATE / spectrogram.HOP_LENGTH) + 1
        f.mel_db = np.full((spectrogram.N_MELS, columns), -spectrogram.TOP_DB, np.float32)
        f.audio_duration = f.video_duration
    members = renderer.render(f)
    meta = {"clip_id": video.name, **(renderer.metadata(f) if renderer.metadata else {})}
    batch = collate([sample_item(members, meta, LoadOptions(**cfg.load_options()))])
    return to_model_input(batch, cfg.mean, cfg.std, device), notes


@torch.no_grad()
def predict(model, videos, wav: Path | None = None, device: str | None = None) -> list[Prediction]:
    """Probabilities of the six emotions for each video (one at a time: clips differ in length)."""
    model.eval()
    cfg = model.pretrained_cfg
    out = []
    for video in map(Path, videos):
        inputs, notes = model_input(video, cfg, wav, device)
        probs = model(inputs).float().softmax(-1)[0].tolist()
        out.append(Prediction(str(video), dict(zip(cfg.label_names or EMOTIONS, probs)), notes))
    return out


def as_json(predictions: list[Prediction]) -> str:
    return json.dumps([p.to_dict() for p in predictions], indent=2)

