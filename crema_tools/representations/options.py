"""The load options of the reference paper's representations, shared by its 2D and 3D ones."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LoadError
from .base import option

DTYPES = ("float32", "uint8", "planes")
MULTIMODAL_LAYOUTS = ("wide", "squeezed")
"""3d-multimodal frames: frame | chunk at 224 + 224 ("wide", the paper's 3D CNNs) or 208 + 16
("squeezed", the paper's VideoMAE input)."""


@dataclass(frozen=True)
class LoadOptions:
    """How the paper's samples become tensors; each representation refuses what does not apply to it."""

    channels: int = option(3, "the reference paper's configs")  # 1 (grayscale) or 3 (RGB)
    pad_to: int | None = option(None, "3D configs")  # 3D: pad each clip at the end with blank frames to this length
    sample_frames: int | None = option(None, "3D configs")  # 3D: take this many frames evenly spread over the clip
    multimodal_layout: str | None = option(None, "3d-multimodal")  # 3d-multimodal: "wide" (default) or "squeezed"
    dtype: str = option("float32", "the reference paper's configs")  # "float32" in [0, 1], "uint8" in [0, 255], or "planes"

    def check(self) -> "LoadOptions":
        """The checks that hold for every representation taking these options."""
        if self.channels not in (1, 3):
            raise LoadError(f"channels must be 1 (grayscale) or 3 (RGB), not {self.channels}")
        if self.dtype not in DTYPES:
            raise LoadError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        return self

    @property
    def frame_options(self) -> dict:
        return {k: v for k, v in (("pad_to", self.pad_to), ("sample_frames", self.sample_frames)) if v is not None}
