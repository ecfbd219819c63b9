"""YUV 4:2:0 planes and mel chunks as torch operations, on any device, exact to the CPU path.

The 3D representations store frames as YUV planes and the whole mel; the device side turns a batch
of them into the models' RGB frames and per-frame mel chunks. Each function here equals its NumPy
or Pillow counterpart in the loader (tested), so the two paths give the same tensors.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .spectrogram import TOP_DB
from .video3d import YUV_TO_RGB


@lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out): a bilinear resize along one axis (align_corners=False) as a matrix."""
    eye = torch.eye(n_in)[None]
    return torch.nn.functional.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].numpy()


def yuv420_to_rgb(planes: torch.Tensor) -> torch.Tensor:
    """(..., H * 3 / 2, W) uint8 YUV 4:2:0 planes -> (..., 3, H, W) RGB in [0, 1], as `video3d.yuv_to_rgb`."""
    k = YUV_TO_RGB
    h, w = planes.shape[-2] * 2 // 3, planes.shape[-1]
    y = (planes[..., :h, :].float() - 16.0) * (k["y"] / 255.0)
    chroma = planes[..., h:, :].reshape(*planes.shape[:-2], 2, h // 2, w // 2).float() - 128.0
    chroma = chroma.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1) * (1.0 / 255.0)
    u, v = chroma[..., 0, :, :], chroma[..., 1, :, :]
    rgb = torch.stack([y + k["r_v"] * v, y - k["g_u"] * u - k["g_v"] * v, y + k["b_u"] * u], dim=-3)
    return rgb.clamp_(0.0, 1.0)


def resize_planes(planes: torch.Tensor, width: int) -> torch.Tensor:
    """Each frame's planes resized to `width` columns (height kept), exactly as the loader's PIL
    resize does it (`video3d.resize_yuv420`), so the squeezed layout is the same on either side."""
    h = planes.shape[-2] * 2 // 3
    y, chroma = planes[..., :h, :], planes[..., h:, :]
    chroma = chroma.reshape(*chroma.shape[:-2], h, chroma.shape[-1] // 2)  # U then V, each (h / 2, w / 2)
    y, chroma = _pil_bilinear_columns(y, width), _pil_bilinear_columns(chroma, width // 2)
    return torch.cat([y, chroma.reshape(*chroma.shape[:-2], h // 2, width)], dim=-2)


PIL_PRECISION_BITS = 22
"""Pillow's fixed point for 8-bit resampling (32 - 8 - 2 bits, Resample.c)."""


@lru_cache(maxsize=8)
def _pil_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_in, n_out) float64: Pillow's horizontal bilinear resampling as integer weights, its
    coefficients computed in double as Pillow does and rounded to `PIL_PRECISION_BITS` fixed point.
    Written out because torch's antialiased resize, though the same filter, rounds differently
    (by 1 in about 1% of pixels). Sums of weight x pixel stay below 2^31: exact in float64."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the triangle filter's support is 1
    matrix = torch.zeros((n_in, n_out), dtype=torch.float64)
    for xx in range(n_out):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in) - xmin
        w = [max(0.0, 1.0 - abs((x + xmin - center + 0.5) / filterscale)) for x in range(xmax)]
        total = sum(w)
        for x in range(xmax):
            k = w[x] / total if total != 0.0 else w[x]
            matrix[xmin + x, xx] = int(0.5 + k * (1 << PIL_PRECISION_BITS))  # k >= 0 for this filter
    return matrix


def _pil_bilinear_columns(x: torch.Tensor, width: int) -> torch.Tensor:
    """(..., H, W) uint8 -> (..., H, width): Pillow's integer arithmetic (round half up, clip to 0..255)."""
    matrix = _pil_bilinear_matrix(x.shape[-1], width).to(x.device)
    total = x.double() @ matrix + (1 << (PIL_PRECISION_BITS - 1))
    return (total / (1 << PIL_PRECISION_BITS)).floor_().clamp_(0, 255).to(torch.uint8)


def mel_chunks(mel_db: torch.Tensor, chunks: torch.Tensor, width: int, height: int = 224) -> torch.Tensor:
    """(B, T, height, width) in [0, 1]: the columns [start, stop) of each frame's `chunks` of the
    (B, M, C) mel in dB, resized to height x width bilinearly, low frequencies at the bottom
    (as the 3D representations' CPU `mel_chunks`)."""
    mel = ((mel_db.float() + TOP_DB) / TOP_DB).clamp_(0.0, 1.0)
    vertical = torch.from_numpy(resize_matrix(mel.shape[1], height)).to(mel.device)
    tall = torch.einsum("bmc,mh->bhc", mel, vertical).flip(1)
    # each output column j of a chunk of k columns reads source column start + (j + 0.5) k / width - 0.5,
    # linearly between its two neighbours (torch's and the loader's resize, written as a gather)
    start, k = chunks[..., :1].long(), (chunks[..., 1:] - chunks[..., :1]).clamp(min=1).long()  # (B, T, 1)
    pos = ((torch.arange(width, device=mel.device) + 0.5) * k / width - 0.5).clamp(min=0.0)  # (B, T, W)
    lo = pos.floor().long().minimum(k - 1)
    hi = (lo + 1).minimum(k - 1)
    frac = (pos - lo)[:, :, None, :]
    b, t = chunks.shape[:2]
    source = tall[:, None].expand(b, t, height, tall.shape[-1])

    def columns(index: torch.Tensor) -> torch.Tensor:
        return source.gather(3, (start + index)[:, :, None, :].expand(b, t, height, width))

    return columns(lo) * (1 - frac) + columns(hi) * frac
