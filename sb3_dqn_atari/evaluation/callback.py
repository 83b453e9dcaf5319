"""Evaluation during training with the paper's protocol: :class:`NatureEvalCallback`;
:class:`PaperProtocolEvalCallback`, what rl-zoo3's ``--eval-freq`` builds once :mod:`sb3_dqn_atari.zoo` is imported;
:class:`PaperProtocolTrialEvalCallback`, the trial evaluation of its Optuna search (:mod:`sb3_dqn_atari.zoo.hpo`)."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, EventCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_dqn_atari.agent.episode_log import env_layers, monitor_folder
from sb3_dqn_atari.atari.protocols import ProtocolEnv, get_protocol, make_eval_env
from sb3_dqn_atari.atari.spec import NATURE_SPEC, PreprocessingSpec, sb3_atari_spec
from sb3_dqn_atari.atari.wrappers import EVAL_MAX_FRAMES
from sb3_dqn_atari.common.files import atomic_write_bytes
from sb3_dqn_atari.evaluation.protocol import EVAL_EPSILON, EvalResult, evaluate_policy_protocol, greedy

# ---------------------------------------------------------------------------------------------- the callback


def training_preprocessing(venv: VecEnv) -> PreprocessingSpec:
    """The preprocessing of the training env, read back from its layers, so that the evaluation sees the frames the
    agent learns from: SB3's ``AtariWrapper`` with the arguments its sub-wrappers hold (sticky actions, no-ops,
    frame skip, life loss, reward clipping, screen size); otherwise (NatureAtariWrapper, or an env in another
    process) the paper's."""
    from stable_baselines3.common import atari_wrappers as sb3

    layers = list(env_layers(venv))
    if not any(isinstance(layer, sb3.AtariWrapper) for layer in layers):
        return NATURE_SPEC
    kwargs: dict[str, Any] = {"noop_max": 0, "frame_skip": 1, "terminal_on_life_loss": False, "clip_reward": False}
    for layer in layers:
        if isinstance(layer, sb3.StickyActionEnv):
            kwargs["action_repeat_probability"] = float(layer.action_repeat_probability)
        elif isinstance(layer, sb3.NoopResetEnv):
            kwargs["noop_max"] = int(layer.noop_max)
        elif isinstance(layer, sb3.MaxAndSkipEnv):
            kwargs["frame_skip"] = int(layer._skip)
        elif isinstance(layer, sb3.WarpFrame):
            kwargs["screen_size"] = int(layer.width)
        kwargs["terminal_on_life_loss"] |= isinstance(layer, sb3.EpisodicLifeEnv)
        kwargs["clip_reward"] |= isinstance(layer, sb3.ClipRewardEnv)
    return sb3_atari_spec(**kwargs)


class NatureEvalCallback(EventCallback):
    """Evaluate the agent with the paper's protocol while it trains (the learning curve of Mnih et al. 2015,
    Fig. 2, was made this way: DeepMind's ``run_gpu`` evaluates every 250,000 agent steps with ε = 0.05).

    Logs ``eval/paper_score`` (mean raw score), ``eval/paper_score_std``, ``eval/paper_score_median``,
    ``eval/paper_human_normalized`` (percent) and ``eval/paper_episode_frames`` to the SB3 logger, and writes
    ``evaluations_nature.npz`` and ``evaluations_nature.csv`` to the run folder.

    Evaluation ``k`` (0, 1, 2, ... in the order they run) uses the seed ``seed + k``: its emulator start, no-op
    counts and ε draws differ from the previous evaluation's, so two evaluations of a policy that changes only a
    little are not trivially equal. With one seed for all (before issue 18), every evaluation replayed the same
    no-op counts and ε draws, and a network whose greedy action along that trajectory had not changed replayed
    the same game to the last digit: Breakout's networks in the quick start's first 100k steps choose NOOP for
    96–99 % of the states they see (the best and second-best Q-values ~1e-3 apart), so the ball is launched by
    the same ε draws each time. The seeds are recorded (``seeds`` in the npz, ``seed`` in the csv), a rerun
    reproduces them, and an exact resume goes on with the next ``k``.

    With rl-zoo3, add to the hyperparameter yml (rl-zoo3 instantiates it with these kwargs)::

        callback:
          - sb3_dqn_atari.evaluation.NatureEvalCallback: {eval_freq: 250000, n_eval_episodes: 10}

    :param eval_freq: evaluate every this many agent steps (``model.num_timesteps``, all envs together).
    :param n_eval_episodes: episodes per evaluation (the paper's final numbers use 30).
    :param env_id: the game; default: the training env's id.
    :param protocol: ``"nature"`` or ``"machado"``.
    :param epsilon: ε of the ε-greedy evaluation policy.
    :param seed: seed of the first evaluation; evaluation ``k`` uses ``seed + k``.
    :param log_path: folder for the npz/csv; default: the folder of the training env's Monitor file
        (rl-zoo3's run folder), else the logger's folder; ``None`` if neither exists (logging only).
    :param max_episode_frames: the 5-minute cap (18,000 emulator frames).
    :param callback_on_new_best: called when the mean score improves.
    :param file_stem: the files' name, ``<file_stem>.npz`` and ``.csv``.
    """

    def __init__(
        self,
        eval_freq: int = 250_000,
        n_eval_episodes: int = 10,
        env_id: str | None = None,
        protocol: str = "nature",
        epsilon: float = EVAL_EPSILON,
        seed: int = 0,
        log_path: str | None = None,
        max_episode_frames: int = EVAL_MAX_FRAMES,
        callback_on_new_best: BaseCallback | None = None,
        verbose: int = 1,
        file_stem: str = "evaluations_nature",
    ) -> None:
        super().__init__(callback_on_new_best, verbose=verbose)
        if eval_freq <= 0 or n_eval_episodes <= 0:
            raise ValueError("eval_freq and n_eval_episodes must be positive")
        get_protocol(protocol)
        self.eval_freq = int(eval_freq)
        self.n_eval_episodes = int(n_eval_episodes)
        self.env_id = env_id
        self.protocol = protocol
        self.epsilon = float(epsilon)
        self.seed = int(seed)
        self.log_path: Path | None = Path(log_path) if log_path is not None else None
        self.max_episode_frames = int(max_episode_frames)
        if not file_stem or Path(file_stem).name != file_stem or file_stem in (".", ".."):
            raise ValueError(f"file_stem must be a plain file name, not {file_stem!r}")
        self.file_stem = str(file_stem)
        self.best_mean = -math.inf
        self.last_result: EvalResult | None = None
        self.timesteps: list[int] = []
        self.results: list[EvalResult] = []
        self._env: ProtocolEnv | None = None
        self._evals_done = 0

    def _init_callback(self) -> None:
        super()._init_callback()
        if self.env_id is None:
            spec = self.training_env.get_attr("spec", [0])[0]
            if spec is None:
                raise ValueError("NatureEvalCallback: the training env has no spec; pass env_id")
            self.env_id = str(spec.id)
        if self.log_path is None:
            folder = monitor_folder(self.training_env)
            if folder is None and self.logger is not None and self.logger.get_dir():
                folder = Path(str(self.logger.get_dir()))
            self.log_path = folder
        if self.log_path is not None:
            self.log_path.mkdir(parents=True, exist_ok=True)
        action_space = self.model.action_space
        assert isinstance(action_space, spaces.Discrete), "NatureEvalCallback evaluates discrete-action agents"
        self._env = make_eval_env(
            self.env_id,
            self.protocol,
            self.seed,
            n_actions=int(action_space.n),
            obs_shape=self.model.observation_space.shape,
            max_episode_frames=self.max_episode_frames,
            spec=training_preprocessing(self.training_env),
        )

    def _on_step(self) -> bool:
        if self.num_timesteps // self.eval_freq <= self._evals_done:
            return True
        self._evals_done = self.num_timesteps // self.eval_freq
        assert self._env is not None
        result = evaluate_policy_protocol(
            greedy(self.model),
            protocol=self.protocol,
            episodes=self.n_eval_episodes,
            seed=self.seed + len(self.results),  # evaluation k: seed + k (see the class docstring)
            epsilon=self.epsilon,
            env=self._env,
        )
        self.last_result = result
        self.timesteps.append(self.num_timesteps)
        self.results.append(result)
        self.logger.record("eval/paper_score", result.mean)
        self.logger.record("eval/paper_score_std", result.std)
        self.logger.record("eval/paper_score_median", result.median)
        if result.human_normalized is not None:
            self.logger.record("eval/paper_human_normalized", result.human_normalized)
        self.logger.record("eval/paper_episode_frames", float(np.mean([e.frames for e in result.episodes])))
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        if self.verbose >= 1:
            hns = "" if result.human_normalized is None else f", human-normalised {result.human_normalized:.1f}%"
            print(
                f"Paper-protocol eval ({self.protocol}) at {self.num_timesteps} steps: "
                f"{result.mean:.2f} +/- {result.std:.2f} over {len(result.episodes)} episodes{hns}"
            )
        if self.log_path is not None:
            self._write_files()
        if result.mean > self.best_mean:
            self.best_mean = result.mean
            if self.callback is not None:
                return self._on_event()
        return True

    def _write_files(self) -> None:
        assert self.log_path is not None
        frame_skip = get_protocol(self.protocol).frame_skip
        timesteps = np.array(self.timesteps, dtype=np.int64)

        def per_episode(field: str, dtype: type) -> np.ndarray:
            return np.array([[getattr(e, field) for e in r.episodes] for r in self.results], dtype=dtype)

        hns = [math.nan if r.human_normalized is None else r.human_normalized for r in self.results]
        buffer = io.BytesIO()
        np.savez(
            buffer,
            timesteps=timesteps,
            frames=timesteps * frame_skip,
            results=per_episode("score", np.float64),
            ep_lengths=per_episode("steps", np.int64),
            ep_frames=per_episode("frames", np.int64),
            noops=per_episode("noops", np.int64),
            human_normalized=np.array(hns, dtype=np.float64),
            protocol=np.array(self.protocol),
            epsilon=np.array(self.epsilon),
            seeds=np.array([r.seed for r in self.results], dtype=np.int64),
        )
        atomic_write_bytes(self.log_path / f"{self.file_stem}.npz", buffer.getvalue())
        rows = [
            {
                "timesteps": step,
                "frames": step * frame_skip,
                "mean": r.mean,
                "std": r.std,
                "median": r.median,
                "min": r.min,
                "max": r.max,
                "human_normalized": "" if r.human_normalized is None else r.human_normalized,
                "n_episodes": len(r.episodes),
                "protocol": self.protocol,
                "epsilon": self.epsilon,
                "seed": r.seed,
            }
            for step, r in zip(self.timesteps, self.results, strict=True)
        ]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.log_path / f"{self.file_stem}.csv", text.getvalue().encode())

    def _on_training_end(self) -> None:
        if self._env is not None:
            self._env.close()


class _SaveBestModel(BaseCallback):
    """Saves ``best_model.zip`` when the paper-protocol score improves (what SB3's EvalCallback does)."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def _on_step(self) -> bool:
        self.model.save(os.path.join(self.folder, "best_model"))
        return True


class PaperProtocolEvalCallback(NatureEvalCallback):
    """What rl-zoo3's ``--eval-freq`` builds once this module is imported: SB3 ``EvalCallback``'s arguments,
    the paper's evaluation. ``eval_freq`` counts calls as rl-zoo3 passes it (already divided by ``n_envs``)."""

    def __init__(
        self,
        eval_env: VecEnv,
        callback_on_new_best: BaseCallback | None = None,
        n_eval_episodes: int = 5,
        eval_freq: int = 10_000,
        log_path: str | None = None,
        best_model_save_path: str | None = None,
        **_ignored: Any,  # deterministic, render, warn: the protocol fixes ε = 0.05
    ) -> None:
        eval_env.close()  # the training-wrapper env rl-zoo3 built is not the paper's
        self._eval_freq_calls = int(eval_freq)
        saver = _SaveBestModel(best_model_save_path) if best_model_save_path else None
        super().__init__(
            eval_freq=eval_freq, n_eval_episodes=n_eval_episodes, log_path=log_path, callback_on_new_best=saver
        )

    def _init_callback(self) -> None:
        self.eval_freq = self._eval_freq_calls * self.training_env.num_envs
        super()._init_callback()


class PaperProtocolTrialEvalCallback(PaperProtocolEvalCallback):
    """rl-zoo3's ``TrialEvalCallback`` (same arguments, same ``trial.report``/pruning and ``is_pruned``,
    ``last_mean_reward``), scoring with the paper's protocol: ε = 0.05, 1-30 no-op starts, raw game score over all
    lives, 18,000-frame cap (:class:`~sb3_dqn_atari.evaluation.NatureEvalCallback`), every ``eval_freq`` calls.
    ``evaluations_nature.npz`` (and ``best_model.zip``) go to rl-zoo3's ``--optimization-log-path``/trial_<n>.

    :param kwargs: what rl-zoo3 passes by name (``n_eval_episodes``, ``eval_freq``, ``log_path``,
        ``best_model_save_path``; ``deterministic`` ignored), as to :class:`PaperProtocolEvalCallback`
    """

    def __init__(self, eval_env: VecEnv, trial: Any, *, verbose: int = 0, **kwargs: Any) -> None:
        super().__init__(eval_env, **kwargs)
        self.verbose = verbose
        self.trial = trial
        self.eval_idx = 0
        self.is_pruned = False
        self.last_mean_reward = -math.inf

    def _on_step(self) -> bool:
        evaluations = len(self.results)
        keep_going = super()._on_step()
        if len(self.results) == evaluations:
            return keep_going
        self.eval_idx += 1
        self.last_mean_reward = self.results[-1].mean
        self.trial.report(self.last_mean_reward, self.eval_idx)
        if self.trial.should_prune():
            self.is_pruned = True
            return False
        return keep_going
