"""The pieces that decide what a stranger's files may make us do (issue 12): the safe YAML reader, the allow-list
and the ``eval`` check, the pickle check, the ONNX check, the zip bounds and the retired env ids.

Every "refused" case plants a payload that would create a marker file, and checks both that the payload is live
(the unsafe reader, run on purpose, creates the marker) and that our reader refuses it without creating it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import pickle
import pickletools
import re
import sys
import tracemalloc
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from sb3_dqn_atari import bounded_zip, env_ids, safe_yaml, trust
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.onnx_check import UnsafeOnnxError, check_onnx_bytes
from sb3_dqn_atari.common.pickle_check import UnsafePickleError, check_pickle
from tests.conftest import ROOT, SHARED
from tests.zoo_runs import CARTPOLE, cartpole_run

ACROBOT_FIXTURE = SHARED / "fixtures" / "sb3-1.0rc0-dqn-Acrobot-v1.zip"


# ------------------------------------------------------------------------------------------------- safe YAML


def _plain(value: Any) -> Any:
    """What rl-zoo3's UnsafeLoader gives, in the safe reader's terms: classes as dotted names, OrderedDicts as dicts."""
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def test_the_safe_reader_reads_rl_zoo3_files_as_rl_zoo3_does(tmp_path_factory: pytest.TempPathFactory) -> None:
    """args.yml and config.yml written by rl-zoo3 itself (OrderedDict, tuple and class-name tags): the safe reader
    gives what rl-zoo3's own UnsafeLoader gives (classes as their dotted names, never imported)."""
    config_dir = cartpole_run(tmp_path_factory) / CARTPOLE
    texts = {name: (config_dir / name).read_text() for name in ("args.yml", "config.yml")}
    assert all(t.startswith("!!python/object/apply:collections.OrderedDict") for t in texts.values())
    assert "!!python/tuple" in texts["config.yml"]
    assert "!!python/name:torch.nn.modules.activation.ReLU" in texts["config.yml"]
    for name, text in texts.items():
        safe = safe_yaml.read_yaml_mapping(config_dir / name)
        reference = yaml.load(text, Loader=yaml.UnsafeLoader)  # our own file, just written: trusted
        assert isinstance(reference, OrderedDict)
        assert safe == _plain(reference) and list(safe) == list(reference)
    config = safe_yaml.read_yaml_mapping(config_dir / "config.yml")
    assert config["train_freq"] == (16, "step")
    activation = config["policy_kwargs"]["activation_fn"]
    assert isinstance(activation, safe_yaml.DottedName) and activation == "torch.nn.modules.activation.ReLU"


def test_our_hyperparameter_files_read_as_yaml_safe_load_reads_them() -> None:
    """Anchors and merge keys (hyperparams/dqn.yml uses ``<<: *nature``) are plain YAML."""
    for path in sorted((ROOT / "hyperparams").glob("*.yml")):
        assert safe_yaml.read_yaml(path) == yaml.safe_load(path.read_text()), path.name


PAYLOADS = {
    "apply os.system": "!!python/object/apply:os.system ['touch {marker}']",
    "apply inside rl-zoo3's OrderedDict": (
        "!!python/object/apply:collections.OrderedDict\n- - - env\n    - CartPole-v1\n"
        "  - - seed\n    - !!python/object/apply:os.system ['touch {marker}']\n"
    ),
    "apply subprocess": "a: !!python/object/apply:subprocess.check_call [[touch, '{marker}']]",
    "apply nested in env_kwargs": "env_kwargs:\n  render_mode: !!python/object/apply:os.system ['touch {marker}']\n",
    "OrderedDict in another form": (
        "!!python/object/apply:collections.OrderedDict\n  args: [[[a, 1]]]\n"
        "  state: !!python/object/apply:os.system ['touch {marker}']\n"
    ),
}


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_python_tags_are_refused_in_one_line_and_never_run(payload: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    text = PAYLOADS[payload].format(marker=marker)
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(safe_yaml.UnsafeYamlError) as caught:
        safe_yaml.read_yaml(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "carries a Python object tag (!!python/" in message
    assert "--trust-remote-code" in message
    assert not marker.exists()
    # the payload is live: rl-zoo3's reader (what --trust-remote-code means) runs it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(Exception):  # what the payload returns may not make a valid document: ran anyway
            safe_yaml.read_yaml(path, trust_remote_code=True)
    assert marker.exists()


def test_name_tags_only_for_classes_of_allowed_packages(tmp_path: Path) -> None:
    good = "a: !!python/name:stable_baselines3.common.atari_wrappers.AtariWrapper ''\n"
    assert safe_yaml.load_yaml(good, "f.yml") == {"a": "stable_baselines3.common.atari_wrappers.AtariWrapper"}
    for name in ("os.system", "builtins.eval", "subprocess.Popen", "rl_zoo3.exp_manager.Path",
                 "stable_baselines3.common.save_util.load_from_pkl"):  # fmt: skip
        with pytest.raises(safe_yaml.UnsafeYamlError, match=re.escape(f"!!python/name:{name}")):
            safe_yaml.load_yaml(f"a: !!python/name:{name} ''\n", "f.yml")


def test_aliases_cannot_blow_up_or_recurse() -> None:
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 values
    with pytest.raises(safe_yaml.UnsafeYamlError, match="more than 100,000 values"):
        safe_yaml.load_yaml("\n".join(laughs), "laughs.yml")
    with pytest.raises(safe_yaml.UnsafeYamlError, match="contains itself"):
        safe_yaml.load_yaml("a: &a [1, *a]\n", "loop.yml")
    with pytest.raises(safe_yaml.UnsafeYamlError, match="nests"):
        safe_yaml.load_yaml("[" * 70 + "]" * 70, "deep.yml")
    assert safe_yaml.load_yaml("a: &a [1, 2]\nb: [*a, *a]\n", "ok.yml") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


# ----------------------------------------------------------------------------------------- the allow-list


def test_rl_zoo3s_own_hyperparameter_files_pass_except_other_packages() -> None:
    """Every hyperparameter file shipped with rl-zoo3 passes, except the sections that name packages outside the
    allow-list (minigrid, the donkey-car autoencoder): the check accepts what rl-zoo3 users write."""
    import rl_zoo3

    refused: dict[str, str] = {}
    folder = Path(rl_zoo3.__file__).parent / "hyperparams"
    for path in sorted(folder.glob("*.yml")):
        data = safe_yaml.read_yaml(path)
        for section, params in data.items():
            try:
                trust.check_hyperparams(params, str(path), f"{section}.")
            except trust.UntrustedError as exc:
                refused[f"{path.name}:{section}"] = str(exc)
    assert refused, "rl-zoo3 names minigrid and ae wrappers in some sections"
    for where, message in refused.items():
        assert re.search(r"names (minigrid|ae)\.", message) and "outside the allow-list" in message, where
    for path in sorted((ROOT / "hyperparams").glob("*.yml")):
        trust.check_hyperparams_file(safe_yaml.read_yaml(path), str(path))


ACCEPTED_EVAL = [
    "dict(net_arch=[256, 256])",
    "dict(activation_fn=nn.ReLU, net_arch=dict(pi=[64], vf=[64]), log_std_init=-2, ortho_init=False)",
    "dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5))",
    "{'norm_obs': True, 'norm_reward': False}",
    "HerReplayBuffer",
    "dict(goal_selection_strategy='future', n_sampled_goal=4)",
    "__import__('sb3_dqn_atari').FrameReplayBuffer",
    "dict(a=th.nn.Tanh, b=(1, 2.5, None), c={1, 2}, d=list([True, -3]), optimizer_class=th.optim.Adam)",
]
REFUSED_EVAL = {
    "__import__('os').system('touch {marker}')": "(a call)",
    "open('{marker}', 'w')": "(a call)",
    "dict(a=__import__('subprocess').Popen)": "outside the allow-list",
    "dict(a=th.cuda.Stream)": "outside the allow-list",
    "nn.functional.relu": "a function, not a class",
    "[x for x in ().__class__.__base__.__subclasses__()]": "not a plain value",
    "dict(**{'a': 1})": "unpacks",
    "9 ** 9 ** 9": "not a plain value",
    "eval": "not a class",
    "lambda: 0": "not a plain value",
    "__import__('sb3_dqn_atari').__builtins__": "not a dotted class name",
    "getattr(nn, 'ReLU')": "(a call)",
}


def test_eval_strings_are_accepted_only_as_plain_values_and_allowed_classes(tmp_path: Path) -> None:
    """Accepted strings evaluate in rl-zoo3's own namespace (to the values rl-zoo3 would use); refused ones are
    refused for the stated reason and never evaluated."""
    import rl_zoo3.exp_manager

    namespace = dict(vars(rl_zoo3.exp_manager))
    for text in ACCEPTED_EVAL:
        trust.check_eval_string(text, "policy_kwargs", "config.yml")
        eval(text, namespace)  # what rl-zoo3 does with it: plain values and allowed classes
    marker = tmp_path / "marker"
    for template, reason in REFUSED_EVAL.items():
        text = template.replace("{marker}", str(marker))
        with pytest.raises(trust.UntrustedError) as caught:
            trust.check_eval_string(text, "policy_kwargs", "config.yml")
        assert reason in str(caught.value) and "--trust-remote-code" in str(caught.value), (text, caught.value)
    assert not marker.exists()


def test_class_names_follow_imports_to_the_class_statement() -> None:
    accepted = [
        "sb3_dqn_atari.zoo.NatureAtariWrapper",  # imported from sb3_dqn_atari.wrappers
        "stable_baselines3.common.atari_wrappers.AtariWrapper",
        "torch.nn.ReLU",  # torch.nn re-exports it from torch.nn.modules.activation
        "stable_baselines3.HerReplayBuffer",
        "sb3_dqn_atari.FrameReplayBuffer",  # a lazy (PEP 562) export of the package
        "gymnasium.wrappers.time_limit.TimeLimit",  # no such module in gymnasium 1.x: the import fails, nothing runs
    ]
    for name in accepted:
        trust.check_class_name(name, "env_wrapper", "config.yml")
    refused = {
        "rl_zoo3.exp_manager.Path": "pathlib.Path, from outside the allow-list",
        "stable_baselines3.common.save_util.load_from_pkl": "a function",
        "gymnasium.make": "a function",
        "sb3_dqn_atari.zoo": "a module",
        "sb3_dqn_atari.zoo.NoSuchClass": "defines no such class",
        "sb3_dqn_atari.zoo._SaveBestModel": "not a dotted class name",
        "os.system": "outside the allow-list",
        "torchvision.models.ResNet": "outside the allow-list",
    }
    for name, reason in refused.items():
        with pytest.raises(trust.UntrustedError, match=re.escape(reason)):
            trust.check_class_name(name, "env_wrapper", "config.yml")


def test_the_class_check_imports_nothing(tmp_path: Path) -> None:
    """A fresh interpreter: checking sb3_dqn_atari.zoo.NatureAtariWrapper reads sources, imports no torch."""
    import subprocess

    code = (
        "import sys; from sb3_dqn_atari import trust; "
        "trust.check_class_name('sb3_dqn_atari.zoo.NatureAtariWrapper', 'w', 'f'); "
        "trust.check_eval_string('dict(activation_fn=nn.ReLU)', 'k', 'f'); "
        "print(sorted(m for m in ('torch', 'rl_zoo3', 'stable_baselines3', 'sb3_dqn_atari.zoo') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_zoo_args_and_env_ids() -> None:
    trust.check_zoo_args({"env": "ALE/Breakout-v5", "gym_packages": ["sb3_dqn_atari.zoo"]}, "args.yml")
    for args, reason in (
        ({"env": "marker_module:Evil-v0"}, "the module 'marker_module'"),
        ({"env": "../../x"}, "not a gymnasium env id"),
        ({"gym_packages": ["os"]}, "the module 'os'"),
        ({"hyperparams": {"normalize": "__import__('os').getcwd()"}}, "(a call)"),
        ({"hyperparams": {"callback": ["tests.test_trust.Evil"]}}, "outside the allow-list"),
    ):
        with pytest.raises(trust.UntrustedError, match=re.escape(reason)):
            trust.check_zoo_args(args, "args.yml")


@pytest.mark.parametrize(
    ("name", "ok"),
    [("config.yml", True), ("dqn-Breakout.zip", True), ("sub/results.json", True), ("../evil.yml", False),
     ("a/../../evil", False), ("/etc/passwd", False), ("C:evil.yml", False), ("c:\\x\\evil.yml", False),
     ("a\\..\\evil", False), ("a//b", False), ("./a", False), ("", False), ("a\nb", False)],
)  # fmt: skip
def test_relative_names(name: str, ok: bool) -> None:
    if ok:
        trust.check_relative_name(name, "the repo")
    else:
        with pytest.raises(trust.UntrustedError, match="could be written outside"):
            trust.check_relative_name(name, "the repo")


# ------------------------------------------------------------------------------------------- retired env ids


def test_retired_ids_are_the_ones_gymnasium_names_and_are_announced_once(capsys: pytest.CaptureFixture) -> None:
    """Each mapping is checked against gymnasium itself: the old id is refused as deprecated with a message naming
    the new one, and the new one is registered."""
    for old, new in env_ids.RETIRED_ENV_IDS.items():
        with pytest.raises(gym.error.DeprecatedEnv, match=re.escape(f"Please use `{new}` instead")):
            gym.spec(old)
        gym.spec(new)
    env_ids._announced.clear()
    assert [env_ids.current_env_id(i) for i in ("LunarLander-v2", "LunarLander-v2", "Pendulum-v0", "CartPole-v1")] == [
        "LunarLander-v3",
        "LunarLander-v3",
        "Pendulum-v1",
        "CartPole-v1",
    ]
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "note: gymnasium retired LunarLander-v2; using its successor LunarLander-v3 (same observations and actions)",
        "note: gymnasium retired Pendulum-v0; using its successor Pendulum-v1 (same observations and actions)",
    ]
    env = gym.make(env_ids.current_env_id("Acrobot-v0", announce=False))  # the successor runs here
    assert env.observation_space.shape == (6,)
    env.close()


# ---------------------------------------------------------------------------------------------- pickles


def _touch(path: str) -> None:
    Path(path).touch()


class _Touch:
    """Unpickling this creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _touch, (str(self.path),)


class _Gadget:
    """Unpickles to numpy's ``__generator_ctor(name, cls)``, which calls ``cls(name)``."""

    def __init__(self, name: str, cls: type) -> None:
        self.name, self.cls = name, cls

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        import numpy.random._pickle

        return getattr(numpy.random._pickle, "__generator_ctor"), (self.name, self.cls)


class _StandIn:
    """Whatever an unpickler builds with it works: called, instantiated, given a state, filled as a container."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def _names_find_class_sees(data: bytes) -> list[str]:
    """The globals an unpickler looks up, in order, recorded by a find_class that returns harmless stand-ins
    (an independent reading of the pickle: the real unpickler's own stack machine)."""
    seen: list[str] = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            seen.append(f"{module}.{name}")
            return type(name.replace(".", "_"), (_StandIn,), {})

    with contextlib.suppress(Exception):  # stand-ins do not rebuild the objects; the names were recorded before
        Recorder(io.BytesIO(data)).load()
    return seen


def _data_pickles(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as archive:
        data = json.loads(archive.read("data"))
    serialized = {k: v for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v}
    return {k: base64.b64decode(v[":serialized:"]) for k, v in serialized.items()}


def test_the_pickles_sb3_writes_pass_and_name_what_the_unpickler_looks_up(tmp_path: Path) -> None:
    from sb3_contrib import QRDQN
    from stable_baselines3 import DQN
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

    from sb3_dqn_atari import NatureAtariWrapper, NatureDQN

    breakout = VecFrameStack(DummyVecEnv([lambda: NatureAtariWrapper(gym.make("BreakoutNoFrameskip-v4"))]), 4)
    models = {
        "dqn": DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, device="cpu"),
        "qrdqn": QRDQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, device="cpu"),
        "nature": NatureDQN("CnnPolicy", breakout, buffer_size=64, device="cpu"),  # FrameReplayBuffer, RMSprop
    }
    checked = 0
    for name, model in models.items():
        model.save(tmp_path / f"{name}.zip")
        for key, raw in _data_pickles(tmp_path / f"{name}.zip").items():
            assert check_pickle(raw, key) == _names_find_class_sees(raw), (name, key)
            checked += 1
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    venv.save(tmp_path / "vecnormalize.pkl")
    raw = (tmp_path / "vecnormalize.pkl").read_bytes()
    assert check_pickle(raw, "vecnormalize.pkl") == _names_find_class_sees(raw)
    assert checked >= 20


def test_pickles_that_run_code_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stable_baselines3.common.monitor import ResultsWriter

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    touch = pickle.dumps(_Touch(marker), protocol=4)  # STACK_GLOBAL with memoized strings
    old_style = pickle.dumps(_Touch(marker), protocol=0)  # GLOBAL
    # numpy's generator constructor calls the class it is given: a class of an allowed package (SB3's Monitor
    # writer creates a file) may be named in a pickle, never passed to a call
    gadget = pickle.dumps(_Gadget("gadget", ResultsWriter), protocol=4)
    inst = b"(itests.test_trust\n_Touch\n(dp0\nb."
    cases = {
        "names tests.test_trust._touch": touch,
        "names tests.test_trust._touch ": old_style,
        "passes a class to numpy.random._pickle.__generator_ctor": gadget,
        "old-style instantiation": inst,
    }
    for reason, data in cases.items():
        pickletools.dis(data, out=io.StringIO())  # each is a well-formed pickle
        with pytest.raises(UnsafePickleError, match=re.escape(reason.strip())):
            check_pickle(data, "payload.pkl")
    assert not marker.exists() and not list(tmp_path.iterdir())
    pickle.loads(touch)
    assert marker.exists()  # the payloads are live
    with pytest.raises((TypeError, AttributeError)):  # numpy gets a ResultsWriter, not a bit generator
        pickle.loads(gadget)
    assert (tmp_path / "gadget.monitor.csv").exists()


@pytest.mark.skipif(not ACROBOT_FIXTURE.is_file(), reason="../shared/fixtures is not available")
def test_sb3_1x_pickled_functions_are_refused() -> None:
    """SB3 1.x zips pickle their schedules as functions (code): refused, the spaces too (gym is not allowed)."""
    pickles = _data_pickles(ACROBOT_FIXTURE)
    for key in ("exploration_schedule", "lr_schedule"):
        with pytest.raises(UnsafePickleError, match="cloudpickle"):
            check_pickle(pickles[key], key)
    with pytest.raises(UnsafePickleError, match=r"gym\.spaces\.box\.Box"):
        check_pickle(pickles["observation_space"], "observation_space")
    check_pickle(pickles["policy_class"], "policy_class")


# ------------------------------------------------------------------------------------------------ ONNX


def _tiny_model(**changes: Any) -> onnx.ModelProto:
    """obs (1, 2) -> q = obs @ W (+ the pieces of ``changes``), a valid ONNX model."""
    weight = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], np.eye(2, dtype=np.float32).tobytes(), raw=True)
    nodes = [helper.make_node("MatMul", ["obs", "W"], ["q_values"])]
    graph = helper.make_graph(
        nodes + changes.get("nodes", []),
        "g",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("q_values", TensorProto.FLOAT, [1, 2])],
        [weight, *changes.get("initializers", [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), *changes.get("opsets", [])])
    model.functions.extend(changes.get("functions", []))
    return model


def _external(name: str) -> onnx.TensorProto:
    tensor = helper.make_tensor(name, TensorProto.FLOAT, [2], np.array([1, 2], np.float32).tobytes(), raw=True)
    onnx.external_data_helper.set_external_data(tensor, location="../../outside.bin")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    return tensor


def test_onnx_files_naming_other_files_or_custom_domains_are_refused(tmp_path: Path) -> None:
    check_onnx_bytes(_tiny_model().SerializeToString(), "tiny.onnx")
    subgraph = helper.make_graph(
        [helper.make_node("Identity", ["E"], ["out"])], "branch", [], [helper.make_tensor_value_info("out", 1, [2])],
        [_external("E")],
    )  # fmt: skip
    custom_node = helper.make_node("Evil", ["obs"], ["z"], domain="com.example.evil")
    function = helper.make_function("com.example.evil", "Fn", ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])],
                                    [helper.make_opsetid("", 18)])  # fmt: skip
    constant = helper.make_node("Constant", [], ["c"], value=_external("C"))
    cases = {
        "initializer": (_tiny_model(initializers=[_external("X")]), "keeps the tensor 'X' in external data"),
        "Constant attribute": (_tiny_model(nodes=[constant]), "keeps the tensor 'C' in external data"),
        "If subgraph": (
            _tiny_model(nodes=[helper.make_node("If", ["cond"], ["r"], then_branch=subgraph, else_branch=subgraph)]),
            "keeps the tensor 'E' in external data",
        ),
        "custom node": (_tiny_model(nodes=[custom_node]), "custom operator domain 'com.example.evil' (a node)"),
        "local function": (_tiny_model(functions=[function]), "custom operator domain 'com.example.evil'"),
        "opset import": (_tiny_model(opsets=[helper.make_opsetid("com.example.evil", 1)]), "'com.example.evil'"),
    }
    for what, (model, reason) in cases.items():
        with pytest.raises(UnsafeOnnxError, match=re.escape(reason)):
            check_onnx_bytes(model.SerializeToString(), f"{what}.onnx")
    for junk in (b"\x07", b"\x0a\xff\xff\xff\xff\x0f", b"not onnx at all"):
        with pytest.raises(UnsafeOnnxError, match="not a readable ONNX model"):
            check_onnx_bytes(junk, "junk.onnx")


def test_onnxruntime_would_open_the_external_file_the_runtime_never_does(tmp_path: Path) -> None:
    """The payload is live (onnxruntime given the path reads the file the model names); OnnxAgent refuses the file
    before onnxruntime sees it."""
    import onnxruntime as ort

    from sb3_dqn_atari.onnx.runtime import OnnxAgent, PlayerError

    model = _tiny_model()
    for prop, value in (("format", "sb3-dqn-atari/onnx/1"), ("env_id", "CartPole-v1")):
        entry = model.metadata_props.add()
        entry.key, entry.value = prop, value
    onnx.save_model(model, str(tmp_path / "m.onnx"), save_as_external_data=True, location="weights.bin",
                    size_threshold=0)  # fmt: skip
    (tmp_path / "weights.bin").write_bytes(np.array([7, 0, 0, 7], np.float32).tobytes())
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    q = session.run(None, {"obs": np.ones((1, 2), np.float32)})[0]
    assert q.tolist() == [[7.0, 7.0]]  # read from weights.bin
    with pytest.raises(PlayerError, match="external data"):
        OnnxAgent(tmp_path / "m.onnx")


# -------------------------------------------------------------------------------------------------- zips


def _zeros_zip(path: Path, member_bytes: int) -> None:
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("data", b"{}")
        with archive.open("policy.pth", "w") as member:
            for _ in range(member_bytes >> 20):
                member.write(chunk)


def test_a_zip_bomb_is_refused_before_anything_is_inflated(tmp_path: Path) -> None:
    """64 MiB of zeros in a ~70 kB zip, against a bound lowered to 8 MiB: refused, and the refusal allocates
    nothing near the member's size (tracemalloc's peak); under a bound above the size, it is read."""
    from sb3_dqn_atari.loading import load_safely, read_zip_data

    bomb = tmp_path / "bomb.zip"
    _zeros_zip(bomb, 64 << 20)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(bounded_zip.ZipBombError, match=r"'policy\.pth' declares 67,108,864 bytes"):
            read_zip_data(bomb, max_member_bytes=8 << 20)
        with pytest.raises(bounded_zip.ZipBombError):
            load_safely(bomb, device="cpu", max_member_bytes=8 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    with bounded_zip.open_zip(bomb, max_member_bytes=128 << 20) as archive:
        assert len(bounded_zip.read_member(archive, "policy.pth", "bomb.zip", 128 << 20)) == 64 << 20
    with pytest.raises(UserError):  # a readable zip, but not an SB3 model: a UserError, not a trace
        load_safely(bomb, device="cpu", max_member_bytes=128 << 20)


def test_the_default_bound_is_2_gib_of_declared_size(tmp_path: Path) -> None:
    assert bounded_zip.MAX_MEMBER_BYTES == 2 * 1024**3
    lying = tmp_path / "lying.zip"
    with zipfile.ZipFile(lying, "w") as archive:
        archive.writestr("data", b"{}")
        archive.writestr("policy.pth", b"\x00" * 16)
        archive.filelist[-1].file_size = 10 * 1024**3  # what the central directory declares
    with pytest.raises(bounded_zip.ZipBombError, match="10,737,418,240 bytes"):
        bounded_zip.check_zip(lying)


@pytest.mark.slow
def test_a_real_bomb_under_the_default_bound_costs_no_memory(tmp_path: Path) -> None:
    """A CartPole DQN zip whose ``policy.pth`` is 2.25 GiB of zeros (~10 MB compressed): ``export`` refuses it with
    the default bound, and its process never grows near the member's size (its peak RSS, measured by itself)."""
    import os
    import subprocess

    from stable_baselines3 import DQN

    DQN("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, device="cpu").save(tmp_path / "good.zip")
    bomb = tmp_path / "bomb.zip"
    chunk = bytes(1 << 24)
    with (
        zipfile.ZipFile(tmp_path / "good.zip") as good,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out,
    ):
        for info in good.infolist():
            if info.filename != "policy.pth":
                out.writestr(info.filename, good.read(info.filename))
        with out.open("policy.pth", "w", force_zip64=True) as member:
            for _ in range(144):  # 2.25 GiB
                member.write(chunk)
    code = (
        "import resource, sys; from sb3_dqn_atari.export import main; "
        f"rc = main([{str(bomb)!r}, '--env', 'CartPole-v1', '-o', {str(tmp_path / 'out.onnx')!r}, '-q']); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "over the 2,147,483,648-byte bound" in result.stderr
    peak_kib = int(result.stdout.strip().splitlines()[-1])
    assert peak_kib < 1_500_000, peak_kib  # torch and SB3 imported: ~0.5 GB; the member alone would be 2.4 GB
    assert not (tmp_path / "out.onnx").exists()
