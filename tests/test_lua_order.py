"""At an update step the action comes from the weights before that update, as in DeepMind's Lua code.

``NeuralQLearner:perceive`` at agent step ``t``: store the transition of ``t - 1``; select ``a_t`` ε-greedily with
the current network; if ``t > learn_start and t % update_freq == 0``: update (and clone the target network when
``t % target_q == 0``); the emulator then plays ``a_t``. The reference here is that loop written out naively,
driving SB3's pieces one by one (``DQN.predict``, ``DQN.train``, ``VecEnv.step``, the replay buffer) on a model
built the same way; ``NatureDQN.learn`` must produce the same sequence of actions and updates, bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_dqn_atari import NatureDQN
from tests.fake_envs import RandomWalkEnv

LEARNING_STARTS = 40
TRAIN_FREQ = 4
TARGET = 24  # agent steps between target copies (a multiple of TRAIN_FREQ, as the paper's 10,000 of 4)
DECAY = 200
STEPS = 400  # a multiple of TRAIN_FREQ: learn(STEPS) ends with the update of step STEPS
KWARGS: dict[str, Any] = {
    "learning_starts": LEARNING_STARTS,
    "train_freq": TRAIN_FREQ,
    "target_update_interval": TARGET,
    "exploration_decay_steps": DECAY,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.2,
    "buffer_size": 1_000,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "policy_kwargs": {"net_arch": [16]},
    "seed": 0,
    "device": "cpu",
}


def _lua_epsilon(t: int) -> float:
    """``NeuralQLearner:eGreedy``:
    ``ep_end + max(0, (ep_start - ep_end) * (ep_endt - max(0, t - learn_start)) / ep_endt)``."""
    return 0.2 + max(0.0, (1.0 - 0.2) * (DECAY - max(0, t - LEARNING_STARTS)) / DECAY)


def _naive_run(update_before_acting: bool = False) -> tuple[list[tuple[Any, ...]], NatureDQN]:
    """The Lua loop on SB3's pieces, to the update of step ``STEPS`` (where ``learn(STEPS)`` stops). Events:
    ``("act", t, action, updates so far)``, ``("update", t)``, ``("copy", t)``. With ``update_before_acting`` it
    is SB3's order instead (the update of step ``t`` first)."""
    model = NatureDQN("MlpPolicy", DummyVecEnv([RandomWalkEnv]), **KWARGS)
    model._setup_learn(STEPS)  # SB3's: logger, env reset with the model's seed
    env = model.get_env()
    assert env is not None and model.replay_buffer is not None
    events: list[tuple[Any, ...]] = []
    n_updates = 0

    def update(t: int) -> None:
        nonlocal n_updates
        DQN.train(model, gradient_steps=1, batch_size=model.batch_size)  # SB3's update, nothing of ours
        n_updates += 1
        events.append(("update", t))
        if t % TARGET == 0:
            model.q_net_target.load_state_dict(model.q_net.state_dict())
            events.append(("copy", t))

    for t in range(STEPS + 1):
        update_now = t > LEARNING_STARTS and t % TRAIN_FREQ == 0
        if update_now and update_before_acting:
            update(t)
        if t < LEARNING_STARTS:  # ε = 1: SB3 draws the uniform action directly
            action = np.array([model.action_space.sample()])
        else:
            model.exploration_rate = _lua_epsilon(t)
            action, _ = DQN.predict(model, model._last_obs, deterministic=False)  # type: ignore[arg-type]
        events.append(("act", t, int(action[0]), n_updates))
        if update_now and not update_before_acting:
            update(t)
        if t == STEPS:
            break
        new_obs, rewards, dones, infos = env.step(action)
        model.num_timesteps += 1
        model._store_transition(model.replay_buffer, action, new_obs, rewards, dones, infos)
    return events, model


class RecordingNatureDQN(NatureDQN):
    """Records the same events as the naive loop, from inside ``learn``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[tuple[Any, ...]] = []

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False):
        actions, state = super().predict(observation, state, episode_start, deterministic)
        self.events.append(("act", self.num_timesteps, int(actions[0]), self._n_updates))
        return actions, state

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1):
        kept = self._next_actions is not None
        actions, buffer_actions = super()._sample_action(learning_starts, action_noise, n_envs)
        if self.num_timesteps < learning_starts and not kept:  # SB3's warm-up draws without predict()
            self.events.append(("act", self.num_timesteps, int(actions[0]), self._n_updates))
        return actions, buffer_actions

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        target = [p.clone() for p in self.q_net_target.parameters()]
        super().train(gradient_steps, batch_size)
        self.events.append(("update", self.num_timesteps))
        if not all(torch.equal(a, b) for a, b in zip(target, self.q_net_target.parameters(), strict=True)):
            self.events.append(("copy", self.num_timesteps))


def _learned(chunks: list[int]) -> RecordingNatureDQN:
    model = RecordingNatureDQN("MlpPolicy", DummyVecEnv([RandomWalkEnv]), **KWARGS)
    for i, steps in enumerate(chunks):
        model.learn(steps, reset_num_timesteps=i == 0)
    return model


def _same_parameters(a: NatureDQN, b: NatureDQN) -> bool:
    pairs = zip(a.policy.state_dict().values(), b.policy.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


def test_learn_acts_before_the_update_as_the_lua_loop() -> None:
    expected, naive = _naive_run()
    model = _learned([STEPS])
    assert model.num_timesteps == STEPS
    assert model.events == expected
    # the action at every update step came from the weights of the updates before it
    updates = [e[1] for e in expected if e[0] == "update"]
    assert updates == list(range(LEARNING_STARTS + TRAIN_FREQ, STEPS + 1, TRAIN_FREQ))
    acts = {e[1]: e[3] for e in expected if e[0] == "act"}
    assert all(acts[t] == i for i, t in enumerate(updates))
    assert [e[1] for e in expected if e[0] == "copy"] == [t for t in updates if t % TARGET == 0]
    # the same transitions stored, the same weights after the same updates
    assert naive.replay_buffer is not None and model.replay_buffer is not None
    assert np.array_equal(naive.replay_buffer.actions, model.replay_buffer.actions)
    assert np.array_equal(naive.replay_buffer.observations, model.replay_buffer.observations)
    assert _same_parameters(naive, model)


def test_the_order_holds_across_learn_calls_and_differs_from_sb3s() -> None:
    """Chunks of ``learn`` (as a resumed run makes them) keep the order; SB3's order gives other actions."""
    one = _learned([STEPS])
    chunked = _learned([152, 132, 116])  # each chunk ends at an update step: the kept action carries over
    assert chunked.events == one.events and _same_parameters(one, chunked)
    sb3_order, sb3_model = _naive_run(update_before_acting=True)
    assert [e for e in sb3_order if e[0] == "act"] != [e for e in one.events if e[0] == "act"]
    assert not _same_parameters(sb3_model, one)
    # and the naive loop in SB3's order is what learn does without the kept action (a check of the loop itself;
    # SB3's learn stops after the update of step STEPS, before acting)
    sb3_learned = SB3OrderNatureDQN("MlpPolicy", DummyVecEnv([RandomWalkEnv]), **KWARGS)
    sb3_learned.learn(STEPS)
    assert sb3_learned.events == sb3_order[:-1] and sb3_order[-1][:2] == ("act", STEPS)
    assert _same_parameters(sb3_model, sb3_learned)


class SB3OrderNatureDQN(RecordingNatureDQN):
    """SB3's order: no action is selected before the update."""

    def _update_follows(self, rollout: Any) -> bool:
        return False
