"""An Atari report with confidence intervals, from sweep or rl-zoo3 run folders (``python -m sb3_dqn_atari.report``).

* :mod:`~sb3_dqn_atari.report.runs`: finding runs and their evaluation scores (nothing is unpickled);
* :mod:`~sb3_dqn_atari.report.references`: the published scores put beside each game;
* :mod:`~sb3_dqn_atari.report.aggregate`: the per-game table, and the human-normalised aggregates (IQM, median,
  mean, optimality gap) with stratified-bootstrap confidence intervals through ``rliable``;
* :mod:`~sb3_dqn_atari.report.plots`: the PNGs, drawn by ``rliable.plot_utils``;
* :mod:`~sb3_dqn_atari.report.build`: ``report.json``, ``report.md`` and the figures, written as one folder.

``rliable`` is an optional dependency (``pip install -e ".[cluster]"``), imported only when the numbers are computed.
"""
