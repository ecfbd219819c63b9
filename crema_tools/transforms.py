"""The device side of loading: uint8 or float inputs to the normalised floats a model takes.

Loading workers hand over compact tensors (uint8 is 4x less to copy and pin than float32); the
conversion, the normalisation and any channel handling happen here, on the GPU, inside the
training or evaluation step. The float32 and uint8 paths give the same tensors up to the uint8
rounding (half a grey level on each image, at most about 3 after the model's normalisation).
"""

from __future__ import annotations

from typing import Sequence

import torch


def to_model_input(inputs: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                   device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`(x / 255 if uint8 else x) - mean) / std` per channel, for (B, C, H, W) or (B, T, C, H, W).

    Blank (padded) frames stay where they are: a model that pads sees them as the loader made them,
    normalised like any other black frame, which is what the paper's 3D CNNs were given.
    """
    x = inputs.to(device, non_blocking=True) if device is not None else inputs
    scale = 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0
    x = x.to(dtype)
    shape = (-1, 1, 1) if x.ndim == 4 else (1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=dtype, device=x.device).view(*shape)
    std_t = torch.as_tensor(std, dtype=dtype, device=x.device).view(*shape)
    return (x * scale - mean_t) / std_t


def blank(inputs: torch.Tensor, part: str, frame_width: int) -> torch.Tensor:
    """The multimodal input with one modality blanked (zeros, i.e. black images), for ablations.

    `part` is "audio" (the spectrogram half, from column `frame_width` on) or "vision" (the face
    or frame half, the first `frame_width` columns). Works on the loader's tensors, before
    normalisation, so a blanked part looks like the padding the models already know.
    """
    out = inputs.clone()
    if part == "audio":
        out[..., frame_width:] = 0
    elif part == "vision":
        out[..., :frame_width] = 0
    else:
        raise ValueError(f"part must be 'audio' or 'vision', not {part!r}")
    return out
