"""Face boxes from facenet-pytorch's MTCNN, batched, and the square crop the paper trains on."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

MIN_FACE_SIZE = 40
"""CREMA-D faces span well over 100 px of the 480x360 frame; skipping tiny pyramid levels saves time."""
CROP_MARGIN = 0.2
"""Share of the box's longer side added around it, so the crop keeps the chin and forehead."""


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float] | None  # x0, y0, x1, y1 in frame pixels; None if not found
    probability: float

    @property
    def found(self) -> bool:
        return self.box is not None


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=2)
def _mtcnn(device: str):
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=False, min_face_size=MIN_FACE_SIZE, device=device, post_process=False)


def detect_faces(frames: Sequence[np.ndarray], device: str | None = None) -> list[Face]:
    """The most probable face of each RGB frame; frames of one size go through MTCNN as one batch."""
    out: list[Face | None] = [None] * len(frames)
    by_shape: dict[tuple, list[int]] = {}
    for i, f in enumerate(frames):
        by_shape.setdefault(f.shape, []).append(i)
    mtcnn = _mtcnn(device or default_device())
    for indices in by_shape.values():
        boxes, probs = mtcnn.detect(np.stack([frames[i] for i in indices]))
        for i, b, p in zip(indices, boxes, probs):
            if b is None or len(b) == 0 or p[0] is None:
                out[i] = Face(None, 0.0)
            else:
                out[i] = Face(tuple(round(float(v), 2) for v in b[0]), round(float(p[0]), 5))
    return out  # type: ignore[return-value]


def square_crop_box(face: Face, width: int, height: int) -> tuple[int, int, int, int]:
    """A square around the face with a margin, kept inside the frame; the centre square if no face."""
    if face.box is None:
        side = min(width, height)
        x0, y0 = (width - side) // 2, (height - side) // 2
        return x0, y0, x0 + side, y0 + side
    x0, y0, x1, y1 = face.box
    side = min(int(round(max(x1 - x0, y1 - y0) * (1 + CROP_MARGIN))), width, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, left + side, top + side


def crop_resize(frame: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    from PIL import Image

    x0, y0, x1, y1 = box
    return np.asarray(Image.fromarray(frame[y0:y1, x0:x1]).resize((size, size), Image.BILINEAR))
