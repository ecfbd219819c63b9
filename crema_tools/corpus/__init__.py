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
from .split_files import SplitFile, SplitFileError, read_split_file
from .splits import (
    DEFAULT_FOLDS,
    PROTOCOLS,
    SPLIT_FILE,
    SplitError,
    assign_splits,
    check_fold,
    get_protocol,
    in_holdout,
    left_out_reason,
    protocol_names,
    resolve_protocol,
)

__all__ = [
    "EMOTIONS", "EMOTION_NAMES", "INTENSITIES", "OGM_GE_CLASS_ORDER", "SENTENCES", "Clip", "ClipIdError",
    "MEDIA_DIRS",
    "actors", "audeering_speaker_split", "known_issues", "known_issues_by_file", "manifest",
    "media_relpath", "official_clip_ids", "official_clips", "ogm_ge_rows", "ogm_ge_split",
    "unusable_reason", "votes", "DEFAULT_FOLDS", "PROTOCOLS", "SplitError", "assign_splits",
    "in_holdout", "SPLIT_FILE", "SplitFile", "check_fold", "SplitFileError", "get_protocol", "left_out_reason",
    "protocol_names", "read_split_file", "resolve_protocol",
]
