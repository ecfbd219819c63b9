"""Small pictures of stored media for people to look at: what `inspect`'s contact sheets are made of.

Each representation composes its own preview from these panels (an image, a strip of video
frames, a spectrogram); nothing here knows which representation a member belongs to.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

THUMB = 160  # height of an image panel
STRIP_FRAMES = 6
FRAME = 96  # side of one frame of a video strip
SPEC_H, SPEC_W = 128, 384  # a spectrogram panel (its width follows a strip above it when there is one)
GAP = 2
PANEL_GAP = 4
BACKGROUND, WARN = (255, 255, 255), (200, 0, 0)


@lru_cache(maxsize=None)
def font(size: int = 13) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def image_panel(blob: bytes) -> Image.Image:
    """An encoded image (PNG, JPEG) scaled to the panel height."""
    img = Image.open(io.BytesIO(blob)).convert("RGB")
    return img.resize((max(1, round(img.width * THUMB / img.height)), THUMB), Image.BILINEAR)


def video_frames(blob: bytes) -> list[np.ndarray]:
    import av

    from .decode import frame_array

    with av.open(io.BytesIO(blob)) as container:
        return [frame_array(f) for f in container.decode(video=0)]


def frames_strip(frames: Sequence[np.ndarray], n: int = STRIP_FRAMES) -> Image.Image:
    """`n` frames evenly spaced from the first to the last, side by side."""
    if not len(frames):
        raise ValueError("no video frames")
    picks = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    strip = Image.new("RGB", (FRAME * n + GAP * (n - 1), FRAME), BACKGROUND)
    for i, idx in enumerate(picks):
        strip.paste(Image.fromarray(frames[idx]).resize((FRAME, FRAME), Image.BILINEAR), (i * (FRAME + GAP), 0))
    return strip


def video_panel(blob: bytes, n: int = STRIP_FRAMES) -> Image.Image:
    """A strip of frames of an encoded video."""
    return frames_strip(video_frames(blob), n)


def array_panel(blob: bytes, low: float, high: float, width: int = SPEC_W) -> Image.Image:
    """A (frequency, time) `.npy` array as an image, `low`..`high` -> black..white, low frequencies at the bottom."""
    values = np.load(io.BytesIO(blob), allow_pickle=False).astype(np.float32)
    img = np.flipud(np.clip((values - low) * (255.0 / (high - low)), 0, 255)).round().astype(np.uint8)
    return Image.fromarray(img).convert("RGB").resize((width, SPEC_H), Image.BILINEAR)


def placeholder(text: str, size: tuple[int, int] = (THUMB, THUMB)) -> Image.Image:
    img = Image.new("RGB", size, (230, 230, 230))
    ImageDraw.Draw(img).text((6, size[1] // 2 - 8), text[:40], fill=WARN, font=font(11))
    return img


def stacked(panels: Sequence[Image.Image]) -> Image.Image:
    """Panels top to bottom, left-aligned."""
    out = Image.new("RGB", (max(p.width for p in panels), sum(p.height for p in panels) + PANEL_GAP * (len(panels) - 1)),
                    BACKGROUND)
    y = 0
    for p in panels:
        out.paste(p, (0, y))
        y += p.height + PANEL_GAP
    return out
