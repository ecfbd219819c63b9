"""Media primitives: reading FLV and WAV files and saying why one is unusable (`decode`), Git LFS
pointers (`lfs`), MTCNN faces (`faces`), the paper's mel (`spectrogram`), the 24 fps grid and YUV
planes (`video3d`). The names of `decode` are kept here too (`crema_tools.media.read_wav`, ...)."""

from .decode import (  # noqa: F401
    EXPECTED_FORMAT,
    MAX_CLIP_SECONDS,
    MIN_CLIP_SECONDS,
    MIN_DYNAMIC_RANGE_DB,
    TRUNCATED_BELOW,
    Audio,
    MediaError,
    check_file,
    mel_dynamic_range_db,
    read_all_frames,
    read_flv_audio,
    read_middle_frame,
    read_wav,
    sniff_format,
)
