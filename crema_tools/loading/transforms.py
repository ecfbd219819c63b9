"""The device side of loading: the loader's compact batches to the normalised floats a model takes.

Loading workers hand over compact tensors and the GPU does the arithmetic, inside the training or
evaluation step:
- `uint8` inputs (4x less to copy and pin than float32) are scaled and normalised;
- the `planes` form of 3D clips (the stored YUV 4:2:0 planes and the mel, unpadded: 16x less
  than wide float32 per frame, padding not sent, and far cheaper to decode) is assembled by its
  representation (`Representation.assemble`: RGB, the squeezed resize, per-frame mel chunks,
  blank frames) and normalised.
Every path gives the float32 path's tensors up to rounding: uint8 within 3 grey levels, planes
within float rounding (tested).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..representations import get_representation


def to_model_input(batch: dict | torch.Tensor, mean: Sequence[float], std: Sequence[float],
                   device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                   blank: str | None = None) -> torch.Tensor:
    """The model's input for a collated batch (any dtype of `crema_tools.load`) or an inputs tensor:
    `(x - mean) / std` per channel on `device`, (B, C, H, W) or (B, T, C, H, W).

    `blank="audio"` or `"vision"` zeroes that part of a multimodal input first (the ablations).
    Blank (padded) frames are normalised like any black frame, as the paper's 3D CNNs saw them.
    """
    x = inputs_on_device(batch, device)
    if blank is not None:
        x = blank_part(x, blank, _frame_width(batch, x)) if not isinstance(x, dict) else {**x, blank: x[blank] * 0}
    if isinstance(x, dict):  # a representation's own parts (ogm-ge's audio and vision, a waveform and its length)
        return {k: normalise(v, mean, std, dtype) if v.is_floating_point() else v for k, v in x.items()}
    return normalise(x, mean, std, dtype)


def inputs_on_device(batch: dict | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """The batch's inputs on `device`, assembled by the batch's own representation (its `variant`):
    float in [0, 1] when made from a compact form (the 3D planes), else as loaded."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True) if device is not None else batch
    if "variant" in batch:
        return get_representation(batch["variant"][0]).assemble(batch, device)
    return inputs_on_device(batch["inputs"], device)


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`(x / 255 if uint8 else x) - mean) / std` per channel, for (B, C, H, W) or (B, T, C, H, W);
    floats with mean 0 and std 1 are returned as they are, whatever their shape."""
    scale = 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0
    x = x.to(dtype)
    if scale == 1.0 and all(m == 0 for m in mean) and all(v == 1 for v in std):
        return x  # inputs normalised by their representation (the ogm-ge config, a waveform): as they are
    shape = (-1, 1, 1) if x.ndim == 4 else (1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=dtype, device=x.device).view(*shape)
    std_t = torch.as_tensor(std, dtype=dtype, device=x.device).view(*shape)
    return (x * scale - mean_t) / std_t


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
