"""DeepMindRMSprop against a hand-written transcription of NeuralQLearner.lua's update."""

from __future__ import annotations

import copy

import torch
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

from sb3_dqn_atari import DeepMindRMSprop


def _lua_reference(w: torch.Tensor, grads: list[torch.Tensor], lr: float, alpha: float, eps: float) -> torch.Tensor:
    """The Lua code line by line, in float64: g, g2 start at zero; dw is the ascent direction (-grad)."""
    w = w.double().clone()
    g = torch.zeros_like(w)
    g2 = torch.zeros_like(w)
    for grad in grads:
        dw = -grad.double()
        g = g * alpha + (1 - alpha) * dw
        g2 = g2 * alpha + (1 - alpha) * dw * dw
        tmp = torch.sqrt(g2 - g * g + eps)
        w = w + lr * dw / tmp
    return w


def _run(optimizer_cls: type[torch.optim.Optimizer], w0: torch.Tensor, grads: list[torch.Tensor], **kw: float):
    w = torch.nn.Parameter(w0.clone())
    opt = optimizer_cls([w], **kw)
    for grad in grads:
        opt.zero_grad()
        w.grad = grad.clone()
        opt.step()
    return w.detach()


def _data(seed: int = 0, steps: int = 6) -> tuple[torch.Tensor, list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    w0 = torch.randn(50, generator=gen)
    # gradient scales like a DQN's summed loss: of order 0.01 to 1
    grads = [torch.randn(50, generator=gen) * 0.3 for _ in range(steps)]
    return w0, grads


def test_matches_the_lua_update() -> None:
    w0, grads = _data()
    ours = _run(DeepMindRMSprop, w0, grads, lr=2.5e-4, alpha=0.95, eps=0.01)
    ref = _lua_reference(w0, grads, lr=2.5e-4, alpha=0.95, eps=0.01)
    torch.testing.assert_close(ours.double(), ref, rtol=0, atol=1e-6)
    # the weights moved by far more than the tolerance
    assert (ours - w0).abs().max() > 1e-3


def test_defaults_are_table_1() -> None:
    opt = DeepMindRMSprop([torch.nn.Parameter(torch.zeros(1))])
    assert opt.defaults == {"lr": 2.5e-4, "alpha": 0.95, "eps": 0.01}


def test_differs_from_torch_centered_rmsprop_and_sb3_tf_like() -> None:
    w0, grads = _data(1)
    ref = _lua_reference(w0, grads, lr=2.5e-4, alpha=0.95, eps=0.01).float()
    torch_centered = _run(torch.optim.RMSprop, w0, grads, lr=2.5e-4, alpha=0.95, eps=0.01, centered=True)
    tf_like = _run(RMSpropTFLike, w0, grads, lr=2.5e-4, alpha=0.95, eps=0.01, centered=True)
    assert (torch_centered - ref).abs().max() > 1e-4
    assert (tf_like - ref).abs().max() > 1e-5


def test_mean_loss_with_eps_over_b_squared_is_the_summed_update() -> None:
    """Gradients B times smaller with eps / B**2 give the same steps (the NatureDQN configuration)."""
    w0, grads = _data(2)
    batch = 32
    summed = _lua_reference(w0, grads, lr=2.5e-4, alpha=0.95, eps=0.01)
    mean = _run(DeepMindRMSprop, w0, [g / batch for g in grads], lr=2.5e-4, alpha=0.95, eps=0.01 / batch**2)
    torch.testing.assert_close(mean.double(), summed, rtol=0, atol=1e-6)


def test_state_roundtrip() -> None:
    w0, grads = _data(3)
    w = torch.nn.Parameter(w0.clone())
    opt = DeepMindRMSprop([w])
    for grad in grads[:3]:
        w.grad = grad.clone()
        opt.step()
    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = DeepMindRMSprop([w2])
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as torch.save / torch.load would
    for grad in grads[3:]:
        w.grad = grad.clone()
        w2.grad = grad.clone()
        opt.step()
        opt2.step()
    assert torch.equal(w, w2)
