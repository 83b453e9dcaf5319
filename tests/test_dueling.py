"""The dueling network (Wang et al. 2016) and the shared-bias head (Double DQN tuned) against hand computations:
``Q = V + A − mean(A)`` from the two heads, the 1/√2 gradient rescale, the parameter counts; save/load, the safe
loader, and the ONNX export of a dueling head (it outputs Q-values)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_dqn_atari import DuelingCnnPolicy, DuelingMlpPolicy, NatureDQN
from sb3_dqn_atari.agent.dueling import DuelingQNetwork
from sb3_dqn_atari.agent.networks import NatureTorso
from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper
from tests.fake_envs import RandomWalkEnv

BREAKOUT = "BreakoutNoFrameskip-v4"


def _breakout() -> VecFrameStack:
    return VecFrameStack(DummyVecEnv([lambda: NatureAtariWrapper(gym.make(BREAKOUT))]), 4)


@pytest.fixture(scope="module")
def dueling_model() -> NatureDQN:
    return NatureDQN(DuelingCnnPolicy, _breakout(), double_q=True, buffer_size=100, seed=0, device="cpu")


def _frames(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).integers(0, 256, (n, 4, 84, 84), dtype=np.uint8))


def test_parameter_count_is_the_papers_network(dueling_model: NatureDQN) -> None:
    """Nature convolutions, then two streams of one 512-unit layer each (section 4.2), 4 actions."""
    conv = (4 * 8 * 8 * 32 + 32) + (32 * 4 * 4 * 64 + 64) + (64 * 3 * 3 * 64 + 64)
    flat = 64 * 7 * 7  # 84 -> 20 -> 9 -> 7
    value = (flat * 512 + 512) + (512 * 1 + 1)
    advantage = (flat * 512 + 512) + (512 * 4 + 4)
    q_net = dueling_model.q_net
    assert isinstance(q_net, DuelingQNetwork)
    assert conv + value + advantage == 3_292_837
    assert sum(p.numel() for p in q_net.parameters()) == 3_292_837
    assert sum(p.numel() for p in q_net.features_extractor.parameters()) == conv
    assert sum(p.numel() for p in q_net.value_stream.parameters()) == value
    assert [m.out_features for m in q_net.advantage_stream if isinstance(m, torch.nn.Linear)] == [512, 4]
    assert [m.out_features for m in q_net.value_stream if isinstance(m, torch.nn.Linear)] == [512, 1]
    assert q_net.gradient_scale == 1 / math.sqrt(2)


def test_output_is_value_plus_centred_advantage(dueling_model: NatureDQN) -> None:
    q_net = dueling_model.q_net
    assert isinstance(q_net, DuelingQNetwork)
    obs = _frames()
    with torch.no_grad():
        features = q_net.extract_features(obs, q_net.features_extractor)
        value = q_net.value_stream(features).numpy().astype(np.float64)
        advantage = q_net.advantage_stream(features).numpy().astype(np.float64)
        q = q_net(obs).numpy()
    expected = np.empty_like(advantage)
    for i in range(len(obs)):  # eq. (9), one state at a time
        expected[i] = value[i, 0] + advantage[i] - sum(advantage[i]) / len(advantage[i])
    np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.mean(axis=1), value[:, 0], rtol=1e-5, atol=1e-6)  # the mean of Q is V


def test_gradient_into_the_last_conv_layer_is_rescaled(dueling_model: NatureDQN) -> None:
    """The same weights with ``gradient_scale`` 1/√2 and 1: every gradient below the streams (the convolutions)
    is 1/√2 of the other's, the streams' own gradients are equal, the forward pass is identical."""
    scaled = dueling_model.q_net
    plain = NatureDQN(
        DuelingCnnPolicy, _breakout(), buffer_size=100, device="cpu", policy_kwargs={"gradient_scale": 1.0}
    ).q_net
    plain.load_state_dict(scaled.state_dict())
    obs = _frames(16, seed=3)
    weights = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    grads = []
    for net in (scaled, plain):
        net.zero_grad()
        out = net(obs)
        (out * weights).sum().backward()
        grads.append({name: p.grad.clone() for name, p in net.named_parameters()})  # type: ignore[union-attr]
        outputs = out.detach()
    with torch.no_grad():
        assert torch.equal(scaled(obs), outputs)
    conv_names = [n for n in grads[0] if n.startswith("features_extractor")]
    assert len(conv_names) == 6
    last_conv = "features_extractor.cnn.4.weight"
    norm_ratio = grads[0][last_conv].norm() / grads[1][last_conv].norm()
    assert norm_ratio.item() == pytest.approx(1 / math.sqrt(2), rel=1e-5)
    for name in conv_names:  # elementwise, up to float32 rounding of the sums inside the backward
        scale = grads[1][name].abs().max().item()
        torch.testing.assert_close(grads[0][name], grads[1][name] / math.sqrt(2), rtol=1e-3, atol=1e-5 * scale)
    for name in grads[0]:
        if not name.startswith("features_extractor"):
            assert torch.equal(grads[0][name], grads[1][name]), name


def test_nature_torso_is_natures_convolutions() -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    torso, nature = NatureTorso(space), NatureCNN(space)
    assert torso.features_dim == 3136
    torso.cnn.load_state_dict(nature.cnn.state_dict())  # same layers, same shapes
    obs = _frames(4).float() / 255
    with torch.no_grad():
        assert torch.equal(torso(obs), nature.cnn(obs))


def test_shared_bias_head_has_one_bias_for_all_actions() -> None:
    model = NatureDQN("CnnPolicy", _breakout(), buffer_size=100, device="cpu", policy_kwargs={"shared_bias": True})
    head: Any = model.q_net.q_net[-1]
    assert head.bias.shape == (1,) and head.weight.shape == (4, 512)
    assert sum(p.numel() for p in model.q_net.parameters()) == 1_686_180 - 4 + 1  # the Nature count, 1 bias
    with torch.no_grad():
        features = model.q_net.extract_features(_frames(), model.q_net.features_extractor)
        q = model.q_net(_frames()).numpy()
    hand = features.numpy().astype(np.float64) @ head.weight.detach().numpy().T.astype(np.float64) + head.bias.item()
    np.testing.assert_allclose(q, hand, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="shared_bias is an option of the single-stream head"):
        NatureDQN(DuelingCnnPolicy, _breakout(), buffer_size=100, device="cpu", policy_kwargs={"shared_bias": True})


def test_dueling_mlp_and_save_load(tmp_path: Path) -> None:
    model = NatureDQN(DuelingMlpPolicy, RandomWalkEnv(), buffer_size=100, learning_starts=20, seed=0, device="cpu")
    model.learn(60)
    assert isinstance(model.q_net, DuelingQNetwork) and model.q_net.net_arch == [64, 64]
    model.save(tmp_path / "m.zip")
    loaded = NatureDQN.load(tmp_path / "m.zip", device="cpu")
    obs = torch.randn(10, 4)
    with torch.no_grad():
        assert torch.equal(loaded.q_net(obs), model.q_net(obs))
    assert type(loaded.policy) is DuelingMlpPolicy


# ------------------------------------------------------------------------------------------ ONNX and safe loading
def test_dueling_agent_exports_q_values_and_loads_without_unpickling(dueling_model: NatureDQN, tmp_path: Path) -> None:
    """The zip goes through the safe loader (no unpickling) and the export CLI; the ONNX file's q_values are
    V + A − mean(A) of the PyTorch heads, checked by hand here as well as by the export's own verification."""
    from sb3_dqn_atari.export import main as export_main
    from sb3_dqn_atari.loading import load_safely
    from sb3_dqn_atari.onnx.runtime import OnnxAgent

    zip_path = tmp_path / "dueling.zip"
    dueling_model.save(zip_path)
    safe = load_safely(zip_path, device="cpu")
    assert type(safe.policy) is DuelingCnnPolicy and getattr(safe, "double_q", None) is True
    obs = _frames(6, seed=7)
    with torch.no_grad():
        assert torch.equal(safe.q_net(obs), dueling_model.q_net(obs))  # type: ignore[attr-defined]
    out = tmp_path / "dueling.onnx"
    code = export_main([str(zip_path), "--env", BREAKOUT, "-o", str(out), "--n-real", "32", "--n-random", "32", "-q"])
    assert code == 0 and out.is_file()
    q_net = dueling_model.q_net
    assert isinstance(q_net, DuelingQNetwork)
    with torch.no_grad():
        features = q_net.extract_features(obs, q_net.features_extractor)
        value, advantage = q_net.value_stream(features), q_net.advantage_stream(features)
    expected = (value + advantage - advantage.mean(dim=1, keepdim=True)).numpy()
    agent = OnnxAgent(out)
    np.testing.assert_allclose(agent.q_values(obs.numpy()), expected, atol=1e-4)
    np.testing.assert_array_equal(agent.predict(obs.numpy()), expected.argmax(axis=1))
