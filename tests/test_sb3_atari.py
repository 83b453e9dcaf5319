"""Agents trained with Stable-Baselines3's ``AtariWrapper`` (issue 15), and ALE v5 ids under NatureAtariWrapper.

Every comparison is against SB3 itself: its ``AtariWrapper`` + ``VecFrameStack`` + ``VecTransposeImage`` for the
frames, ``model.predict`` for the actions, rl-zoo3's own ``train`` for the run folder and the v5 training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
import pytest
import torch
import yaml
from rl_zoo3.utils import get_wrapper_class
from stable_baselines3 import DQN
from stable_baselines3.common.atari_wrappers import AtariWrapper
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

from sb3_dqn_atari.atari.protocols import make_eval_env
from sb3_dqn_atari.atari.spec import SB3_WRAPPER, PreprocessingSpec, sb3_atari_spec, spec_from_config
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.safe_yaml import read_yaml_mapping
from sb3_dqn_atari.evaluate import main as evaluate_main
from sb3_dqn_atari.export import main as export_main
from sb3_dqn_atari.load_from_hub import main as pull_main
from sb3_dqn_atari.onnx.runtime import AtariPlayEnv
from tests.conftest import ROOT
from tests.hub_server import FakeHub
from tests.zoo_runs import zoo_env

BREAKOUT = "BreakoutNoFrameskip-v4"
#: MsPacman (lives, no FIRE) with every AtariWrapper argument changed: SB3's own sticky actions, no-ops, skip, size
EVERY_ARGUMENT = {"action_repeat_probability": 0.25, "noop_max": 8, "frame_skip": 3, "screen_size": 72}


def sb3_reference(env_id: str, seed: int, **kwargs: Any) -> Any:
    """SB3's pipeline as rl-zoo3's ``atari`` settings build it, with the evaluation's flags (full games, raw
    rewards): the reference the runtime must reproduce."""

    def make() -> gym.Env:
        return AtariWrapper(gym.make(env_id), terminal_on_life_loss=False, clip_reward=False, **kwargs)

    venv = VecTransposeImage(VecFrameStack(DummyVecEnv([make]), 4))
    venv.seed(seed)
    return venv


# ------------------------------------------------------------------------------------------- the frames


@pytest.mark.parametrize(
    ("env_id", "kwargs", "episodes"),
    [
        (BREAKOUT, {}, 2),  # FIRE on reset, 5 lives
        ("PongNoFrameskip-v4", {}, 1),  # FIRE, no lives
        ("MsPacmanNoFrameskip-v4", EVERY_ARGUMENT, 1),
    ],
)
def test_runtime_frames_equal_sb3_atari_wrapper(env_id: str, kwargs: dict[str, Any], episodes: int) -> None:
    """Same seed, same random actions: every stacked observation, reward and episode end of the torch-free runtime
    is byte-identical to SB3's AtariWrapper + VecFrameStack + VecTransposeImage over whole episodes (game over),
    across automatic resets."""
    venv = sb3_reference(env_id, 11, **kwargs)
    spec = sb3_atari_spec(**kwargs)
    ours = AtariPlayEnv(env_id, spec, 4)
    ref_obs, obs = venv.reset()[0], ours.reset(seed=11)
    np.testing.assert_array_equal(obs, ref_obs)
    assert obs.shape == (4, spec.frame_size, spec.frame_size) and obs[-1].any()
    rng = np.random.default_rng(0)
    ended, steps, rewards = 0, 0, 0.0
    while ended < episodes:
        action = int(rng.integers(venv.action_space.n))
        ref_next, ref_reward, ref_done, ref_info = venv.step(np.array([action]))
        obs, reward, terminated, truncated, _ = ours.step(action)
        steps += 1
        assert reward == ref_reward[0] and bool(ref_done[0]) == (terminated or truncated), steps
        rewards += abs(reward)
        if ref_done[0]:
            np.testing.assert_array_equal(obs, ref_info[0]["terminal_observation"], err_msg=f"step {steps}")
            obs, ended = ours.reset(), ended + 1
        np.testing.assert_array_equal(obs, ref_next[0], err_msg=f"step {steps}")
    assert rewards > 0 and steps > 100 * episodes
    venv.close()
    ours.close()


def test_evaluation_env_follows_the_model_preprocessing() -> None:
    """The evaluation env of an AtariWrapper model gives SB3's frames (FIRE pressed at the start), not the
    Nature preprocessing; the protocol's 30 no-op starts stay."""
    spec = sb3_atari_spec()
    env = make_eval_env(BREAKOUT, "nature", 5, n_actions=4, obs_shape=(4, 84, 84), spec=spec)
    obs, _ = env.reset(seed=5)
    venv = sb3_reference(BREAKOUT, 5)
    np.testing.assert_array_equal(obs, venv.reset()[0])
    for action in (0, 3, 2, 2):
        np.testing.assert_array_equal(env.step(action)[0], venv.step(np.array([action]))[0][0])
    nature = make_eval_env(BREAKOUT, "nature", 5, n_actions=4, obs_shape=(4, 84, 84))
    assert not np.array_equal(nature.reset(seed=5)[0], obs)
    assert env.eval_info.preprocessing.noop_max == 30 and env.tap.frames > 0
    for e in (env, nature, venv):
        e.close()


# ---------------------------------------------------------------------------- ALE v5 under NatureAtariWrapper


def _dqn_yml_wrapper(env_id: str) -> Any:
    """The env wrapper rl-zoo3 builds from hyperparams/dqn.yml for ``env_id`` (an id the yml does not list gets
    its ``atari`` entry, as rl-zoo3 does for every ALE game)."""
    hyperparams = yaml.safe_load((ROOT / "hyperparams" / "dqn.yml").read_text())
    return get_wrapper_class(hyperparams.get(env_id, hyperparams["atari"]))


def _frames_per_step(env: gym.Env, steps: int = 60) -> set[int]:
    ale: Any = env.unwrapped.ale  # type: ignore[attr-defined]
    env.reset(seed=0)
    seen = set()
    for step in range(steps):
        before = ale.getEpisodeFrameNumber()
        _, _, terminated, truncated, _ = env.step(step % 4)
        if terminated or truncated:  # a life loss cuts the repeat short, as alewrap did
            env.reset()
            continue
        seen.add(ale.getEpisodeFrameNumber() - before)
    return seen


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"noop_max": 7, "frame_skip": 3, "screen_size": 72, "terminal_on_life_loss": False, "clip_reward": False,
          "action_repeat_probability": 0.25}],
)  # fmt: skip
def test_evaluation_during_training_follows_the_training_preprocessing(kwargs: dict[str, Any]) -> None:
    """NatureEvalCallback evaluates on the frames the agent trains on: SB3's AtariWrapper, with the arguments it was
    given, read back from the training env; the paper's for NatureAtariWrapper."""
    from sb3_dqn_atari.atari.spec import NATURE_SPEC
    from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper
    from sb3_dqn_atari.evaluation.callback import training_preprocessing

    def venv(wrapper: Any) -> Any:
        return VecTransposeImage(VecFrameStack(DummyVecEnv([lambda: wrapper(gym.make(BREAKOUT))]), 4))

    assert training_preprocessing(venv(lambda env: AtariWrapper(env, **kwargs))) == sb3_atari_spec(**kwargs)
    assert training_preprocessing(venv(NatureAtariWrapper)) == NATURE_SPEC


def test_ale_v5_plays_4_frames_per_agent_step(capsys: pytest.CaptureFixture[str]) -> None:
    """ALE/Breakout-v5 repeats each action 4 times and has sticky actions 0.25 in the env: under dqn.yml's
    wrapper, each agent step is 4 emulator frames (not 16), sticky actions off, with one note; asking for the
    Machado setting keeps them."""
    wrapper = _dqn_yml_wrapper("ALE/Breakout-v5")
    env = wrapper(gym.make("ALE/Breakout-v5"))
    assert _frames_per_step(env) == {4}
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0  # type: ignore[attr-defined]
    [note] = capsys.readouterr().err.strip().splitlines()
    assert note.startswith("note: ALE/Breakout-v5") and "frameskip 4 -> 1" in note and "0.25 -> 0" in note
    assert _frames_per_step(wrapper(gym.make(BREAKOUT))) == {4}  # v4 ids: unchanged, no note
    machado = yaml.safe_load((ROOT / "hyperparams" / "dqn_machado.yml").read_text())["atari"]
    machado_env = get_wrapper_class(machado)(gym.make("ALE/Breakout-v5", **machado.get("env_kwargs", {})))
    assert _frames_per_step(machado_env) == {4}
    assert machado_env.unwrapped.ale.getFloat("repeat_action_probability") == 0.25  # type: ignore[attr-defined]
    assert machado_env.action_space.n == 18  # type: ignore[attr-defined]
    for e in (env, machado_env):
        e.close()


def test_dopamine_yml_builds_dopamines_atari_env() -> None:
    """hyperparams/dqn_dopamine.yml gives the env of Dopamine's DQN (atari_lib.create_atari_environment with
    sticky actions, AtariPreprocessing): 4 emulator frames per agent step, sticky actions 0.25 in the ALE, the
    game's minimal action set, no no-op starts, and a lost life that is not terminal; dqn.yml's env differs in
    the last three, so the test tells the files apart."""
    hyperparams = yaml.safe_load((ROOT / "hyperparams" / "dqn_dopamine.yml").read_text())
    assert hyperparams[BREAKOUT]["env_wrapper"] == hyperparams["atari"]["env_wrapper"]

    def first_life_lost(env: gym.Env) -> tuple[bool, int]:
        """(terminated at the step that lost the first life, ALE frames before the first agent step)."""
        ale: Any = env.unwrapped.ale  # type: ignore[attr-defined]
        env.reset(seed=3)
        start_frame, lives = ale.getEpisodeFrameNumber(), ale.lives()
        for step in range(5000):
            _, _, terminated, truncated, _ = env.step(1 if step % 50 == 0 else 0)  # serve, then let the ball go
            if ale.lives() < lives:
                return bool(terminated), start_frame
            assert not (terminated or truncated)
        raise AssertionError("no life lost in 5,000 agent steps")

    dopamine = get_wrapper_class(hyperparams["atari"])(gym.make(BREAKOUT))
    assert _frames_per_step(dopamine) == {4}
    assert dopamine.unwrapped.ale.getFloat("repeat_action_probability") == 0.25  # type: ignore[attr-defined]
    assert dopamine.action_space.n == 4  # type: ignore[attr-defined]
    assert first_life_lost(dopamine) == (False, 0)
    nature = _dqn_yml_wrapper(BREAKOUT)(gym.make(BREAKOUT))
    terminated, noop_frames = first_life_lost(nature)
    assert terminated and noop_frames > 0  # the paper's: terminal for the learner, 1-30 no-ops (x 4 frames) first
    for e in (dopamine, nature):
        e.close()


def test_rl_zoo3_trains_the_paper_agent_on_ale_v5(tmp_path: Path) -> None:
    """``python -m rl_zoo3.train --algo dqn --env ALE/Breakout-v5 -conf hyperparams/dqn.yml`` trains (tiny
    budget), with the one note about the env's frame skip and sticky actions."""
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", "ALE/Breakout-v5", "-conf",
               str(ROOT / "hyperparams" / "dqn.yml"), "-n", "300", "--eval-freq", "-1", "--seed", "0", "-f", "logs",
               "--device", "cpu", "-params", "learning_starts:100", "buffer_size:1000"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=zoo_env())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ALE/Breakout-v5")]
    assert len(notes) == 1 and "frameskip 4 -> 1" in notes[0]
    [run] = (tmp_path / "logs" / "dqn").glob("*Breakout-v5_1")
    [zip_path] = run.glob("*.zip")
    assert DQN.load(zip_path, custom_objects={"learning_rate": 0.0}).num_timesteps == 300


# ---------------------------------------------------------------- an rl-zoo3 `atari` agent from the Hub, as ONNX


HIDE_TORCH = """
import importlib.abc, json, sys
import numpy as np
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "stable_baselines3"):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
sys.meta_path.insert(0, Hide())
from sb3_dqn_atari.onnx.runtime import OnnxAgent
agent = OnnxAgent(sys.argv[1])
env = agent.make_env(max_episode_frames=int(sys.argv[3]))
steps = []
result = agent.play_episode(env, seed=9, on_step=lambda obs, action: steps.append((obs, action)))
np.savez(sys.argv[2], obs=np.stack([o for o, _ in steps]), actions=np.array([a for _, a in steps]))
print(json.dumps({"wrapper": agent.metadata.preprocessing.wrapper, "torch": "torch" in sys.modules}))
"""


def _zoo_atari_agent(folder: Path) -> Path:
    """``rl_zoo3.train --algo dqn --env BreakoutNoFrameskip-v4`` with rl-zoo3's own ``atari`` hyperparameters
    (SB3's DQN, AtariWrapper, frame_stack 4), a tiny budget; then the head's biases set so that the greedy action
    follows the frame (a nearly untrained network picks one action everywhere), saved back with ``model.save``."""
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", BREAKOUT, "-n", "200", "--eval-freq",
               "-1", "--seed", "0", "-f", "logs", "--device", "cpu", "-params", "learning_starts:100",
               "buffer_size:500"]  # fmt: skip
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, env=zoo_env())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run = folder / "logs" / "dqn" / f"{BREAKOUT}_1"
    config = read_yaml_mapping(run / BREAKOUT / "config.yml")
    assert config["env_wrapper"] == ["stable_baselines3.common.atari_wrappers.AtariWrapper"]
    model = DQN.load(run / f"{BREAKOUT}.zip", device="cpu")
    venv = sb3_reference(BREAKOUT, 1)
    rng, obs, frames = np.random.default_rng(1), venv.reset(), []
    for _ in range(64):
        frames.append(obs[0].copy())
        obs = venv.step(np.array([rng.integers(4)]))[0]
    q_net: Any = model.policy.q_net
    with torch.no_grad():
        features = q_net.extract_features(torch.as_tensor(np.stack(frames)), q_net.features_extractor)
        head = q_net.q_net[-1]
        head.bias.copy_(-(features.mean(0) @ head.weight.T))
    model.save(run / f"{BREAKOUT}.zip")
    return run


def test_sb3_atari_agent_from_the_hub_plays_as_onnx_without_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An rl-zoo3 ``atari`` agent (SB3 DQN, AtariWrapper) on the test Hub in the layout rl-zoo3's push gives it
    -> load_from_hub -> export (records AtariWrapper) -> played in a process where torch cannot be imported:
    along a greedy episode, every observation and action equal SB3's env and ``model.predict``; evaluate (zip and
    ONNX) uses AtariWrapper's frames and results.json says so."""
    (tmp_path / "train").mkdir()
    run = _zoo_atari_agent(tmp_path / "train")
    name = f"dqn-{BREAKOUT}"
    hub = FakeHub({"hf_write": ("alice", "write")}).start()
    try:
        hub.add_repo(f"sb3/{name}", {
            f"{name}.zip": (run / f"{BREAKOUT}.zip").read_bytes(),
            "config.yml": (run / BREAKOUT / "config.yml").read_bytes(),
            "env_kwargs.yml": b"{}\n",
            "results.json": json.dumps({"mean_reward": 1.0, "std_reward": 0.0}).encode(),
            "README.md": b"---\nlibrary_name: stable-baselines3\n---\n# DQN agent\n",
        })  # fmt: skip
        for key, value in {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_write", "HF_HUB_DISABLE_XET": "1",
                           "HF_HOME": str(tmp_path / "hf_home")}.items():  # fmt: skip
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        assert pull_main(["--repo-id", f"sb3/{name}", "-f", "pulled", "-q"]) == 0, capsys.readouterr().err
    finally:
        hub.stop()
    pulled = tmp_path / "pulled" / "dqn" / f"{BREAKOUT}_1"
    onnx_path = tmp_path / "agent.onnx"
    assert export_main([str(pulled), "-o", str(onnx_path), "--n-real", "32", "--n-random", "32"]) == 0
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert PreprocessingSpec.from_json(props["preprocessing"]) == sb3_atari_spec()  # read from the pulled config.yml

    script = tmp_path / "play.py"
    script.write_text(HIDE_TORCH)
    out = tmp_path / "played.npz"
    proc = subprocess.run([sys.executable, str(script), str(onnx_path), str(out), "2400"], capture_output=True,
                          text=True, timeout=300, env=zoo_env(), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"wrapper": SB3_WRAPPER, "torch": False}
    played = np.load(out)

    model = DQN.load(pulled / f"{BREAKOUT}.zip", device="cpu")
    venv = sb3_reference(BREAKOUT, 9)
    obs = venv.reset()
    for step, (runtime_obs, runtime_action) in enumerate(zip(played["obs"], played["actions"], strict=True)):
        np.testing.assert_array_equal(runtime_obs, obs[0], err_msg=f"step {step}")
        action, _ = model.predict(obs, deterministic=True)
        assert int(action[0]) == int(runtime_action), step
        obs = venv.step(action)[0]
    assert len(played["actions"]) > 50 and len(set(played["actions"].tolist())) >= 2
    venv.close()

    for model_path in (pulled, onnx_path):
        results = tmp_path / f"results_{model_path.suffix or 'zip'}.json"
        argv = [str(model_path), "--episodes", "1", "--max-frames", "600", "-o", str(results), "--no-progress"]
        assert evaluate_main(argv) == 0
        data = json.loads(results.read_text())
        assert data["preprocessing"].startswith("AtariWrapper (noop_max 30, frame_skip 4, 84x84")
        assert PreprocessingSpec.from_json(json.dumps(data["preprocessing_spec"])) == sb3_atari_spec()
        assert data["noop_max"] == 30 and data["epsilon"] == 0.05
        assert "preprocessing: AtariWrapper" in capsys.readouterr().out


# ------------------------------------------------------------------------- reading what the model records


def test_spec_from_config_reads_the_recorded_wrapper() -> None:
    """rl-zoo3's config.yml decides the family and its arguments; names are matched whole against the allow-list,
    never imported; anything else is one clear error unless --preprocessing says which family to use."""
    shape = (4, 84, 84)
    sb3 = {"env_wrapper": [{"stable_baselines3.common.atari_wrappers.AtariWrapper": {"terminal_on_life_loss": False,
                                                                                     "screen_size": 84}}],
           "frame_stack": 4}  # fmt: skip
    spec, stack, notes = spec_from_config(shape, True, True, sb3)
    assert spec == sb3_atari_spec(terminal_on_life_loss=False) and stack == 4 and not notes
    assert spec.fire_reset and spec.resize == "cv2.INTER_AREA" and not spec.train_terminal_on_life_loss
    nature = {"env_wrapper": ["sb3_dqn_atari.zoo.NatureAtariWrapper"], "frame_stack": 4}
    assert spec_from_config(shape, True, True, nature)[0] == PreprocessingSpec()
    assert "assuming NatureAtariWrapper" in spec_from_config(shape, True, True, {})[2][0]
    forced, _, notes = spec_from_config(shape, True, True, {}, "sb3")
    assert forced == sb3_atari_spec() and not notes
    sb3_name = "stable_baselines3.common.atari_wrappers.AtariWrapper"
    nature_name = "sb3_dqn_atari.zoo.NatureAtariWrapper"
    for bad, message in [
        ({"env_wrapper": ["evil.AtariWrapper"]}, "pass --preprocessing nature or sb3"),
        ({"env_wrapper": [{sb3_name: {"frame_size": 84}}]}, "no argument"),
        ({"env_wrapper": [{sb3_name: {"noop_max": "30"}}]}, "whole"),
        ({"env_wrapper": [{nature_name: {"clip_reward": 1}}]}, "true or false"),
        ({"env_wrapper": [{sb3_name: {"action_repeat_probability": 2}}]}, "probability"),
    ]:
        with pytest.raises(UserError, match=message):
            spec_from_config(shape, True, True, bad)
    assert "AtariWrapper as asked" in spec_from_config(shape, True, True, {"env_wrapper": ["my.Wrap"]}, "sb3")[2][0]
    assert PreprocessingSpec.from_json(spec.to_json()) == spec
    with pytest.raises(UserError, match="not a valid value"):
        PreprocessingSpec.from_json(json.dumps({"wrapper": "AtariWrapper", "action_repeat_probability": 3.0}))
    with pytest.raises(UserError, match="cannot rebuild"):
        PreprocessingSpec(wrapper=SB3_WRAPPER).check_supported()  # SB3's family with the Nature frames
