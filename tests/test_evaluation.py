"""The paper's evaluation protocol (Mnih et al. 2015, Methods; Machado et al. 2018) on real ALE games.

Every check compares the library's numbers with an independent record: :class:`RawRecorder` sits directly on
the single-frame ALE env, under all preprocessing, and logs each emulator frame's action, raw reward and
lives, and whether it was played inside ``reset()`` (the no-op start) or by the agent.
"""

from __future__ import annotations

import datetime
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from sb3_dqn_atari.evaluation import (
    PAPER_SCORES,
    EpisodeResult,
    EvalResult,
    NatureEvalCallback,
    ProtocolEnv,
    evaluate_policy_protocol,
    make_eval_env,
)
from sb3_dqn_atari.loading import UserError

BREAKOUT = "BreakoutNoFrameskip-v4"
PONG = "PongNoFrameskip-v4"
ROOT = Path(__file__).resolve().parents[1]


class RawRecorder(gym.Wrapper):
    """Per emulator frame: action, raw reward, lives after it, and the phase ("reset" or "play")."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.phase = "play"
        self.episodes: list[list[tuple[str, int, float, int]]] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        out = self.env.reset(**kwargs)
        if self.phase == "reset" and (not self.episodes or self.episodes[-1]):
            self.episodes.append([])
        return out

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = int(self.env.unwrapped.ale.lives())  # type: ignore[attr-defined]
        self.episodes[-1].append((self.phase, int(action), float(reward), lives))
        return obs, reward, terminated, truncated, info

    def noops(self, i: int) -> int:
        return sum(1 for phase, *_ in self.episodes[i] if phase == "reset")

    def play_actions(self, i: int) -> list[int]:
        return [a for phase, a, *_ in self.episodes[i] if phase == "play"]


def instrumented_env(
    env_id: str, protocol: str = "nature", seed: int = 0, **kwargs: Any
) -> tuple[ProtocolEnv, RawRecorder]:
    """An eval env with a :class:`RawRecorder` at the bottom that knows when the top-level reset runs."""
    recorders: list[RawRecorder] = []

    def wrap(env: gym.Env) -> gym.Env:
        recorders.append(RawRecorder(env))
        return recorders[-1]

    env = make_eval_env(env_id, protocol, seed, raw_wrapper=wrap, **kwargs)
    rec = recorders[0]
    top_reset = env.reset

    def reset(**kw: Any) -> Any:
        rec.phase = "reset"
        try:
            return top_reset(**kw)
        finally:
            rec.phase = "play"

    env.reset = reset  # type: ignore[method-assign]
    return env, rec


def constant(action: int) -> Any:
    return lambda obs: np.array([action] * len(obs))


def uniform(n_actions: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return lambda obs: rng.integers(n_actions, size=len(obs))


# ----------------------------------------------------------------------------------------------- the protocol


def test_noop_starts_within_1_to_30_and_vary_by_seed() -> None:
    env, rec = instrumented_env(BREAKOUT, max_episode_frames=120)
    counts = []
    for seed in range(6):
        rec.episodes.clear()
        result = evaluate_policy_protocol(constant(0), episodes=2, seed=seed, epsilon=0.0, env=env)
        for i, episode in enumerate(result.episodes):
            assert episode.noops == rec.noops(i)
            assert all(a == 0 for phase, a, *_ in rec.episodes[i] if phase == "reset")  # NOOP is action 0
            counts.append(episode.noops)
    assert all(1 <= c <= 30 for c in counts), counts
    assert len(set(counts)) >= 4, counts


def test_machado_protocol_has_sticky_actions_and_no_noops() -> None:
    env, rec = instrumented_env(BREAKOUT, "machado", seed=1, max_episode_frames=200)
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)  # type: ignore[attr-defined]
    result = evaluate_policy_protocol(constant(3), episodes=2, seed=1, epsilon=0.0, env=env)
    assert [e.noops for e in result.episodes] == [0, 0] == [rec.noops(0), rec.noops(1)]
    assert result.settings["repeat_action_probability"] == 0.25
    nature, _ = instrumented_env(BREAKOUT, "nature", seed=1, max_episode_frames=200)
    assert nature.unwrapped.ale.getFloat("repeat_action_probability") == 0.0  # type: ignore[attr-defined]


def test_episode_stops_at_exactly_18000_frames() -> None:
    # Without FIRE the Breakout ball is never served: NOOP survives and the game runs into the 5-minute cap.
    env, rec = instrumented_env(BREAKOUT, seed=3)
    result = evaluate_policy_protocol(constant(0), episodes=1, seed=3, epsilon=0.0, env=env)
    episode = result.episodes[0]
    assert len(rec.episodes[0]) == 18_000
    assert env.unwrapped.ale.getEpisodeFrameNumber() == 18_000  # type: ignore[attr-defined]
    assert episode.frames == 18_000 and episode.truncated
    assert episode.steps == math.ceil((18_000 - rec.noops(0)) / 4)
    assert episode.score == 0.0


def test_score_is_raw_and_summed_over_all_lives() -> None:
    # Space Invaders pays 5-30 points per invader: a clipped score would differ from the raw one.
    env, rec = instrumented_env("SpaceInvadersNoFrameskip-v4", seed=0)
    result = evaluate_policy_protocol(uniform(6, 0), episodes=1, seed=0, epsilon=0.05, env=env)
    episode = result.episodes[0]
    frames = rec.episodes[0]
    rewards = np.array([r for _, _, r, _ in frames])
    lives = [lv for *_, lv in frames]
    assert episode.score == rewards.sum()
    assert rewards.max() > 1 and episode.score != np.sign(rewards).sum()  # not clipped
    assert lives[0] == 3 and lives[-1] == 0  # the episode went on after each lost life, to game over
    assert not episode.truncated and episode.frames == len(frames)


def test_epsilon_005_is_applied() -> None:
    # A policy that always answers NOOP: each other action an agent step takes is one of the ε draws
    # that did not land on NOOP, probability ε · (n − 1) / n. Agent actions are read at the bottom of the
    # stack (every 4th emulator frame after the no-ops: the action repeat).
    env, rec = instrumented_env(BREAKOUT, seed=11, max_episode_frames=4_000)
    result = evaluate_policy_protocol(constant(0), episodes=8, seed=11, epsilon=0.05, env=env)
    agent_actions = []
    for i, episode in enumerate(result.episodes):
        actions = rec.play_actions(i)[::4]
        assert len(actions) == episode.steps
        agent_actions += actions
    n = len(agent_actions)
    k = sum(a != 0 for a in agent_actions)
    p = 0.05 * 3 / 4
    assert n > 2_500
    assert abs(k - n * p) < 4 * math.sqrt(n * p * (1 - p)), (k, n * p)
    greedy, rec0 = instrumented_env(BREAKOUT, seed=11, max_episode_frames=2_000)
    evaluate_policy_protocol(constant(0), episodes=1, seed=11, epsilon=0.0, env=greedy)
    assert set(rec0.play_actions(0)) == {0}


@pytest.mark.parametrize("protocol", ["nature", "machado"])
def test_same_seed_same_numbers(protocol: str) -> None:
    def run(seed: int) -> list[EpisodeResult]:
        return evaluate_policy_protocol(
            uniform(4, 7), BREAKOUT, protocol, episodes=2, seed=seed, max_episode_frames=1_500
        ).episodes

    first = run(5)
    assert first == run(5)
    assert first != run(6)


def test_frame_stack_matches_rl_zoo3_vecframestack() -> None:
    """The eval env's observations equal rl-zoo3's ``frame_stack: 4`` pipeline (VecFrameStack + VecTransposeImage)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

    from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper

    ours = make_eval_env(BREAKOUT, seed=4)
    zoo = VecTransposeImage(
        VecFrameStack(
            DummyVecEnv(
                [
                    lambda: NatureAtariWrapper(
                        gym.make(BREAKOUT), terminal_on_life_loss=False, clip_reward=False, max_episode_frames=18_000
                    )
                ]
            ),
            4,
        )
    )
    zoo.seed(4)
    obs_zoo = zoo.reset()
    obs, _ = ours.reset(seed=4)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    np.testing.assert_array_equal(obs, obs_zoo[0])
    actions = np.random.default_rng(0).integers(4, size=60)
    for a in actions:
        obs, *_ = ours.step(int(a))
        obs_zoo, *_ = zoo.step(np.array([a]))
        np.testing.assert_array_equal(obs, obs_zoo[0])
    assert obs.any()


def test_action_set_and_observation_checks() -> None:
    with pytest.raises(UserError, match="6 actions"):
        make_eval_env(BREAKOUT, n_actions=6)
    full = make_eval_env(BREAKOUT, n_actions=18)
    assert full.action_space.n == 18 and full.eval_info.full_action_space  # type: ignore[attr-defined]
    assert make_eval_env(BREAKOUT, n_actions=4).action_space.n == 4  # type: ignore[attr-defined]
    channels_last = make_eval_env(BREAKOUT, obs_shape=(84, 84, 4))
    assert channels_last.reset(seed=0)[0].shape == (84, 84, 4)
    with pytest.raises(UserError, match="shape"):
        make_eval_env(BREAKOUT, obs_shape=(4, 64, 64))
    with pytest.raises(UserError, match="unknown env id"):
        make_eval_env("BrekoutNoFrameskip-v4")
    with pytest.raises(UserError, match="not an ALE"):
        make_eval_env("CartPole-v1")
    with pytest.raises(UserError, match="protocol"):
        make_eval_env(BREAKOUT, "dopamine")


def test_paper_table_matches_the_published_normalized_scores() -> None:
    # Fig. 3 / Extended Data Table 2 print the DQN score normalised with the same random/human numbers,
    # truncated to whole percents: recomputing them checks every number of the table.
    published = {
        "breakout": 1327,
        "pong": 132,
        "space_invaders": 121,
        "seaquest": 25,
        "beam_rider": 119,
        "enduro": 97,
        "qbert": 78,
        "asteroids": 7,
        "ms_pacman": 13,
    }
    assert set(PAPER_SCORES) == set(published)
    for game, row in PAPER_SCORES.items():
        assert math.floor(round(row.normalize(row.dqn), 6)) == published[game], game
    result = EvalResult(BREAKOUT, "breakout", "nature", 0.05, 0, {}, [EpisodeResult(31.8, 1, 4, 1, False)])
    assert result.human_normalized == pytest.approx(100.0)


# --------------------------------------------------------------------------------------------- random agents


@pytest.mark.parametrize(
    ("env_id", "n_actions"),
    [(BREAKOUT, 4), pytest.param(PONG, 6, marks=pytest.mark.slow)],  # Pong: 30 games of ~3,700 steps, 15-60 s
)
def test_random_agent_scores_like_the_papers_random_agent(env_id: str, n_actions: int) -> None:
    result = evaluate_policy_protocol(uniform(n_actions, 0), env_id, episodes=30, seed=0)
    paper = result.paper
    assert paper is not None
    print(
        f"{env_id}: random agent {result.mean:.2f} ± {result.std:.2f} over 30 episodes "
        f"(min {result.min:g}, max {result.max:g}); paper's random agent {paper.random}"
    )
    # The paper's random agent is a typical episode of ours: within one standard deviation of our mean, and
    # inside our range. (Its agent picked actions at 10 Hz, ours at 15 Hz, so the means need not agree to
    # within a standard error.) A clipped or life-cut score (Breakout ≈ 0.2) or a broken cap fails this.
    assert abs(result.mean - paper.random) <= result.std
    assert result.min <= paper.random <= result.max


# ------------------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained SB3 DQNs (random network) saved like rl-zoo3 models: Breakout (4 actions), Pong (6)."""
    from stable_baselines3 import DQN

    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for env_id in (BREAKOUT, PONG):
        model = DQN("CnnPolicy", make_eval_env(env_id), buffer_size=10, learning_starts=10, seed=0, device="cpu")
        paths[env_id] = folder / f"{env_id}.zip"
        model.save(paths[env_id])
    return paths


def _decode_video(path: Path) -> tuple[tuple[int, int], list[np.ndarray]]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(f, dtype=np.uint8).reshape(h, w, 3) for f in reader]
    return (w, h), frames


def test_cli_writes_results_and_a_valid_video(untrained: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    from stable_baselines3 import DQN

    from sb3_dqn_atari.evaluate import main

    out, video = tmp_path / "results.json", tmp_path / "first.mp4"
    rc = main(
        [
            str(untrained[BREAKOUT]),
            "--env",
            BREAKOUT,
            "--episodes",
            "2",
            "--max-frames",
            "1500",
            "--seed",
            "3",
            "--video",
            str(video),
            "-o",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    data = json.loads(out.read_text())
    scores = [e["score"] for e in data["episodes"]]
    assert data["n_eval_episodes"] == 2 == len(scores)
    assert data["mean_reward"] == pytest.approx(np.mean(scores))
    assert data["std_reward"] == pytest.approx(np.std(scores))
    assert data["protocol"] == "nature" and data["epsilon"] == 0.05 and data["noop_max"] == 30
    assert data["paper"]["dqn"] == 401.2 and not data["interrupted"]
    datetime.datetime.fromisoformat(data["eval_datetime"])
    assert "401.2" in printed and "human-normalised" in printed

    # The same numbers as the library called directly with the same model and seed.
    model = DQN.load(untrained[BREAKOUT], device="cpu")
    direct = evaluate_policy_protocol(
        lambda obs: model.predict(obs, deterministic=True)[0], BREAKOUT, episodes=2, seed=3, max_episode_frames=1500
    )
    assert [EpisodeResult(**e) for e in data["episodes"]] == direct.episodes

    # Every emulator frame of episode 1 (plus the reset screen), at the screen's size, showing the screen.
    size, frames = _decode_video(video)
    assert size == (160, 210)
    assert len(frames) == data["episodes"][0]["frames"] + 1
    reset_screen = gym.make(BREAKOUT).reset(seed=3)[0]
    assert np.abs(frames[0].astype(int) - reset_screen.astype(int)).mean() < 8


def _run_error(argv: list[str], capsys: Any) -> str:
    from sb3_dqn_atari.evaluate import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_cli_user_errors_end_in_one_line_and_no_file(untrained: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "r.json"
    common = ["--episodes", "1", "--max-frames", "200", "--no-progress", "-o", str(out)]
    assert "no such file" in _run_error([str(tmp_path / "missing.zip"), "--env", BREAKOUT, *common], capsys)
    assert "unknown env id" in _run_error([str(untrained[BREAKOUT]), "--env", "Breakot-v9", *common], capsys)
    assert "6 actions" in _run_error([str(untrained[PONG]), "--env", BREAKOUT, *common], capsys)
    assert "no env id" in _run_error([str(untrained[BREAKOUT]), *common], capsys)
    assert "does not exist" in _run_error(
        [str(untrained[BREAKOUT]), "--env", BREAKOUT, "--episodes", "1", "-o", str(tmp_path / "no" / "r.json")], capsys
    )
    assert "does not exist" in _run_error(
        [str(untrained[BREAKOUT]), "--env", BREAKOUT, *common, "--video", str(tmp_path / "no" / "v.mp4")], capsys
    )
    assert list(tmp_path.iterdir()) == []


def test_python_m_evaluate_reports_a_missing_model(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sb3_dqn_atari.evaluate",
            str(tmp_path / "nope.zip"),
            "--env",
            BREAKOUT,
            "-o",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: no such file or folder: {tmp_path / 'nope.zip'}; "
        "pass an SB3 .zip or an rl-zoo3 log folder (logs/dqn/Env_1)"
    ]
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("interrupt_after_episodes", [0, 1])
def test_ctrl_c_reports_the_episodes_done(
    interrupt_after_episodes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import sb3_dqn_atari.evaluate as cli
    import sb3_dqn_atari.evaluation.report as library

    finished: list[int] = []
    original = library.evaluate_policy_protocol

    def act(obs: np.ndarray) -> np.ndarray:
        if len(finished) >= interrupt_after_episodes:
            raise KeyboardInterrupt
        return np.zeros(len(obs), dtype=np.int64)

    def evaluate(*args: Any, **kwargs: Any) -> EvalResult:
        inner = kwargs["on_episode"]
        kwargs["on_episode"] = lambda i, e: (finished.append(i), inner(i, e))
        return original(*args, **kwargs)

    agent = library.Agent(act=act, n_actions=4, obs_shape=(4, 84, 84), env_id=BREAKOUT, source="fake")
    monkeypatch.setattr(library, "load_for_evaluation", lambda *a, **k: agent)
    monkeypatch.setattr(library, "evaluate_policy_protocol", evaluate)
    out, video = tmp_path / "r.json", tmp_path / "v.mp4"
    rc = cli.main(
        [
            "fake",
            "--episodes",
            "3",
            "--max-frames",
            "300",
            "--epsilon",
            "0",
            "--no-progress",
            "-o",
            str(out),
            "--video",
            str(video),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 130
    if interrupt_after_episodes == 0:
        assert "no episode finished" in printed
        assert list(tmp_path.iterdir()) == []  # no results, no video, no temporary file
    else:
        data = json.loads(out.read_text())
        assert data["interrupted"] and data["n_eval_episodes"] == 1 == len(data["episodes"])
        assert data["episodes"][0]["frames"] == 300
        assert len(_decode_video(video)[1]) == 301
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "v.mp4"]
        assert "(interrupted)" in printed


# ------------------------------------------------------------------------------------------------- callback


def test_nature_eval_callback_from_an_rl_zoo3_yml_entry(tmp_path: Path) -> None:
    import pandas as pd
    from rl_zoo3.utils import get_callback_list
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import VecFrameStack

    from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper

    # exactly what rl-zoo3 does with `callback:` in a hyperparameter file and with `env_wrapper`/`frame_stack`
    [callback] = get_callback_list(
        {
            "callback": [
                {
                    "sb3_dqn_atari.evaluation.NatureEvalCallback": {
                        "eval_freq": 100,
                        "n_eval_episodes": 2,
                        "max_episode_frames": 600,
                        "verbose": 0,
                    }
                }
            ]
        }
    )
    assert isinstance(callback, NatureEvalCallback)
    run_dir = tmp_path / "BreakoutNoFrameskip-v4_1"
    venv = VecFrameStack(
        make_vec_env(BREAKOUT, n_envs=1, seed=0, monitor_dir=str(run_dir), wrapper_class=NatureAtariWrapper), 4
    )
    model = DQN("CnnPolicy", venv, buffer_size=500, learning_starts=10_000, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path / "sb3log"), ["csv"]))
    model.learn(250, callback=callback)

    data = dict(np.load(run_dir / "evaluations_nature.npz"))
    np.testing.assert_array_equal(data["timesteps"], [100, 200])
    np.testing.assert_array_equal(data["frames"], [400, 800])
    assert data["results"].shape == (2, 2) and str(data["protocol"]) == "nature"
    # evaluation k is seeded with seed + k (issue 18): no gradient step yet (learning_starts), so evaluation k
    # equals a direct evaluation of the same network with seed k, and the two evaluations drew different no-op
    # starts (the ε stream is spawned from the same seed)
    np.testing.assert_array_equal(data["seeds"], [0, 1])
    for row in range(2):
        direct = evaluate_policy_protocol(
            lambda obs: model.predict(obs, deterministic=True)[0],
            BREAKOUT,
            episodes=2,
            seed=row,
            max_episode_frames=600,
        )
        np.testing.assert_array_equal(data["results"][row], [e.score for e in direct.episodes])
        np.testing.assert_array_equal(data["ep_frames"][row], [e.frames for e in direct.episodes])
        np.testing.assert_array_equal(data["noops"][row], [e.noops for e in direct.episodes])
    assert not np.array_equal(data["noops"][0], data["noops"][1])
    table = pd.read_csv(run_dir / "evaluations_nature.csv")
    np.testing.assert_allclose(table["mean"], data["results"].mean(axis=1))
    assert table["seed"].tolist() == [0, 1]
    logged = pd.read_csv(tmp_path / "sb3log" / "progress.csv")["eval/paper_score"].dropna()
    np.testing.assert_allclose(logged, data["results"].mean(axis=1))


# ----------------------------------------------------------------------------------------------------- plots


def _monitor_run(folder: Path, games: int, seed: int) -> list[tuple[float, int]]:
    """Play ``games`` random training games through rl-zoo3's stack (Monitor under NatureAtariWrapper);
    returns each game's raw score summed over its lives and its emulator frames, counted at the bottom."""
    from stable_baselines3.common.monitor import Monitor

    from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper

    folder.mkdir(parents=True)
    recorders: list[RawRecorder] = []
    raw = RawRecorder(gym.make(BREAKOUT))
    recorders.append(raw)
    env = NatureAtariWrapper(Monitor(raw, str(folder / "0")))  # life loss terminal, clipped rewards
    rng = np.random.default_rng(seed)
    truth = []
    raw.phase = "reset"
    env.reset(seed=seed)
    while len(truth) < games:
        raw.phase = "play"
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            if env.unwrapped.ale.game_over():  # type: ignore[attr-defined]
                frames = raw.episodes[-1]
                truth.append((sum(r for _, _, r, _ in frames), len(frames)))
                raw.phase = "reset"
            env.reset()
    env.close()
    return truth


def test_plot_reads_full_game_scores_and_writes_a_png(tmp_path: Path, capsys: Any) -> None:
    from PIL import Image

    from sb3_dqn_atari.evaluation.curves import load_run
    from sb3_dqn_atari.plot import main

    runs = [tmp_path / "BreakoutNoFrameskip-v4_1", tmp_path / "BreakoutNoFrameskip-v4_2"]
    truths = [_monitor_run(run, games=3, seed=i) for i, run in enumerate(runs)]
    for i, run in enumerate(runs):
        np.savez(
            run / "evaluations_nature.npz",
            timesteps=np.array([1000, 2000]),
            results=np.array([[1.0, 3.0], [5.0 + i, 7.0 + i]]),
        )
        np.savez(
            run / "evaluations.npz", timesteps=np.array([1500]), results=np.array([[2.0]]), ep_lengths=np.array([[10]])
        )
    for run, truth in zip(runs, truths, strict=True):
        data = load_run(run)
        assert data.env_id == BREAKOUT and data.train_raw is not None
        # the Monitor under the life-loss wrapper records whole games with raw scores
        np.testing.assert_array_equal(data.train_raw.y, [s for s, _ in truth])
        np.testing.assert_array_equal(data.train_raw.x, np.cumsum([f for _, f in truth]) / 4)
        assert data.evals["evaluations_nature.npz"].y.tolist() == [2.0, 6.0 + runs.index(run)]

    out = tmp_path / "curve.png"
    assert main([str(tmp_path), "-o", str(out), "--window", "2"]) == 0  # a folder of runs
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (640, 800)
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 10 and (pixels != 255).any(axis=2).mean() > 0.05  # something was drawn
    assert "2 run(s)" in capsys.readouterr().out


def test_plot_legend_says_when_a_paper_line_is_off_the_chart() -> None:
    """The paper's lines are drawn within the curves' range; one outside it is named "(above)" or "(below)" in the
    legend (a Pong run at -21…-14 cannot show the paper's 18.9 or the human 9.3; random -20.7 is in range)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sb3_dqn_atari.evaluation.curve_plot import _paper_lines
    from sb3_dqn_atari.evaluation.scores import paper_scores

    fig, ax = plt.subplots()
    ax.plot([0, 1], [-21.0, -14.0])
    _paper_lines(ax, paper_scores("PongNoFrameskip-v4"))
    labels = [line.get_label() for line in ax.lines[1:]]
    assert labels == ["Nature DQN 18.9 (above)", "human 9.3 (above)", "random -20.7"]
    assert ax.get_ylim()[1] < 9.3
    fig2, ax2 = plt.subplots()
    ax2.plot([0, 1], [-30.0, 30.0])  # a curve spanning every line: plain labels
    _paper_lines(ax2, paper_scores("PongNoFrameskip-v4"))
    assert [line.get_label() for line in ax2.lines[1:]] == ["Nature DQN 18.9", "human 9.3", "random -20.7"]
    plt.close(fig)
    plt.close(fig2)


class StepCounter(gym.Wrapper):  # type: ignore[type-arg]
    """Above the preprocessing: counts the agent's steps and notes the count when the Monitor ends a game."""

    def __init__(self, env: gym.Env, ends: list[int]) -> None:  # type: ignore[type-arg]
        super().__init__(env)
        self.steps, self.ends = 0, ends

    def step(self, action: Any) -> Any:
        out = self.env.step(action)
        self.steps += 1
        if "episode" in out[4]:
            self.ends.append(self.steps)
        return out


def test_plot_places_training_games_at_the_agent_steps_the_run_recorded(tmp_path: Path) -> None:
    """Issue 18, item 7: NatureDQN records the agent step each training game ended at (``episodes.csv``, beside
    the Monitor files, as rl-zoo3 places them); the plot uses it. A wrapper of the test counts the agent's steps
    on its own. Emulator frames / 4 would overshoot (the no-ops after each lost life)."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

    from sb3_dqn_atari import NatureDQN
    from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper
    from sb3_dqn_atari.evaluation.curves import load_run, read_monitor

    run = tmp_path / "BreakoutNoFrameskip-v4_1"
    ends: list[int] = []

    def make() -> gym.Env:  # type: ignore[type-arg]
        return StepCounter(NatureAtariWrapper(Monitor(gym.make(BREAKOUT), str(run / "0"))), ends)

    venv = VecTransposeImage(VecFrameStack(DummyVecEnv([make]), 4))
    model = NatureDQN("CnnPolicy", venv, buffer_size=2_000, learning_starts=10_000, seed=0, device="cpu")
    model.learn(1_500)
    venv.close()
    data = load_run(run)
    assert data.train_raw is not None and len(ends) >= 3
    np.testing.assert_array_equal(data.train_raw.x, ends)
    monitor = read_monitor(run)
    assert monitor is not None and monitor[1][len(ends) - 1] / 4 > ends[-1]  # what frames / 4 would draw


def test_plot_aggregates_runs_as_mean_and_spread() -> None:
    from sb3_dqn_atari.evaluation.curves import Curve, aggregate, smooth

    a = Curve(np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    b = Curve(np.array([0.0, 5.0, 15.0]), np.array([2.0, 2.0, 2.0]))
    agg = aggregate([a, b], "minmax")
    assert agg is not None
    np.testing.assert_array_equal(agg.x, [0.0, 5.0, 10.0, 15.0])  # union of x on the shared range
    np.testing.assert_allclose(agg.y, [1.0, 3.5, 6.0, 8.5])
    np.testing.assert_allclose(agg.lo, [0.0, 2.0, 2.0, 2.0])
    np.testing.assert_allclose(agg.hi, [2.0, 5.0, 10.0, 15.0])
    std = aggregate([a, b], "std")
    assert std is not None and std.hi is not None
    np.testing.assert_allclose(std.hi - std.y, [1.0, 1.5, 4.0, 6.5])
    np.testing.assert_allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])


def test_plot_compares_other_runs_at_equal_agent_steps(tmp_path: Path, capsys: Any) -> None:
    """``--compare`` (issue 14: a run against the RL Zoo's published one): the other run is drawn beside the runs,
    never counted among them, and every curve is cut at the agent steps the runs reach (or ``--max-steps``)."""
    from PIL import Image

    from sb3_dqn_atari.evaluation.curve_plot import steps_reached, up_to
    from sb3_dqn_atari.evaluation.curves import load_run
    from sb3_dqn_atari.plot import main

    ours, zoo = tmp_path / "ours" / "BreakoutNoFrameskip-v4_1", tmp_path / "zoo" / "BreakoutNoFrameskip-v4"
    ours.mkdir(parents=True)
    np.savez(ours / "evaluations_nature_eval_freq.npz", timesteps=np.array([25, 50]), results=np.array([[1.0], [3.0]]))
    _monitor_run(zoo, games=2, seed=0)
    zoo_steps = np.arange(10, 210, 10)
    np.savez(zoo / "evaluations.npz", timesteps=zoo_steps, results=zoo_steps[:, None] / 10.0)

    runs, other = load_run(ours), load_run(zoo)
    assert runs.evals["evaluations_nature_eval_freq.npz"].y.tolist() == [1.0, 3.0]
    assert steps_reached([runs]) == 50.0
    cut = up_to(other, 50.0)
    assert cut.evals["evaluations.npz"].x.tolist() == [10, 20, 30, 40, 50]
    assert cut.evals["evaluations.npz"].y.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert cut.train_raw is None  # the random games end after step 50 (hundreds of agent steps each)
    assert up_to(other, 10_000).train_raw is not None

    out = tmp_path / "c.png"
    assert main([str(ours), "--compare", str(zoo), "-o", str(out)]) == 0
    assert "from 1 run(s), up to 50 agent steps" in capsys.readouterr().out
    assert main([str(ours), "--compare", str(zoo), "--max-steps", "150", "-o", str(out), "--table-every", "40"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "from 1 run(s), up to 150 agent steps" in printed[-1]
    assert printed[0] == (
        "| env | agent steps | BreakoutNoFrameskip-v4_1: evaluations_nature_eval_freq.npz | zoo: evaluations.npz |"
    )
    # the evaluation nearest to every 40 steps up to the 50 the run reaches; ± the std over its episodes (one: 0)
    assert printed[2] == "| BreakoutNoFrameskip-v4 | 40 | 3.0 ± 0.0 (at 50) | 4.0 ± 0.0 (at 40) |"
    assert len(printed) == 4  # header, rule, one row, the PNG line
    with Image.open(out) as image:
        assert image.size == (640, 800)
    assert main([str(ours), "--max-steps", "0", "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "error: --max-steps and --table-every must be positive"


def test_plot_user_errors(tmp_path: Path, capsys: Any) -> None:
    from sb3_dqn_atari.plot import main

    assert main([str(tmp_path / "missing"), "-o", str(tmp_path / "c.png")]) == 2
    assert main([str(tmp_path), "-o", str(tmp_path / "c.png")]) == 2  # no run data
    (tmp_path / "r_1").mkdir()
    np.savez(tmp_path / "r_1" / "evaluations.npz", timesteps=np.array([1]), results=np.array([[1.0]]))
    assert main([str(tmp_path / "r_1"), "-o", str(tmp_path / "no" / "c.png")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("error: ") for e in errors)
    missing = tmp_path / "no"
    assert errors[2] == f"error: cannot write the plot {missing / 'c.png'}: the folder {missing} does not exist"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r_1"]
