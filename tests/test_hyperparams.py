"""The rl-zoo3 hyperparameter files: every key reaches NatureDQN, and the values are Table 1's."""

from __future__ import annotations

import inspect

import pytest
import yaml
from rl_zoo3.utils import get_class_by_name

from sb3_dqn_atari import NatureDQN
from tests.conftest import ROOT

ZOO_KEYS = {"env_wrapper", "frame_stack", "n_timesteps", "policy"}  # consumed by rl-zoo3 itself


def _table(name: str) -> dict:
    return yaml.safe_load((ROOT / "hyperparams" / name).read_text())


@pytest.mark.parametrize("name", ["dqn.yml", "dqn_nips2013.yml"])
def test_every_key_is_a_constructor_argument(name: str) -> None:
    accepted = set(inspect.signature(NatureDQN.__init__).parameters)
    for env_id, params in _table(name).items():
        unknown = set(params) - ZOO_KEYS - accepted
        assert not unknown, f"{name}:{env_id}: {unknown}"
        for wrapper in params["env_wrapper"]:
            assert get_class_by_name(wrapper).__name__ == "NatureAtariWrapper"


def test_nature_values_are_table_1() -> None:
    table = _table("dqn.yml")
    for params in table.values():
        assert params["n_timesteps"] == 50_000_000  # 50M agent steps = 200M frames
        assert params["buffer_size"] == 1_000_000
        assert params["learning_rate"] == 2.5e-4
        assert params["batch_size"] == 32
        assert params["learning_starts"] == 50_000
        assert params["target_update_interval"] == 10_000
        assert params["train_freq"] == 4
        assert params["gamma"] == 0.99
        assert params["frame_stack"] == 4
        assert (params["exploration_initial_eps"], params["exploration_final_eps"]) == (1.0, 0.1)
        assert params["exploration_decay_steps"] == 1_000_000
        assert params["max_grad_norm"] == float("inf")
    assert {"BreakoutNoFrameskip-v4", "PongNoFrameskip-v4", "atari"} <= set(table)


def test_nips2013_builds_the_2013_network() -> None:
    params = dict(_table("dqn_nips2013.yml")["BreakoutNoFrameskip-v4"])
    policy = get_class_by_name(params.pop("policy"))
    for key in ZOO_KEYS - {"policy"}:
        params.pop(key)
    params["buffer_size"] = 100
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from sb3_dqn_atari import NatureAtariWrapper

    env = VecFrameStack(make_vec_env("BreakoutNoFrameskip-v4", wrapper_class=NatureAtariWrapper), 4)
    model = NatureDQN(policy, env, device="cpu", **params)
    assert sum(p.numel() for p in model.q_net.parameters()) == 677_172
    assert model.target_update_interval == 1 and model.train_freq.frequency == 1
