"""What a sweep is: games × seeds, and the ``python -m sb3_dqn_atari.train`` command line of each trial.

A sweep folder ``<-f>/<name>/`` holds:

- ``sweep.json``: the sweep's settings (a :class:`SweepSpec`), written when it starts;
- ``hyperparams.yml``: the copy of ``-conf`` that every trial reads (editing yours later changes nothing);
- Ray Tune's experiment state (``experiment_state-*.json``, ``tuner.pkl``), read by ``--resume``;
- one folder per trial, ``<env id>_seed<seed>/``: Tune's results (``result.json``, ``progress.csv``) and its
  copies of our checkpoints (``checkpoint_<n>/``), ``trial.json`` (env, seed, command line), ``attempts.jsonl``
  (one line per attempt: process, node, checkpoint resumed from), the trial's ``stdout.log``/``stderr.log``, and
  rl-zoo3's run folders ``<algo>/<env id>_<k>/`` (a retry resumes into the next ``k``, as
  ``python -m sb3_dqn_atari.train --resume`` does).

The folder must be on a file system every node of the cluster mounts (NFS, a shared disk), as a Slurm array's
output folder would be: trials write there directly, and Tune keeps its checkpoint copies there.
"""

from __future__ import annotations

import ast
import contextlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sb3_dqn_atari.atari.wrappers import EVAL_MAX_FRAMES
from sb3_dqn_atari.common.errors import UserError

SPEC_FILE = "sweep.json"
CONF_FILE = "hyperparams.yml"
TRIAL_FILE = "trial.json"
ATTEMPTS_FILE = "attempts.jsonl"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
EVAL_CALLBACK = "sb3_dqn_atari.sweep.callbacks.TuneEvalCallback"
CHECKPOINT_CALLBACK = "sb3_dqn_atari.sweep.callbacks.TuneCheckpointCallback"
#: callbacks of a yml that the sweep's own two replace (they do the same job and would do it twice)
REPLACED_CALLBACKS = (
    "sb3_dqn_atari.evaluation.NatureEvalCallback",
    "sb3_dqn_atari.checkpoint.ResumableCheckpointCallback",
)
#: DeepMind's ``run_gpu`` evaluated every 250,000 agent steps (Mnih et al. 2015, Fig. 2)
PAPER_EVAL_FREQ = 250_000
#: default checkpoint period at paper scale (a checkpoint of the 1M replay memory is ~7.3 GB)
CHECKPOINT_FREQ = 500_000
_ATARI_SUFFIX = "NoFrameskip-v4"


# ------------------------------------------------------------------------------------------------ games
def env_id_for(game: str) -> str:
    """The env id to train on for ``game``: a registered env id as is (``PongNoFrameskip-v4``, ``CartPole-v1``),
    else an Atari game's short name or ROM id, in any case (``Pong``, ``SpaceInvaders``, ``space_invaders``,
    ``ms_pacman``) as its ``<Name>NoFrameskip-v4`` id (the paper's emulator settings)."""
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    if game in gym.registry:
        return game
    key = game.lower().replace("_", "").replace(" ", "")
    for env_id in gym.registry:
        name = env_id[: -len(_ATARI_SUFFIX)] if env_id.endswith(_ATARI_SUFFIX) else ""
        if name.lower() == key and "-ram" not in env_id and "Deterministic" not in env_id:
            return str(env_id)
    raise UserError(
        f"unknown game {game!r}: pass an Atari game's name (Pong, SpaceInvaders, ms_pacman) or a registered env id "
        "(PongNoFrameskip-v4)"
    )


def read_section(conf: Path, env_id: str) -> dict[str, Any]:
    """The hyperparameters rl-zoo3 uses for ``env_id`` in ``conf``: its own section, else ``atari`` for an Atari
    env, else ``default`` (``ExperimentManager.read_hyperparameters``'s lookup)."""
    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_dqn_atari.common.safe_yaml import read_yaml

    if conf.suffix not in (".yml", ".yaml"):
        raise UserError(f"{conf}: a sweep takes a yml hyperparameter file (-conf hyperparams/dqn.yml)")
    data = read_yaml(conf)
    if not isinstance(data, dict):
        raise UserError(f"{conf} is not a mapping of env ids to hyperparameters")
    for key in (env_id, "atari" if ExperimentManager.is_atari(env_id) else None, "default"):
        if key is not None and isinstance(data.get(key), dict):
            return dict(data[key])
    raise UserError(f"{conf} has no hyperparameters for {env_id} (no {env_id}, atari or default section)")


def _param_key(param: str) -> str:
    return param.split(":", 1)[0]


def _callback_name(entry: Any) -> str:
    return str(next(iter(entry))) if isinstance(entry, dict) and len(entry) == 1 else str(entry)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# ------------------------------------------------------------------------------------------------- spec
@dataclass
class SweepSpec:
    """One sweep: every (env id, seed) pair trains with the same rl-zoo3 command line but for ``--env``/``--seed``.

    :param folder: the sweep folder (``<-f>/<name>``, absolute)
    :param n_timesteps: agent steps per trial (``-n``); ``None``: each env's ``n_timesteps`` from the yml
    :param params: rl-zoo3 ``-params`` entries (``key:value``), passed on as given; a ``callback`` entry replaces
        the yml's callbacks, as in rl-zoo3
    :param eval_freq: paper-protocol evaluation every this many agent steps; ``None``: the paper's 250,000, or
        the trial's budget if smaller (one evaluation, of the final network)
    :param eval_max_frames: the evaluation's episode cap (the paper's 18,000 emulator frames = 5 minutes)
    :param checkpoint_freq: exact checkpoint (and Tune checkpoint) every this many agent steps; ``None``:
        500,000, or a quarter of the budget if smaller
    :param max_failures: retries of a failed trial (each from its latest checkpoint)
    :param max_concurrent_trials: at most this many trials at once (``None``: as many as the cluster fits)
    :param report_freq: progress (``timesteps``) reported to Tune every this many agent steps
    """

    folder: str
    env_ids: list[str]
    seeds: list[int]
    algo: str = "dqn"
    n_timesteps: int | None = None
    params: list[str] = field(default_factory=list)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    eval_freq: int | None = None
    eval_episodes: int = 10
    eval_max_frames: int = EVAL_MAX_FRAMES
    checkpoint_freq: int | None = None
    max_failures: int = 3
    max_concurrent_trials: int | None = None
    report_freq: int = 10_000

    # ---------------------------------------------------------------------------------------- places
    @property
    def path(self) -> Path:
        return Path(self.folder)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def conf(self) -> Path:
        return self.path / CONF_FILE

    def trial_folder(self, env_id: str, seed: int) -> Path:
        return self.path / trial_name(env_id, seed)

    # -------------------------------------------------------------------------------------- per trial
    def budget(self, env_id: str) -> int:
        """Agent steps of the trial for ``env_id``."""
        if self.n_timesteps is not None:
            return int(self.n_timesteps)
        section = read_section(self.conf, env_id)
        if "n_timesteps" not in section:
            raise UserError(f"{self.conf} sets no n_timesteps for {env_id}; pass -n")
        return int(float(section["n_timesteps"]))

    def callbacks(self, env_id: str) -> list[Any]:
        """The trial's rl-zoo3 ``callback`` hyperparameter: the yml's (or ``-params callback:``'s) callbacks but
        those in :data:`REPLACED_CALLBACKS`, then the paper-protocol evaluation and the checkpoints reported to
        Tune (in that order: at the end of training the evaluation runs before the last checkpoint)."""
        given = [p.split(":", 1)[1] for p in self.params if _param_key(p) == "callback"]
        try:
            base = ast.literal_eval(given[-1]) if given else read_section(self.conf, env_id).get("callback")
        except (ValueError, SyntaxError):
            raise UserError(
                f"-params {'callback:' + given[-1]!r}: a sweep reads callback as a Python literal (a list of names or "
                "{name: kwargs} dicts)"
            ) from None
        kept = [c for c in _listed(base) if _callback_name(c) not in REPLACED_CALLBACKS]
        budget = self.budget(env_id)
        eval_freq = self.eval_freq or min(PAPER_EVAL_FREQ, budget)
        checkpoint_freq = self.checkpoint_freq or min(CHECKPOINT_FREQ, max(1, budget // 4))
        evaluation = {
            "eval_freq": eval_freq,
            "n_eval_episodes": self.eval_episodes,
            "max_episode_frames": self.eval_max_frames,
            "report_freq": self.report_freq,
        }
        # keep=1: the newest checkpoint stays in the run folder; Tune keeps its own copies (num_to_keep)
        checkpoints = {"save_freq": checkpoint_freq, "keep": 1}
        return [*kept, {EVAL_CALLBACK: evaluation}, {CHECKPOINT_CALLBACK: checkpoints}]

    def trial_argv(self, env_id: str, seed: int) -> list[str]:
        """The trial's ``python -m sb3_dqn_atari.train`` arguments (``-f`` is the trial folder). The same command
        run by hand trains the same agent (the Tune callbacks only report when there is a Tune session)."""
        threads = max(1, int(self.cpus_per_trial))  # torch threads = the trial's CPUs: no oversubscription
        argv = ["--algo", self.algo, "--env", env_id, "-conf", str(self.conf), "--seed", str(seed)]
        argv += ["-f", str(self.trial_folder(env_id, seed)), "--eval-freq", "-1", "--num-threads", str(threads)]
        if self.n_timesteps is not None:
            argv += ["-n", str(self.n_timesteps)]
        params = [p for p in self.params if _param_key(p) != "callback"]
        return [*argv, "-params", *params, f"callback:{self.callbacks(env_id)!r}"]

    # ------------------------------------------------------------------------------------------- checks
    def check(self) -> None:
        """Everything a trial would fail on at once, checked before Ray starts (one :class:`UserError`)."""
        if not self.env_ids or not self.seeds:
            raise UserError("pass at least one game (--games) and one seed (--seeds)")
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.env_ids)) != len(self.env_ids):
            raise UserError("--games and --seeds must not repeat a value")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise UserError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        for name in ("n_timesteps", "eval_freq", "checkpoint_freq"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive")
        if self.eval_episodes <= 0 or self.eval_max_frames <= 0 or self.max_failures < 0 or self.report_freq < 0:
            raise UserError("--eval-episodes and --eval-max-frames must be positive, --max-failures >= 0")
        if self.max_concurrent_trials is not None and self.max_concurrent_trials < 1:
            raise UserError("--max-concurrent-trials must be at least 1")
        for param in self.params:
            if ":" not in param:
                raise UserError(f"-params {param!r}: write key:value, as for rl-zoo3")
        from sb3_dqn_atari.atari.protocols import atari_game

        for env_id in self.env_ids:
            atari_game(env_id)  # trials are evaluated with the paper's protocol: Atari only
            self.callbacks(env_id)  # reads the yml section, the budget of every env and -params callback:


def trial_name(env_id: str, seed: int) -> str:
    """The trial's folder name in the sweep folder (also its name in Tune's progress table)."""
    return f"{env_id.replace('/', '_')}_seed{seed}"


def create_sweep(spec: SweepSpec, conf: str | Path) -> None:
    """Create the sweep folder: the copy of ``conf`` and ``sweep.json``; a :class:`UserError` if it exists."""
    conf = Path(conf)
    if not conf.is_file():
        raise UserError(f"no such hyperparameter file: {conf} (pass -conf hyperparams/dqn.yml)")
    if spec.path.exists():
        raise UserError(
            f"{spec.path} already exists: add --resume to continue that sweep, or pass another --name or -f"
        )
    spec.path.mkdir(parents=True)
    try:
        shutil.copyfile(conf, spec.conf)
        spec.check()
        (spec.path / SPEC_FILE).write_text(json.dumps(asdict(spec), indent=1) + "\n")
    except BaseException:
        shutil.rmtree(spec.path, ignore_errors=True)
        raise


def load_sweep(folder: str | Path) -> SweepSpec:
    """The :class:`SweepSpec` of an existing sweep folder (``--resume``)."""
    path = Path(folder).resolve()
    try:
        spec = SweepSpec(**json.loads((path / SPEC_FILE).read_text()))
    except FileNotFoundError:
        raise UserError(f"{path} is not a sweep folder (no {SPEC_FILE}); check -f and --name") from None
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"{path / SPEC_FILE} is unreadable ({exc.__class__.__name__}); cannot resume") from None
    spec.folder = str(path)  # the folder may have moved since
    return spec


def read_attempts(folder: str | Path) -> list[dict[str, Any]]:
    """The attempts recorded in a trial folder, oldest first (an unreadable line, cut by a kill, is skipped)."""
    attempts = []
    with contextlib.suppress(FileNotFoundError), open(Path(folder) / ATTEMPTS_FILE) as f:
        for line in f:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    attempts.append(record)
    return attempts
