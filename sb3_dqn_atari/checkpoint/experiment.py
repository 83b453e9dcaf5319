"""``python -m sb3_dqn_atari.train``: rl-zoo3's ``train`` with exact checkpoints and resume (:func:`zoo_train`).

rl-zoo3's ``train()`` reads ``sys.argv`` and builds ``rl_zoo3.train.ExperimentManager`` itself, with no argument
for either: :func:`zoo_train` runs it with the remaining arguments as ``sys.argv`` and, as its
``ExperimentManager``, :class:`ResumableExperimentManager` bound to this call's :class:`TrainSession`
(``functools.partial``), both put back afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.monitor import Monitor

from sb3_dqn_atari.agent.episode_log import rewind
from sb3_dqn_atari.agent.memory import ReplayMemoryError
from sb3_dqn_atari.checkpoint.callback import ResumableCheckpointCallback
from sb3_dqn_atari.checkpoint.resume_check import check_checkpoint, checked_loading
from sb3_dqn_atari.checkpoint.state import CheckpointError, current_class_name
from sb3_dqn_atari.checkpoint.store import MANIFEST_FILE, MODEL_FILE, Checkpoint, latest_checkpoint, load_checkpoint
from sb3_dqn_atari.common.errors import UserError


@dataclass
class TrainSession:
    """What this command adds to one rl-zoo3 ``train()`` call, and what it learns from it."""

    argv: list[str]
    checkpoint_freq: int = 0
    checkpoint_keep: int = 2
    resume: Checkpoint | None = None
    trust_remote_code: bool = False
    learning: bool = False
    run_folders: list[str] = field(default_factory=list)


class ResumableExperimentManager(ExperimentManager):
    """rl-zoo3's ExperimentManager with exact checkpoints and resume (see :mod:`sb3_dqn_atari.train`).

    :param session: this training command's options and state (the other arguments are rl-zoo3's)
    """

    def __init__(self, *args: Any, session: TrainSession, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = session
        if session.resume is not None:
            self.continue_training = True  # build the model with _load_pretrained_agent below
            folder = run_folder_of(session.resume)
            if folder is not None:  # go on in the run's own folder, not in a new `<env>_<id + 1>`
                self.save_path = str(folder)
                self.params_path = f"{self.save_path}/{self.env_name}"

    def create_log_folder(self) -> None:
        """rl-zoo3 creates the run folder here, after reading the steps to train: stop first when a resumed
        checkpoint has them all (nothing is written); else note whether the folder is new (removed on bad input).
        A run resumed in its own folder appends to its Monitor files (their rows after the checkpoint are cut in
        :meth:`_load_pretrained_agent`)."""
        resume = self.session.resume
        if resume is not None and resume.num_timesteps >= self.n_timesteps:
            raise NothingToTrain(
                f"{resume.path} is at step {resume.num_timesteps:,} >= {self.n_timesteps:,}: nothing to train "
                "(pass a larger -n to train further)"
            )
        if not os.path.exists(self.save_path):
            self.session.run_folders.append(self.save_path)
        if resume is not None and Path(self.save_path, f"0.{Monitor.EXT}").is_file():
            self.monitor_kwargs = {**self.monitor_kwargs, "override_existing": False}
        super().create_log_folder()

    def create_callbacks(self) -> None:
        super().create_callbacks()
        session = self.session
        ours = [c for c in self.callbacks if isinstance(c, ResumableCheckpointCallback)]
        if not ours and (session.checkpoint_freq > 0 or session.resume is not None):
            ours = [
                ResumableCheckpointCallback(
                    save_freq=session.checkpoint_freq, keep=session.checkpoint_keep, verbose=self.verbose
                )
            ]
            self.callbacks += ours
        for callback in ours:
            callback.argv = list(session.argv)
            if callback.save_path is None:
                callback.save_path = os.path.join(self.save_path, "checkpoints")
            if session.resume is not None:
                callback.resume_from = str(session.resume.path)

    def _load_pretrained_agent(self, hyperparams: dict[str, Any], env: Any) -> Any:
        checkpoint = self.session.resume
        if checkpoint is None:
            return super()._load_pretrained_agent(hyperparams, env)
        cls = ALGOS[self.algo]
        recorded = str(checkpoint.manifest.get("algorithm", ""))
        if current_class_name(recorded) != f"{cls.__module__}.{cls.__qualname__}":  # named as today or before
            raise CheckpointError(
                f"{checkpoint.path} holds a {recorded} agent; --algo {self.algo} builds {cls.__name__}"
            )
        print(f"Resuming from {checkpoint.path} (step {checkpoint.num_timesteps:,})")
        model, _ = load_checkpoint(
            checkpoint.path,
            env=env,
            device=self.device,
            cls=cls,
            tensorboard_log=self.tensorboard_log,
            verbose=self.verbose,
        )
        if Path(self.save_path) == run_folder_of(checkpoint):
            print(f"Continuing the run in {self.save_path}")
            rewind(Path(self.save_path), model.num_timesteps, env)
        return model

    def learn(self, model: Any) -> None:
        self.session.learning = True
        if self.session.resume is None:
            super().learn(model)
            return
        # rl-zoo3's learn, but going on: reset_num_timesteps=False, up to the same total (> 0: create_log_folder).
        remaining = self.n_timesteps - model.num_timesteps
        kwargs: dict[str, Any] = {}
        if self.log_interval > -1:
            kwargs["log_interval"] = self.log_interval
        elif self.log_interval < -1:
            kwargs["log_interval"] = None
        if self.callbacks:
            kwargs["callback"] = self.callbacks
        try:
            model.learn(remaining, reset_num_timesteps=False, **kwargs)
        except KeyboardInterrupt:
            pass
        finally:
            if self.callbacks:
                self.callbacks[0].on_training_end()
            with contextlib.suppress(EOFError):
                model.env.close()


class NothingToTrain(Exception):
    """A resumed checkpoint already has the steps to train: said, and nothing is created (exit status 0)."""


def run_folder_of(checkpoint: Checkpoint) -> Path | None:
    """The rl-zoo3 run folder a checkpoint belongs to (``<run>/checkpoints/step_<n>``) when it is that run's
    newest checkpoint, else ``None``: resuming from an older one, in a new folder, leaves the run as it was."""
    parent = checkpoint.path.resolve().parent
    if parent.name != "checkpoints" or latest_checkpoint(parent).path.resolve() != checkpoint.path.resolve():
        return None
    return parent.parent


def own_options() -> argparse.ArgumentParser:
    """This command's options, beside rl-zoo3's."""
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.train",
        add_help=False,
        description="rl-zoo3's train (NatureDQN as --algo dqn) with exact checkpoints and resume; "
        "all rl-zoo3 train arguments apply.",
    )
    parser.add_argument("--checkpoint-freq", type=int, default=0, help="exact checkpoint every N agent steps (0: off)")
    parser.add_argument("--checkpoint-keep", type=int, default=2, help="checkpoints to keep (default 2)")
    parser.add_argument("--resume", default=None, help="checkpoint, checkpoints folder or run folder to go on from")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="with --resume: skip the checks of the run folder's yml files, of the command line the checkpoint "
        "records and of its pickles, and unpickle it as SB3 does (for checkpoints you trust)",
    )
    return parser


def _without_resume(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume=") and arg != "--trust-remote-code":
            out.append(arg)
    return out


def _vet_resume(checkpoint: Checkpoint, reused_argv: list[str] | None, trust_remote_code: bool) -> None:
    """What ``--resume`` reads as plain files, checked before anything is unpickled: the run folder around the
    checkpoint (:func:`sb3_dqn_atari.common.vetting.vet_run_folder`: rl-zoo3's yml files, zip and ONNX files), the
    checkpoint's ``model.zip`` (member sizes: SB3 reads them whole), and the command line it records when that is
    reused (:func:`sb3_dqn_atari.common.trust.check_zoo_argv`: ``-conf``, ``--gym-packages``, ``-params``, ...), and
    the checkpoint's pickles (:func:`sb3_dqn_atari.checkpoint.resume_check.check_checkpoint`)."""
    from sb3_dqn_atari.common.bounded_zip import check_zip
    from sb3_dqn_atari.common.trust import check_zoo_argv
    from sb3_dqn_atari.common.vetting import vet_run_folder

    if checkpoint.path.parent.name == "checkpoints":
        vet_run_folder(checkpoint.path.parent.parent, trust_remote_code)
    if (checkpoint.path / MODEL_FILE).is_file():
        check_zip(checkpoint.path / MODEL_FILE, what="SB3 model zip")
    if reused_argv is not None and not trust_remote_code:
        check_zoo_argv(reused_argv, str(checkpoint.path / MANIFEST_FILE))
    if not trust_remote_code:
        check_checkpoint(checkpoint.path)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    known = (CheckpointError, ReplayMemoryError, UserError)
    return text if isinstance(exc, known) else f"{exc.__class__.__name__}: {text}"


def _session_from(argv: list[str], parser: argparse.ArgumentParser) -> tuple[TrainSession, list[str]]:
    """This command's options read, the checkpoint to resume found and checked: the session, and rl-zoo3's
    arguments. ``--resume`` reuses the checkpoint's command line; arguments given now come after it, so they win
    (``--resume RUN -n 2000000`` trains the run further)."""
    ours, rest = parser.parse_known_args(argv)
    if ours.checkpoint_freq < 0 or ours.checkpoint_keep < 1:
        raise CheckpointError("--checkpoint-freq must be >= 0 and --checkpoint-keep >= 1")
    if ours.resume is not None and {"-i", "--trained-agent"} & {a.split("=")[0] for a in rest}:
        raise CheckpointError("--resume and -i/--trained-agent exclude each other: pass one")
    resume = latest_checkpoint(ours.resume) if ours.resume is not None else None
    reused: list[str] | None = None
    if resume is not None:
        recorded = resume.manifest.get("argv", [])
        if not isinstance(recorded, list):
            raise CheckpointError(f"{resume.path}/{MANIFEST_FILE}: 'argv' is not a list of arguments")
        reused = [str(a) for a in recorded]
        argv = reused + argv
        ours, rest = parser.parse_known_args(argv)
        resume.verify(hashes=False)
        _vet_resume(resume, reused, ours.trust_remote_code)
    _require_conf(rest)
    session = TrainSession(
        _without_resume(argv), ours.checkpoint_freq, ours.checkpoint_keep, resume, ours.trust_remote_code
    )
    return session, rest


def _require_conf(rest: list[str]) -> None:
    """``--algo dqn`` on an Atari game without ``-conf`` would build NatureDQN from rl-zoo3's packaged SB3 Atari
    settings (SB3's AtariWrapper, Adam's learning rate on DeepMind's RMSProp, ``exploration_fraction`` overridden
    by the paper's decay): a hybrid of neither. Refused with what to pass (issue 18, item 4). Other envs keep
    rl-zoo3's packaged settings (this project's ymls are for Atari); an unknown id is left to rl-zoo3's error."""
    from sb3_dqn_atari.atari.envs import is_atari

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")  # rl-zoo3's defaults
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("-conf", "--conf-file", default=None)
    known, _ = parser.parse_known_args(rest)
    if known.algo != "dqn" or known.conf_file is not None:
        return
    try:
        atari = is_atari(known.env)
    except UserError:
        return
    if atari:
        raise UserError(
            f"pass -conf hyperparams/dqn.yml (the paper's settings) to train {known.env}: without -conf, rl-zoo3's "
            "packaged SB3 Atari settings would be mixed with NatureDQN"
        )


def zoo_train(argv: list[str] | None = None) -> int:
    """``python -m sb3_dqn_atari.train``: rl-zoo3's ``train`` with ``--checkpoint-freq``, ``--checkpoint-keep``
    and ``--resume`` (see :mod:`sb3_dqn_atari.train`); returns the exit status (2: bad input, one line on
    stderr, and the run folder it had begun removed). NatureDQN must be registered (``sb3_dqn_atari.zoo``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = own_options()
    if {"-h", "--help"} & set(parser.parse_known_args(argv)[1]):
        print(parser.format_help())
    try:
        session, rest = _session_from(argv, parser)
    except (CheckpointError, UserError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return UserError.exit_status
    import rl_zoo3.train as zoo_module  # its train() and ExperimentManager, set and put back (module docstring)

    saved_argv, saved_manager = sys.argv, zoo_module.ExperimentManager
    sys.argv = [sys.argv[0], *rest]
    zoo_module.ExperimentManager = functools.partial(  # type: ignore[misc,assignment]
        ResumableExperimentManager, session=session
    )
    try:
        with checked_loading(session.resume is not None and not session.trust_remote_code):
            zoo_module.train()
    except NothingToTrain as exc:
        print(exc)
    except Exception as exc:
        # a failure while training is not bad input: the full traceback; but the replay memory that does not
        # fit (raised by the first steps) is
        if session.learning and not isinstance(exc, ReplayMemoryError):
            raise
        for folder in session.run_folders:  # the run folders this command created: no partial output
            shutil.rmtree(folder, ignore_errors=True)
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return UserError.exit_status
    finally:
        sys.argv, zoo_module.ExperimentManager = saved_argv, saved_manager  # type: ignore[misc]
    return 0
