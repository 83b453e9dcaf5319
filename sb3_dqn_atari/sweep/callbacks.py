"""The two callbacks a sweep trial adds to rl-zoo3's ``callback`` list: they report to Ray Tune.

* :class:`TuneEvalCallback`: :class:`~sb3_dqn_atari.evaluation.NatureEvalCallback` (the paper's evaluation
  protocol every ``eval_freq`` agent steps, ``evaluations_nature.npz`` in the run folder) that reports each
  evaluation to Tune (``paper_score``, ``paper_human_normalized``, …), and the step count every ``report_freq``
  steps in between (the progress table);
* :class:`TuneCheckpointCallback`: :class:`~sb3_dqn_atari.checkpoint.ResumableCheckpointCallback` (exact,
  atomic checkpoints) whose every checkpoint is reported as the trial's Tune checkpoint. Tune copies it into the
  sweep folder (``checkpoint_<n>/``) and hands it back to a retry, which resumes from it exactly
  (:mod:`sb3_dqn_atari.sweep.trial`).

Outside a Tune session (the same command line run by hand, ``python -m sb3_dqn_atari.train``) both behave as
their base class: reporting is skipped, training is the same.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import torch as th

from sb3_dqn_atari.checkpoint import ResumableCheckpointCallback
from sb3_dqn_atari.checkpoint.state import callback_tree
from sb3_dqn_atari.evaluation.callback import NatureEvalCallback


def report_to_tune(metrics: dict[str, Any], checkpoint: Path | None = None) -> bool:
    """``ray.tune.report(metrics)`` (with ``checkpoint``, a folder, as the trial's checkpoint) inside a Tune trial;
    ``False`` and nothing done in a process that has not imported Ray Tune (no Tune session can exist there)."""
    if "ray.tune" not in sys.modules:
        return False
    from ray import tune

    tune.report(metrics, checkpoint=None if checkpoint is None else tune.Checkpoint.from_directory(str(checkpoint)))
    return True


class TuneEvalCallback(NatureEvalCallback):
    """:class:`~sb3_dqn_atari.evaluation.NatureEvalCallback` that reports every evaluation to Ray Tune, and the
    progress (``timesteps``) every ``report_freq`` agent steps.

    :param report_freq: report progress every this many agent steps (0: only evaluations)
    :param kwargs: :class:`~sb3_dqn_atari.evaluation.NatureEvalCallback`'s arguments
    """

    def __init__(self, *args: Any, report_freq: int = 10_000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.report_freq = int(report_freq)
        self._last_report = 0

    def metrics(self) -> dict[str, Any]:
        """What the trial reports: the step count, and the latest paper-protocol evaluation."""
        # The same first keys in every report, NaN before the first evaluation: Tune's table shows the first four.
        last = self.last_result
        hns = None if last is None else last.human_normalized
        found: dict[str, Any] = {
            "timesteps": int(self.model.num_timesteps),
            "paper_score": math.nan if last is None else last.mean,
            "paper_human_normalized": math.nan if hns is None else hns,
            "eval_timesteps": self.timesteps[-1] if self.timesteps else 0,
        }
        if last is not None:
            found.update(paper_score_std=last.std, paper_score_median=last.median, eval_episodes=len(last.episodes))
        exploration = getattr(self.model, "exploration_rate", None)
        if exploration is not None:
            found["exploration_rate"] = float(exploration)
        found["torch_threads"] = th.get_num_threads()  # = the trial's CPUs (python -m sb3_dqn_atari.sweep)
        return found

    def _on_step(self) -> bool:
        evaluations = len(self.results)
        keep_going = super()._on_step()
        due = self.report_freq > 0 and self.num_timesteps - self._last_report >= self.report_freq
        if len(self.results) > evaluations or due:
            self._last_report = self.num_timesteps
            report_to_tune(self.metrics())
        return keep_going


class TuneCheckpointCallback(ResumableCheckpointCallback):
    """:class:`~sb3_dqn_atari.checkpoint.ResumableCheckpointCallback` whose every checkpoint becomes the trial's
    Tune checkpoint (reported with the latest metrics of the :class:`TuneEvalCallback` of the same run)."""

    def save(self) -> Path:
        path = super().save()
        evaluation = next((c for _, c in callback_tree(self._root, self) if isinstance(c, TuneEvalCallback)), None)
        metrics = evaluation.metrics() if evaluation is not None else {"timesteps": int(self.model.num_timesteps)}
        metrics["checkpoint_step"] = int(self.model.num_timesteps)
        report_to_tune(metrics, checkpoint=path)
        return path
