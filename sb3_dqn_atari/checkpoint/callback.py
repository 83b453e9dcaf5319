"""Periodic exact checkpoints during ``learn``, and one on SIGINT/SIGTERM: :class:`ResumableCheckpointCallback`."""

from __future__ import annotations

import signal
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from sb3_dqn_atari.agent.episode_log import monitor_folder
from sb3_dqn_atari.checkpoint.state import restore_callbacks_state
from sb3_dqn_atari.checkpoint.store import latest_checkpoint, save_checkpoint


# ---------------------------------------------------------------------------------------------- callback
class ResumableCheckpointCallback(BaseCallback):
    """Periodic exact checkpoints (see :mod:`sb3_dqn_atari.checkpoint`), and one on SIGINT/SIGTERM before exit 0.

    With rl-zoo3, in the hyperparameter yml (rl-zoo3 builds it with these kwargs)::

        callback:
          - sb3_dqn_atari.checkpoint.ResumableCheckpointCallback: {save_freq: 500000, keep: 2}

    or ``python -m sb3_dqn_atari.train ... --checkpoint-freq 500000``; resume with
    ``python -m sb3_dqn_atari.train --resume logs/dqn/<Env>_1``.

    :param save_freq: save when a multiple of this many agent steps (``num_timesteps``) has been crossed,
        at the next rollout start; ``0``: only on signals and at the end
    :param save_path: folder of the ``step_<n>`` checkpoints; default ``<run folder>/checkpoints``, the run
        folder being where the training env's Monitor writes (rl-zoo3's), else the logger's, else ``.``
    :param keep: how many checkpoints to keep (the newest)
    :param save_replay_buffer: save the replay memory (needed for an exact resume)
    :param handle_signals: on SIGINT/SIGTERM, save at the next rollout start and exit with status 0 (a
        second signal interrupts at once)
    :param save_at_end: save one when ``learn`` completes its steps (to train further later)
    :param resume_from: checkpoint whose callback states (other callbacks' counters, evaluation envs) are
        restored at the start of training (:func:`load_checkpoint` restores the rest)
    """

    def __init__(
        self,
        save_freq: int = 500_000,
        save_path: str | None = None,
        keep: int = 2,
        save_replay_buffer: bool = True,
        handle_signals: bool = True,
        save_at_end: bool = True,
        resume_from: str | None = None,
        verbose: int = 1,
    ) -> None:
        super().__init__(verbose)
        if save_freq < 0 or keep < 1:
            raise ValueError(f"save_freq must be >= 0 and keep >= 1 (got {save_freq}, {keep})")
        self.save_freq = int(save_freq)
        self.save_path = save_path
        self.keep = int(keep)
        self.save_replay_buffer = save_replay_buffer
        self.handle_signals = handle_signals
        self.save_at_end = save_at_end
        self.resume_from = resume_from
        #: the training command's arguments, recorded in the manifest (``--resume`` alone reuses them)
        self.argv: list[str] = list(sys.argv[1:])
        self.last_checkpoint: Path | None = None
        self._last_save_step = -1
        self._signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._root: BaseCallback | None = None
        self._started = False

    # ---------------------------------------------------------------------------------------- plumbing
    def _folder(self) -> Path:
        if self.save_path is not None:
            return Path(self.save_path)
        run = monitor_folder(self.training_env)
        if run is None and self.logger is not None and self.logger.get_dir():
            run = Path(str(self.logger.get_dir()))
        return (run or Path(".")) / "checkpoints"

    def _on_training_start(self) -> None:
        self._started = True
        self._root = self.locals.get("callback")
        self._last_save_step = self.num_timesteps = self.model.num_timesteps
        if self.resume_from is not None:
            states = latest_checkpoint(self.resume_from).training_state()["callbacks"]
            unmatched = restore_callbacks_state(self._root, states, skip=self)
            if unmatched:
                warnings.warn(f"callbacks not restored from the checkpoint: {', '.join(unmatched)}", stacklevel=2)
        if self.handle_signals:
            self._install_handlers()

    def _install_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread: signals stay as they are
                return

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signal is not None:  # a second signal: stop now
            self._restore_handlers()
            raise KeyboardInterrupt
        self._signal = signum
        print(
            f"{signal.Signals(signum).name}: saving a checkpoint at the next rollout start, then exiting "
            "(signal again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    # ------------------------------------------------------------------------------------------ events
    def save(self) -> Path:
        """Save a checkpoint now (exact only between ``learn`` iterations, e.g. in ``on_rollout_start``)."""
        path = save_checkpoint(
            self.model,
            self._folder(),
            keep=self.keep,
            save_replay_buffer=self.save_replay_buffer,
            callbacks=self._root,
            skip_callback=self,
            argv=self.argv,
        )
        self.last_checkpoint = path
        self._last_save_step = self.model.num_timesteps
        if self.verbose >= 1:
            print(f"Saved checkpoint {path}")
        return path

    def _on_rollout_start(self) -> None:
        step = self.model.num_timesteps
        due = self.save_freq > 0 and step // self.save_freq > self._last_save_step // self.save_freq
        if (due or self._signal is not None) and step != self._last_save_step:
            self.save()
        if self._signal is not None:
            self._restore_handlers()
            if self.verbose >= 1:
                print(
                    f"Stopped by {signal.Signals(self._signal).name} at step {step}; resume from {self.last_checkpoint}"
                )
            raise SystemExit(0)

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._restore_handlers()
        # Only after a complete learn() (not when stopped early or by an exception: not a rollout boundary;
        # rl-zoo3 also calls this when learn() failed before it started).
        completed = self._started and self.model.num_timesteps >= getattr(self.model, "_total_timesteps", 0)
        self._started = False
        if self.save_at_end and completed and self.model.num_timesteps != self._last_save_step:
            self.save()
