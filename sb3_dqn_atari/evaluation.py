"""The paper's evaluation protocol as a library: environments, the ε-greedy episode loop, scores, a callback.

**Nature protocol** (Mnih et al. 2015, Methods, "Evaluation procedure"): each episode starts with a random
number (1 to 30) of single-frame no-op actions, is played with an ε-greedy policy with ε = 0.05, lasts at
most 5 minutes of emulator time (18,000 frames at 60 Hz), and is scored with the raw game score summed over
all lives (no reward clipping, a lost life is not terminal). Action repeat 4 with the max over the last two
frames, no sticky actions (ALE ``NoFrameskip-v4`` semantics). The published table reports the mean over 30
such episodes. DeepMind's ``run_gpu`` applies ε itself (``eGreedy``: a uniform draw, then either a uniform
random action or the greedy one), independently of the training schedule; so do we.

**Machado protocol** (Machado et al. 2018, "Revisiting the Arcade Learning Environment", JAIR 61, §5):
sticky actions with repeat probability 0.25 (ALE v5) replace the no-op starts as the source of
stochasticity; no life-loss signal; the same 5-minute cap and raw score here, so the two are comparable.
Machado et al. recommend the full action set; an agent can only be evaluated with the action set it was
trained with, so the full set (18 actions) is used exactly when the model has 18 outputs.

Both protocols build the env from the given id with the protocol's settings *forced*
(``frameskip=1`` plus our :class:`~sb3_dqn_atari.wrappers.NatureAtariWrapper`, and the protocol's
``repeat_action_probability``), so ``BreakoutNoFrameskip-v4`` and ``ALE/Breakout-v5`` name the same game and
the protocol alone decides the semantics. Every number records the protocol it came from.

Human-normalised scores use the random/human table of the paper (Extended Data Table 2):
``100 · (agent − random) / (human − random)``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, EventCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from sb3_dqn_atari.files import atomic_write_bytes
from sb3_dqn_atari.loading import UserError
from sb3_dqn_atari.preprocessing import FRAME_SIZE
from sb3_dqn_atari.wrappers import ACTION_REPEAT, EVAL_MAX_FRAMES, NOOP_MAX, NatureAtariWrapper

#: Methods, "Evaluation procedure": ε-greedy with ε = 0.05.
EVAL_EPSILON = 0.05
#: Methods: "30 times for up to 5 min each".
EVAL_EPISODES = 30
#: Agent history length (Extended Data Table 1).
HISTORY_LENGTH = 4
#: Size of the full Atari 2600 action set.
FULL_ACTION_SET = 18

#: An agent's greedy policy: a batch of stacked uint8 observations ``(n, *obs_shape)`` to ``n`` actions.
ActFn = Callable[[np.ndarray], Any]


# ----------------------------------------------------------------------------------------------- paper tables


@dataclass(frozen=True)
class PaperScores:
    """One row of Extended Data Table 2 (Mnih et al. 2015): random, human and DQN (mean ± std) scores."""

    name: str
    random: float
    human: float
    dqn: float
    dqn_std: float

    def normalize(self, score: float) -> float:
        """Human-normalised score in percent: ``100 · (score − random) / (human − random)``."""
        return 100.0 * (score - self.random) / (self.human - self.random)


#: Extended Data Table 2 rows for the games the project reports, keyed by the ALE ROM id (``spec.kwargs["game"]``).
PAPER_SCORES: dict[str, PaperScores] = {
    "breakout": PaperScores("Breakout", 1.7, 31.8, 401.2, 26.9),
    "pong": PaperScores("Pong", -20.7, 9.3, 18.9, 1.3),
    "space_invaders": PaperScores("Space Invaders", 148.0, 1652.0, 1976.0, 893.0),
    "seaquest": PaperScores("Seaquest", 68.4, 20182.0, 5286.0, 1310.0),
    "beam_rider": PaperScores("Beam Rider", 363.9, 5775.0, 6846.0, 1619.0),
    "enduro": PaperScores("Enduro", 0.0, 309.6, 301.8, 24.6),
    "qbert": PaperScores("Q*bert", 163.9, 13455.0, 10596.0, 3294.0),
    "asteroids": PaperScores("Asteroids", 719.1, 13157.0, 1629.0, 542.0),
    "ms_pacman": PaperScores("Ms. Pac-Man", 307.3, 15693.0, 2311.0, 525.0),
}


def human_normalized_score(game: str, score: float) -> float | None:
    """The paper's human-normalised score (percent) of ``score`` in ``game`` (ALE ROM id); None if not in the table."""
    row = PAPER_SCORES.get(game)
    return None if row is None else row.normalize(score)


# ------------------------------------------------------------------------------------------------- protocols


@dataclass(frozen=True)
class Protocol:
    """The settings that define an evaluation protocol (see the module docstring for the sources)."""

    name: str
    noop_max: int
    repeat_action_probability: float
    frame_skip: int = ACTION_REPEAT
    description: str = ""


PROTOCOLS: dict[str, Protocol] = {
    "nature": Protocol(
        "nature",
        noop_max=NOOP_MAX,
        repeat_action_probability=0.0,
        description="Mnih et al. 2015: 1-30 no-op starts, no sticky actions",
    ),
    "machado": Protocol(
        "machado",
        noop_max=0,
        repeat_action_probability=0.25,
        description="Machado et al. 2018: sticky actions p=0.25, no no-op starts",
    ),
}


def get_protocol(name: str) -> Protocol:
    """The :class:`Protocol` called ``name`` (``"nature"`` or ``"machado"``)."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UserError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}") from None


def atari_game(env_id: str) -> str:
    """The ALE ROM id (``"breakout"``) behind a registered Atari env id, or a :class:`UserError`."""
    import ale_py

    gym.register_envs(ale_py)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as exc:
        raise UserError(f"unknown env id {env_id!r} ({exc}); pass an Atari id like BreakoutNoFrameskip-v4") from None
    if "game" not in spec.kwargs or not str(spec.entry_point).startswith("ale_py"):
        raise UserError(f"{env_id} is not an ALE Atari env; pass an Atari id like BreakoutNoFrameskip-v4")
    if spec.kwargs.get("obs_type", "rgb") != "rgb":
        raise UserError(f"{env_id} gives {spec.kwargs['obs_type']} observations; the protocol needs the RGB screen")
    return str(spec.kwargs["game"])


# ------------------------------------------------------------------------------------------------- env pieces


class RawFrameTap(gym.Wrapper):
    """Sits directly on the single-frame ALE env: counts emulator frames since the last reset and can hand
    every raw RGB screen (the reset screen, then one per emulator frame) to ``sink`` (for videos)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames = 0
        self.sink: Callable[[np.ndarray], None] | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.frames = 0
        if self.sink is not None:
            self.sink(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames += 1
        if self.sink is not None:
            self.sink(obs)
        return obs, reward, terminated, truncated, info


class StackedFrames(gym.Wrapper):
    """The last ``n_stack`` frames as one observation, exactly as rl-zoo3's ``frame_stack: 4`` gives them to
    the network (SB3 ``VecFrameStack`` then ``VecTransposeImage``) for a single env: zeros at the start of an
    episode, newest frame last; ``(n_stack, H, W)`` when ``channels_first`` else ``(H, W, n_stack)``."""

    def __init__(self, env: gym.Env, n_stack: int = HISTORY_LENGTH, channels_first: bool = True) -> None:
        super().__init__(env)
        shape = env.observation_space.shape
        assert shape is not None and len(shape) == 3 and shape[2] == 1, f"expected (H, W, 1) frames, got {shape}"
        self.n_stack = n_stack
        self.channels_first = channels_first
        self._stack = np.zeros((n_stack, shape[0], shape[1]), dtype=np.uint8)
        out_shape = self._stack.shape if channels_first else (shape[0], shape[1], n_stack)
        self.observation_space = spaces.Box(low=0, high=255, shape=out_shape, dtype=np.uint8)

    def _observation(self) -> np.ndarray:
        return self._stack.copy() if self.channels_first else np.ascontiguousarray(self._stack.transpose(1, 2, 0))

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        frame, info = self.env.reset(**kwargs)
        self._stack[:] = 0
        self._stack[-1] = frame[:, :, 0]
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        frame, reward, terminated, truncated, info = self.env.step(action)
        self._stack[:-1] = self._stack[1:]
        self._stack[-1] = frame[:, :, 0]
        return self._observation(), reward, terminated, truncated, info


@dataclass(frozen=True)
class EvalEnvInfo:
    """What :func:`make_eval_env` built: the facts an evaluation result records."""

    env_id: str
    game: str
    protocol: Protocol
    n_actions: int
    full_action_space: bool
    obs_shape: tuple[int, ...]
    max_episode_frames: int


class ProtocolEnv(StackedFrames):
    """The evaluation env: stacked frames on top of the protocol's stack, with its :class:`EvalEnvInfo` and the
    :class:`RawFrameTap` at the bottom (no-op count, episode frames, video frames)."""

    def __init__(self, env: gym.Env, tap: RawFrameTap, info: EvalEnvInfo, n_stack: int, channels_first: bool) -> None:
        super().__init__(env, n_stack=n_stack, channels_first=channels_first)
        self.tap = tap
        self.eval_info = info


def _obs_layout(obs_shape: Sequence[int] | None) -> tuple[int, bool]:
    """``(n_stack, channels_first)`` for the observation shape a model expects."""
    if obs_shape is None:
        return HISTORY_LENGTH, True
    shape = tuple(int(s) for s in obs_shape)
    if len(shape) == 3 and shape[1:] == (FRAME_SIZE, FRAME_SIZE) and shape[0] <= 16:
        return shape[0], True
    if len(shape) == 3 and shape[:2] == (FRAME_SIZE, FRAME_SIZE):
        return shape[2], False
    raise UserError(
        f"the model expects observations of shape {shape}; the evaluation env gives stacked 84x84 frames "
        f"({HISTORY_LENGTH}, {FRAME_SIZE}, {FRAME_SIZE}): was it trained on another env or preprocessing?"
    )


def make_eval_env(
    env_id: str,
    protocol: str = "nature",
    seed: int | None = None,
    *,
    n_actions: int | None = None,
    obs_shape: Sequence[int] | None = None,
    max_episode_frames: int = EVAL_MAX_FRAMES,
    raw_wrapper: Callable[[gym.Env], gym.Env] | None = None,
) -> ProtocolEnv:
    """The evaluation env of ``protocol`` for the game of ``env_id``, observations as the model was trained on.

    :param env_id: any registered ALE id of the game (``BreakoutNoFrameskip-v4``, ``ALE/Breakout-v5``).
    :param protocol: ``"nature"`` (Mnih et al. 2015) or ``"machado"`` (Machado et al. 2018).
    :param seed: seeds the action space; pass it to the first ``reset(seed=...)`` as well (which
        :func:`evaluate_policy_protocol` does) to seed the emulator and the no-op draws.
    :param n_actions: the model's number of actions; selects the minimal or the full (18) action set and
        raises a :class:`UserError` when the game has neither. ``None``: the minimal set.
    :param obs_shape: the model's observation shape, ``(4, 84, 84)`` (rl-zoo3, channel first) or ``(84, 84, 4)``.
    :param max_episode_frames: the 5-minute cap, 18,000 emulator frames (no-op frames included).
    :param raw_wrapper: for instrumentation: a wrapper put directly on the single-frame ALE env, under
        every preprocessing step (tests use it to record the raw rewards).
    """
    proto = get_protocol(protocol)
    game = atari_game(env_id)
    n_stack, channels_first = _obs_layout(obs_shape)
    settings: dict[str, Any] = {"frameskip": 1, "repeat_action_probability": proto.repeat_action_probability}
    env: gym.Env = gym.make(env_id, **settings, full_action_space=False)
    minimal = int(env.action_space.n)  # type: ignore[attr-defined]
    full_action_space = False
    if n_actions is not None and n_actions != minimal:
        env.close()
        if n_actions != FULL_ACTION_SET:
            raise UserError(
                f"the model has {n_actions} actions but {env_id} has {minimal} (minimal set) or "
                f"{FULL_ACTION_SET} (full set): was the model trained on another game?"
            )
        full_action_space = True
        env = gym.make(env_id, **settings, full_action_space=True)
    if raw_wrapper is not None:
        env = raw_wrapper(env)
    tap = RawFrameTap(env)
    env = NatureAtariWrapper(
        tap,
        noop_max=proto.noop_max,
        frame_skip=proto.frame_skip,
        terminal_on_life_loss=False,
        clip_reward=False,
        max_episode_frames=max_episode_frames,
    )
    info = EvalEnvInfo(
        env_id=env_id,
        game=game,
        protocol=proto,
        n_actions=int(env.action_space.n),  # type: ignore[attr-defined]
        full_action_space=full_action_space,
        obs_shape=(n_stack, FRAME_SIZE, FRAME_SIZE) if channels_first else (FRAME_SIZE, FRAME_SIZE, n_stack),
        max_episode_frames=max_episode_frames,
    )
    eval_env = ProtocolEnv(env, tap, info, n_stack=n_stack, channels_first=channels_first)
    if seed is not None:
        eval_env.action_space.seed(seed)
    return eval_env


# --------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode: raw score over all lives, agent steps, emulator frames (no-ops included)."""

    score: float
    steps: int
    frames: int
    noops: int
    truncated: bool


@dataclass
class EvalResult:
    """Episodes played under one protocol, with their summary statistics and the paper's numbers."""

    env_id: str
    game: str
    protocol: str
    epsilon: float
    seed: int
    settings: dict[str, Any]
    episodes: list[EpisodeResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def scores(self) -> np.ndarray:
        return np.array([e.score for e in self.episodes], dtype=np.float64)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.episodes else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation (``np.std``), as SB3's ``evaluate_policy`` reports ``std_reward``."""
        return float(np.std(self.scores)) if self.episodes else math.nan

    @property
    def median(self) -> float:
        return float(np.median(self.scores)) if self.episodes else math.nan

    @property
    def min(self) -> float:
        return float(np.min(self.scores)) if self.episodes else math.nan

    @property
    def max(self) -> float:
        return float(np.max(self.scores)) if self.episodes else math.nan

    @property
    def paper(self) -> PaperScores | None:
        return PAPER_SCORES.get(self.game)

    @property
    def human_normalized(self) -> float | None:
        """Human-normalised mean score in percent (paper's table), None for games outside it."""
        return human_normalized_score(self.game, self.mean) if self.episodes else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able summary; the huggingface_sb3 / rl-zoo3 ``results.json`` keys come first."""
        paper = self.paper
        return {
            "mean_reward": self.mean,
            "std_reward": self.std,
            "is_deterministic": self.epsilon == 0.0,
            "n_eval_episodes": len(self.episodes),
            "env_id": self.env_id,
            "game": self.game,
            "protocol": self.protocol,
            "epsilon": self.epsilon,
            "seed": self.seed,
            **self.settings,
            "median_reward": self.median,
            "min_reward": self.min,
            "max_reward": self.max,
            "human_normalized_score": self.human_normalized,
            "paper": None if paper is None else {**asdict(paper), "source": "Mnih et al. 2015, Extended Data Table 2"},
            "interrupted": self.interrupted,
            "episodes": [asdict(e) for e in self.episodes],
        }


def protocol_settings(info: EvalEnvInfo) -> dict[str, Any]:
    """The protocol's details as recorded next to every score."""
    proto = info.protocol
    return {
        "noop_max": proto.noop_max,
        "repeat_action_probability": proto.repeat_action_probability,
        "frame_skip": proto.frame_skip,
        "max_episode_frames": info.max_episode_frames,
        "full_action_space": info.full_action_space,
        "n_actions": info.n_actions,
        "terminal_on_life_loss": False,
        "reward": "raw game score, summed over all lives",
        "protocol_description": proto.description,
    }


# ---------------------------------------------------------------------------------------------- the episodes


def _first_action(actions: Any) -> int:
    return int(np.asarray(actions).reshape(-1)[0])


def evaluate_policy_protocol(
    act_fn: ActFn,
    env_id: str | None = None,
    protocol: str = "nature",
    episodes: int = EVAL_EPISODES,
    seed: int = 0,
    epsilon: float = EVAL_EPSILON,
    *,
    env: ProtocolEnv | None = None,
    n_actions: int | None = None,
    obs_shape: Sequence[int] | None = None,
    max_episode_frames: int = EVAL_MAX_FRAMES,
    raw_wrapper: Callable[[gym.Env], gym.Env] | None = None,
    on_episode: Callable[[int, EpisodeResult], None] | None = None,
    first_episode_frames: Callable[[np.ndarray], None] | None = None,
    progress: bool = False,
) -> EvalResult:
    """Play ``episodes`` episodes of the protocol with ε-greedy over ``act_fn`` and score them.

    At each agent step, with probability ``epsilon`` a uniformly random action is taken, otherwise
    ``act_fn(obs[None])`` (the greedy action; call the model deterministically). This is DeepMind's
    ``eGreedy`` (Mnih et al. 2015, Methods) and replaces any exploration of the model's own.

    The emulator and the no-op draws are seeded once, by the first ``reset(seed=seed)``; the ε draws use an
    independent stream spawned from ``seed``. The same seed and policy give the same numbers.

    :param act_fn: maps a batch ``(1, *obs_shape)`` of uint8 observations to its greedy action(s).
    :param env_id: the game (any registered ALE id of it); with ``protocol``, ``n_actions``, ``obs_shape``,
        ``max_episode_frames`` and ``raw_wrapper``, passed to :func:`make_eval_env` (the env is closed at the end).
    :param env: an env from :func:`make_eval_env` to use instead (left open; the callback reuses one); the
        env-building arguments are then ignored.
    :param on_episode: called with ``(index, result)`` after each episode (progress, partial results on ^C).
    :param first_episode_frames: receives every raw RGB screen of the first episode (a video).
    :param progress: show a tqdm bar on stderr.
    :return: an :class:`EvalResult`; raises what ``act_fn`` raises, KeyboardInterrupt included.
    """
    own_env = env is None
    if env is None:
        if env_id is None:
            raise ValueError("pass env_id or env")
        env = make_eval_env(
            env_id,
            protocol,
            seed,
            n_actions=n_actions,
            obs_shape=obs_shape,
            max_episode_frames=max_episode_frames,
            raw_wrapper=raw_wrapper,
        )
    info = env.eval_info
    n = info.n_actions
    eps_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    result = EvalResult(
        env_id=info.env_id,
        game=info.game,
        protocol=info.protocol.name,
        epsilon=epsilon,
        seed=seed,
        settings=protocol_settings(info),
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, unit="episode", desc=f"{info.game} ({info.protocol.name})", dynamic_ncols=True)
    try:
        for index in range(episodes):
            env.tap.sink = first_episode_frames if index == 0 else None
            obs, _ = env.reset(seed=seed if index == 0 else None)
            noops = env.tap.frames
            score, steps, done, truncated = 0.0, 0, False, False
            while not done:
                if epsilon > 0 and eps_rng.random() < epsilon:
                    action = int(eps_rng.integers(n))
                else:
                    action = _first_action(act_fn(obs[None]))
                obs, reward, terminated, truncated, _ = env.step(action)
                score += float(reward)
                steps += 1
                done = terminated or truncated
                if bar is not None and steps % 500 == 0:
                    bar.set_postfix(score=score, frames=env.tap.frames, refresh=True)
            env.tap.sink = None
            episode = EpisodeResult(
                score=score,
                steps=steps,
                frames=env.tap.frames,
                noops=noops,
                truncated=bool(truncated and not terminated),
            )
            result.episodes.append(episode)
            if on_episode is not None:
                on_episode(index, episode)
            if bar is not None:
                bar.set_postfix(last=score, mean=result.mean, refresh=False)
                bar.update(1)
    finally:
        env.tap.sink = None
        if bar is not None:
            bar.close()
        if own_env:
            env.close()
    return result


# ------------------------------------------------------------------------------------------------ file output


# ---------------------------------------------------------------------------------------------- the callback


def _monitor_folder(venv: VecEnv) -> Path | None:
    """The folder of the training env's Monitor file (rl-zoo3's run folder), when it can be read in-process."""
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
    if not isinstance(venv, DummyVecEnv):
        return None
    env: Any = venv.envs[0]
    while isinstance(env, gym.Wrapper):
        if isinstance(env, Monitor) and env.results_writer is not None:
            return Path(env.results_writer.file_handler.name).parent
        env = env.env
    return None


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
            folder = _monitor_folder(self.training_env)
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
        )

    def _act(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(action)

    def _on_step(self) -> bool:
        if self.num_timesteps // self.eval_freq <= self._evals_done:
            return True
        self._evals_done = self.num_timesteps // self.eval_freq
        assert self._env is not None
        result = evaluate_policy_protocol(
            self._act,
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
        hns = [r.human_normalized for r in self.results]
        arrays = {
            "timesteps": timesteps,
            "frames": timesteps * frame_skip,
            "results": np.array([[e.score for e in r.episodes] for r in self.results], dtype=np.float64),
            "ep_lengths": np.array([[e.steps for e in r.episodes] for r in self.results], dtype=np.int64),
            "ep_frames": np.array([[e.frames for e in r.episodes] for r in self.results], dtype=np.int64),
            "noops": np.array([[e.noops for e in r.episodes] for r in self.results], dtype=np.int64),
            "human_normalized": np.array([math.nan if h is None else h for h in hns], dtype=np.float64),
            "protocol": np.array(self.protocol),
            "epsilon": np.array(self.epsilon),
            "seeds": np.array([r.seed for r in self.results], dtype=np.int64),
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(self.log_path / f"{self.file_stem}.npz", buffer.getvalue())
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(
            [
                "timesteps",
                "frames",
                "mean",
                "std",
                "median",
                "min",
                "max",
                "human_normalized",
                "n_episodes",
                "protocol",
                "epsilon",
                "seed",
            ]
        )
        for step, r, h in zip(self.timesteps, self.results, hns, strict=True):
            writer.writerow(
                [
                    step,
                    step * frame_skip,
                    r.mean,
                    r.std,
                    r.median,
                    r.min,
                    r.max,
                    "" if h is None else h,
                    len(r.episodes),
                    self.protocol,
                    self.epsilon,
                    r.seed,
                ]
            )
        atomic_write_bytes(self.log_path / f"{self.file_stem}.csv", text.getvalue().encode())

    def _on_training_end(self) -> None:
        if self._env is not None:
            self._env.close()
