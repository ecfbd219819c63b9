"""The `json` member of every sample: one type, the function that builds it, and its schema.

The builder writes it, the loader and `inspect` read it, the dataset card declares it (as Hugging
Face feature dtypes). A representation's own fields (`Representation.metadata_fields`) come on
top of the common ones; `cls` holds the label index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from ..corpus import Clip, actors

SAMPLE_FIELDS: dict[str, object] = {
    "clip_id": "string", "actor_id": "int64", "actor_sex": "string", "sentence": "string",
    "emotion": "string", "intensity": "string", "label": "int64", "split": "string",
    "face_box": {"sequence": "float64"}, "face_probability": "float64", "face_found": "bool",
    "audio_source": "string", "duration_s": "float64", "source": "string", "variant": "string",
}
"""The common fields, as Hugging Face feature dtypes (the card's `dataset_info`)."""


@dataclass(frozen=True)
class SampleMetadata:
    """What every sample says about itself; `own` holds its representation's fields."""

    clip_id: str
    actor_id: int
    actor_sex: str
    sentence: str
    emotion: str
    intensity: str
    label: int
    split: str
    face_box: list[float] | None
    face_probability: float | None
    face_found: bool | None
    audio_source: str | None
    duration_s: float
    source: str  # "crema-d" or "synthetic"
    variant: str
    own: dict = field(default_factory=dict)

    @classmethod
    def of(cls, features, split: str, rep, source: str) -> "SampleMetadata":
        """The metadata of a clip's sample of `rep` (a Representation), from its extracted features."""
        clip = Clip.parse(features.clip_id)
        face = features.get("face") if rep.uses_face else None
        return cls(
            clip_id=features.clip_id, actor_id=clip.actor_id, actor_sex=actors()[clip.actor_id].sex,
            sentence=clip.sentence, emotion=clip.emotion, intensity=clip.intensity, label=clip.label, split=split,
            face_box=list(face.box) if face and face.box else None,
            face_probability=face.probability if face else None,
            face_found=face.found if face else None,
            audio_source=features.get("audio_source") if rep.has_audio else None,
            duration_s=round(features.get("video_duration") or features.get("audio_duration") or 0.0, 3),
            source=source, variant=rep.name, own=rep.sample_fields(features),
        )

    def to_dict(self) -> dict:
        common = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "own"}
        return {**common, **self.own}

    def to_json(self) -> bytes:
        """The member's bytes: keys sorted, no NaN, so a rebuild is byte-identical."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False).encode()

    @classmethod
    def from_json(cls, blob: bytes | str) -> "SampleMetadata":
        data = json.loads(blob)
        common = {f.name for f in fields(cls) if f.name != "own"}
        return cls(**{k: data.get(k) for k in common}, own={k: v for k, v in data.items() if k not in common})


assert [f.name for f in fields(SampleMetadata)][:-1] == list(SAMPLE_FIELDS), "the schema lists the type's fields"
