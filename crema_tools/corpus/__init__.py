"""The corpus described once: clip ids, labels, actors, official files, known issues, splits."""

from .clips import EMOTION_NAMES, EMOTIONS, INTENSITIES, OGM_GE_CLASS_ORDER, SENTENCES, Clip, ClipIdError
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
    ogm_ge_rows,
    ogm_ge_split,
    unusable_reason,
    votes,
)
from .splits import (
    DEFAULT_FOLDS,
    PROTOCOLS,
    SplitError,
    assign_splits,
    check_fold,
    get_protocol,
    in_holdout,
)

__all__ = [
    "EMOTIONS", "EMOTION_NAMES", "INTENSITIES", "OGM_GE_CLASS_ORDER", "SENTENCES", "Clip", "ClipIdError",
    "MEDIA_DIRS",
    "actors", "audeering_speaker_split", "known_issues", "known_issues_by_file", "manifest",
    "media_relpath", "official_clip_ids", "official_clips", "ogm_ge_rows", "ogm_ge_split",
    "unusable_reason", "votes", "DEFAULT_FOLDS", "PROTOCOLS", "SplitError", "assign_splits",
    "in_holdout", "check_fold", "get_protocol",
]
