"""Sharing on the Hub (push_to_hub / load_from_hub) and safe loading (sb3_dqn_atari.loading).

The Hub tests run the real ``huggingface_hub`` client against :class:`tests.hub_server.FakeHub` on 127.0.0.1
(``HF_ENDPOINT``); nothing of huggingface_hub is patched. The loading tests compare the pickle-free loader with
SB3's own ``load`` and show that a planted pickle never runs.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
import types
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_dqn_atari import NatureAtariWrapper, NatureDQN
from sb3_dqn_atari.evaluation import evaluate_policy_protocol, make_eval_env
from sb3_dqn_atari.load_from_hub import main as pull_main
from sb3_dqn_atari.loading import (
    OldZipWarning,
    UnsafeZipError,
    UserError,
    load_agent,
    load_safely,
    load_trusted,
    resolve_model,
)
from sb3_dqn_atari.push_to_hub import main as push_main
from tests.hub_server import FakeHub, client_env

ROOT = Path(__file__).resolve().parents[1]
ACROBOT_FIXTURE = ROOT.parent / "shared" / "fixtures" / "sb3-1.0rc0-dqn-Acrobot-v1.zip"
BREAKOUT = "BreakoutNoFrameskip-v4"
WRITE_TOKEN, READ_TOKEN, BOB_TOKEN = "hf_alice_write", "hf_alice_read", "hf_bob_write"
REPO = f"alice/dqn-{BREAKOUT}"
#: Short evaluations: the paper's protocol with a 400-frame cap (100 agent steps per episode).
QUICK = ["--episodes", "2", "--max-frames", "400", "--video-length", "40", "-q", "--retry-wait", "0.05"]


# ------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    server = FakeHub({WRITE_TOKEN: ("alice", "write"), READ_TOKEN: ("alice", "read"), BOB_TOKEN: ("bob", "write")})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hub_env(hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    """The client talks to the test hub as alice; outputs (exported_models/...) land in tmp_path."""
    for name, value in client_env(hub, WRITE_TOKEN, tmp_path / "hf_home").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return hub


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _breakout_venv() -> VecFrameStack:
    return VecFrameStack(DummyVecEnv([lambda: NatureAtariWrapper(gym.make(BREAKOUT))]), 4)


def _state_dependent(model: Any, seed: int = 0) -> None:
    """Make an untrained Q-network's greedy action depend on the frame: head bias = -W·mean(features) over real
    frames (else a random network picks one action everywhere and action comparisons see nothing)."""
    venv = _breakout_venv()
    venv.seed(seed)
    rng = np.random.default_rng(seed)
    obs, frames = venv.reset(), []
    for _ in range(64):
        frames.append(obs[0].transpose(2, 0, 1).copy())
        obs = venv.step(np.array([rng.integers(4)]))[0]
    venv.close()
    q_net = model.policy.q_net
    with torch.no_grad():
        features = q_net.extract_features(torch.as_tensor(np.stack(frames)), q_net.features_extractor)
        head = q_net.q_net[-1]
        head.bias.copy_(-(features.mean(0) @ head.weight.T))
        model.policy.q_net_target.load_state_dict(q_net.state_dict())


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An rl-zoo3 run folder as ``rl_zoo3.train`` leaves it: logs/dqn/<env>_1/<env>.zip, <env>/config.yml and
    args.yml (OrderedDict YAML), a Monitor file; the agent is an untrained NatureDQN with state-dependent actions."""
    torch.set_num_threads(1)
    logs = tmp_path_factory.mktemp("zoo") / "logs"
    run = logs / "dqn" / f"{BREAKOUT}_1"
    (run / BREAKOUT).mkdir(parents=True)
    model = NatureDQN("CnnPolicy", _breakout_venv(), buffer_size=100, learning_starts=0, seed=3, device="cpu")
    _state_dependent(model)
    model.save(run / f"{BREAKOUT}.zip")
    hyperparams = {"env_wrapper": ["sb3_dqn_atari.zoo.NatureAtariWrapper"], "frame_stack": 4, "policy": "CnnPolicy"}
    (run / BREAKOUT / "config.yml").write_text(yaml.dump(OrderedDict(sorted(hyperparams.items()))))
    args = {"algo": "dqn", "conf_file": "hyperparams/dqn.yml", "env": BREAKOUT, "env_kwargs": None, "seed": 3,
            "n_timesteps": -1}  # fmt: skip
    (run / BREAKOUT / "args.yml").write_text(yaml.dump(OrderedDict(sorted(args.items()))))
    with (run / "0.monitor.csv").open("w") as f:
        f.write(json.dumps({"t_start": 1.7e9, "env_id": BREAKOUT}).join(["#", "\n"]) + "r,l,t\n")
        f.writelines(f"{i % 7}.0,{600 + 10 * i},{2.0 * i}\n" for i in range(40))
    return run


def _record_actions(model: Any, episodes: int = 1, seed: int = 5) -> tuple[list[int], list[float]]:
    """The greedy actions the agent takes over ``episodes`` paper-protocol episodes (400-frame cap), and scores."""
    actions: list[int] = []

    def act(obs: np.ndarray) -> np.ndarray:
        action = np.asarray(model.predict(obs, deterministic=True)[0])
        actions.append(int(action.reshape(-1)[0]))
        return action

    env = make_eval_env(BREAKOUT, "nature", seed, n_actions=4, obs_shape=(4, 84, 84), max_episode_frames=400)
    result = evaluate_policy_protocol(act, episodes=episodes, seed=seed, env=env)
    env.close()
    return actions, [e.score for e in result.episodes]


# ---------------------------------------------------------------------------------------------- push and pull


def test_push_pull_roundtrip(zoo_run: Path, hub_env: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Push an rl-zoo3 run (after one HTTP 500, retried), in one commit with every file; the model card parses;
    pull it back into rl-zoo3's layout; the pulled agent plays exactly as the pushed one (and as SB3's load)."""
    hub = hub_env
    hub.fail("POST", r"^/api/repos/create$", 500)  # transient: the retry must get through
    logs = zoo_run.parents[1]
    args = ["-f", str(logs), "--algo", "dqn", "--env", BREAKOUT, "--exp-id", "1", "--repo-id", REPO, "--private"]
    rc = push_main([*args, *QUICK])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "retrying" in out.err and "HTTP 500" in out.err
    assert hub.count("POST", r"^/api/repos/create$") == 2

    repo = hub.repos[REPO]
    assert repo.private
    assert len(repo.commits) == 1, "everything goes up in one commit"
    files = repo.commits[0].files
    name = f"dqn-{BREAKOUT}"
    expected = {
        f"{name}.zip",
        f"{name}.onnx",
        "config.yml",
        "args.yml",
        "env_kwargs.yml",
        "results.json",
        "replay.mp4",
        "learning_curve.png",
        "train_eval_metrics.zip",
        "README.md",
    }
    assert set(files) == expected
    assert files[f"{name}.zip"] == (zoo_run / f"{BREAKOUT}.zip").read_bytes()
    assert files["config.yml"] == (zoo_run / BREAKOUT / "config.yml").read_bytes()
    assert files["args.yml"] == (zoo_run / BREAKOUT / "args.yml").read_bytes()
    assert files["replay.mp4"][4:8] == b"ftyp" and files["learning_curve.png"][:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads(files["results.json"])
    assert results["protocol"] == "nature" and results["n_eval_episodes"] == 2 and results["epsilon"] == 0.05
    assert results["max_episode_frames"] == 400 and len(results["episodes"]) == 2

    # the model card: Hub model-index metadata that huggingface_hub parses, and the ONNX instructions
    from huggingface_hub import ModelCard

    card_path = tmp_path / "README.md"
    card_path.write_bytes(files["README.md"])
    card = ModelCard.load(card_path)
    data = card.data.to_dict()
    assert data["library_name"] == "stable-baselines3"
    assert {BREAKOUT, "deep-reinforcement-learning", "reinforcement-learning", "stable-baselines3"} <= set(data["tags"])
    (evaluation,) = card.data.eval_results
    assert evaluation.metric_type == "mean_reward" and evaluation.dataset_name == BREAKOUT
    assert evaluation.metric_value == f"{results['mean_reward']:.2f} +/- {results['std_reward']:.2f}"
    assert "python -m sb3_dqn_atari.play" in card.text and "onnxruntime" in card.text

    # the ONNX file runs and says what it is
    session = ort.InferenceSession(files[f"{name}.onnx"], providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["env_id"] == BREAKOUT and json.loads(meta["verification"])["passed"]
    # ... which yml it was trained with, for how long, and its score (the results.json pushed beside it)
    assert meta["hyperparams_file"] == "hyperparams/dqn.yml" and meta["num_timesteps"] == "0"
    scored = json.loads(meta["evaluation"])
    assert (scored["mean_reward"], scored["std_reward"]) == (results["mean_reward"], results["std_reward"])
    assert scored["protocol"] == "nature" and scored["n_eval_episodes"] == 2 and "1-30 no-op" in scored["description"]

    # pull, with --onnx: rl-zoo3's layout, byte-identical files, an export in exported_models/
    pulled = tmp_path / "pulled"
    rc = pull_main(["--repo-id", REPO, "-f", str(pulled), "--onnx", "-q"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    run = pulled / "dqn" / f"{BREAKOUT}_1"
    assert (run / f"{BREAKOUT}.zip").read_bytes() == files[f"{name}.zip"]
    for config in ("config.yml", "args.yml", "env_kwargs.yml"):
        assert (run / BREAKOUT / config).read_bytes() == files[config]
    assert (run / "0.monitor.csv").read_bytes() == (zoo_run / "0.monitor.csv").read_bytes()
    assert not [p for p in pulled.rglob("*") if ".partial-" in p.name or ".hub-download-" in p.name]
    source = resolve_model(run)
    assert source.env_id == BREAKOUT and source.zip_path == run / f"{BREAKOUT}.zip"
    assert source.hyperparams["frame_stack"] == 4
    assert (tmp_path / "exported_models" / f"{BREAKOUT}-nature-dqn.onnx").is_file()

    # a second pull gets the next run number, as rl-zoo3 counts; an existing run folder is replaced only with --force
    assert pull_main(["--repo-id", REPO, "-f", str(pulled), "-q"]) == 0
    assert (pulled / "dqn" / f"{BREAKOUT}_2" / f"{BREAKOUT}.zip").is_file()
    (run / "mine.txt").write_text("keep me")
    assert pull_main(["--repo-id", REPO, "-f", str(pulled), "--exp-id", "1", "-q"]) == 2
    assert "already exists" in _error_line(capsys) and (run / "mine.txt").is_file()
    assert pull_main(["--repo-id", REPO, "-f", str(pulled), "--exp-id", "1", "--force", "-q"]) == 0
    assert not (run / "mine.txt").exists() and (run / f"{BREAKOUT}.zip").read_bytes() == files[f"{name}.zip"]
    assert sorted(p.name for p in (pulled / "dqn").iterdir()) == [f"{BREAKOUT}_1", f"{BREAKOUT}_2"]

    # the pulled agent evaluates with the same actions as the pushed one, and as SB3's own load of it
    pushed, _ = load_agent(zoo_run, device="cpu")
    pulled_model, _ = load_agent(run, device="cpu")
    sb3_model = NatureDQN.load(zoo_run / f"{BREAKOUT}.zip", device="cpu", buffer_size=1)
    reference = _record_actions(pushed)
    assert len(set(reference[0])) > 1, "the test agent should not play a single action"
    assert _record_actions(pulled_model) == reference
    assert _record_actions(sb3_model) == reference


def test_dry_run_writes_folder_only(hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--dry-run needs no token and uploads nothing; a vector-env agent (CartPole) gets the greedy evaluation."""
    monkeypatch.delenv("HF_TOKEN")
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, device="cpu", seed=0)
    model.save(tmp_path / "cartpole.zip")
    requests_before = len(hub_env.requests)
    out = tmp_path / "repo"
    args = [str(tmp_path / "cartpole.zip"), "--env", "CartPole-v1", "--dry-run", str(out), *QUICK]
    assert push_main(args) == 0
    assert len(hub_env.requests) == requests_before
    names = {p.name for p in out.iterdir()}
    assert {"dqn-CartPole-v1.zip", "dqn-CartPole-v1.onnx", "results.json", "replay.mp4", "README.md"} <= names
    assert {"config.yml", "args.yml", "env_kwargs.yml"} <= names  # written for a bare zip, for rl_zoo3.load_from_hub
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"] == "greedy" and results["n_eval_episodes"] == 2
    assert yaml.safe_load((out / "args.yml").read_text())["env"] == "CartPole-v1"
    assert push_main(args) == 2  # the folder is not empty now: refused, left as it is
    assert {p.name for p in out.iterdir()} == names


def test_load_best_pushes_the_best_model(zoo_run: Path, hub_env: FakeHub, monkeypatch, tmp_path: Path, capsys) -> None:
    """--load-best pushes the run's best_model.zip whether the run folder is passed as MODEL or found with -f/--env
    (MODEL once ignored it and pushed the final model); a zip with --load-best, or a run without best_model.zip,
    ends in one error line and writes nothing. (Without --load-best the final model: test_push_pull_roundtrip.)"""
    monkeypatch.delenv("HF_TOKEN")
    logs = tmp_path / "logs"
    run = logs / "dqn" / zoo_run.name
    shutil.copytree(zoo_run, run)
    final = run / f"{BREAKOUT}.zip"
    data = json.loads(_zip_member(final, "data"))
    best_steps = data["num_timesteps"] + 12_345  # what tells best_model.zip from the final model
    _rewrite_zip(final, run / "best_model.zip", data={**data, "num_timesteps": best_steps})
    for i, args in enumerate(([str(run)], ["-f", str(logs), "--env", BREAKOUT])):
        out = tmp_path / f"repo{i}"
        assert push_main([*args, "--load-best", "--dry-run", str(out), *QUICK]) == 0
        assert json.loads(_zip_member(out / f"dqn-{BREAKOUT}.zip", "data"))["num_timesteps"] == best_steps, args
        assert (out / "learning_curve.png").is_file()  # the run's Monitor file came along with best_model.zip
    capsys.readouterr()
    assert push_main([str(final), "--load-best", "--dry-run", str(tmp_path / "bad1"), *QUICK]) == 2
    assert "--load-best takes a run folder" in _error_line(capsys)
    (run / "best_model.zip").unlink()
    assert push_main([str(run), "--load-best", "--dry-run", str(tmp_path / "bad2"), *QUICK]) == 2
    assert "holds no best_model.zip" in _error_line(capsys)
    assert not (tmp_path / "bad1").exists() and not (tmp_path / "bad2").exists()


# ------------------------------------------------------------------------------------------------- errors


def _error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "expected an error line on stderr"
    assert err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.parametrize(
    ("token", "status", "phrase"),
    [("hf_not_a_token", 401, "HTTP 401"), (BOB_TOKEN, 403, "HTTP 403"), (READ_TOKEN, 403, "write access")],
)
def test_push_permission_errors(
    zoo_run: Path,
    hub_env: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    token: str,
    status: int,
    phrase: str,
) -> None:
    monkeypatch.setenv("HF_TOKEN", token)
    rc = push_main([str(zoo_run), "--repo-id", "alice/forbidden", *QUICK])
    line = _error_line(capsys)
    assert rc == 2 and "no permission" in line and phrase in line
    assert "alice/forbidden" not in hub_env.repos


def test_push_hub_errors(zoo_run: Path, hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A Hub that keeps answering 500 and one that is down: bounded retries with backoff, then one line."""
    hub_env.fail("POST", r"^/api/repos/create$", 500, 500, 500)
    start = time.perf_counter()
    rc = push_main([str(zoo_run), "--repo-id", "alice/flaky", "--retries", "3", *QUICK])
    line = _error_line(capsys)
    assert rc == 2 and "HTTP 500" in line and "after 3 attempts" in line
    assert time.perf_counter() - start >= 0.05 + 0.1  # waited 0.05 s, then 0.1 s (exponential)
    assert "alice/flaky" not in hub_env.repos

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    rc = push_main([str(zoo_run), "--repo-id", "alice/down", "--retries", "2", *QUICK])
    line = _error_line(capsys)
    assert rc == 2 and "cannot reach the Hugging Face Hub" in line and "connection refused" in line


def test_push_without_token(zoo_run: Path, hub: FakeHub, tmp_path: Path) -> None:
    """No HF_TOKEN and no stored token (a fresh HF_HOME): one line, before anything is evaluated or created."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_ENDPOINT=hub.url, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "sb3_dqn_atari.push_to_hub", str(zoo_run), "--repo-id", "alice/no-token"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no Hugging Face token: to push to the Hub, set HF_TOKEN or run `hf auth login` "
        "(with a token that has write access)"
    ]
    assert "alice/no-token" not in hub.repos


def test_pull_errors(hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    hub = hub_env
    logs = tmp_path / "logs"
    hub.add_repo("alice/no-model", {"README.md": b"# nothing here\n", "config.yml": b"policy: CnnPolicy\n"})
    hub.add_repo("alice/not-sb3", {f"dqn-{BREAKOUT}.zip": _zip_bytes({"hello.txt": b"hi"})})
    hub.add_repo("alice/private", {f"dqn-{BREAKOUT}.zip": b"PK"}, private=True)

    cases = [
        ("alice/missing", None, "not found", "HTTP 404"),
        ("alice/no-model", None, "holds no SB3 model zip", "config.yml"),
        ("alice/not-sb3", None, "not a readable SB3 model zip", "not-sb3"),
        ("alice/private", "", "no permission", "HTTP 401"),
        ("alice/private", BOB_TOKEN, "no permission", "HTTP 403"),
    ]
    for repo_id, token, phrase, detail in cases:
        if token is not None:
            monkeypatch.setenv("HF_TOKEN", token)
        assert pull_main(["--repo-id", repo_id, "-f", str(logs), "-q", "--retry-wait", "0.01"]) == 2
        line = _error_line(capsys)
        assert phrase in line and detail in line, line
        monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    assert pull_main(["--repo-id", REPO, "-f", str(logs), "-q", "--retries", "2", "--retry-wait", "0.01"]) == 2
    line = _error_line(capsys)
    assert "cannot reach the Hugging Face Hub" in line and "after 2 attempts" in line
    # nothing half-written
    assert not logs.exists() or not [p for p in logs.rglob("*") if p.is_file()]


def test_pull_refuses_metrics_zip_members_that_leave_the_run_folder(hub_env: FakeHub, tmp_path: Path, capsys) -> None:
    """train_eval_metrics.zip is extracted into the run folder: a member named outside it refuses the repo before
    anything is placed."""
    buffer = io.BytesIO()
    DQN("MlpPolicy", "CartPole-v1", buffer_size=100, learning_starts=0, device="cpu").save(buffer)
    logs = tmp_path / "logs"
    for i, member in enumerate(("../escaped.csv", "/tmp/absolute.csv", "a/../../escaped.csv")):
        metrics = _zip_bytes({"0.monitor.csv": b"#{}\nr,l,t\n", member: b"planted"})
        files = {"dqn-CartPole-v1.zip": buffer.getvalue(), "train_eval_metrics.zip": metrics}
        hub_env.add_repo(f"alice/metrics-{i}", files)
        assert pull_main(["--repo-id", f"alice/metrics-{i}", "-f", str(logs), "-q"]) == 2
        line = _error_line(capsys)
        assert f"train_eval_metrics.zip holds the file name {member!r}" in line and "outside its folder" in line, line
    assert not logs.exists() and not (tmp_path / "escaped.csv").exists()


def _zip_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- safe loading


def _same_actions(a: Any, b: Any, n: int = 256, seed: int = 0) -> bool:
    space = a.observation_space
    space.seed(seed)
    obs = np.stack([space.sample() for _ in range(n)])
    return bool(np.array_equal(a.predict(obs, deterministic=True)[0], b.predict(obs, deterministic=True)[0]))


@pytest.mark.parametrize("kind", ["dqn-mlp", "qrdqn-mlp", "nature-cnn"])
def test_safe_load_matches_sb3_load(kind: str, tmp_path: Path) -> None:
    """The pickle-free loader rebuilds the same agent as SB3's ``load``: class, spaces, weights, actions."""
    from sb3_contrib import QRDQN

    cls: Any
    if kind == "dqn-mlp":
        cls, model = DQN, DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [32, 32]}, device="cpu", seed=1)
    elif kind == "qrdqn-mlp":
        kwargs = {"net_arch": [16], "n_quantiles": 9}
        cls, model = QRDQN, QRDQN("MlpPolicy", "CartPole-v1", policy_kwargs=kwargs, device="cpu", seed=1)
    else:
        model = NatureDQN("CnnPolicy", _breakout_venv(), buffer_size=100, learning_starts=0, seed=1, device="cpu")
        _state_dependent(model)
        cls = NatureDQN
    path = tmp_path / "model.zip"
    model.save(path)
    safe, reference = load_safely(path, device="cpu"), cls.load(path, device="cpu", buffer_size=1)
    assert type(safe) is type(reference) and type(safe.policy) is type(reference.policy)
    assert safe.observation_space == reference.observation_space and safe.action_space == reference.action_space
    ref_state = reference.policy.state_dict()
    assert all(torch.equal(v, ref_state[k]) for k, v in safe.policy.state_dict().items())
    assert type(safe.policy.optimizer) is type(reference.policy.optimizer)
    assert _same_actions(safe, reference)
    if kind == "nature-cnn":  # on real frames too (random noise images hardly move a CNN's greedy action)
        assert _record_actions(safe) == _record_actions(reference)
    for attr in ("gamma", "target_update_interval", "exploration_final_eps", "num_timesteps", "learning_starts"):
        assert getattr(safe, attr) == getattr(reference, attr)


class _Touch:
    """Unpickling this creates ``path``: stands for any code an attacker could run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return Path.touch, (self.path,)


def _rewrite_zip(path: Path, out: Path, data: dict[str, Any] | None = None, **members: bytes) -> None:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "data" and data is not None:
                content = json.dumps(data, indent=4).encode()
            dst.writestr(item, members.pop(item.filename, content))


def test_planted_pickle_never_runs(tmp_path: Path) -> None:
    """Every pickle of ``data`` replaced by one that writes a marker file: the default loader never runs any
    and still loads the agent from the plain fields; SB3's loader (``--trust-remote-code``) does run them."""
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, device="cpu", seed=2)
    clean = tmp_path / "clean.zip"
    model.save(clean)
    marker = tmp_path / "pwned"
    evil = base64.b64encode(pickle.dumps(_Touch(marker))).decode()
    with zipfile.ZipFile(clean) as archive:
        data = json.loads(archive.read("data"))
    planted = [k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v and k != "policy_class"]
    assert {"observation_space", "action_space", "lr_schedule", "exploration_schedule"} <= set(planted)
    for key in planted:
        data[key][":serialized:"] = evil
    poisoned = tmp_path / "poisoned.zip"
    _rewrite_zip(clean, poisoned, data)

    safe, _ = load_agent(poisoned, device="cpu")
    assert not marker.exists()
    assert _same_actions(safe, DQN.load(clean, device="cpu"))

    # a poisoned policy class cannot be read as a class reference: refused, not run
    data["policy_class"][":serialized:"] = evil
    _rewrite_zip(clean, poisoned, data)
    with pytest.raises(UnsafeZipError, match="--trust-remote-code"):
        load_agent(poisoned, device="cpu")
    assert not marker.exists()

    # weights that are more than tensors: torch.load(weights_only=True) refuses them
    buffer = io.BytesIO()
    torch.save({"q_net.q_net.0.weight": _Touch(marker)}, buffer)
    _rewrite_zip(clean, poisoned, None, **{"policy.pth": buffer.getvalue()})
    with pytest.raises(UnsafeZipError, match=r"policy\.pth"):
        load_agent(poisoned, device="cpu")
    assert not marker.exists()

    # the planted pickles are live: trusting the file runs them
    with zipfile.ZipFile(clean) as archive:
        data["policy_class"] = json.loads(archive.read("data"))["policy_class"]
    _rewrite_zip(clean, poisoned, data)
    with warnings.catch_warnings(), pytest.raises(UserError):
        warnings.simplefilter("ignore")
        load_trusted(poisoned, device="cpu")  # the planted "spaces" are not spaces once unpickled
    assert marker.exists()


# ------------------------------------------------------------------------------------------------ old zips


@pytest.mark.skipif(not ACROBOT_FIXTURE.is_file(), reason="../shared/fixtures is not available")
def test_sb3_1x_acrobot_fixture(tmp_path: Path) -> None:
    """A real SB3 1.0 zip with pickled ``gym`` spaces: loads without gym (one warning), plays Acrobot-v1 well,
    exports to ONNX with 100% action agreement, and the trusted loader gives the same agent."""
    from sb3_dqn_atari.onnx.export import export_onnx

    with pytest.warns(OldZipWarning, match="gym spaces"):
        model, _ = load_agent(ACROBOT_FIXTURE, device="cpu")
    assert type(model).__name__ == "DQN" and model.policy_kwargs["net_arch"] == [256, 256]
    assert model.observation_space.shape == (6,) and int(model.action_space.n) == 3

    env = gym.make("Acrobot-v1")
    returns = []
    for episode in range(3):
        obs, _ = env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(model.predict(obs, deterministic=True)[0]))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    assert max(returns) > -150, returns  # a random policy stays at the 500-step limit (-500)

    report = export_onnx(model, tmp_path / "acrobot.onnx", "Acrobot-v1", n_real=128, n_random=128, progress=False)
    assert report.verification.agreement == 1.0 and report.verification.passed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trusted = load_trusted(ACROBOT_FIXTURE, device="cpu")
    assert _same_actions(model, trusted)


def _gym_space_pickle(kind: str, state: dict[str, Any]) -> str:
    """A pickle of a ``gym.spaces.<kind>`` object, as SB3 1.x wrote them; ``gym`` is faked only while pickling."""
    module_name = f"gym.spaces.{kind.lower()}"
    fake = {name: types.ModuleType(name) for name in ("gym", "gym.spaces", module_name)}
    cls = type(kind, (), {"__module__": module_name})
    fake[module_name].__dict__[kind] = cls
    saved = {name: sys.modules.get(name) for name in fake}
    sys.modules.update(fake)
    try:
        obj = cls.__new__(cls)
        obj.__dict__.update(state)
        return base64.b64encode(pickle.dumps(obj, protocol=4)).decode()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _sb3_1x_style_cnn_zip(folder: Path) -> tuple[Path, Path]:
    """A DQN CnnPolicy zip on Breakout and a copy rewritten in the SB3 1.x format: spaces pickled from
    ``gym.spaces`` (which does not exist here) with SB3 1.x's plain fields, version 1.6.2. Returns (clean, old)."""
    model = DQN("CnnPolicy", _breakout_venv(), buffer_size=100, learning_starts=0, seed=4, device="cpu")
    _state_dependent(model)
    clean = folder / "clean.zip"
    model.save(clean)
    with zipfile.ZipFile(clean) as archive:
        data = json.loads(archive.read("data"))
    low, high = np.zeros((4, 84, 84), np.uint8), np.full((4, 84, 84), 255, np.uint8)
    data["observation_space"] = {
        ":type:": "<class 'gym.spaces.box.Box'>",
        ":serialized:": _gym_space_pickle("Box", {"dtype": np.dtype("uint8"), "shape": (4, 84, 84), "low": low}),
        "dtype": "uint8",
        "shape": [4, 84, 84],
        "low": str(low),
        "high": str(high),
        "bounded_below": str(np.ones_like(low, bool)),
        "bounded_above": str(np.ones_like(high, bool)),
        "_np_random": None,
    }
    data["action_space"] = {
        ":type:": "<class 'gym.spaces.discrete.Discrete'>",
        ":serialized:": _gym_space_pickle("Discrete", {"n": 4, "shape": (), "dtype": np.dtype("int64")}),
        "n": 4,
        "shape": [],
        "dtype": "int64",
        "_np_random": None,
    }
    old = folder / "old.zip"
    _rewrite_zip(clean, old, data, **{"_stable_baselines3_version": b"1.6.2"})
    return clean, old


def test_sb3_1x_style_atari_cnn_zip(tmp_path: Path) -> None:
    """Our own fixture of the Atari CnnPolicy kind in the SB3 1.x format: SB3's loader needs gym; ours loads it,
    warns once, and acts identically (so does the trusted loader, with the spaces rebuilt)."""
    clean, old = _sb3_1x_style_cnn_zip(tmp_path)
    if "gym" not in sys.modules:
        with pytest.raises(ModuleNotFoundError, match="gym"):
            DQN.load(old, device="cpu", buffer_size=1)

    with pytest.warns(OldZipWarning) as caught:
        safe, _ = load_agent(old, device="cpu")
    assert len([w for w in caught if issubclass(w.category, OldZipWarning)]) == 1
    reference = DQN.load(clean, device="cpu", buffer_size=1)
    assert safe.observation_space == reference.observation_space and safe.action_space == reference.action_space
    actions = _record_actions(reference)
    assert len(set(actions[0])) > 1
    assert _record_actions(safe) == actions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _record_actions(load_trusted(old, device="cpu")) == actions


def test_pull_sb3_organisation_layout(hub_env: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A repo laid out as the sb3 organisation's (rl-zoo3 1.x push: <algo>-<env>.zip with gym spaces, config.yml
    with SB3's AtariWrapper, env_kwargs.yml, results.json, the unzipped model folder, no args.yml) pulls into
    rl-zoo3's layout, and the agent there loads (old-zip warning) and plays as the original."""
    clean, old = _sb3_1x_style_cnn_zip(tmp_path)
    name = f"dqn-{BREAKOUT}"
    config = OrderedDict(
        [
            ("buffer_size", 100000),
            ("env_wrapper", ["stable_baselines3.common.atari_wrappers.AtariWrapper"]),
            ("frame_stack", 4),
            ("normalize", False),
            ("policy", "CnnPolicy"),
        ]
    )
    results = {"mean_reward": 229.1, "std_reward": 159.8, "is_deterministic": False, "n_eval_episodes": 10}
    hub_env.add_repo(
        f"sb3/{name}",
        {
            f"{name}.zip": old.read_bytes(),
            f"{name}/data": _zip_member(old, "data"),
            "config.yml": yaml.dump(config).encode(),
            "env_kwargs.yml": b"{}\n",
            "results.json": json.dumps(results).encode(),
            "README.md": b"---\nlibrary_name: stable-baselines3\n---\n# DQN agent\n",
            "replay.mp4": b"\x00\x00\x00\x18ftypmp42",
        },
    )
    logs = tmp_path / "logs"
    assert pull_main(["--repo-id", f"sb3/{name}", "-f", str(logs), "-q"]) == 0, capsys.readouterr().err
    run = logs / "dqn" / f"{BREAKOUT}_1"
    assert (run / f"{BREAKOUT}.zip").read_bytes() == old.read_bytes()
    assert yaml.safe_load((run / BREAKOUT / "args.yml").read_text())["env"] == BREAKOUT
    assert (run / BREAKOUT / "config.yml").read_bytes() == yaml.dump(config).encode()
    assert not (run / name).exists()  # the unzipped copy of the model is not needed
    with pytest.warns(OldZipWarning):
        model, source = load_agent(run, device="cpu")
    assert source.env_id == BREAKOUT and source.hyperparams["env_wrapper"] == config["env_wrapper"]
    assert _record_actions(model) == _record_actions(DQN.load(clean, device="cpu", buffer_size=1))


def test_cli_trust_remote_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """export / evaluate load zips without unpickling; --trust-remote-code switches to SB3's loader, which the
    planted pickle of a zip shows (it runs only then)."""
    from sb3_dqn_atari.evaluate import main as evaluate_main
    from sb3_dqn_atari.export import main as export_main

    model = DQN("CnnPolicy", _breakout_venv(), buffer_size=100, learning_starts=0, seed=5, device="cpu")
    clean = tmp_path / "clean.zip"
    model.save(clean)
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(clean) as archive:
        data = json.loads(archive.read("data"))
    data["lr_schedule"][":serialized:"] = base64.b64encode(pickle.dumps(_Touch(marker))).decode()
    poisoned = tmp_path / "poisoned.zip"
    _rewrite_zip(clean, poisoned, data)

    export = [str(poisoned), "--env", BREAKOUT, "--n-real", "8", "--n-random", "8", "-q", "-o"]
    assert export_main([*export, str(tmp_path / "safe.onnx")]) == 0 and not marker.exists()
    evaluate = [str(poisoned), "--env", BREAKOUT, "--episodes", "1", "--max-frames", "200", "--no-progress"]
    assert evaluate_main([*evaluate, "-o", str(tmp_path / "safe.json")]) == 0 and not marker.exists()
    assert export_main([*export, str(tmp_path / "trusted.onnx"), "--trust-remote-code"]) == 0 and marker.exists()
    marker.unlink()
    assert evaluate_main([*evaluate, "-o", str(tmp_path / "trusted.json"), "--trust-remote-code"]) == 0
    assert marker.exists()
    capsys.readouterr()


def test_card_names_the_variant_and_its_papers(
    hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A NatureDQN with improvements switched on (Double DQN, a dueling head, 3-step returns) gets a card that
    names them with their papers; prioritized replay, which a zip loaded without unpickling does not carry, is
    read from the run's hyperparameters."""
    from sb3_dqn_atari import DuelingMlpPolicy, NatureDQN
    from sb3_dqn_atari.agent.variants import describe

    monkeypatch.delenv("HF_TOKEN")
    model = NatureDQN(DuelingMlpPolicy, "CartPole-v1", double_q=True, n_steps=3, device="cpu", seed=0,
                      policy_kwargs={"net_arch": [16]}, learning_starts=0)  # fmt: skip
    model.save(tmp_path / "variant.zip")
    out = tmp_path / "repo"
    assert push_main([str(tmp_path / "variant.zip"), "--env", "CartPole-v1", "--dry-run", str(out), *QUICK]) == 0
    card = (out / "README.md").read_text()
    assert "Variant: **Nature DQN + Double DQN + dueling network + 3-step returns**" in card
    assert "van Hasselt, Guez & Silver 2016" in card and "Wang et al. 2016" in card and "Hessel et al. 2018" in card
    plain = NatureDQN("MlpPolicy", "CartPole-v1", device="cpu")
    mnih = "Mnih et al. 2015, Human-level control through deep reinforcement learning"
    assert describe(plain) == ("Nature DQN", [mnih])
    buffer = {"replay_buffer_class": "__import__('sb3_dqn_atari').PrioritizedFrameReplayBuffer"}
    plain.replay_buffer_class = None  # as the safe loader leaves it
    assert describe(plain, buffer)[0] == "Nature DQN + prioritized replay"
