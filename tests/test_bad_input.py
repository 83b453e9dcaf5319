"""Bad input never ends in a traceback (issue 8): every command, every kind of bad input.

The table below gives, for each command-line entry point and each row, the arguments that feed it the bad
input (or why the row does not apply to that command). Each case must end with exit status 2, exactly one
line on stderr (no ``Traceback``) and no file written: the case runs in an empty folder (holding only
``file.txt``, a regular file, so that ``file.txt/sub/...`` is an output folder that cannot be created even as
root) and that folder, the fixtures and the output paths are compared before and after.

Python warnings are silenced (``-W ignore``): the cases check the error report, not library deprecations.
The ALE's C++ banner (``A.L.E: Arcade Learning Environment ...``, ``[Powered by Stella]``), printed to stderr
whenever an emulator starts, is not counted either.

By default each case calls the command's ``main(argv)`` in this process (fast: one import per command); with
``-m slow`` the same table runs as real ``python -m sb3_dqn_atari.<command>`` processes. A command that does
not exist yet (the Hub commands were being written alongside) is skipped with that reason.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

BREAKOUT = "BreakoutNoFrameskip-v4"
PONG = "PongNoFrameskip-v4"  # 6 actions: a Breakout model (4 actions) is a model for another env
UNKNOWN = "NoSuchGame-v4"
DQN_YML = str(ROOT / "hyperparams" / "dqn.yml")
ROWS = (
    "missing path",
    "truncated zip",
    "truncated onnx",
    "model for another env",
    "unknown env id",
    "invalid yml",
    "non-writable output",
)
#: output path that cannot be created: its parent would be a folder inside a regular file
BLOCKED = "file.txt/sub"
NOISE = ("A.L.E: Arcade Learning Environment", "[Powered by Stella]")


@dataclass(frozen=True)
class Skip:
    """A row that does not apply to a command, and why."""

    reason: str


#: cases whose first step completes before the bad input shows: the files of that step may stay (complete,
#: checked below), nothing of the failing step. load_from_hub downloads into place, then ``--onnx`` builds the
#: env to export: the download is whole; no ONNX file is written. (An invalid yml is refused by the download
#: itself, which checks every file before it places anything: nothing is written.)
COMPLETE_FIRST_STEP = {
    ("load_from_hub", "model for another env"): "logs/",
}


# Arguments per command and row; "{F}" is the fixtures folder. Train runs are short if they ever start.
_TRAIN = ("--algo", "dqn", "--eval-freq", "-1", "--seed", "0", "-n", "600", "--num-threads", "1", "--device", "cpu")
_SMALL = ("-params", "buffer_size:1000", "learning_starts:500")
_EVAL = ("--episodes", "1", "--max-frames", "400", "--no-progress", "-o", "results.json")
_EXPORT = ("--n-real", "4", "--n-random", "4", "-q", "-o", "out.onnx")
_PLAY = ("--episodes", "1", "--max-frames", "400")
_PUSH = ("--episodes", "1", "--max-frames", "400", "--video-length", "0", "-q", "--dry-run", "hub_out")
_HUB = ("-f", "logs", "--retries", "1", "--retry-wait", "0", "-q")

TABLE: dict[str, dict[str, Any]] = {
    "train": {
        "missing path": [
            ("-i", ("--env", BREAKOUT, "-conf", DQN_YML, "-i", "{F}/missing.zip", *_TRAIN, *_SMALL)),
            ("--resume", ("--resume", "{F}/missing_run", *_TRAIN)),
            ("-conf", ("--env", BREAKOUT, "-conf", "{F}/missing.yml", *_TRAIN)),
        ],
        "truncated zip": [
            ("-i", ("--env", BREAKOUT, "-conf", DQN_YML, "-i", "{F}/truncated.zip", *_TRAIN, *_SMALL)),
            ("--resume", ("--resume", "{F}/checkpoints_truncated", *_TRAIN)),
        ],
        "truncated onnx": ("--env", BREAKOUT, "-conf", DQN_YML, "-i", "{F}/truncated.onnx", *_TRAIN, *_SMALL),
        "model for another env": [
            ("-i", ("--env", PONG, "-conf", DQN_YML, "-i", "{F}/breakout.zip", *_TRAIN, *_SMALL)),
            ("--resume", ("--env", PONG, "-conf", DQN_YML, "--resume", "{F}/checkpoints", *_TRAIN, *_SMALL)),
        ],
        "unknown env id": ("--env", UNKNOWN, "-conf", DQN_YML, *_TRAIN),
        "invalid yml": [
            ("syntax", ("--env", BREAKOUT, "-conf", "{F}/syntax_error.yml", *_TRAIN)),
            ("unknown hyperparameter", ("--env", BREAKOUT, "-conf", "{F}/unknown_key.yml", *_TRAIN)),
            ("bad value", ("--env", BREAKOUT, "-conf", "{F}/bad_value.yml", *_TRAIN)),
        ],
        "non-writable output": ("--env", BREAKOUT, "-conf", DQN_YML, "-f", BLOCKED, *_TRAIN, *_SMALL),
    },
    "evaluate": {
        "missing path": ("{F}/missing.zip", *_EVAL),
        "truncated zip": ("{F}/truncated.zip", "--env", BREAKOUT, *_EVAL),
        "truncated onnx": ("{F}/truncated.onnx", *_EVAL),
        "model for another env": [
            ("zip", ("{F}/breakout.zip", "--env", PONG, *_EVAL)),
            ("onnx", ("{F}/model.onnx", "--env", PONG, *_EVAL)),
        ],
        "unknown env id": ("{F}/breakout.zip", "--env", UNKNOWN, *_EVAL),
        "invalid yml": ("{F}/run_bad_yml", *_EVAL),
        "non-writable output": [
            ("-o", ("{F}/breakout.zip", "--env", BREAKOUT, *_EVAL, "-o", f"{BLOCKED}/results.json")),
            ("--video", ("{F}/breakout.zip", "--env", BREAKOUT, *_EVAL, "--video", f"{BLOCKED}/episode.mp4")),
        ],
    },
    "export": {
        "missing path": ("{F}/missing.zip", "--env", BREAKOUT, *_EXPORT),
        "truncated zip": ("{F}/truncated.zip", "--env", BREAKOUT, *_EXPORT),
        "truncated onnx": ("{F}/truncated.onnx", "--env", BREAKOUT, *_EXPORT),
        "model for another env": ("{F}/breakout.zip", "--env", PONG, *_EXPORT),
        "unknown env id": ("{F}/breakout.zip", "--env", UNKNOWN, *_EXPORT),
        "invalid yml": ("{F}/run_bad_yml", *_EXPORT),
        "non-writable output": ("{F}/breakout.zip", "--env", BREAKOUT, *_EXPORT, "-o", f"{BLOCKED}/out.onnx"),
    },
    "play": {
        "missing path": ("{F}/missing.onnx", *_PLAY),
        "truncated zip": ("{F}/truncated.zip", *_PLAY),
        "truncated onnx": ("{F}/truncated.onnx", *_PLAY),
        "model for another env": Skip("play has no --env: the game is the one recorded in the ONNX file"),
        "unknown env id": ("{F}/unknown_env.onnx", *_PLAY),
        "invalid yml": Skip("play reads no yml (the ONNX file carries its metadata)"),
        "non-writable output": ("{F}/model.onnx", *_PLAY, "--video", f"{BLOCKED}/play.mp4"),
    },
    "plot": {
        "missing path": ("{F}/missing_run", "-o", "curve.png"),
        "truncated zip": ("{F}/run_truncated_npz", "-o", "curve.png"),
        "truncated onnx": Skip("plot reads training logs, not models"),
        "model for another env": Skip("plot reads training logs, not models"),
        "unknown env id": Skip("plot takes no env id"),
        "invalid yml": ("{F}/run_bad_yml", "-o", "curve.png"),  # the run folder's files are checked first
        "non-writable output": ("{F}/run", "-o", f"{BLOCKED}/curve.png"),
    },
    "push_to_hub": {
        "missing path": ("{F}/missing.zip", "--env", BREAKOUT, *_PUSH),
        "truncated zip": ("{F}/truncated.zip", "--env", BREAKOUT, *_PUSH),
        "truncated onnx": ("{F}/truncated.onnx", "--env", BREAKOUT, *_PUSH),
        "model for another env": ("{F}/breakout.zip", "--env", PONG, *_PUSH),
        "unknown env id": ("{F}/breakout.zip", "--env", UNKNOWN, *_PUSH),
        "invalid yml": ("{F}/run_bad_yml", *_PUSH),
        "non-writable output": ("{F}/breakout.zip", "--env", BREAKOUT, *_PUSH[:-1], f"{BLOCKED}/hub_out"),
    },
    "load_from_hub": {
        "missing path": ("--repo-id", "alice/no-such-repo", *_HUB),
        "truncated zip": ("--repo-id", "alice/truncated", *_HUB),
        "truncated onnx": ("--repo-id", "alice/truncated-onnx", *_HUB),
        "model for another env": ("--repo-id", "alice/breakout", "--env", PONG, "--onnx", *_HUB),
        "unknown env id": ("--env", UNKNOWN, "-orga", "alice", *_HUB),
        "invalid yml": ("--repo-id", "alice/bad-yml", "--onnx", *_HUB),
        "non-writable output": ("--repo-id", "alice/breakout", *_HUB, "-f", BLOCKED),
    },
}


def _cases() -> Iterator[Any]:
    for command, rows in TABLE.items():
        for row in ROWS:
            entry = rows[row]
            variants = entry if isinstance(entry, list) else [("", entry)]
            for variant, args in variants:
                name = f"{command}-{row}" + (f"-{variant}" if variant else "")
                yield pytest.param(command, row, args, id=name.replace(" ", "_"))


# --------------------------------------------------------------------------------------------- fixtures
def _truncate(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _breakout_model(folder: Path) -> Path:
    import gymnasium as gym
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    from sb3_dqn_atari import NatureAtariWrapper, NatureDQN

    torch.set_num_threads(1)
    venv = VecFrameStack(DummyVecEnv([lambda: NatureAtariWrapper(gym.make(BREAKOUT))]), 4)
    model = NatureDQN("CnnPolicy", venv, buffer_size=100, learning_starts=0, seed=0, device="cpu")
    path = folder / "breakout.zip"
    model.save(path)
    return path


def _zoo_run(folder: Path, model_zip: Path) -> Path:
    """An rl-zoo3 run folder: <env>.zip, <env>/config.yml and args.yml, a Monitor file."""
    (folder / BREAKOUT).mkdir(parents=True)
    shutil.copy(model_zip, folder / f"{BREAKOUT}.zip")
    config = {"env_wrapper": ["sb3_dqn_atari.zoo.NatureAtariWrapper"], "frame_stack": 4, "policy": "CnnPolicy"}
    (folder / BREAKOUT / "config.yml").write_text(yaml.dump(OrderedDict(sorted(config.items()))))
    args = {"algo": "dqn", "env": BREAKOUT, "env_kwargs": None, "seed": 0, "n_timesteps": -1}
    (folder / BREAKOUT / "args.yml").write_text(yaml.dump(OrderedDict(sorted(args.items()))))
    with (folder / "0.monitor.csv").open("w") as f:
        f.write("#" + json.dumps({"t_start": 1.7e9, "env_id": BREAKOUT}) + "\nr,l,t\n")
        f.writelines(f"{i % 5}.0,{500 + i},{1.0 * i}\n" for i in range(30))
    return folder


def _export(model_zip: Path, out: Path) -> None:
    from sb3_dqn_atari import export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = export.main([str(model_zip), "--env", BREAKOUT, "-o", str(out), "--n-real", "4", "--n-random", "4", "-q"])
    assert rc == 0 and out.is_file(), "the export of the fixture model failed"


def _relabel_env(src: Path, dst: Path, env_id: str) -> None:
    """The ONNX file with every metadata value naming the game renamed to ``env_id``."""
    import onnx

    proto = onnx.load(str(src))
    for prop in proto.metadata_props:
        prop.value = prop.value.replace(BREAKOUT, env_id)
    onnx.save(proto, str(dst))


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every bad input of the table, and the good ones they are made from."""
    from sb3_dqn_atari.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("bad_input")
    model_zip = _breakout_model(folder)
    _truncate(model_zip, folder / "truncated.zip")
    _export(model_zip, folder / "model.onnx")
    _truncate(folder / "model.onnx", folder / "truncated.onnx")
    _relabel_env(folder / "model.onnx", folder / "unknown_env.onnx", UNKNOWN)
    run = _zoo_run(folder / "run", model_zip)
    bad = shutil.copytree(run, folder / "run_bad_yml")
    (bad / BREAKOUT / "args.yml").write_text("env: [BreakoutNoFrameskip-v4\nalgo: dqn\n")  # unclosed flow list
    plot_run = folder / "run_truncated_npz"
    plot_run.mkdir()
    (folder / "evaluations_nature.npz").write_bytes(_npz_bytes())
    _truncate(folder / "evaluations_nature.npz", plot_run / "evaluations_nature.npz")
    (folder / "syntax_error.yml").write_text(f"{BREAKOUT}:\n  policy: 'CnnPolicy\n  buffer_size: [1000\n")
    hyperparams = yaml.safe_load(Path(DQN_YML).read_text())[BREAKOUT]
    (folder / "unknown_key.yml").write_text(yaml.dump({BREAKOUT: {**hyperparams, "learning_rat": 0.1}}))
    (folder / "bad_value.yml").write_text(yaml.dump({BREAKOUT: {**hyperparams, "batch_size": "thirty-two"}}))
    # checkpoints of the Breakout agent: one good, one whose model.zip was cut short
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    from sb3_dqn_atari import NatureAtariWrapper, NatureDQN

    venv = VecFrameStack(DummyVecEnv([lambda: NatureAtariWrapper(gym.make(BREAKOUT))]), 4)
    model = NatureDQN("CnnPolicy", venv, buffer_size=100, learning_starts=50, seed=0, device="cpu")
    model.learn(8)
    good = save_checkpoint(model, folder / "checkpoints")
    cut = shutil.copytree(good, folder / "checkpoints_truncated" / good.name)
    _truncate(good / "model.zip", cut / "model.zip")
    return folder


def _npz_bytes() -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    results = np.arange(60, dtype=np.float64).reshape(6, 10)
    np.savez(buffer, timesteps=np.arange(1, 7) * 250_000, results=results, ep_lengths=np.ones((6, 10), np.int64))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fake_hub(fixtures: Path) -> Iterator[Any]:
    """The test Hub (tests/hub_server.py) with the repos the load_from_hub rows download."""
    try:
        from tests.hub_server import FakeHub
    except ImportError:
        yield None
        return
    hub = FakeHub({"hf_alice": ("alice", "write")}).start()
    zip_bytes = (fixtures / "breakout.zip").read_bytes()
    config = (fixtures / "run" / BREAKOUT / "config.yml").read_bytes()
    name = f"dqn-{BREAKOUT}"
    hub.add_repo("alice/breakout", {f"{name}.zip": zip_bytes, "config.yml": config})
    hub.add_repo("alice/truncated", {f"{name}.zip": zip_bytes[: len(zip_bytes) // 2], "config.yml": config})
    hub.add_repo("alice/bad-yml", {f"{name}.zip": zip_bytes, "config.yml": b"env_wrapper: [unclosed\n"})
    truncated_onnx = (fixtures / "truncated.onnx").read_bytes()
    files = {f"{name}.zip": zip_bytes, "config.yml": config, f"{name}.onnx": truncated_onnx}
    hub.add_repo("alice/truncated-onnx", files)
    yield hub
    hub.stop()


# ----------------------------------------------------------------------------------------------- running
def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _run_in_process(module: str, argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    main = importlib.import_module(module).main
    capfd.readouterr()
    saved_argv = sys.argv
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if inspect.signature(main).parameters:
                result = main(argv)
            else:  # a main() that reads sys.argv
                sys.argv = [module, *argv]
                result = main()
        code: Any = 0 if result is None else result
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # what would reach the interpreter: a traceback
        pytest.fail(f"python -m {module} {' '.join(argv)} ended in a traceback: {exc.__class__.__name__}: {exc}")
    finally:
        sys.argv = saved_argv
    return int(code), capfd.readouterr().err


def _run_process(module: str, argv: list[str], cwd: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", module, *argv], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )
    return result.returncode, result.stderr


def _check_case(
    command: str,
    row: str,
    args: Any,
    fixtures: Path,
    hub: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    runner: Any,
) -> None:
    if isinstance(args, Skip):
        pytest.skip(f"does not apply: {args.reason}")
    module = f"sb3_dqn_atari.{command}"
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist (yet)")
    if command in ("load_from_hub", "push_to_hub"):
        if hub is None:
            pytest.skip("tests/hub_server.py (the test Hub) is not available")
        from tests.hub_server import client_env

        for name, value in client_env(hub, "hf_alice", tmp_path / "hf_home").items():
            monkeypatch.setenv(name, value)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "file.txt").write_text("a regular file: nothing can be created under it\n")
    argv = [a.replace("{F}", str(fixtures)) for a in args]
    before, fixtures_before = _files(cwd), _files(fixtures)
    monkeypatch.chdir(cwd)
    code, stderr = runner(module, argv, cwd)
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(NOISE)]
    shown = f"python -m {module} {' '.join(argv)}\nstderr:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, shown
    assert code == 2, f"exit status {code}\n{shown}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr\n{shown}"
    written = sorted(set(_files(cwd)) - set(before))
    allowed = COMPLETE_FIRST_STEP.get((command, row))
    if allowed is not None:
        assert all(f.startswith(allowed) and not f.endswith(".onnx") for f in written), written
        zips = [f for f in written if f.endswith(".zip")]
        assert all((cwd / f).read_bytes() == (fixtures / "breakout.zip").read_bytes() for f in zips), zips
    else:
        assert not written and _files(cwd) == before, f"files written: {written}\n{shown}"
    assert _files(fixtures) == fixtures_before, shown


@pytest.mark.parametrize(("command", "row", "args"), list(_cases()))
def test_bad_input(
    command: str,
    row: str,
    args: Any,
    fixtures: Path,
    fake_hub: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """One clear line on stderr, exit status 2, nothing written (in this process: each command's ``main``)."""
    _check_case(
        command, row, args, fixtures, fake_hub, tmp_path, monkeypatch, lambda m, a, _cwd: _run_in_process(m, a, capfd)
    )


@pytest.mark.slow
@pytest.mark.parametrize(("command", "row", "args"), list(_cases()))
def test_bad_input_process(
    command: str,
    row: str,
    args: Any,
    fixtures: Path,
    fake_hub: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same table through ``python -m sb3_dqn_atari.<command>`` processes."""
    _check_case(command, row, args, fixtures, fake_hub, tmp_path, monkeypatch, _run_process)


def test_the_table_covers_every_command_and_row() -> None:
    """Every command module with a ``main`` is in the table, with every row (or a reason to skip it)."""
    package = ROOT / "sb3_dqn_atari"
    commands = {p.stem for p in package.glob("*.py") if "def main(" in p.read_text() and "__main__" in p.read_text()}
    assert commands <= set(TABLE), f"commands missing from the table: {sorted(commands - set(TABLE))}"
    for command, rows in TABLE.items():
        assert set(rows) == set(ROWS), command
    assert len(list(_cases())) >= len(TABLE) * len(ROWS)
