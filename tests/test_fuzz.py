"""Property tests (hypothesis) of every loader of a stranger's files (issue 12): mutated real zips, ONNX files and
rl-zoo3 yml files either load or end in the project's own exception (API: :class:`~sb3_dqn_atari.errors.UserError`)
or one ``error:`` line and exit status 2 (CLI), never a traceback, never a half-written output.

The bases are real files: a DQN zip saved by SB3, its ONNX export, and the ``args.yml``/``config.yml`` rl-zoo3
wrote for a run (``tests/zoo_runs.py``). Mutations: bytes flipped, inserted or cut; JSON fields of the zip's
``data`` replaced by arbitrary JSON or by texts that look like what SB3 writes; members replaced; ONNX metadata
values replaced, tensors moved to external data, operators put in other domains; YAML tokens (tags, anchors,
brackets, keys) spliced into the text. Examples are derandomized (the same every run) and the database is off
(nothing written in the repository); each property takes a few seconds.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from sb3_dqn_atari.common.errors import UserError
from tests.conftest import ROOT
from tests.zoo_runs import CARTPOLE, cartpole_run

_FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(examples: int) -> settings:
    return settings(_FUZZ, max_examples=examples)


class _Bases(dict):  # type: ignore[type-arg]
    """The base files (a short repr: hypothesis prints the arguments of a failing example)."""

    def __repr__(self) -> str:
        return f"<bases: {', '.join(self)}>"


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small DQN's zip and ONNX export, and rl-zoo3's own yml files."""
    from stable_baselines3 import DQN

    from sb3_dqn_atari.onnx.export import export_onnx

    folder = tmp_path_factory.mktemp("fuzz_bases")
    model = DQN("MlpPolicy", CARTPOLE, policy_kwargs={"net_arch": [16]}, buffer_size=100, device="cpu", seed=0)
    model.save(folder / "dqn.zip")
    export_onnx(model, folder / "dqn.onnx", CARTPOLE, n_real=8, n_random=8, dynamo=False, progress=False)
    run = cartpole_run(tmp_path_factory)
    with zipfile.ZipFile(folder / "dqn.zip") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return _Bases({
        "zip": (folder / "dqn.zip").read_bytes(),
        "members": members,
        "data": json.loads(members["data"]),
        "onnx": (folder / "dqn.onnx").read_bytes(),
        "args.yml": (run / CARTPOLE / "args.yml").read_text(),
        "config.yml": (run / CARTPOLE / "config.yml").read_text(),
    })


#: what each property saw (its last test checks that mutations both loaded and were refused: both paths ran)
OUTCOMES: dict[str, set[str]] = {}


def _loads_or_user_error(call: Callable[[], Any], name: str) -> str:
    """The contract: the call returns, or raises UserError (any other exception fails the property)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
    except UserError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), repr(str(exc))
        outcome = "refused"
    else:
        outcome = "loaded"
    OUTCOMES.setdefault(name, set()).add(outcome)
    return outcome


# ------------------------------------------------------------------------------------------------ mutations

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
#: texts shaped like what SB3 writes in plain fields (shapes, dtypes, numpy reprs, class reprs)
SB3_TEXTS = st.sampled_from([
    "[4]", "(4,)", "(84, 84, 4)", "[-1]", "[0 0 ... 0 0]", "[-inf  inf]", "[1e400]", "[nan]", "float32", "uint8",
    "int64", "float128", "object", "dtype('float32')", "<class 'gymnasium.spaces.box.Box'>",
    "<class 'gymnasium.spaces.discrete.Discrete'>", "<class 'gym.spaces.dict.Dict'>", "<class 'os.system'>",
    "<class 'torch.nn.modules.activation.ReLU'>", "<class 'torch.optim.adam.Adam'>", "[[64, 64]]", "{'pi': [8]}",
    "2", "0", "-3", "1e9", "", " ", "[" * 50,
])  # fmt: skip


def _flip(data: bytes, draw: Any) -> bytes:
    """Bytes flipped, a span cut out, or the end cut off."""
    buffer = bytearray(data)
    kind = draw(st.sampled_from(["flip", "cut", "truncate", "insert"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            buffer[draw(st.integers(0, len(buffer) - 1))] = draw(st.integers(0, 255))
    elif kind == "cut":
        start = draw(st.integers(0, len(buffer) - 1))
        del buffer[start : start + draw(st.integers(1, 64))]
    elif kind == "insert":
        at = draw(st.integers(0, len(buffer)))
        buffer[at:at] = draw(st.binary(min_size=1, max_size=32))
    else:
        buffer = buffer[: draw(st.integers(0, len(buffer) - 1))]
    return bytes(buffer)


@st.composite
def mutated_zips(draw: Any, bases: dict[str, Any]) -> bytes:
    kind = draw(st.sampled_from(["bytes", "data", "data", "data", "member", "none"]))
    members = dict(bases["members"])
    if kind == "none":
        return bytes(bases["zip"])
    if kind == "bytes":
        return _flip(bases["zip"], draw)
    if kind == "data":
        data = json.loads(json.dumps(bases["data"]))
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(sorted(data)))
            value = data[key]
            if isinstance(value, dict) and value and draw(st.booleans()):
                sub = draw(st.sampled_from(sorted(value)))
                value[sub] = draw(SB3_TEXTS | JSON)
            else:
                data[key] = draw(SB3_TEXTS | JSON | st.just(None))
        members["data"] = json.dumps(data).encode()
    else:
        name = draw(st.sampled_from(sorted(members)))
        members[name] = draw(st.binary(max_size=200) | st.just(_flip(members[name], draw)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


METADATA_VALUES = st.sampled_from([
    "", "[]", "{}", "null", "[4]", "[-1]", "[0]", "[1e9]", '["NOOP"]', "float32", "object", "V8", "uint8", "0", "-1",
    "65", "CartPole-v1", "NoSuchEnv-v0", "os:Evil-v0", "ALE/Breakout-v5", "LunarLander-v2", '{"wrapper": "none"}',
    '{"wrapper": "NatureAtariWrapper"}', '{"noop_max": "x"}', '{"frame_skip": -1}', '{"luminance_weights": [1]}',
    '{"render_mode": "human"}', '{"max_episode_steps": "x"}', '{"1": 2}', "sb3-dqn-atari/onnx/1", "[[[[[[",
])  # fmt: skip


@st.composite
def mutated_onnx(draw: Any, bases: dict[str, Any]) -> bytes:
    kind = draw(st.sampled_from(["bytes", "metadata", "metadata", "graph", "none"]))
    if kind == "none":
        return bytes(bases["onnx"])
    if kind == "bytes":
        return _flip(bases["onnx"], draw)
    proto = onnx.ModelProto.FromString(bases["onnx"])
    if kind == "metadata":
        props = list(proto.metadata_props)
        for _ in range(draw(st.integers(1, 3))):
            prop = draw(st.sampled_from(props))
            prop.value = draw(METADATA_VALUES | st.text(max_size=30))
        if draw(st.booleans()):
            del proto.metadata_props[draw(st.integers(0, len(proto.metadata_props) - 1))]
    else:
        target = draw(st.sampled_from(["external", "domain", "opset"]))
        if target == "external":
            tensor = proto.graph.initializer[draw(st.integers(0, len(proto.graph.initializer) - 1))]
            onnx.external_data_helper.set_external_data(tensor, location=draw(st.sampled_from(["w.bin", "../../x"])))
            tensor.data_location = TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
        elif target == "domain":
            proto.graph.node[draw(st.integers(0, len(proto.graph.node) - 1))].domain = draw(
                st.sampled_from(["com.example", "ai.onnx.ml", "com.microsoft", ""])
            )
        else:
            proto.opset_import.add(domain=draw(st.sampled_from(["com.example", "ai.onnx.ml"])), version=1)
    return proto.SerializeToString()


YAML_TOKENS = st.sampled_from([
    "!!python/object/apply:os.getcwd []", "!!python/object/apply:collections.OrderedDict", "!!python/tuple",
    "!!python/name:os.getcwd ''", "!!python/name:torch.nn.ReLU ''", "!!python/object/new:dict", "!!binary aGk=",
    "!foo", "&a", "*a", "*b", "<<: *a", "[", "]", "{", "}", ":", ": ", "- ", "-", "\n", "\n  ", "\t", "'", '"', "#",
    "env: os:Evil-v0", "env: ../../x", "env: LunarLander-v2", "gym_packages: [os]", "env_wrapper: os.system",
    "env_wrapper: [sb3_dqn_atari.zoo.NatureAtariWrapper]", "normalize: \"__import__('os')\"",
    "policy_kwargs: \"dict(net_arch=[8])\"", "frame_stack: x", "frame_stack: -4", "env_kwargs: [1]", "null", "~",
    ".inf", "1e400", "\u00e9", "\x00",
])  # fmt: skip


@st.composite
def mutated_yaml(draw: Any, text: str) -> str:
    for _ in range(draw(st.integers(0, 4))):  # 0: the file as rl-zoo3 wrote it
        at = draw(st.integers(0, len(text)))
        if draw(st.integers(0, 3)) == 0:
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        else:
            text = text[:at] + draw(YAML_TOKENS | st.text(max_size=6)) + text[at:]
    return text


# ------------------------------------------------------------------------------------------ API properties


@fuzz(150)
@given(data=st.data())
def test_mutated_zips_load_or_raise_user_error(bases: dict[str, Any], tmp_path: Path, data: st.DataObject) -> None:
    from sb3_dqn_atari.loading import load_agent

    path = tmp_path / "model.zip"
    path.write_bytes(data.draw(mutated_zips(bases)))
    for trust in (False, True):
        def load(trust: bool = trust) -> Any:
            return load_agent(path, device="cpu", env_id=CARTPOLE, trust_remote_code=trust)

        _loads_or_user_error(load, f"zip, trust={trust}")


@fuzz(150)
@given(data=st.data())
def test_mutated_onnx_files_load_or_raise_user_error(
    bases: dict[str, Any], tmp_path: Path, data: st.DataObject
) -> None:
    """OnnxAgent and the env it rebuilds from the metadata (which plays a step): loads, or PlayerError."""
    from sb3_dqn_atari.onnx.runtime import OnnxAgent

    path = tmp_path / "model.onnx"
    path.write_bytes(data.draw(mutated_onnx(bases)))

    def use() -> None:
        agent = OnnxAgent(path)
        env = agent.make_env()
        try:
            obs = env.reset(seed=0)
            env.step(agent.act(obs))
        finally:
            env.close()

    _loads_or_user_error(use, "onnx")


@fuzz(200)
@given(data=st.data(), name=st.sampled_from(["args.yml", "config.yml"]))
def test_mutated_zoo_yml_files_load_or_raise_user_error(
    bases: dict[str, Any], tmp_path: Path, data: st.DataObject, name: str
) -> None:
    """The safe reader with the allow-list (the run folder resolved as the commands do), on rl-zoo3's files with
    tokens spliced in; nothing a tag names ever runs (no file is created)."""
    from sb3_dqn_atari.loading import resolve_model

    run = tmp_path / "run"
    config_dir = run / CARTPOLE
    config_dir.mkdir(parents=True, exist_ok=True)
    for other in ("args.yml", "config.yml"):
        (config_dir / other).write_text(bases[other])
    text = data.draw(mutated_yaml(bases[name]))
    (config_dir / name).write_bytes(text.encode("utf-8", "surrogatepass"))
    (run / f"{CARTPOLE}.zip").write_bytes(bases["zip"])
    before = sorted(p.name for p in tmp_path.rglob("*"))
    _loads_or_user_error(lambda: resolve_model(run), "yml")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


# ------------------------------------------------------------------------------------------ CLI properties


def _one_error_line_or_success(code: int, stderr: str, out: Path) -> None:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(("A.L.E", "[Powered"))]
    assert "Traceback" not in stderr, stderr[-2000:]
    if code == 0:
        return
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, stderr[-2000:])
    assert not out.exists(), "a failed command left its output"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "a failed command left a temp file"


@fuzz(40)
@given(data=st.data(), name=st.sampled_from(["args.yml", "config.yml"]))
def test_export_cli_on_mutated_run_folders(
    bases: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str], data: st.DataObject, name: str
) -> None:
    """``export`` (its main, in this process) on a run folder whose yml file or zip was mutated: a verified file,
    or one error line, exit status 2 and no output file."""
    from sb3_dqn_atari.export import main as export_main

    case = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    config_dir = case / "run" / CARTPOLE
    config_dir.mkdir(parents=True)
    for other in ("args.yml", "config.yml"):
        (config_dir / other).write_text(bases[other])
    if data.draw(st.booleans()):
        (config_dir / name).write_bytes(data.draw(mutated_yaml(bases[name])).encode("utf-8", "surrogatepass"))
        (case / "run" / f"{CARTPOLE}.zip").write_bytes(bases["zip"])
    else:
        (case / "run" / f"{CARTPOLE}.zip").write_bytes(data.draw(mutated_zips(bases)))
    (case / "out").mkdir()
    out = case / "out" / "model.onnx"
    argv = [str(case / "run"), "-o", str(out), "--n-real", "4", "--n-random", "4", "-q", "--legacy-exporter"]
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = export_main(argv)
    _one_error_line_or_success(code, capfd.readouterr().err, out)
    OUTCOMES.setdefault("export CLI", set()).add("loaded" if code == 0 else "refused")
    if code == 0:
        metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert json.loads(metadata["verification"])["passed"]
    shutil.rmtree(case)


def _process(module: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip


@fuzz(3)
@given(data=st.data())
def test_play_process_on_mutated_onnx_files(bases: dict[str, Any], tmp_path: Path, data: st.DataObject) -> None:
    """``python -m sb3_dqn_atari.play`` with ``--video``: plays, or one error line, exit status 2, no video."""
    case = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    case.mkdir()
    (case / "model.onnx").write_bytes(data.draw(mutated_onnx(bases)))
    (case / "out").mkdir()
    out = case / "out" / "play.mp4"
    result = _process("sb3_dqn_atari.play", [str(case / "model.onnx"), "--max-frames", "100", "--video", str(out)],
                      case)  # fmt: skip
    _one_error_line_or_success(result.returncode, result.stderr, out)


@fuzz(2)
@given(data=st.data())
def test_export_process_on_mutated_zips(bases: dict[str, Any], tmp_path: Path, data: st.DataObject) -> None:
    """``python -m sb3_dqn_atari.export`` on a mutated zip: a verified file, or one error line, exit status 2,
    nothing written."""
    case = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    case.mkdir()
    (case / "model.zip").write_bytes(data.draw(mutated_zips(bases)))
    (case / "out").mkdir()
    out = case / "out" / "model.onnx"
    argv = [str(case / "model.zip"), "--env", CARTPOLE, "-o", str(out), "--n-real", "4", "--n-random", "4", "-q",
            "--legacy-exporter"]  # fmt: skip
    result = _process("sb3_dqn_atari.export", argv, case)
    _one_error_line_or_success(result.returncode, result.stderr, out)


def test_the_properties_saw_both_outcomes() -> None:
    """Mutations that still load and mutations that are refused both occurred: each path ran (when the
    properties above ran in this session)."""
    if not OUTCOMES:
        pytest.skip("the properties did not run in this session")
    for name, seen in OUTCOMES.items():
        assert seen == {"loaded", "refused"}, (name, seen)
