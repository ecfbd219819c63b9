"""The device side of loading: the loader's compact batches to the normalised floats a model takes.

Loading workers hand over compact tensors and the GPU does the arithmetic, inside the training or
evaluation step:
- `uint8` inputs (4x less to copy and pin than float32) are scaled and normalised;
- the `planes` form of 3D clips (the stored YUV 4:2:0 planes and the mel, unpadded: 16x less
  than wide float32 per frame, padding not sent, and far cheaper to decode) is converted to RGB,
  resized for the squeezed layout, cut into per-frame mel chunks, padded with blank frames and
  normalised.
Every path gives the float32 path's tensors up to rounding: uint8 within 3 grey levels, planes
within float rounding (tested).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch

from .loading import resize_matrix
from .spectrogram import TOP_DB
from .video3d import YUV_TO_RGB


def to_model_input(batch: dict | torch.Tensor, mean: Sequence[float], std: Sequence[float],
                   device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                   blank: str | None = None) -> torch.Tensor:
    """The model's input for a collated batch (any dtype of `crema_tools.load`) or an inputs tensor:
    `(x - mean) / std` per channel on `device`, (B, C, H, W) or (B, T, C, H, W).

    `blank="audio"` or `"vision"` zeroes that part of a multimodal input first (the ablations).
    Blank (padded) frames are normalised like any black frame, as the paper's 3D CNNs saw them.
    """
    x = unit_inputs(batch, device)
    if blank is not None:
        x = blank_part(x, blank, _frame_width(batch, x))
    return normalise(x, mean, std, dtype)


def unit_inputs(batch: dict | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """The batch's inputs on `device`: as float in [0, 1] when assembled from planes, else as loaded."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True) if device is not None else batch
    if "inputs" in batch:
        return unit_inputs(batch["inputs"], device)
    return assemble(batch, device)


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`(x / 255 if uint8 else x) - mean) / std` per channel, for (B, C, H, W) or (B, T, C, H, W)."""
    scale = 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0
    x = x.to(dtype)
    shape = (-1, 1, 1) if x.ndim == 4 else (1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=dtype, device=x.device).view(*shape)
    std_t = torch.as_tensor(std, dtype=dtype, device=x.device).view(*shape)
    return (x * scale - mean_t) / std_t


def assemble(batch: dict, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, L, C, 224, W) float in [0, 1] from a collated `dtype="planes"` batch, on `device`.

    The loader's float32 path does the same on the CPU (`crema_tools.loading.clip_tensor`): frame |
    chunk side by side, real frames first (`mask`), blank frames after.
    """
    geometry = {k: int(v.flatten()[0]) for k, v in batch["geometry"].items()}
    frame_w, chunk_w = geometry["frame_width"], geometry["chunk_width"]
    mask = batch["mask"].to(device, non_blocking=True)
    parts = []
    if "planes" in batch:
        planes = batch["planes"].to(device, non_blocking=True)
        if frame_w != planes.shape[-1]:
            planes = resize_planes(planes, frame_w)
        parts.append(yuv420_to_rgb(planes))
    if "mel" in batch:
        chunks = mel_chunks(batch["mel"].to(device, non_blocking=True), batch["chunks"].to(device, non_blocking=True), chunk_w)
        parts.append(chunks[:, :, None].expand(-1, -1, 3, -1, -1))
    real = torch.cat(parts, dim=-1)  # (B, T', 3, 224, W), T' the batch's most real frames
    b, t = real.shape[:2]
    out = real.new_zeros((b, mask.shape[1], *real.shape[2:]))
    out[:, :t] = real * mask[:, :t, None, None, None]
    if geometry["channels"] == 1:
        out = out.mean(dim=2, keepdim=True)
    return out


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
    (as `crema_tools.loading.mel_chunks`)."""
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


def blank_part(inputs: torch.Tensor, part: str, frame_width: int) -> torch.Tensor:
    """The multimodal input with one modality blanked (zeros, i.e. black images), for ablations.

    `part` is "audio" (the spectrogram half, from column `frame_width` on) or "vision" (the face
    or frame half, the first `frame_width` columns). Works before normalisation, so a blanked part
    looks like the padding the models already know.
    """
    out = inputs.clone()
    if part == "audio":
        out[..., frame_width:] = 0
    elif part == "vision":
        out[..., :frame_width] = 0
    else:
        raise ValueError(f"part must be 'audio' or 'vision', not {part!r}")
    return out


def _frame_width(batch: dict | torch.Tensor, inputs: torch.Tensor) -> int:
    """Columns of the vision part: from the planes form's geometry, else half the width (2D and wide 3D)."""
    if isinstance(batch, dict) and "geometry" in batch:
        return int(batch["geometry"]["frame_width"].flatten()[0])
    return inputs.shape[-1] // 2
