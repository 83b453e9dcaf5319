"""The Nature DQN frame preprocessing, in numpy alone (no torch, no OpenCV).

This module is shared by the training wrapper (:mod:`sb3_dqn_atari.atari.wrappers`) and the PyTorch-free
ONNX runtime, so both produce the same bytes for the same raw frames.

What DeepMind's code did to one agent-step's frame (``alewrap`` + ``dqn/Scale.lua`` +
``dqn/TransitionTable.lua``, Mnih et al. 2015, Methods "Preprocessing"):

1. per-pixel maximum over the last two raw RGB frames of the action repeat (done by
   :class:`stable_baselines3.common.atari_wrappers.MaxAndSkipEnv` before this module);
2. ``image.rgb2y``: luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` on the float image in ``[0, 1]``;
3. ``image.scale(x, 84, 84, 'bilinear')``: the paper calls this a bilinear resize, but torch7's
   ``image`` package implements ``'bilinear'`` *downscaling* (210→84 and 160→84 are both downscales)
   as an area average: output pixel ``i`` is the mean of the source interval ``[i·s, (i+1)·s)``,
   ``s = src/dst``, with fractional end pixels weighted by their coverage (``scaleLinear_rowcol``,
   rows first, then columns). We follow the code, as the reference says to;
4. the replay memory stores ``byte(255 · y)``: a truncation, not a rounding.

Steps 2–4 are :func:`nature_frame`. The area weights are precomputed once per image size, so one
frame costs a handful of vectorised row gathers and multiply-adds (about 0.1 ms on one core).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Output side of the square frame (Nature 2015, Methods).
FRAME_SIZE = 84
#: ITU-R 601 luma weights used by torch7's ``image.rgb2y``.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Added before truncating to a byte, so float error never turns an exact integer ``v`` into ``v - 1``.
TRUNCATION_SLACK = 1e-3


@lru_cache(maxsize=16)
def torch7_scale_matrix(src_len: int, dst_len: int) -> np.ndarray:
    """The ``(dst_len, src_len)`` float64 matrix of torch7's 1-D ``'bilinear'`` resampling.

    For downscaling it is the coverage-weighted mean that ``scaleLinear_rowcol`` computes; for
    upscaling, the align-corners linear interpolation of the same C function; equal sizes copy.
    """
    weights = np.zeros((dst_len, src_len), dtype=np.float64)
    if dst_len == src_len:
        np.fill_diagonal(weights, 1.0)
    elif dst_len < src_len:
        scale = src_len / dst_len
        for di in range(dst_len):
            start, end = di * scale, (di + 1) * scale
            for si in range(int(np.floor(start)), min(int(np.ceil(end)), src_len)):
                coverage = min(end, si + 1) - max(start, si)
                if coverage > 0:
                    weights[di, si] = coverage
            weights[di] /= weights[di].sum()
    else:
        scale = (src_len - 1) / (dst_len - 1)
        for di in range(dst_len - 1):
            pos = di * scale
            si = int(pos)
            frac = pos - si
            weights[di, si] += 1.0 - frac
            if frac > 0:
                weights[di, si + 1] += frac
        weights[dst_len - 1, src_len - 1] = 1.0
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=16)
def _taps(src_len: int, dst_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero entries of :func:`torch7_scale_matrix` as ``(dst_len, k)`` source indices and weights.

    Each output pixel of an area downscale reads at most ``ceil(src/dst) + 1`` source pixels, so the resize is
    ``k`` gathers and multiply-adds instead of a dense matrix product (no BLAS, no thread pool: fast and
    predictable next to the training process's own threads).
    """
    weights = torch7_scale_matrix(src_len, dst_len)
    k = int((weights > 0).sum(axis=1).max())
    index = np.zeros((dst_len, k), dtype=np.intp)
    tap = np.zeros((dst_len, k), dtype=np.float32)
    for di in range(dst_len):
        nonzero = np.flatnonzero(weights[di])
        index[di, : nonzero.size] = nonzero
        index[di, nonzero.size :] = nonzero[-1]
        tap[di, : nonzero.size] = weights[di, nonzero]
    return index, tap


def resize_axis0(image: np.ndarray, out_len: int) -> np.ndarray:
    """torch7's 1-D ``'bilinear'`` resampling along the first axis of ``image`` (float32 result).

    Gathers along the first axis copy whole contiguous rows, which is what makes this fast; the other axis is
    resized by calling it on the transpose.
    """
    index, tap = _taps(image.shape[0], out_len)
    shape = (out_len,) + (1,) * (image.ndim - 1)
    out = tap[:, 0].reshape(shape) * image[index[:, 0]]
    for j in range(1, index.shape[1]):
        out += tap[:, j].reshape(shape) * image[index[:, j]]
    return out


def luminance(rgb: np.ndarray) -> np.ndarray:
    """``image.rgb2y`` on the 0–255 scale: float32 ``0.299 R + 0.587 G + 0.114 B`` of an ``(H, W, 3)`` image."""
    red, green, blue = (rgb[..., c].astype(np.float32) for c in range(3))
    return np.float32(LUMA_WEIGHTS[0]) * red + np.float32(LUMA_WEIGHTS[1]) * green + np.float32(LUMA_WEIGHTS[2]) * blue


def nature_frame(rgb: np.ndarray, size: int = FRAME_SIZE) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 RGB frame (already max-pooled) to the paper's ``(size, size)`` uint8 frame.

    Luminance, torch7 ``'bilinear'`` (area) downscale (rows first, then columns, as torch7), then truncation to
    a byte, as ``TransitionTable`` stored it. See the module docstring for the sources. The luminance and the
    resize are both linear, so the luminance is taken after the row pass (fewer pixels to weigh): the same value
    up to float32 rounding (``tests/test_wrappers.py`` compares with a float64 loop of the Lua order).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {rgb.shape}")
    rows = luminance(resize_axis0(rgb, size))  # (size, W)
    scaled = resize_axis0(np.ascontiguousarray(rows.T), size).T  # (size, size)
    # 255 * (y / 255) then byte(): truncation. A gray pixel (R = G = B = v) has Y = v exactly, which float
    # error can put at v - 1e-5; torch7's float32 result there depends on its rounding order, so we resolve
    # values within TRUNCATION_SLACK of an integer to that integer instead of to the one below.
    return np.clip(scaled + TRUNCATION_SLACK, 0.0, 255.0).astype(np.uint8)
