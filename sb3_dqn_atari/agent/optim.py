"""DeepMind's RMSProp, as ``dqn/NeuralQLearner.lua`` applied it (Mnih et al. 2015).

Extended Data Table 1: learning rate 0.00025, gradient momentum 0.95, squared gradient momentum 0.95,
min squared gradient 0.01. The Lua code (``qLearnMinibatch``)::

    g  = 0.95 * g  + 0.05 * dw
    g2 = 0.95 * g2 + 0.05 * dw^2
    w  = w + lr * dw / sqrt(g2 - g^2 + 0.01)

with ``dw`` the ascent direction (the negative loss gradient) and ``g``, ``g2`` starting at zero.
It is neither ``torch.optim.RMSprop(centered=True)`` (which adds ``eps`` *outside* the square root) nor
SB3's ``RMSpropTFLike`` (whose squared average starts at ones). No momentum, no weight decay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer


class DeepMindRMSprop(Optimizer):
    """Centered RMSProp with ``eps`` inside the square root and zero-initialised statistics.

    :param params: parameters to optimise
    :param lr: step size (Table 1: 0.00025)
    :param alpha: decay of both running averages, ``g`` and ``g2`` (Table 1: 0.95)
    :param eps: added to ``g2 - g^2`` inside the square root (Table 1, "min squared gradient": 0.01).
        With a loss *averaged* over a batch of ``B`` instead of DeepMind's *summed* loss, pass
        ``0.01 / B**2`` to get the identical update (the gradients are ``B`` times smaller).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 2.5e-4,
        alpha: float = 0.95,
        eps: float = 0.01,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"Invalid alpha: {alpha}")
        if eps <= 0.0:
            raise ValueError(f"Invalid eps: {eps}")
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps})
        # sqrt(g2 - g^2 + eps) of each parameter, computed into the same buffer every step: a fresh
        # tensor per step costs page faults on the CPU (the Nature network's 1.6M-weight layer: ~3 ms).
        # Scratch only, not optimizer state: not saved, rebuilt on demand.
        self._denoms: dict[torch.Tensor, torch.Tensor] = {}

    def _denom(self, param: torch.Tensor) -> torch.Tensor:
        denom = self._denoms.get(param)
        if denom is None or denom.shape != param.shape or denom.device != param.device:
            denom = self._denoms[param] = torch.empty_like(param, memory_format=torch.preserve_format)
        return denom

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, grad_avgs, square_avgs = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("DeepMindRMSprop does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                grad_avgs.append(state["grad_avg"])
                square_avgs.append(state["square_avg"])
            if not params:
                continue
            alpha, eps, lr = group["alpha"], group["eps"], group["lr"]
            # g = alpha g + (1 - alpha) grad ; g2 = alpha g2 + (1 - alpha) grad^2
            torch._foreach_lerp_(grad_avgs, grads, 1.0 - alpha)
            torch._foreach_mul_(square_avgs, alpha)
            torch._foreach_addcmul_(square_avgs, grads, grads, value=1.0 - alpha)
            # denom = sqrt(g2 - g^2 + eps)
            denom = [self._denom(p) for p in params]
            for out, square_avg, grad_avg in zip(denom, square_avgs, grad_avgs, strict=True):
                torch.addcmul(square_avg, grad_avg, grad_avg, value=-1.0, out=out)
            torch._foreach_add_(denom, eps)
            torch._foreach_sqrt_(denom)
            # theta = theta - lr grad / denom
            torch._foreach_addcdiv_(params, grads, denom, value=-lr)
        return loss
