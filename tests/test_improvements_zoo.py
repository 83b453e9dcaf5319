"""The improvements' rl-zoo3 files: each one's values are its paper's, and the README's command runs with it and
builds the named classes (a short run with the replay start lowered)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from rl_zoo3.utils import get_class_by_name

from sb3_dqn_atari import DeepMindRMSprop, DuelingCnnPolicy, NatureDQN, PrioritizedFrameReplayBuffer
from sb3_dqn_atari.agent.dueling import DuelingQNetwork
from sb3_dqn_atari.agent.policies import CnnPolicy, SharedBiasLinear
from sb3_dqn_atari.agent.replay import FrameReplayBuffer
from sb3_dqn_atari.agent.variants import describe
from tests.conftest import ROOT

FILES = ["ddqn.yml", "dueling.yml", "prioritized.yml", "dqn_improved.yml"]
#: what sb3_dqn_atari.variants.describe names each trained agent
VARIANT_NAMES = {
    "ddqn.yml": "Nature DQN + Double DQN (shared output bias: Double DQN tuned)",
    "dueling.yml": "Nature DQN + Double DQN + dueling network",
    "prioritized.yml": "Nature DQN + Double DQN + prioritized replay (shared output bias: Double DQN tuned)",
    "dqn_improved.yml": "Nature DQN + Double DQN + dueling network + prioritized replay + 3-step returns",
}
ZOO_KEYS = {"env_wrapper", "frame_stack", "n_timesteps", "policy"}  # consumed by rl-zoo3 itself


def _table(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "hyperparams" / name).read_text())


@pytest.mark.parametrize("name", FILES)
def test_every_key_is_a_constructor_argument_and_every_game_the_same(name: str) -> None:
    accepted = set(inspect.signature(NatureDQN.__init__).parameters)
    table = _table(name)
    assert {"atari", "BreakoutNoFrameskip-v4", "PongNoFrameskip-v4"} <= set(table)
    for env_id, params in table.items():
        assert not set(params) - ZOO_KEYS - accepted, f"{name}:{env_id}"
        assert params == table["atari"], env_id
        assert params["env_wrapper"] == ["sb3_dqn_atari.zoo.NatureAtariWrapper"] and params["frame_stack"] == 4


def _shared(params: dict[str, Any]) -> None:
    """What all four keep from Nature: replay size, batch, update period, discount, budget, the Huber loss."""
    assert params["n_timesteps"] == 50_000_000 and params["buffer_size"] == 1_000_000
    assert (params["batch_size"], params["train_freq"], params["gradient_steps"], params["gamma"]) == (32, 4, 1, 0.99)
    assert params["exploration_initial_eps"] == 1.0 and params["exploration_final_eps"] == 0.01


def test_values_are_the_papers() -> None:
    ddqn = _table("ddqn.yml")["atari"]
    _shared(ddqn)
    assert ddqn["double_q"] is True and ddqn["policy"] == "CnnPolicy"
    assert eval(ddqn["policy_kwargs"]) == {"shared_bias": True}  # the yml's own literal
    assert (ddqn["target_update_interval"], ddqn["learning_rate"], ddqn["learning_starts"]) == (30_000, 2.5e-4, 50_000)
    assert ddqn["max_grad_norm"] == float("inf") and ddqn["exploration_decay_steps"] == 1_000_000

    dueling = _table("dueling.yml")["atari"]
    _shared(dueling)
    assert get_class_by_name(dueling["policy"]) is DuelingCnnPolicy and dueling["double_q"] is True
    assert dueling["learning_rate"] == 6.25e-5 and dueling["target_update_interval"] == 30_000
    assert dueling["max_grad_norm"] == 10 / 32  # norm 10 on the summed loss of a 32-transition batch

    prioritized = _table("prioritized.yml")["atari"]
    _shared(prioritized)
    assert prioritized["double_q"] is True and prioritized["learning_rate"] == 2.5e-4 / 4
    assert eval(prioritized["replay_buffer_class"]) is PrioritizedFrameReplayBuffer
    assert eval(prioritized["replay_buffer_kwargs"]) == {"alpha": 0.6, "beta": 0.4}
    assert prioritized["target_update_interval"] == 30_000 and prioritized.get("n_steps", 1) == 1

    improved = _table("dqn_improved.yml")["atari"]
    _shared(improved)
    assert get_class_by_name(improved["policy"]) is DuelingCnnPolicy and improved["double_q"] is True
    assert eval(improved["replay_buffer_class"]) is PrioritizedFrameReplayBuffer
    assert eval(improved["replay_buffer_kwargs"]) == {"alpha": 0.5, "beta": 0.4}
    assert improved["n_steps"] == 3 and improved["learning_rate"] == 6.25e-5
    kwargs = eval(improved["policy_kwargs"], {"th": torch})
    assert kwargs == {"gradient_scale": 1.0, "optimizer_class": torch.optim.Adam, "optimizer_kwargs": {"eps": 1.5e-4}}
    # Table 1's frames / 4: min history 80K, target period 32K frames
    assert (improved["learning_starts"], improved["target_update_interval"]) == (20_000, 8_000)
    assert improved["exploration_decay_steps"] == 250_000


def _zoo_train(argv: list[str]) -> None:
    """``python -m rl_zoo3.train argv`` in this process (no interpreter start-up per file)."""
    import rl_zoo3.train

    saved = sys.argv
    sys.argv = ["rl_zoo3.train", *argv]
    try:
        rl_zoo3.train.train()
    finally:
        sys.argv = saved


@pytest.mark.parametrize("name", FILES)
def test_readme_command_trains_the_variant(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _zoo_train(
        [
            "--algo", "dqn", "--env", "BreakoutNoFrameskip-v4", "-conf", str(ROOT / "hyperparams" / name),
            "-n", "1100", "-f", "logs", "--seed", "0", "--eval-freq", "-1", "--num-threads", "1", "--device", "cpu",
            "--verbose", "0", "--save-replay-buffer", "-params", "learning_starts:1000", "buffer_size:3000",
        ]
    )  # fmt: skip
    zip_path = tmp_path / "logs" / "dqn" / "BreakoutNoFrameskip-v4_1" / "BreakoutNoFrameskip-v4.zip"
    model = NatureDQN.load(zip_path, device="cpu")
    params = _table(name)["atari"]
    assert type(model) is NatureDQN and model._n_updates == (1100 - 1000) // 4
    assert model.double_q is True and model.lr_schedule(1.0) == params["learning_rate"]
    assert model.target_update_interval == params["target_update_interval"]
    dueling = "Dueling" in params["policy"]
    assert type(model.policy) is (DuelingCnnPolicy if dueling else CnnPolicy)
    assert isinstance(model.q_net, DuelingQNetwork) == dueling
    if not dueling:
        assert isinstance(model.q_net.q_net[-1], SharedBiasLinear)
    optimizer = torch.optim.Adam if name == "dqn_improved.yml" else DeepMindRMSprop
    assert type(model.policy.optimizer) is optimizer
    prioritized = "replay_buffer_class" in params
    assert (model.replay_buffer_class is PrioritizedFrameReplayBuffer) == prioritized
    assert model.n_steps == params.get("n_steps", 1)
    name_, papers = describe(model)
    assert name_ == VARIANT_NAMES[name] and len(papers) == name_.count("+") + 1
    model.load_replay_buffer(zip_path.parent / "replay_buffer.pkl")
    buffer = model.replay_buffer
    assert type(buffer) is (PrioritizedFrameReplayBuffer if prioritized else FrameReplayBuffer)
    assert (buffer.n_steps, buffer.gamma) == (params.get("n_steps", 1), 0.99)
    if isinstance(buffer, PrioritizedFrameReplayBuffer):  # beta annealed over this run: 0.4 -> 1 at step 1100
        alpha = eval(params["replay_buffer_kwargs"])["alpha"]
        assert (buffer.alpha, buffer.beta_start, buffer.beta_steps) == (alpha, 1000, 100)
        assert buffer.current_beta() == 1.0 and buffer.max_priority > 1.0  # priorities came from TD errors
