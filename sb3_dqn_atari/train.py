"""``python -m sb3_dqn_atari.train``: rl-zoo3's ``train`` with NatureDQN registered as ``dqn`` beforehand, plus
exact checkpoints and resume, and one-line errors for bad input.

Takes rl-zoo3's arguments (``python -m rl_zoo3.train`` works as well with our yml files, which name
``sb3_dqn_atari.zoo``), and these (:func:`sb3_dqn_atari.checkpoint.experiment.zoo_train`):

``--checkpoint-freq N``
    every ``N`` agent steps, an exact checkpoint in ``<run folder>/checkpoints/step_<n>/``
    (:class:`~sb3_dqn_atari.checkpoint.ResumableCheckpointCallback`); SIGINT/SIGTERM then save one and exit 0.
``--checkpoint-keep K``
    keep the newest ``K`` (default 2).
``--resume PATH``
    go on exactly from the newest complete checkpoint in ``PATH`` (a checkpoint, its folder, or the run folder):
    the same step counter, ε, target-network phase, optimizer state, replay memory, RNG and env states, up to the
    same total (``-n`` / ``n_timesteps`` is the total, not extra steps). With no other argument, the checkpoint's
    command line is reused. Output goes to a new run folder, as with rl-zoo3's ``-i`` (which is for fine-tuning:
    it restarts the step counter, so ε, ``learning_starts`` and the target phase start over, reseeds the RNGs and
    resets the env).

Errors before training starts (unknown env id, invalid hyperparameter file, unreadable agent or checkpoint,
output folder that cannot be created, not enough memory for the replay memory) print one line on stderr and
exit with status 2, removing the run folder they had begun.
"""

from __future__ import annotations

import sys

import sb3_dqn_atari.zoo  # noqa: F401  (registers NatureDQN as rl-zoo3's "dqn")
from sb3_dqn_atari.checkpoint.experiment import zoo_train as main

if __name__ == "__main__":
    sys.exit(main())
