"""What an rl-zoo3 run of this package prints first and records: hooks on rl-zoo3's ``ExperimentManager``,
installed by :func:`sb3_dqn_atari.zoo.register` (so by ``rl_zoo3.train`` with our yml files and by
``python -m sb3_dqn_atari.train``).

rl-zoo3 has no hook for this, and ``rl_zoo3.train`` is already inside ``setup_experiment`` when it reads the yml
that imports :mod:`sb3_dqn_atari.zoo`. The one method it calls after that, once the env, the callbacks and the
model are built and before the first step (on a fresh run and on ``--resume`` alike), is ``_save_config``, which
writes ``config.yml``. So that method is wrapped on the class (and calls rl-zoo3's own):

* :func:`separate_eval_files` (``--eval-freq`` and a yml's NatureEvalCallback do not overwrite each other's files);
* torch's thread count (:func:`sb3_dqn_atari.agent.threads.configure_torch_threads`);
* the lines of :func:`run_banner`: which class ``--algo`` built, its mode, from which yml, for how many steps,
  with how many threads; they come right after rl-zoo3's own hyperparameter print, before ``Log path:``;
* :func:`record_n_timesteps`, so ``config.yml`` (and the model card built from it) records the ``n_timesteps``
  that was run (``-n``), not the yml's 50M.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.callbacks import BaseCallback

from sb3_dqn_atari.agent.threads import ThreadChoice, configure_torch_threads
from sb3_dqn_atari.evaluation.callback import NatureEvalCallback, PaperProtocolEvalCallback
from sb3_dqn_atari.evaluation.curves import NATURE_EVAL_FREQ_FILE

__all__ = ["EVAL_FREQ_FILE_STEM", "install", "record_n_timesteps", "run_banner", "separate_eval_files"]

#: the files of rl-zoo3's ``--eval-freq`` evaluation when the yml has its own :class:`NatureEvalCallback`
EVAL_FREQ_FILE_STEM = NATURE_EVAL_FREQ_FILE.removesuffix(".npz")
#: rl-zoo3's own ``_save_config``, which ours calls
_ZOO_SAVE_CONFIG = ExperimentManager._save_config


def record_n_timesteps(saved_hyperparams: MutableMapping[str, Any], n_timesteps: int) -> None:
    """Make ``config.yml`` say how many steps the run trains (rl-zoo3 saves the yml's value even with ``-n``)."""
    if n_timesteps > 0 and "n_timesteps" in saved_hyperparams:
        saved_hyperparams["n_timesteps"] = int(n_timesteps)


def separate_eval_files(callbacks: Sequence[BaseCallback], eval_freq_class: type[NatureEvalCallback]) -> str | None:
    """Give rl-zoo3's ``--eval-freq`` evaluation (``eval_freq_class``) files of its own when a yml's
    :class:`NatureEvalCallback` writes ``evaluations_nature.npz``/``.csv`` into the same folder: the yml's keeps
    the name (it is the one asked for by name, and what ``plot`` and ``report`` read), ``--eval-freq``'s writes
    ``evaluations_nature_eval_freq.npz``/``.csv``. Returns the note to print, or None when nothing clashed."""
    flat = [c for c in callbacks if isinstance(c, NatureEvalCallback)]
    ours = [c for c in flat if isinstance(c, eval_freq_class)]
    theirs = [c for c in flat if not isinstance(c, eval_freq_class)]
    clash = False
    for zoo_eval in ours:
        for other in theirs:
            same_folder = other.log_path is None or zoo_eval.log_path is None or other.log_path == zoo_eval.log_path
            if same_folder and other.file_stem == zoo_eval.file_stem:
                zoo_eval.file_stem = EVAL_FREQ_FILE_STEM
                clash = True
    if not clash:
        return None
    return (
        f"--eval-freq's paper-protocol evaluation writes {EVAL_FREQ_FILE_STEM}.npz/.csv; the yml's "
        "NatureEvalCallback keeps evaluations_nature.npz/.csv"
    )


def run_banner(
    cls: type,
    hyperparams: Mapping[str, Any],
    algo: str,
    config: str,
    n_timesteps: int,
    yml_timesteps: Any,
    threads: ThreadChoice,
) -> str:
    """The lines naming what this run trains: the class ``--algo`` built, its ``mode`` (the yml's, else the
    class's default), the yml, the steps (and the yml's own count when ``-n`` changed it), torch's threads."""
    what = f"{cls.__name__} ({cls.__module__}.{cls.__qualname__}"
    default = inspect.signature(cls).parameters.get("mode")
    mode = hyperparams.get("mode", default.default if default is not None else None)
    what += f", mode={mode})" if mode is not None else ")"
    steps = f"{n_timesteps:,} agent steps"
    try:
        in_file: int | None = int(float(yml_timesteps))
    except (TypeError, ValueError):
        in_file = None
    if in_file is not None and in_file != n_timesteps:
        steps += f" (-n; the yml says {in_file:,})"
    return f"--algo {algo} builds {what} from {config}, {steps}\n{threads.describe()}"


def _save_config(self: Any, saved_hyperparams: dict[str, Any]) -> None:
    """``ExperimentManager._save_config`` once :func:`install` ran: this package's steps (the module docstring),
    then rl-zoo3's own."""
    note = separate_eval_files(self.callbacks, PaperProtocolEvalCallback)
    if note:
        print(note)
    threads = configure_torch_threads(getattr(self.args, "num_threads", None))
    cls = ALGOS[self.algo]
    in_yml = saved_hyperparams.get("n_timesteps")
    print(run_banner(cls, self._hyperparams, self.algo, str(self.config), self.n_timesteps, in_yml, threads))
    record_n_timesteps(saved_hyperparams, self.n_timesteps)
    _ZOO_SAVE_CONFIG(self, saved_hyperparams)


def install() -> None:
    """Wrap rl-zoo3's ``ExperimentManager._save_config`` (in this process; again: no change)."""
    ExperimentManager._save_config = _save_config  # type: ignore[method-assign]
