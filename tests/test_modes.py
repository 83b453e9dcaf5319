"""NatureDQN's exact and fast modes: exact is plain float32; fast's changes are named and switchable."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import DQN

from sb3_dqn_atari import NatureDQN
from sb3_dqn_atari.agent.dqn import FAST_OPTIONS
from sb3_dqn_atari.agent.hardware import channels_last_pays
from tests.conftest import ROOT
from tests.fake_envs import TinyImageEnv


def _model(**kwargs: object) -> NatureDQN:
    settings: dict[str, object] = {"buffer_size": 500, "learning_starts": 100, "seed": 0, "device": "cpu"}
    settings["policy_kwargs"] = {"features_extractor_kwargs": {"features_dim": 32}}
    return NatureDQN("CnnPolicy", TinyImageEnv(), **{**settings, **kwargs})  # type: ignore[arg-type]


def _last_conv(model: NatureDQN) -> torch.nn.Conv2d:
    return [m for m in model.q_net.modules() if isinstance(m, torch.nn.Conv2d)][-1]  # C > 1: layouts differ


def test_exact_is_default_and_float32() -> None:
    model = _model()
    assert model.mode == "exact"
    assert not any(model._fast(option) for option in FAST_OPTIONS)
    with model._autocast():
        assert model.q_net(torch.zeros(2, 1, 36, 36, dtype=torch.uint8)).dtype == torch.float32
    # the conv layout is channels-last where it pays (a CPU with AVX2 or better), NCHW on request; float32 either way
    pays = channels_last_pays(model.capabilities)[0]
    assert _last_conv(model).weight.is_contiguous(memory_format=torch.channels_last) is pays
    assert _last_conv(_model(channels_last=True)).weight.is_contiguous(memory_format=torch.channels_last)
    model = _model(channels_last=True)
    nchw = _model(channels_last=False)
    assert _last_conv(nchw).weight.is_contiguous()
    assert not _last_conv(nchw).weight.is_contiguous(memory_format=torch.channels_last)
    nchw.policy.load_state_dict(model.policy.state_dict())
    obs = torch.randint(0, 256, (16, 1, 36, 36), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(model.q_net(obs), nchw.q_net(obs), rtol=1e-5, atol=1e-6)


def test_unknown_mode_or_option_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        _model(mode="fastest")
    with pytest.raises(ValueError, match="unknown fast_options"):
        _model(mode="fast", fast_options={"fp8": True})


#: fast mode's bf16 path, forced on: it runs (emulated) on any CPU; here only its effects are checked
BF16 = {"bf16_autocast": True, "channels_last": True}


def test_fast_mode_switches_apply(tmp_path: Path) -> None:
    model = _model(mode="fast", fast_options=BF16)
    assert _last_conv(model).weight.is_contiguous(memory_format=torch.channels_last)
    with model._autocast():
        q = model.q_net(torch.zeros(2, 1, 36, 36, dtype=torch.uint8))
    assert q.dtype == torch.bfloat16
    model.learn(300)
    assert model._n_updates > 0 and all(p.dtype == torch.float32 for p in model.q_net.parameters())
    model.save(tmp_path / "fast.zip")
    loaded = NatureDQN.load(tmp_path / "fast.zip", device="cpu")
    assert loaded.mode == "fast" and loaded.fast_options == model.fast_options == BF16
    assert loaded.fast_choices == model.fast_choices  # what the user set, the rest chosen again for the device

    off = _model(mode="fast", fast_options={"bf16_autocast": False})
    with off._autocast():
        assert off.q_net(torch.zeros(2, 1, 36, 36, dtype=torch.uint8)).dtype == torch.float32


def test_fast_q_values_stay_close_to_exact() -> None:
    """bf16 changes numerics a little, not the function: same weights, Q within bf16 precision."""
    exact, fast = _model(), _model(mode="fast", fast_options=BF16)
    fast.policy.load_state_dict(exact.policy.state_dict())
    obs = torch.randint(0, 256, (64, 1, 36, 36), dtype=torch.uint8)
    with torch.no_grad():
        q_exact = exact.q_net(obs)
        with fast._autocast():
            q_fast = fast.q_net(obs).float()
    scale = q_exact.abs().max()
    assert (q_fast - q_exact).abs().max() <= 0.02 * scale + 1e-3
    assert not torch.equal(q_fast, q_exact)  # it is a different numeric path


def _updates(model: NatureDQN, train: object, n: int = 4) -> list[torch.Tensor]:
    """Parameters after ``n`` calls of ``train(model, 1, 16)`` from the model's current state."""
    policy_state = {k: v.clone() for k, v in model.policy.state_dict().items()}
    optimizer_state = copy.deepcopy(model.policy.optimizer.state_dict())
    np.random.seed(123)  # the replay memory samples with numpy's global generator
    for _ in range(n):
        train(model, 1, 16)  # type: ignore[operator]
    after = [p.detach().clone() for p in model.policy.parameters()]
    model.policy.load_state_dict(policy_state)
    model.policy.optimizer.load_state_dict(optimizer_state)
    return after


@pytest.mark.parametrize("max_grad_norm", [math.inf, 0.05])
def test_update_is_sb3_train(max_grad_norm: float) -> None:
    """The overhead removed from the update changes nothing: SB3's own ``DQN.train`` on the same model, the
    same samples and the same optimizer gives bit-identical parameters (with the paper's infinite norm, where
    the clip call is skipped, and with a finite one, where SB3 clips)."""
    model = _model(max_grad_norm=max_grad_norm, learning_starts=1000)
    model.learn(300)  # fill the replay memory, no update yet
    assert model._n_updates == 0
    ours = _updates(model, NatureDQN.train)
    sb3 = _updates(model, DQN.train)
    assert all(torch.equal(a, b) for a, b in zip(ours, sb3, strict=True))
    moved = _updates(model, NatureDQN.train, n=1)
    before = [p.detach() for p in model.policy.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(moved, before, strict=True))
    assert "parameters" not in vars(model.policy)  # the skip is undone after the update


def test_fast_mode_acts_in_float32() -> None:
    """Action selection is one observation: fast mode leaves it float32 (casting the weights to bf16 for one
    observation costs more than it saves); the update is where bf16 applies."""
    model = _model(mode="fast", fast_options=BF16)
    dtypes: list[torch.dtype] = []
    model.q_net.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    observation = TinyImageEnv().reset(seed=0)[0]
    model.predict(observation, deterministic=True)
    assert dtypes == [torch.float32]
    model.learn(150)  # past learning_starts=100: updates run
    assert model._n_updates > 0 and torch.bfloat16 in dtypes


def test_fast_mode_where_nothing_pays_is_exact_mode() -> None:
    """With bf16 off (an AVX2-only CPU) and the rest as the device gives it, fast mode runs exact mode's
    computation: bit-identical weights after the same training. So it is never slower than exact mode there."""
    exact = _model(learning_starts=50)
    exact.learn(200)  # each model seeds the global RNGs when built: build, then train, one after the other
    fast = _model(learning_starts=50, mode="fast", fast_options={"bf16_autocast": False})
    assert not fast._fast("bf16_autocast") and not fast._fast("compile")
    assert fast._use_channels_last() == exact._use_channels_last()
    fast.learn(200)
    assert exact._n_updates == fast._n_updates > 0
    pairs = zip(exact.policy.state_dict().values(), fast.policy.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_fast_choices_are_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    model = _model(mode="fast", verbose=1, fast_options={"compile": False})
    model.learn(20)
    model.learn(20, reset_num_timesteps=False)
    out = capsys.readouterr().out
    assert out.count("fast mode on ") == 1
    line = next(line for line in out.splitlines() if line.startswith("fast mode on "))
    assert "compile off (set by fast_options)" in line and "bf16 " in line and "channels-last " in line
    _model(mode="exact", verbose=1).learn(20)
    assert "fast mode on" not in capsys.readouterr().out


def test_fast_mode_turns_bf16_off_when_onednn_is_capped_below_it() -> None:
    """``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN runs as on an AVX2-only CPU whatever this CPU has, so fast mode must
    not use bf16 (it would be emulated: ~5x slower than float32). A fresh process: oneDNN reads the cap once."""
    code = (
        "from tests.test_modes import _model\n"
        "model = _model(mode='fast', verbose=1)\n"
        "model.learn(5)\n"
        "print('bf16', model._fast('bf16_autocast'))\n"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bf16 False" in result.stdout
    assert "bf16 off (no native bf16" in result.stdout
