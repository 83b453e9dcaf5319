"""Real files still load (issue 12): run folders written by rl-zoo3 itself, a pull of one from the test Hub followed
by ``python -m rl_zoo3.enjoy``, the export of an rl-zoo3-trained CartPole DQN (whose observation bounds are
±3.4e38), and agents of retired env ids (``LunarLander-v2``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
import yaml
from stable_baselines3 import DQN

from sb3_dqn_atari import env_ids
from sb3_dqn_atari.export import main as export_main
from sb3_dqn_atari.load_from_hub import main as pull_main
from sb3_dqn_atari.loading import load_agent, resolve_model
from sb3_dqn_atari.onnx.export import make_model_env
from sb3_dqn_atari.onnx.runtime import NO_WRAPPER, PreprocessingSpec
from sb3_dqn_atari.onnx.verify import MEANINGFUL_BOUND, collect_observations, verification_bounds
from tests.hub_server import FakeHub, client_env
from tests.zoo_runs import CARTPOLE, cartpole_run, copy_run, zoo_env

TOKEN = "hf_alice_write"


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    server = FakeHub({TOKEN: ("alice", "write")}).start()
    yield server
    server.stop()


@pytest.fixture
def hub_env(hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    for name, value in client_env(hub, TOKEN, tmp_path / "hf_home").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return hub


def _repo_files(run: Path, env_id: str = CARTPOLE) -> dict[str, bytes]:
    """The run folder as rl-zoo3's push_to_hub lays it out in a repo."""
    files = {f"dqn-{env_id}.zip": (run / f"{CARTPOLE}.zip").read_bytes()}
    for name in ("config.yml", "args.yml"):
        files[name] = (run / CARTPOLE / name).read_bytes()
    files["env_kwargs.yml"] = b"{}\n"
    return files


def _same_greedy_actions(a: Any, b: Any, observations: np.ndarray) -> bool:
    actions = [model.predict(observations, deterministic=True)[0] for model in (a, b)]
    return bool(np.array_equal(*actions))


# ------------------------------------------------------------------------------------- rl-zoo3's own folders


def test_an_rl_zoo3_run_folder_loads(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The folder rl-zoo3 wrote (OrderedDict, tuple and class-name tags in its yml files) resolves and loads
    without unpickling, to the agent SB3's own loader gives."""
    run = cartpole_run(tmp_path_factory)
    source = resolve_model(run)
    assert source.env_id == CARTPOLE and source.zip_path == run / f"{CARTPOLE}.zip"
    assert source.hyperparams["policy_kwargs"]["activation_fn"] == "torch.nn.modules.activation.ReLU"
    assert source.hyperparams["train_freq"] == (16, "step")
    model, _ = load_agent(run, device="cpu")
    reference = DQN.load(run / f"{CARTPOLE}.zip", device="cpu", buffer_size=1)  # our own file: trusted
    assert isinstance(model.policy.q_net.q_net[1], torch.nn.ReLU)
    rng = np.random.default_rng(0)
    observations = rng.normal(0, 1, (256, 4)).astype(np.float32)
    assert _same_greedy_actions(model, reference, observations)
    assert model.num_timesteps == reference.num_timesteps > 0


def _with_float32_max_bounds(run: Path, out: Path) -> Path:
    """A copy of the run whose zip records CartPole's observation space as gym < 0.26 and SB3 1.x wrote it (the RL
    Zoo's published ``dqn/CartPole-v1_1``): velocity bounds ±3.4e38 (float32's largest) where gymnasium 1.x has
    ±inf; the zip's ``data`` entry rewritten by SB3's own ``data_to_json``."""
    import zipfile

    from gymnasium import spaces
    from stable_baselines3.common.save_util import data_to_json

    copy_run(run, out)
    big = float(np.finfo(np.float32).max)
    space = spaces.Box(np.array([-4.8, -big, -0.418, -big], np.float32), np.array([4.8, big, 0.418, big], np.float32))
    path = out / f"{CARTPOLE}.zip"
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    data["observation_space"] = json.loads(data_to_json({"observation_space": space}))["observation_space"]
    members["data"] = json.dumps(data, indent=4).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out


def test_export_of_an_rl_zoo3_cartpole_dqn_draws_where_observations_mean_something(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An rl-zoo3-trained CartPole DQN whose zip records velocity bounds of ±3.4e38 (as the RL Zoo's published
    agent): Q-values of observations drawn within those bounds overflow (the reported ``max |ΔQ| = nan``). The
    export draws those dimensions within the range its rollout saw, widened by half on each side (the rule,
    recomputed here by hand), the others within their bounds, and verifies."""
    run = _with_float32_max_bounds(cartpole_run(tmp_path_factory), tmp_path / "run")
    model, _ = load_agent(run, device="cpu")
    space = model.observation_space
    assert np.all(space.high[[1, 3]] == np.finfo(np.float32).max)
    # the bug: observations drawn within the bounds give non-finite Q-values for this agent
    space.seed(0)
    drawn = np.stack([space.sample() for _ in range(64)])
    with torch.no_grad():
        q = model.policy.q_net(torch.as_tensor(drawn)).numpy()
    assert not np.all(np.isfinite(q))

    venv = make_model_env(CARTPOLE, PreprocessingSpec(wrapper=NO_WRAPPER), 1, seed=0)
    observations = collect_observations(model, venv, n_real=128, n_random=512, seed=0, progress=False)
    venv.close()
    real, random = observations[:128].astype(np.float64), observations[128:].astype(np.float64)
    width = real.max(axis=0) - real.min(axis=0)
    meaningful = np.abs(space.high.astype(np.float64)) <= MEANINGFUL_BOUND
    assert meaningful.tolist() == [True, False, True, False]
    expected_low = np.where(meaningful, space.low, real.min(axis=0) - width / 2)
    expected_high = np.where(meaningful, space.high, real.max(axis=0) + width / 2)
    low, high = verification_bounds(space, observations[:128])
    np.testing.assert_allclose(low, expected_low, rtol=1e-6)
    np.testing.assert_allclose(high, expected_high, rtol=1e-6)
    assert np.all(random >= expected_low - 1e-6) and np.all(random <= expected_high + 1e-6)
    assert np.all(random.max(axis=0) - random.min(axis=0) > 0.8 * (expected_high - expected_low))  # spread out

    out = tmp_path / "cartpole.onnx"
    assert export_main([str(run), "-o", str(out), "--n-real", "128", "--n-random", "256", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "action agreement 384/384" in printed and ": ok" in printed
    report = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["verification"])
    assert np.isfinite(report["max_abs_dq"]) and report["max_abs_dq"] <= 1e-4 and report["passed"]


def test_pull_of_an_rl_zoo3_folder_then_rl_zoo3_enjoy(
    tmp_path_factory: pytest.TempPathFactory, hub_env: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The repo rl-zoo3 would push for that run, pulled with our load_from_hub (checked, placed byte for byte),
    then played by rl-zoo3's own enjoy."""
    run = cartpole_run(tmp_path_factory)
    files = _repo_files(run)
    hub_env.add_repo("alice/dqn-CartPole-v1", files)
    assert pull_main(["--repo-id", "alice/dqn-CartPole-v1", "-f", "logs", "-q"]) == 0, capsys.readouterr().err
    pulled = tmp_path / "logs" / "dqn" / f"{CARTPOLE}_1"
    assert (pulled / f"{CARTPOLE}.zip").read_bytes() == files[f"dqn-{CARTPOLE}.zip"]
    for name in ("config.yml", "args.yml", "env_kwargs.yml"):
        assert (pulled / CARTPOLE / name).read_bytes() == files[name]
    enjoy = [sys.executable, "-m", "rl_zoo3.enjoy", "--algo", "dqn", "--env", CARTPOLE, "-f", "logs",
             "--no-render", "-n", "300", "--num-threads", "1", "--device", "cpu", "--seed", "0"]  # fmt: skip
    result = subprocess.run(enjoy, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=zoo_env())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"Loading logs/dqn/{CARTPOLE}_1/{CARTPOLE}.zip" in result.stdout
    assert "Episode Reward:" in result.stdout  # rl-zoo3 prints one per finished episode


# ---------------------------------------------------------------------------------------------- retired ids


def test_retired_env_ids_are_mapped_with_one_note(
    tmp_path_factory: pytest.TempPathFactory, hub_env: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Hub agent of ``LunarLander-v2`` (gymnasium 1.x registers only v3) pulls into ``LunarLander-v3_1`` with one
    note; a local rl-zoo3 folder of a v2 agent resolves to v3 and still finds its ``LunarLander-v2.zip``."""
    run = cartpole_run(tmp_path_factory)  # any DQN zip: the pull and the resolution never build the env
    args = {"algo": "dqn", "env": "LunarLander-v2", "env_kwargs": None, "seed": 0}
    files = {
        "dqn-LunarLander-v2.zip": (run / f"{CARTPOLE}.zip").read_bytes(),
        "args.yml": yaml.safe_dump(args).encode(),
        "config.yml": b"policy: MlpPolicy\n",
    }
    hub_env.add_repo("alice/dqn-LunarLander-v2", files)
    env_ids._announced.clear()
    capsys.readouterr()
    assert pull_main(["--repo-id", "alice/dqn-LunarLander-v2", "-f", "logs", "-q"]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == ["note: gymnasium retired LunarLander-v2; using its successor LunarLander-v3 "
                     "(same observations and actions)"]  # fmt: skip
    pulled = tmp_path / "logs" / "dqn" / "LunarLander-v3_1"
    assert (pulled / "LunarLander-v3.zip").read_bytes() == files["dqn-LunarLander-v2.zip"]
    assert "--env LunarLander-v3" in out
    assert resolve_model(pulled).env_id == "LunarLander-v3"

    local = copy_run(run, tmp_path / "local" / "dqn" / "LunarLander-v2_1")
    (local / f"{CARTPOLE}.zip").rename(local / "LunarLander-v2.zip")
    (local / CARTPOLE / "args.yml").write_text(yaml.safe_dump(args))
    source = resolve_model(local)
    assert source.env_id == "LunarLander-v3" and source.zip_path.name == "LunarLander-v2.zip"
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]  # once per id


# ------------------------------------------------------------------------------------------ pickles in a pull


class _Mkdir:
    """Unpickling this creates the folder ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        import os

        return os.mkdir, (str(self.path),)


def test_a_pull_warns_about_zip_pickles_enjoy_would_run_and_refuses_a_vecnormalize_that_runs_code(
    tmp_path_factory: pytest.TempPathFactory, hub_env: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The zip is placed byte for byte (our loaders never unpickle it): a pickle in it that is more than plain data
    gets one warning line naming it (rl_zoo3.enjoy would run it); a ``vec_normalize.pkl`` that is more than plain
    data refuses the repo (enjoy unpickles it when config.yml normalizes). A clean repo pulls without a warning."""
    import base64
    import pickle
    import zipfile

    run = cartpole_run(tmp_path_factory)
    marker = tmp_path / "marker"
    files = _repo_files(run)
    with zipfile.ZipFile(run / f"{CARTPOLE}.zip") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    data["exploration_schedule"][":serialized:"] = base64.b64encode(pickle.dumps(_Mkdir(marker))).decode()
    members["data"] = json.dumps(data).encode()
    poisoned = tmp_path / "poisoned.zip"
    with zipfile.ZipFile(poisoned, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    hub_env.add_repo("alice/poisoned-zip", {**files, f"dqn-{CARTPOLE}.zip": poisoned.read_bytes()})
    capsys.readouterr()
    assert pull_main(["--repo-id", "alice/poisoned-zip", "-f", "logs", "-q"]) == 0
    warnings_ = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings_) == 1 and "exploration_schedule" in warnings_[0] and "rl_zoo3.enjoy" in warnings_[0]
    load_agent(tmp_path / "logs" / "dqn" / f"{CARTPOLE}_1", device="cpu")  # our loader: nothing unpickled
    assert not marker.exists()

    vecnormalize = pickle.dumps(_Mkdir(marker))
    hub_env.add_repo("alice/poisoned-vecnormalize", {**files, "vec_normalize.pkl": vecnormalize})
    assert pull_main(["--repo-id", "alice/poisoned-vecnormalize", "-f", "other", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vec_normalize.pkl" in err[0] and "--trust-remote-code" in err[0], err
    assert not (tmp_path / "other").exists() and not marker.exists()

    hub_env.add_repo("alice/clean", files)
    assert pull_main(["--repo-id", "alice/clean", "-f", "clean", "-q"]) == 0
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
