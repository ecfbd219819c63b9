"""Weight helpers shared by the encoders: safe file reading and the grayscale adaptation."""

import os
from collections.abc import Mapping

import torch
from torch import nn

from .config import ModelZooError


def read_state_dict(source: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from `.safetensors` or a torch file, never running pickled code.

    Torch files go through `torch.load(weights_only=True)`, which accepts tensors and plain
    containers only, so a tampered checkpoint raises instead of executing. A `{"state_dict": ...}`
    wrapper (common in training checkpoints) is unwrapped, and a DataParallel `module.` prefix is
    dropped.
    """
    path = os.fspath(source)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path, device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelZooError(f"{path} does not hold a state dict of tensors")
    if state and all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return dict(state)


def sum_rgb_filters(weight: torch.Tensor) -> torch.Tensor:
    """Collapse a first-layer filter bank from RGB to one input channel by summing.

    A grey image replicated to three channels then gives exactly the pretrained response, which is
    the usual way to reuse ImageNet filters on grayscale input.
    """
    if weight.ndim < 3 or weight.shape[1] != 3:
        raise ModelZooError(f"expected RGB filters (out, 3, ...), got {tuple(weight.shape)}")
    return weight.sum(dim=1, keepdim=True)


def conv_with_in_channels(conv: nn.Conv2d | nn.Conv3d, in_channels: int) -> nn.Conv2d | nn.Conv3d:
    """`conv` taking `in_channels` inputs: itself for 3, its filters summed (`sum_rgb_filters`) for 1."""
    if in_channels == conv.in_channels:
        return conv
    if in_channels != 1 or conv.groups != 1:
        raise ModelZooError(f"can only adapt an ungrouped RGB conv to 1 channel, not to {in_channels}")
    adapted = type(conv)(
        1,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        adapted.weight.copy_(sum_rgb_filters(conv.weight))
        if conv.bias is not None:
            adapted.bias.copy_(conv.bias)
    return adapted
