"""Stacked frames into the channels-last layout while they are still bytes (numerics unchanged).

With channels-last convolutions (:class:`~sb3_dqn_atari.agent.dqn.NatureDQN`'s ``channels_last``), the first conv
converts its NCHW input to NHWC: in SB3's ``QNetwork`` that input is already ``obs.float() / 255``, so the
permuted copy moves 4-byte floats, with ATen's generic strided copy. For a Nature update (two batches of
32 x 4 x 84 x 84) that copy was the largest overhead left: 12-22 % of the update on an AVX2 CPU (oneDNN
capped at AVX2, ``benchmarks/update_profile.py``).

:func:`channels_last_frames` makes the NHWC copy of the uint8 frames instead, one strided copy per channel
(few channels: 2-3x faster than the generic permuted copy of the floats); SB3's ``.float() / 255`` then keeps
that layout and the conv takes it as it is. The values are the same bytes, so the Q-values and updates are
bit-identical (``tests/test_layout.py``). :func:`convert_observations` installs it as a forward pre-hook on a
Q-network; it steps aside while the network is traced for export (ONNX, ``torch.export``, TorchScript).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

#: at most this many channels are copied one by one (stacked frames: 4 grey or 12 RGB)
MAX_CHANNELS = 16


def channels_last_frames(frames: torch.Tensor) -> torch.Tensor:
    """``frames`` ``(N, C, H, W)`` in channels-last memory (an ``(N, C, H, W)`` view of an NHWC tensor)."""
    n, c, h, w = frames.shape
    out = torch.empty((n, h, w, c), dtype=frames.dtype, device=frames.device)
    for channel in range(c):
        out[..., channel].copy_(frames[:, channel])
    return out.permute(0, 3, 1, 2)


def _exporting() -> bool:
    compiler = getattr(torch, "compiler", None)
    is_exporting = getattr(compiler, "is_exporting", None)
    return bool(
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or (is_exporting is not None and is_exporting())
    )


def _frames_to_channels_last(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    obs = args[0] if args else None
    if (
        not _exporting()
        and isinstance(obs, torch.Tensor)
        and obs.dtype == torch.uint8
        and obs.dim() == 4
        and obs.shape[1] <= MAX_CHANNELS
        and obs.is_contiguous()
        and not obs.is_contiguous(memory_format=torch.channels_last)  # (N, 1, H, W) is both: nothing to do
    ):
        return (channels_last_frames(obs), *args[1:])
    return None


def convert_observations(network: torch.nn.Module) -> RemovableHandle:
    """Give ``network`` its uint8 image observations in channels-last memory (see the module docstring)."""
    return network.register_forward_pre_hook(_frames_to_channels_last)
