"""NatureDQN's hyperparameter search through rl-zoo3's own Optuna path (``python -m rl_zoo3.train -optimize``).

rl-zoo3's generic DQN sampler (``rl_zoo3.hyperparams_opt.sample_dqn_params``) does not fit the paper's agent:
batch sizes up to 2,048 (a trial with 2,048 did not finish in 25 minutes on a CPU), target periods down to 1,
``net_arch`` hidden layers added to the Q head (no longer the Nature network), and ``exploration_fraction``, which
NatureDQN's ``exploration_decay_steps`` makes a no-op. Its ``TrialEvalCallback`` scores trials on the training
wrapper (clipped rewards, a lost life ends the episode), not with the paper's evaluation protocol.

:func:`register` (called by :mod:`sb3_dqn_atari.zoo` when rl-zoo3 imports it from our yml files) replaces, for
``--algo dqn`` in that process only:

* ``HYPERPARAMS_SAMPLER["dqn"]`` by :func:`sample_nature_dqn_params`: a search space around the paper's values
  (Mnih et al. 2015, Extended Data Table 1) that keeps the Nature network, DeepMind's RMSProp and everything else
  the yml sets;
* ``HYPERPARAMS_CONVERTER["dqn"]`` by :func:`convert_nature_dqn_params` (``--trial-id`` re-reads a trial's
  parameters; use ``python -m sb3_dqn_atari.train``, which registers before rl-zoo3 reads the study);
* ``exp_manager.TrialEvalCallback`` by :class:`~sb3_dqn_atari.evaluation.callback.PaperProtocolTrialEvalCallback`:
  each intermediate evaluation plays the paper's protocol and the trial's value is the raw game score.

Several machines or processes search one study through a shared Optuna storage::

    python -m rl_zoo3.train --algo dqn --env PongNoFrameskip-v4 -conf hyperparams/dqn.yml -n 2000000 -optimize \\
        --storage optuna.log --study-name pong --max-total-trials 50 --n-evaluations 8 --eval-episodes 10

``optuna.log`` (a JournalStorage file, on a shared file system) or an RDB URL (``postgresql://…``) in every
worker. Give each worker its own ``--seed`` (or none): the sampler is seeded by it, and two workers with the same
seed propose the same parameters.
"""

from __future__ import annotations

from typing import Any

from sb3_dqn_atari.evaluation.callback import PaperProtocolTrialEvalCallback

#: Extended Data Table 1 values the space is centred on (agent steps, as the Lua code counts them)
PAPER = {
    "learning_rate": 2.5e-4,
    "batch_size": 32,
    "target_update_interval": 10_000,
    "exploration_final_eps": 0.1,
    "exploration_decay_steps": 1_000_000,
}

#: The search space: each entry brackets the paper's value (``PAPER``), with the values later DQN work used.
SPACE: dict[str, tuple[Any, ...]] = {
    # a factor of 4 either way around 2.5e-4, log-uniform
    "learning_rate": (6.25e-5, 1e-3),
    # Table 1's 32 and twice it; the optimizer's eps follows the batch (NatureDQN: 0.01 / batch_size**2)
    "batch_size": (32, 64),
    # RL Zoo and CleanRL use 1,000; Table 1 10,000 (every 2,500 updates)
    "target_update_interval": (1_000, 2_500, 5_000, 10_000, 20_000),
    # Table 1: 0.1; Rainbow/Dopamine-era agents: 0.01
    "exploration_final_eps": (0.01, 0.05, 0.1),
    # Table 1: 1M agent steps; RL Zoo: 10 % of 10M; CleanRL: 10 % of 10M
    "exploration_decay_steps": (250_000, 500_000, 1_000_000),
}


def sample_nature_dqn_params(
    trial: Any, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """rl-zoo3's sampler signature: the NatureDQN hyperparameters of one Optuna trial (names as the model takes
    them; the network, optimizer, loss, replay memory, replay start and preprocessing stay the yml's)."""
    low, high = SPACE["learning_rate"]
    params = {"learning_rate": trial.suggest_float("learning_rate", low, high, log=True)}
    for name in ("batch_size", "target_update_interval", "exploration_final_eps", "exploration_decay_steps"):
        params[name] = trial.suggest_categorical(name, list(SPACE[name]))
    return params


def convert_nature_dqn_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """rl-zoo3's converter signature (``--trial-id``): the trial's parameters are already the model's."""
    return dict(sampled_params)


def register(name: str = "dqn") -> None:
    """Use the NatureDQN sampler and the paper-protocol trial evaluation for rl-zoo3's ``--algo name`` (this
    process only)."""
    from rl_zoo3 import exp_manager
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

    HYPERPARAMS_SAMPLER[name] = sample_nature_dqn_params
    HYPERPARAMS_CONVERTER[name] = convert_nature_dqn_params
    exp_manager.TrialEvalCallback = PaperProtocolTrialEvalCallback  # type: ignore[assignment,misc]
