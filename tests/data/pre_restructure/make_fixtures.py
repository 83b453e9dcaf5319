"""Writes this folder's fixtures, tiny, with the code as it was before the package was layered (issue 13; commit
23afbbe): an agent zip and its ONNX export (CartPole, a 16-unit MLP), and an exact checkpoint (the dot env of
``tests/test_resume.py`` at 12 x 12, a 250-transition frame memory). ``tests/test_pre_restructure.py`` loads them with
today's code.

    git worktree add /tmp/pre13 23afbbe && cd /tmp/pre13 && \
        python tests/data/pre_restructure/make_fixtures.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import rl_zoo3.gym_patches  # noqa: F401  (as in an rl-zoo3 run: its TimeLimit wraps the env, whatever ran before)
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

from tests.test_resume import AGENT_KWARGS, ENV_ID

#: a 12 x 12 dot env and a 16-unit MLP keep each file small
ENV_KWARGS = {"size": 12}
POLICY_KWARGS = {"net_arch": [16]}
STEPS = 300
#: the zip and its ONNX export
ZIP_ENV_ID = "CartPole-v1"


def make_env(seed: int = 0) -> VecEnv:
    """The fixtures' env: what rl-zoo3 builds for an MLP agent with ``frame_stack: 4``."""
    return VecFrameStack(make_vec_env(ENV_ID, n_envs=1, seed=seed, env_kwargs=ENV_KWARGS), 4)


def second_callback() -> Any:
    """A callback of this package whose state the checkpoint records by class name (the saver skips itself)."""
    from sb3_dqn_atari.checkpoint import ResumableCheckpointCallback

    return ResumableCheckpointCallback(save_freq=0, keep=1, verbose=0, handle_signals=False, save_at_end=False)


def main(out: Path) -> None:
    from sb3_dqn_atari import NatureDQN
    from sb3_dqn_atari.checkpoint import ResumableCheckpointCallback
    from sb3_dqn_atari.onnx.export import export_onnx

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    model = NatureDQN("MlpPolicy", make_env(), policy_kwargs=POLICY_KWARGS, **AGENT_KWARGS)
    saver = ResumableCheckpointCallback(
        save_freq=0, save_path=str(out / "checkpoints"), keep=1, verbose=0, handle_signals=False
    )
    model.learn(STEPS, callback=[saver, second_callback()])
    agent = NatureDQN("MlpPolicy", ZIP_ENV_ID, policy_kwargs=POLICY_KWARGS, **AGENT_KWARGS)
    agent.learn(STEPS)
    agent.save(out / "agent.zip")
    export_onnx(agent, out / "agent.onnx", ZIP_ENV_ID, n_real=32, n_random=32, progress=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
