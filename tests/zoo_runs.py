"""Run folders written by rl-zoo3 itself, shared by the test modules that need real ones (built once per session).

``python -m rl_zoo3.train --algo dqn --env CartPole-v1`` with rl-zoo3's own hyperparameters for CartPole (an
``MlpPolicy`` with ``net_arch=[256, 256]``) for a few hundred steps, and ``-params`` values that make rl-zoo3
write every Python tag it ever writes: the ``OrderedDict`` of ``args.yml``/``config.yml``, a ``!!python/tuple``
(``train_freq``) and a ``!!python/name:`` (``activation_fn``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

CARTPOLE = "CartPole-v1"
#: rl-zoo3's -params (as the shell passes them: rl-zoo3 evaluates each value): learning starts early so that the
#: agent is trained a little; the tuple and class values make rl-zoo3 write its !!python/tuple and !!python/name.
ZOO_PARAMS = [
    "learning_starts:100",
    "buffer_size:2000",
    "gradient_steps:8",
    "train_freq:(16, 'step')",
    "policy_kwargs:dict(net_arch=[256, 256], activation_fn=nn.ReLU)",
]
_cache: dict[str, Path] = {}


def zoo_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def cartpole_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``logs/dqn/CartPole-v1_1`` as ``rl_zoo3.train`` wrote it (a copy per caller is theirs to make)."""
    if "cartpole" not in _cache:
        folder = tmp_path_factory.mktemp("zoo_cartpole")
        command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", CARTPOLE, "-n", "600",
                   "--eval-freq", "-1", "--seed", "0", "--num-threads", "1", "--device", "cpu", "-f", "logs",
                   "--verbose", "0", "-params", *ZOO_PARAMS]  # fmt: skip
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, env=zoo_env())
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        _cache["cartpole"] = folder / "logs" / "dqn" / f"{CARTPOLE}_1"
    return _cache["cartpole"]


def copy_run(run: Path, destination: Path) -> Path:
    """A copy of ``run`` at ``destination`` (created), for tests that plant files in it."""
    shutil.copytree(run, destination)
    return destination
