"""The corpus described once: clip ids, labels, actors, official files, known issues, splits."""

from .clips import EMOTION_NAMES, EMOTIONS, INTENSITIES, SENTENCES, Clip, ClipIdError
from .metadata import (
    MEDIA_DIRS,
    actors,
    audeering_speaker_split,
    known_issues,
    known_issues_by_file,
    manifest,
    media_relpath,
    official_clip_ids,
    official_clips,
    unusable_reason,
    votes,
)
from .splits import PROTOCOLS, SplitError, assign_splits

__all__ = [
    "EMOTIONS", "EMOTION_NAMES", "INTENSITIES", "SENTENCES", "Clip", "ClipIdError", "MEDIA_DIRS",
    "actors", "audeering_speaker_split", "known_issues", "known_issues_by_file", "manifest",
    "media_relpath", "official_clip_ids", "official_clips", "unusable_reason", "votes",
    "PROTOCOLS", "SplitError", "assign_splits",
]
