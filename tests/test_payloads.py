"""Nothing in a stranger's files runs (issue 12, "Done means"): every command that reads a model or a folder, fed
every planted payload.

Commands: ``load_from_hub`` (a repo on the test Hub), ``export``, ``evaluate``, ``push_to_hub --dry-run``,
``plot``, ``train --resume`` (an rl-zoo3 run folder of a Breakout agent, with a checkpoint), ``play`` (an ONNX
file). Payloads, each planted in its own copy of the folder (or repo, or ONNX file):

=============================  =========================================================================================
payload                        planted as (what it would do if the file were trusted)
=============================  =========================================================================================
tag in args.yml                ``seed: !!python/object/apply:os.mkdir [MARKER]`` (rl-zoo3's UnsafeLoader calls it)
tag in config.yml              the same in ``config.yml``
tag in env_kwargs.yml          the same in ``env_kwargs.yml``
eval string with a call        ``normalize: "__import__('os').mkdir('MARKER')"`` (rl-zoo3 evaluates ``normalize``)
dotted path off the allow-list ``env_wrapper: [payload_module.Wrapper]``; importing ``payload_module`` makes MARKER
zip-member bomb                the model zip's ``policy.pth`` declares 10 GiB (refused before it is inflated)
path-traversal file name       repo files ``../name`` and ``..\\name``; ``env: ../../name`` in args.yml; a checkpoint
                               manifest listing ``../name`` (no file named ``traversal_marker`` may appear)
ONNX external data             an ``.onnx`` whose weights live in ``tripwire.bin``, watched with inotify: the payload's
                               "marker" is any process opening that file
ONNX custom operator domain    an ``.onnx`` with a node of domain ``com.example.evil``
code in a checkpoint pickle    the checkpoint's ``training_state.pkl`` holds an object whose ``__reduce__`` is
                               ``os.mkdir(MARKER)`` (manifest updated; only ``train --resume`` reads checkpoints)
=============================  =========================================================================================

Each case must end with exit status 2, exactly one line on stderr (the ALE's banner and Python warnings aside, as
in ``test_bad_input.py``), the refusal's reason in it, no marker, and nothing left behind: the working folder, the
planted folder and (for ``load_from_hub``) the log folder are as before. A few cells do not apply (``play`` reads
one ONNX file: no YAML, nothing evaluated, no zip); they say why.

By default every case calls the command's ``main(argv)`` in this process (one import per command, ~0.1 s a case);
three cases also run as real ``python -m sb3_dqn_atari.<command>`` processes (a pull, the torch-free player, a
resume), and ``-m slow`` runs the whole table that way.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from tests.conftest import ROOT

BREAKOUT = "BreakoutNoFrameskip-v4"
DQN_YML = str(ROOT / "hyperparams" / "dqn.yml")
NOISE = ("A.L.E: Arcade Learning Environment", "[Powered by Stella]")
COMMANDS = ("load_from_hub", "export", "evaluate", "play", "push_to_hub", "plot", "train")
PAYLOADS = {
    # payload: the words the one stderr line must hold (the check that refused it)
    "tag in args.yml": "carries a Python object tag (!!python/object/apply:os.mkdir)",
    "tag in config.yml": "carries a Python object tag (!!python/object/apply:os.mkdir)",
    "tag in env_kwargs.yml": "carries a Python object tag (!!python/object/apply:os.mkdir)",
    "eval string with a call": "(a call), not a plain value",
    "dotted path off the allow-list": "payload_module.Wrapper, outside the allow-list",
    "zip-member bomb": "declares 10,737,418,240 bytes",
    "path-traversal file name": "traversal_marker",
    "ONNX external data": "in external data",
    "ONNX custom operator domain": "custom operator domain 'com.example.evil'",
    "code in a checkpoint pickle": f"training_state.pkl would run code when unpickled ({os.mkdir.__module__}.mkdir)",
}
TRAVERSAL = "traversal_marker"
#: where play meets a payload in another form than the folder commands (see the fixture)
REASONS = {
    ("play", "dotted path off the allow-list"): "the module 'payload_module', outside the allow-list",
    ("play", "zip-member bomb"): "not a readable ONNX model",
    ("play", "path-traversal file name"): "in external data",
}


@dataclass(frozen=True)
class Skip:
    reason: str


PLAY_READS_ONE_ONNX = "play reads one .onnx file: it holds no YAML and nothing that is evaluated"
NO_CHECKPOINT = "only train --resume reads a checkpoint (a pushed repo holds none)"
NOT_APPLICABLE: dict[tuple[str, str], Skip] = {
    **{(c, "code in a checkpoint pickle"): Skip(NO_CHECKPOINT) for c in COMMANDS if c != "train"},
    ("play", "tag in args.yml"): Skip(PLAY_READS_ONE_ONNX),
    ("play", "tag in config.yml"): Skip(PLAY_READS_ONE_ONNX),
    ("play", "tag in env_kwargs.yml"): Skip(PLAY_READS_ONE_ONNX),
    ("play", "eval string with a call"): Skip(PLAY_READS_ONE_ONNX),
}

# arguments; {R}: the planted run folder, {O}: the planted ONNX file, {Z}: the planted zip, {REPO}: the repo id
_EXPORT = ("-o", "out.onnx", "--n-real", "4", "--n-random", "4", "-q")
_EVAL = ("--episodes", "1", "--max-frames", "200", "--no-progress", "-o", "results.json")
_PUSH = ("--dry-run", "hub_out", "--episodes", "1", "--max-frames", "200", "--video-length", "0", "-q")
ARGV: dict[str, tuple[str, ...]] = {
    "load_from_hub": ("--repo-id", "{REPO}", "-f", "logs", "--retries", "1", "--retry-wait", "0", "-q"),
    "export": ("{R}", *_EXPORT),
    "evaluate": ("{R}", *_EVAL),
    "play": ("{O}", "--episodes", "1", "--max-frames", "200"),
    "push_to_hub": ("{R}", *_PUSH),
    "plot": ("{R}", "-o", "curve.png"),
    "train": ("--resume", "{R}"),
}


def _slug(payload: str) -> str:
    return payload.replace(" ", "_").replace(".", "_").replace("-", "_")


# --------------------------------------------------------------------------------------------- the fixtures


class Tripwire:
    """Reports whether any process opened a file while it watched (Linux inotify ``IN_OPEN``, through libc:
    kernel events, so that opens in child processes count too)."""

    IN_OPEN = 0x20

    def __init__(self, path: Path) -> None:
        import ctypes

        self.path = path
        self.tripped = False
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = -1

    def __enter__(self) -> Tripwire:
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK)
        if self._fd < 0 or self._libc.inotify_add_watch(self._fd, str(self.path).encode(), self.IN_OPEN) < 0:
            raise OSError("inotify is not available")
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.tripped = bool(os.read(self._fd, 4096))
        except BlockingIOError:  # no event
            self.tripped = False
        finally:
            os.close(self._fd)


def _tiny_onnx() -> onnx.ModelProto:
    """A valid agent file as the runtime reads it (obs (1, 2) -> q_values, action, and the metadata keys)."""
    weight = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], np.eye(2, dtype=np.float32).tobytes(), raw=True)
    nodes = [helper.make_node("MatMul", ["obs", "W"], ["q_values"]),
             helper.make_node("ArgMax", ["q_values"], ["action"], axis=1, keepdims=0)]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "agent",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", 2])],
        [
            helper.make_tensor_value_info("q_values", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("action", TensorProto.INT64, ["batch"]),
        ],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    props = {"format": "sb3-dqn-atari/onnx/1", "env_id": "CartPole-v1", "algorithm": "DQN",
             "action_meanings": '["0", "1"]', "observation_shape": "[2]", "observation_dtype": "float32",
             "preprocessing": '{"wrapper": "none"}'}  # fmt: skip
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def _breakout_model(folder: Path) -> Any:
    import gymnasium as gym
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    from sb3_dqn_atari import NatureAtariWrapper, NatureDQN

    torch.set_num_threads(1)
    venv = VecFrameStack(DummyVecEnv([lambda: NatureAtariWrapper(gym.make(BREAKOUT))]), 4)
    model = NatureDQN("CnnPolicy", venv, buffer_size=100, learning_starts=50, seed=0, device="cpu")
    model.learn(8)
    model.save(folder / "breakout.zip")
    return model


def _zoo_yml(path: Path, values: dict[str, Any]) -> None:
    """What rl-zoo3 writes: yaml.dump of an OrderedDict."""
    path.write_text(yaml.dump(OrderedDict(sorted(values.items()))))


def _base_run(folder: Path, model: Any, model_zip: Path) -> Path:
    """An rl-zoo3 run folder: the zip, <env>/args.yml, config.yml, env_kwargs.yml, a Monitor file, evaluations,
    and a checkpoint whose manifest records a resumable command line."""
    from sb3_dqn_atari.checkpoint import MANIFEST_FILE, save_checkpoint

    run = folder / "dqn" / f"{BREAKOUT}_1"
    (run / BREAKOUT).mkdir(parents=True)
    shutil.copy(model_zip, run / f"{BREAKOUT}.zip")
    config = {"env_wrapper": ["sb3_dqn_atari.zoo.NatureAtariWrapper"], "frame_stack": 4, "policy": "CnnPolicy",
              "normalize": False, "n_timesteps": 600}  # fmt: skip
    _zoo_yml(run / BREAKOUT / "config.yml", config)
    _zoo_yml(run / BREAKOUT / "args.yml", {"algo": "dqn", "env": BREAKOUT, "env_kwargs": None, "seed": 0})
    (run / BREAKOUT / "env_kwargs.yml").write_text("{}\n")
    with (run / "0.monitor.csv").open("w") as f:
        f.write("#" + json.dumps({"t_start": 1.7e9, "env_id": BREAKOUT}) + "\nr,l,t\n")
        f.writelines(f"{i % 5}.0,{500 + i},{1.0 * i}\n" for i in range(20))
    np.savez(run / "evaluations.npz", timesteps=np.array([100, 200]), results=np.ones((2, 3)),
             ep_lengths=np.ones((2, 3), np.int64))  # fmt: skip
    checkpoint = save_checkpoint(model, run / "checkpoints")
    manifest = json.loads((checkpoint / MANIFEST_FILE).read_text())
    manifest["argv"] = ["--algo", "dqn", "--env", BREAKOUT, "-conf", DQN_YML, "-n", "600", "--eval-freq", "-1",
                        "--seed", "0", "--num-threads", "1", "--device", "cpu", "-f", "resumed",
                        "-params", "buffer_size:1000", "learning_starts:500"]  # fmt: skip
    (checkpoint / MANIFEST_FILE).write_text(json.dumps(manifest))
    return run


def _onnx_with(proto: onnx.ModelProto, path: Path, *, external: bool = False, custom: bool = False) -> Path:
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    if custom:
        proto.graph.node.append(helper.make_node("Evil", ["obs"], ["evil_out"], domain="com.example.evil"))
    if external:  # the first weight, in a file next to the model: the tripwire
        tensor = proto.graph.initializer[0]
        onnx.external_data_helper.set_external_data(tensor, location="tripwire.bin")
        tensor.data_location = TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
    path.write_bytes(proto.SerializeToString())
    return path


def _bomb_zip(src: Path, dst: Path) -> None:
    """``src`` with ``policy.pth`` declaring 10 GiB in the central directory (a compressed bomb's signature)."""
    with zipfile.ZipFile(src) as source, zipfile.ZipFile(dst, "w") as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info.filename))
        next(i for i in archive.filelist if i.filename == "policy.pth").file_size = 10 * 1024**3


class _Mkdir:
    """Pickles as ``os.mkdir(path)``: unpickling it makes the marker."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.path,))


@dataclass
class Planted:
    root: Path
    markers: Path
    modules: Path
    runs: dict[str, Path]
    onnx: dict[str, Path]
    repos: dict[str, str]
    hub: Any


def _plant(payload: str, run: Path, marker: Path, onnx_proto: onnx.ModelProto) -> None:
    """Plant ``payload`` in the run folder ``run`` (see the module docstring)."""
    apply_tag = f"!!python/object/apply:os.mkdir ['{marker}']"
    config_dir = run / BREAKOUT
    if payload.startswith("tag in "):
        target = config_dir / payload.removeprefix("tag in ")
        text = target.read_text()
        if target.name == "env_kwargs.yml":
            target.write_text(f"render_mode: {apply_tag}\n")
        else:  # inside rl-zoo3's OrderedDict, as one more [key, value] pair
            target.write_text(text + f"  - - payload\n    - {apply_tag}\n")
    elif payload == "eval string with a call":
        config = yaml.load((config_dir / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
        config["normalize"] = f"__import__('os').mkdir('{marker}')"
        _zoo_yml(config_dir / "config.yml", dict(config))
    elif payload == "dotted path off the allow-list":
        config = yaml.load((config_dir / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
        config["env_wrapper"] = ["payload_module.Wrapper"]
        _zoo_yml(config_dir / "config.yml", dict(config))
    elif payload == "zip-member bomb":
        good = run / f"{BREAKOUT}.zip"
        _bomb_zip(good, run / "bomb.zip")
        (run / "bomb.zip").replace(good)
    elif payload == "path-traversal file name":
        args = yaml.load((config_dir / "args.yml").read_text(), Loader=yaml.UnsafeLoader)
        args["env"] = f"../../{TRAVERSAL}-v0"
        _zoo_yml(config_dir / "args.yml", dict(args))
        (checkpoint,) = (run / "checkpoints").iterdir()
        manifest = json.loads((checkpoint / "manifest.json").read_text())
        manifest["files"][f"../../{TRAVERSAL}.pkl"] = {"bytes": 1, "sha256": "0" * 64}
        (checkpoint / "manifest.json").write_text(json.dumps(manifest))
    elif payload == "ONNX external data":
        _onnx_with(onnx_proto, run / "model.onnx", external=True)
        (run / "tripwire.bin").write_bytes(np.eye(2, dtype=np.float32).tobytes())
    elif payload == "ONNX custom operator domain":
        _onnx_with(onnx_proto, run / "model.onnx", custom=True)
    elif payload == "code in a checkpoint pickle":
        (checkpoint,) = (run / "checkpoints").iterdir()
        state = pickle.loads((checkpoint / "training_state.pkl").read_bytes())  # our own file
        state["planted"] = _Mkdir(marker)
        data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        (checkpoint / "training_state.pkl").write_bytes(data)
        manifest = json.loads((checkpoint / "manifest.json").read_text())
        manifest["files"]["training_state.pkl"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        (checkpoint / "manifest.json").write_text(json.dumps(manifest))


def _repo_files(payload: str, run: Path, marker: Path, onnx_proto: onnx.ModelProto) -> dict[str, bytes]:
    """The repo ``load_from_hub`` pulls for ``payload``: the planted run folder as rl-zoo3's push lays it out."""
    name = f"dqn-{BREAKOUT}"
    files = {f"{name}.zip": (run / f"{BREAKOUT}.zip").read_bytes()}
    for config in ("config.yml", "args.yml", "env_kwargs.yml"):
        files[config] = (run / BREAKOUT / config).read_bytes()
    if payload == "path-traversal file name":
        files[f"../{TRAVERSAL}.json"] = b"{}"
        files[f"..\\..\\{TRAVERSAL}.md"] = b"# planted\n"
        files["args.yml"] = yaml.dump({"algo": "dqn", "env": BREAKOUT}).encode()  # the names alone are refused
    elif payload.startswith("ONNX"):
        files[f"{name}.onnx"] = (run / "model.onnx").read_bytes()
    return files


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    from tests.hub_server import FakeHub

    root = tmp_path_factory.mktemp("payloads")
    markers, modules = root / "markers", root / "modules"
    markers.mkdir()
    modules.mkdir()
    (modules / "payload_module.py").write_text(
        f"import os\nos.mkdir({str(markers / 'imported')!r})\n\nclass Wrapper:\n    pass\n"
    )
    model = _breakout_model(root)
    onnx_proto = _tiny_onnx()
    base = _base_run(root / "base", model, root / "breakout.zip")
    hub = FakeHub({"hf_alice": ("alice", "write")}).start()
    runs, onnx_files, repos = {}, {}, {}
    for payload in PAYLOADS:
        slug = _slug(payload)
        run = shutil.copytree(base, root / slug / "dqn" / f"{BREAKOUT}_1")
        _plant(payload, run, markers / slug, onnx_proto)
        runs[payload] = run
        repos[payload] = f"alice/{slug.replace('_', '-')}"
        hub.add_repo(repos[payload], _repo_files(payload, run, markers / slug, onnx_proto))
        if payload == "ONNX external data" or payload == "ONNX custom operator domain":
            onnx_files[payload] = run / "model.onnx"
        elif payload == "zip-member bomb":
            onnx_files[payload] = shutil.copy(run / f"{BREAKOUT}.zip", root / slug / "bomb.onnx")
        elif payload == "dotted path off the allow-list":  # gymnasium imports the module of module:Env-v0
            proto = onnx.ModelProto.FromString(onnx_proto.SerializeToString())
            for prop in proto.metadata_props:
                if prop.key == "env_id":
                    prop.value = "payload_module:Evil-v0"
            onnx_files[payload] = root / slug / "model.onnx"
            onnx.save_model(proto, str(onnx_files[payload]))
        elif payload == "path-traversal file name":  # an external-data location that climbs out of the folder
            proto = onnx.ModelProto.FromString(onnx_proto.SerializeToString())
            onnx.external_data_helper.set_external_data(proto.graph.initializer[0], location=f"../../{TRAVERSAL}")
            proto.graph.initializer[0].data_location = TensorProto.EXTERNAL
            proto.graph.initializer[0].ClearField("raw_data")
            onnx_files[payload] = root / slug / "model.onnx"
            onnx_files[payload].write_bytes(proto.SerializeToString())
    yield Planted(root, markers, modules, runs, onnx_files, repos, hub)
    hub.stop()


# ----------------------------------------------------------------------------------------------- running


def _cases() -> Iterator[Any]:
    for command in COMMANDS:
        for payload in PAYLOADS:
            yield pytest.param(command, payload, id=f"{command}-{_slug(payload)}")


def _tree(folder: Path) -> dict[str, int]:
    """Every path under ``folder`` (folders too) and its size (-1 for folders)."""
    return {str(p.relative_to(folder)): -1 if p.is_dir() else p.stat().st_size for p in folder.rglob("*")}


def _run_in_process(module: str, argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    main = importlib.import_module(module).main
    capfd.readouterr()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code: Any = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # what would reach the interpreter: a traceback
        pytest.fail(f"python -m {module} {' '.join(argv)} ended in a traceback: {exc.__class__.__name__}: {exc}")
    return int(code or 0), capfd.readouterr().err


def _run_process(module: str, argv: list[str], cwd: Path, modules: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{modules}", "PYTHONWARNINGS": "ignore",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, capture_output=True, text=True,
                            timeout=600, env=env)  # fmt: skip
    return result.returncode, result.stderr


def _check(
    command: str,
    payload: str,
    planted: Planted,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run: Any,
) -> None:
    skip = NOT_APPLICABLE.get((command, payload))
    if skip is not None:
        pytest.skip(f"does not apply: {skip.reason}")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.syspath_prepend(str(planted.modules))  # where a check that let the name through would import from
    monkeypatch.delitem(sys.modules, "payload_module", raising=False)
    if command == "load_from_hub":
        for key, value in (("HF_ENDPOINT", planted.hub.url), ("HF_TOKEN", "hf_alice"), ("HF_HUB_DISABLE_XET", "1"),
                           ("HF_HUB_DISABLE_TELEMETRY", "1"), ("HF_HOME", str(tmp_path / "hf_home"))):  # fmt: skip
            monkeypatch.setenv(key, value)
    values = {"{R}": str(planted.runs[payload]), "{REPO}": planted.repos[payload]}
    values["{O}"] = str(planted.onnx.get(payload, ""))
    argv = [values.get(a, a) for a in ARGV[command]]
    before_cwd, before_root = _tree(cwd), _tree(planted.root)
    tripwire = planted.runs[payload] / "tripwire.bin"
    watcher = Tripwire(tripwire)
    with watcher if tripwire.exists() else contextlib.nullcontext():
        code, stderr = run(f"sb3_dqn_atari.{command}", argv, cwd)
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(NOISE)]
    shown = f"python -m sb3_dqn_atari.{command} {' '.join(argv)}\nstderr:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, shown
    assert code == 2, f"exit status {code}\n{shown}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{len(lines)} lines on stderr\n{shown}"
    assert REASONS.get((command, payload), PAYLOADS[payload]) in lines[0], shown
    assert not list(planted.markers.iterdir()), f"a payload ran: {list(planted.markers.iterdir())}\n{shown}"
    assert not watcher.tripped, f"the external data file was opened\n{shown}"
    assert not [*planted.root.rglob(f"*{TRAVERSAL}*"), *tmp_path.rglob(f"*{TRAVERSAL}*")], shown
    assert _tree(cwd) == before_cwd, f"left behind: {sorted(set(_tree(cwd)) - set(before_cwd))}\n{shown}"
    assert _tree(planted.root) == before_root, shown


@pytest.mark.parametrize(("command", "payload"), list(_cases()))
def test_payload(
    command: str,
    payload: str,
    planted: Planted,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Refused in one line, exit status 2, no marker, nothing left behind (each command's ``main``, in process)."""
    _check(command, payload, planted, tmp_path, monkeypatch, lambda m, a, _cwd: _run_in_process(m, a, capfd))


#: a few cases as real processes by default (each ~5-10 s: imports), the whole table with -m slow
PROCESS_CASES = [
    ("load_from_hub", "tag in config.yml"),
    ("play", "ONNX external data"),
    ("train", "path-traversal file name"),
]


@pytest.mark.parametrize(("command", "payload"), PROCESS_CASES)
def test_payload_process(command: str, payload: str, planted: Planted, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The same, through ``python -m sb3_dqn_atari.<command>`` (three cases)."""
    _check(command, payload, planted, tmp_path, monkeypatch, lambda m, a, cwd: _run_process(m, a, cwd, planted.modules))


@pytest.mark.slow
@pytest.mark.parametrize(("command", "payload"), [c for c in _cases() if tuple(c.values) not in PROCESS_CASES])
def test_payload_process_all(command: str, payload: str, planted: Planted, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The rest of the table through real processes."""
    _check(command, payload, planted, tmp_path, monkeypatch, lambda m, a, cwd: _run_process(m, a, cwd, planted.modules))


def test_the_payloads_are_live(planted: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted payloads do what the table says when trusted: rl-zoo3's YAML reader runs the tags, its eval
    runs the string, importing the dotted path runs the module, onnxruntime opens the tripwire."""
    import onnxruntime as ort

    for payload in ("tag in args.yml", "tag in config.yml", "tag in env_kwargs.yml"):
        name = payload.removeprefix("tag in ")
        with contextlib.suppress(Exception):
            yaml.load((planted.runs[payload] / BREAKOUT / name).read_text(), Loader=yaml.UnsafeLoader)
        assert (planted.markers / _slug(payload)).is_dir()
    config = yaml.load((planted.runs["eval string with a call"] / BREAKOUT / "config.yml").read_text(),
                       Loader=yaml.UnsafeLoader)  # fmt: skip
    eval(config["normalize"])  # what rl-zoo3's ExperimentManager does with it
    assert (planted.markers / _slug("eval string with a call")).is_dir()
    monkeypatch.syspath_prepend(str(planted.modules))
    monkeypatch.delitem(sys.modules, "payload_module", raising=False)
    importlib.import_module("payload_module")
    assert (planted.markers / "imported").is_dir()
    (checkpoint,) = (planted.runs["code in a checkpoint pickle"] / "checkpoints").iterdir()
    with contextlib.suppress(Exception):
        pickle.loads((checkpoint / "training_state.pkl").read_bytes())  # what loading the checkpoint did
    assert (planted.markers / _slug("code in a checkpoint pickle")).is_dir()
    run = planted.runs["ONNX external data"]
    watcher = Tripwire(run / "tripwire.bin")
    with watcher, contextlib.suppress(Exception):
        ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    assert watcher.tripped
    for marker in planted.markers.iterdir():  # the table's cases (run before or after) start clean again
        marker.rmdir()


def test_trust_remote_code_is_the_only_way_past(planted: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """``load_from_hub --trust-remote-code`` places what the checks refused: the yml files are read as rl-zoo3 reads
    them (the tag runs, as it would in rl-zoo3), unsafely named files are skipped and never written; the size
    bound and the ONNX check stay."""
    from sb3_dqn_atari.load_from_hub import main as pull_main

    monkeypatch.chdir(tmp_path)
    for key, value in (("HF_ENDPOINT", planted.hub.url), ("HF_TOKEN", "hf_alice"), ("HF_HUB_DISABLE_XET", "1"),
                       ("HF_HOME", str(tmp_path / "hf_home"))):  # fmt: skip
        monkeypatch.setenv(key, value)
    trusted = ["-q", "--retries", "1", "--trust-remote-code"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert pull_main(["--repo-id", planted.repos["tag in config.yml"], "-f", "a", *trusted]) == 0
        marker = planted.markers / _slug("tag in config.yml")
        assert marker.is_dir()  # trusted: read with rl-zoo3's own reader
        marker.rmdir()
        assert pull_main(["--repo-id", planted.repos["path-traversal file name"], "-f", "b", *trusted]) == 0
        assert not [*tmp_path.rglob(f"*{TRAVERSAL}*")]
        for payload in ("zip-member bomb", "ONNX external data"):
            assert pull_main(["--repo-id", planted.repos[payload], "-f", "c", *trusted]) == 2
    assert (tmp_path / "a" / "dqn" / f"{BREAKOUT}_1" / f"{BREAKOUT}.zip").is_file()
    assert not (tmp_path / "c").exists()
    err = capfd.readouterr().err
    assert "declares 10,737,418,240 bytes" in err and "in external data" in err
