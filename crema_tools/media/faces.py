"""Face boxes (and five landmarks) from facenet-pytorch's MTCNN, batched; the square crop the paper
trains on; the similarity transform that aligns a face's landmarks onto a template."""

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
    points: tuple[tuple[float, float], ...] | None = None  # MTCNN's five (x, y): eyes, nose, mouth corners; if asked

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


def detect_faces(frames: Sequence[np.ndarray], device: str | None = None, landmarks: bool = False) -> list[Face]:
    """The most probable face of each RGB frame; frames of one size go through MTCNN as one batch.
    With `landmarks`, each face also has MTCNN's five points (the same boxes either way)."""
    out: list[Face | None] = [None] * len(frames)
    by_shape: dict[tuple, list[int]] = {}
    for i, f in enumerate(frames):
        by_shape.setdefault(f.shape, []).append(i)
    mtcnn = _mtcnn(device or default_device())
    for indices in by_shape.values():
        batch = np.stack([frames[i] for i in indices])
        boxes, probs, *points = mtcnn.detect(batch, landmarks=True) if landmarks else mtcnn.detect(batch)
        for i, b, p, pts in zip(indices, boxes, probs, points[0] if points else [None] * len(indices)):
            if b is None or len(b) == 0 or p[0] is None:
                out[i] = Face(None, 0.0)
            else:
                five = tuple((round(float(x), 2), round(float(y), 2)) for x, y in pts[0]) if pts is not None else None
                out[i] = Face(tuple(round(float(v), 2) for v in b[0]), round(float(p[0]), 5), five)
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


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation; no reflection) that maps the points
    `src` (N, 2) closest to `dst` (N, 2) in least squares: Umeyama's closed form (IEEE TPAMI 13(4),
    1991, eq. 40-42), as scikit-image's SimilarityTransform.estimate and OpenFace's
    AlignShapesWithScale compute it. A dozen lines of NumPy, so neither OpenCV nor scikit-image is
    needed for five points; tests check it against the textbook linear least-squares solution."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:  # the best fit would mirror the face: take the best rotation instead
        sign[1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    var_s = (s**2).sum() / len(src)
    scale = (sigma * sign).sum() / var_s if var_s > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = scale * rotation
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def warp(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8: `frame` (H, W, 3) uint8 under the 2x3 `matrix` (frame -> output
    coordinates), sampled bilinearly (Pillow's affine transform; black outside the frame)."""
    from PIL import Image

    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    return np.asarray(Image.fromarray(frame).transform((size, size), Image.AFFINE, tuple(inverse.ravel()),
                                                       resample=Image.BILINEAR))
