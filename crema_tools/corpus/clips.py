"""CREMA-D clip ids: `<actor>_<sentence>_<emotion>_<intensity>`, e.g. `1001_DFA_ANG_XX`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import CremaToolsError

EMOTIONS: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
"""Label order of the reference paper: label index i is EMOTIONS[i]."""

OGM_GE_CLASS_ORDER: tuple[str, ...] = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
"""Label order of OGM-GE (GeWu-Lab, CVPR 2022) and the works built on its CREMA-D setup.

Their dataset code maps NEU, HAP, SAD, FEA, DIS, ANG to 0..5, so label index i there is
OGM_GE_CLASS_ORDER[i]. It differs from EMOTIONS: convert with
`EMOTIONS.index(OGM_GE_CLASS_ORDER[i])` before comparing predictions or confusion matrices.
"""

EMOTION_NAMES = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}

INTENSITIES = ("LO", "MD", "HI", "XX")

_CLIP_ID = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


class ClipIdError(CremaToolsError, ValueError):
    """A string that is not a CREMA-D clip id."""


@dataclass(frozen=True, order=True)
class Clip:
    """One clip of the corpus, parsed from its id."""

    actor_id: int
    sentence: str
    emotion: str
    intensity: str

    @classmethod
    def parse(cls, clip_id: str) -> "Clip":
        m = _CLIP_ID.match(clip_id)
        if not m:
            raise ClipIdError(
                f"{clip_id!r} is not a CREMA-D clip id: expected ACTOR_SENTENCE_EMOTION_INTENSITY "
                "such as 1001_DFA_ANG_XX"
            )
        actor, sentence, emotion, intensity = m.groups()
        problems = []
        if not 1001 <= int(actor) <= 1091:
            problems.append(f"actor {actor} is outside 1001-1091")
        if sentence not in SENTENCES:
            problems.append(f"sentence {sentence} is not one of {', '.join(SENTENCES)}")
        if emotion not in EMOTIONS:
            problems.append(f"emotion {emotion} is not one of {', '.join(EMOTIONS)}")
        if intensity not in INTENSITIES:
            problems.append(f"intensity {intensity} is not one of {', '.join(INTENSITIES)}")
        if problems:
            raise ClipIdError(f"{clip_id!r} is not a CREMA-D clip id: {'; '.join(problems)}")
        return cls(int(actor), sentence, emotion, intensity)

    @property
    def id(self) -> str:
        return f"{self.actor_id}_{self.sentence}_{self.emotion}_{self.intensity}"

    @property
    def label(self) -> int:
        return EMOTIONS.index(self.emotion)

    def __str__(self) -> str:
        return self.id
