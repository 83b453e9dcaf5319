"""Beyond one machine: game × seed sweeps on Ray Tune (rl-zoo3's Optuna search: :mod:`sb3_dqn_atari.zoo.hpo`).

* :mod:`~sb3_dqn_atari.sweep.spec`: what a sweep is (games, seeds, one rl-zoo3 training command per trial);
* :mod:`~sb3_dqn_atari.sweep.trial`: one trial on a Ray worker, trained by ``python -m sb3_dqn_atari.train``'s code path
  (:func:`sb3_dqn_atari.checkpoint.experiment.zoo_train`), resumed exactly from its last checkpoint on a retry;
* :mod:`~sb3_dqn_atari.sweep.callbacks`: the callbacks that report paper-protocol evaluations and our exact
  checkpoints to Tune;
* :mod:`~sb3_dqn_atari.sweep.engine`: the Tune experiment (``python -m sb3_dqn_atari.sweep``).

Ray is an optional dependency (``pip install -e ".[cluster]"``): nothing here imports it at import time.
"""
