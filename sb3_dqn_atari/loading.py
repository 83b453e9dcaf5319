"""Finding and loading a trained agent: an SB3 zip or an rl-zoo3 log folder, without unpickling by default.

Shared by ``evaluate``, ``export``, ``push_to_hub``, ``load_from_hub`` and friends so that they accept the same
inputs.

**Safe loading** (:func:`load_agent`, the default of every CLI). An SB3 zip holds a JSON member ``data`` whose
non-JSON values (spaces, schedules, the policy class, ...) are cloudpickles, base64 in a ``":serialized:"``
field; unpickling one runs whatever code its author put there. SB3 also writes *plain* fields next to each
pickle (the object's JSON-able attributes, the others as ``str()``), and that is all this module reads:

* the observation and action spaces are rebuilt from their plain fields (``_shape``/``shape``, ``dtype``,
  ``low``/``high`` as numpy ``repr`` strings, ``n``, ``start``, ``nvec``); this is also why agents saved by
  SB3 1.x with ``gym`` spaces load without ``gym`` installed (with one warning);
* the algorithm and policy class come from the pickled class *reference*, read as text with
  :mod:`pickletools` (opcodes are listed, nothing is executed), checked against an allow-list:
  ``stable_baselines3.dqn.policies`` (SB3's DQN), ``sb3_dqn_atari.policies`` (NatureDQN) and
  ``sb3_contrib.qrdqn.policies`` (QR-DQN);
* ``policy_kwargs`` from plain fields: JSON values as they are, ``repr`` strings of literals with
  :func:`ast.literal_eval`, classes (features extractor, activation, optimizer) by allow-listed name;
* the weights from ``policy.pth`` with ``torch.load(..., weights_only=True)`` (tensors and plain containers only).

What this path does not restore, because inference, evaluation and export do not use it: the optimizer state
(``policy.optimizer.pth``; the optimizer is the policy's default, ``DeepMindRMSprop`` for NatureDQN, or an
allow-listed class named in ``policy_kwargs``), the learning-rate and exploration schedules (rebuilt from the
plain ``learning_rate`` / ``exploration_*`` numbers), the last observation and episode buffers, and the replay
memory, which is a one-transition placeholder (``buffer_size=1``, as ``rl_zoo3.enjoy`` loads off-policy agents).
To resume *training*, load the zip with SB3 (``NatureDQN.load``) from a source you trust.

``trust_remote_code=True`` (``--trust-remote-code`` on the command line) uses SB3's own ``cls.load``, which
unpickles everything; spaces pickled with ``gym`` (not installed) are still replaced by the rebuilt ones.

**The files around the zip.** :func:`resolve_model` checks a run folder before it uses it
(:func:`sb3_dqn_atari.vetting.vet_run_folder`: rl-zoo3's YAML files with the safe reader and the allow-list,
zips and ``.npz`` files for members that declare more than :data:`~sb3_dqn_atari.bounded_zip.MAX_MEMBER_BYTES`,
ONNX files for external data); every member of a zip is read only after its declared size is checked.
``trust_remote_code`` skips the YAML and allow-list checks (rl-zoo3's own YAML reader), not the size bounds.
"""

from __future__ import annotations

import ast
import base64
import binascii
import io
import json
import math
import pickle
import pickletools
import re
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb3_dqn_atari.bounded_zip import MAX_MEMBER_BYTES, check_zip, open_zip, read_member
from sb3_dqn_atari.env_ids import current_env_id
from sb3_dqn_atari.errors import UserError, one_line

if TYPE_CHECKING:
    from gymnasium import spaces
    from stable_baselines3.common.base_class import BaseAlgorithm

#: Policy classes a zip may name, by module: the algorithm each module belongs to and the class names allowed.
ALLOWED_POLICIES: dict[str, tuple[str, frozenset[str]]] = {
    "stable_baselines3.dqn.policies": (
        "stable_baselines3.DQN",
        frozenset({"DQNPolicy", "MlpPolicy", "CnnPolicy", "MultiInputPolicy"}),
    ),
    "sb3_dqn_atari.policies": (
        "sb3_dqn_atari.dqn.NatureDQN",
        frozenset({"MlpPolicy", "CnnPolicy", "MultiInputPolicy", "NipsCnnPolicy"}),
    ),
    "sb3_dqn_atari.dueling": ("sb3_dqn_atari.dqn.NatureDQN", frozenset({"DuelingCnnPolicy", "DuelingMlpPolicy"})),
    "sb3_contrib.qrdqn.policies": (
        "sb3_contrib.QRDQN",
        frozenset({"QRDQNPolicy", "MlpPolicy", "CnnPolicy", "MultiInputPolicy"}),
    ),
}

#: Classes ``policy_kwargs`` may name (dotted path as ``str(cls)`` prints it), by the keyword that takes them.
ALLOWED_KWARG_CLASSES: dict[str, frozenset[str]] = {
    "features_extractor_class": frozenset(
        {
            "stable_baselines3.common.torch_layers.NatureCNN",
            "stable_baselines3.common.torch_layers.FlattenExtractor",
            "stable_baselines3.common.torch_layers.CombinedExtractor",
            "sb3_dqn_atari.networks.NipsCNN",
            "sb3_dqn_atari.networks.NatureTorso",
        }
    ),
    "activation_fn": frozenset(
        f"torch.nn.modules.activation.{name}"
        for name in ("ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "SELU", "Softplus")
    )
    | {"torch.nn.modules.linear.Identity"},
    "optimizer_class": frozenset(
        {
            "torch.optim.adam.Adam",
            "torch.optim.adamw.AdamW",
            "torch.optim.rmsprop.RMSprop",
            "torch.optim.sgd.SGD",
            "sb3_dqn_atari.optim.DeepMindRMSprop",
            "stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike",
        }
    ),
}

#: Attributes of the model that the plain ``data`` fields must never set (the loader sets them itself).
_RESERVED_ATTRIBUTES = frozenset(
    {
        "policy",
        "policy_class",
        "policy_kwargs",
        "observation_space",
        "action_space",
        "device",
        "env",
        "replay_buffer",
        "replay_buffer_class",
        "replay_buffer_kwargs",
        "buffer_size",
        "optimize_memory_usage",
        "_vec_normalize_env",
        "_logger",
        "lr_schedule",
        "exploration_schedule",
        "train_freq",
    }
)

#: Largest ``data`` member (the JSON of an SB3 zip; a few hundred kB for Atari agents) parsed.
MAX_DATA_BYTES = 256 << 20
#: Largest observation space (values per observation; Atari's 4x84x84 stack is 28,224), number of actions and
#: width and depth of the hidden layers a zip's plain fields may ask the rebuilt network for.
MAX_SPACE_ELEMENTS = 1 << 24
MAX_ACTIONS = 1 << 16
MAX_LAYER_WIDTH = 1 << 16
MAX_LAYERS = 64
#: Largest ``_stable_baselines3_version`` member read.
_MAX_VERSION_BYTES = 1 << 10

_CLASS_REPR = re.compile(r"<class '([A-Za-z_][\w.]*)'>")
_MISSING = object()
_warned_old: set[str] = set()


__all__ = ["MAX_MEMBER_BYTES", "ModelSource", "UnsafeZipError", "UserError", "load_agent", "resolve_model"]


def exit_on_user_error(command: Callable[[], int]) -> int:
    """Run a CLI's ``command``: its exit status, or a :class:`UserError` as one ``error:`` line and status 2."""
    try:
        return command()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class UnsafeZipError(UserError):
    """The zip cannot be loaded from its plain fields alone; only ``--trust-remote-code`` (unpickling) would do."""


class OldZipWarning(UserWarning):
    """The zip was written by SB3 1.x (``gym`` spaces); it was loaded from its plain fields."""


@dataclass
class ModelSource:
    """Where a model lives: its zip, and the rl-zoo3 run folder around it when there is one."""

    zip_path: Path
    env_id: str | None = None
    run_dir: Path | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- finding the zip


def resolve_model(
    path: str | Path,
    env_id: str | None = None,
    trust_remote_code: bool = False,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> ModelSource:
    """Turn ``path`` (a zip, or an rl-zoo3 run folder ``logs/dqn/Env_1``) into a :class:`ModelSource`.

    In a run folder the final ``<env_id>.zip`` is preferred, then ``best_model.zip``, then the newest
    checkpoint. ``env_id`` defaults to the one rl-zoo3 recorded in ``<env_id>/args.yml`` (a retired id mapped to
    its successor: :mod:`sb3_dqn_atari.env_ids`). A run folder is checked as a whole first
    (:func:`sb3_dqn_atari.vetting.vet_run_folder`); for a zip, the zip and the rl-zoo3 files beside it.
    """
    from sb3_dqn_atari.vetting import config_folders, read_config_folder, vet_run_folder

    p = Path(path)
    if not p.exists():
        raise UserError(f"no such file or folder: {p}; pass an SB3 .zip or an rl-zoo3 log folder (logs/dqn/Env_1)")
    run_dir = p if p.is_dir() else p.parent
    if p.is_dir():
        folders = [f for f in vet_run_folder(p, trust_remote_code, max_member_bytes) if "args.yml" in f.files]
    else:
        check_zip(p, max_member_bytes, "SB3 model zip")
        with_args = [f for f in config_folders(run_dir) if (f / "args.yml").is_file()]
        folders = [read_config_folder(with_args[0], trust_remote_code)] if with_args else []
    hyperparams: dict[str, Any] = {}
    recorded = folders[0].args.get("env") if folders else None
    if recorded is not None and not isinstance(recorded, str):
        raise UserError(f"{folders[0].path / 'args.yml'}: env is {one_line(repr(recorded), 80)}, not an env id")
    if folders:
        hyperparams = dict(folders[0].config)
    wanted_env = env_id or recorded
    found_env = current_env_id(wanted_env) if wanted_env else None
    if p.is_dir():
        # rl-zoo3 names the final model after the env folder name ("/" -> "-": ALE-Breakout-v5.zip), under the
        # id it trained on (a retired one too)
        candidates: list[Path] = []
        for name in dict.fromkeys(n.replace("/", "-") for n in (found_env, env_id, recorded) if n):
            candidates.append(p / f"{name}.zip")  # one path component: never outside the folder
        candidates += [p / "best_model.zip"]
        checkpoints = sorted(p.glob("rl_model_*_steps.zip"), key=_checkpoint_step)
        candidates += checkpoints[::-1]
        candidates += sorted(c for c in p.glob("*.zip") if c.name != "train_eval_metrics.zip")
        zips = [c for c in candidates if c.is_file()]
        if not zips:
            raise UserError(f"{p} holds no SB3 model zip; pass the .zip itself or an rl-zoo3 run folder")
        zip_path = zips[0]
    else:
        zip_path = p
    run_dir_found = run_dir if found_env else None
    return ModelSource(zip_path=zip_path, env_id=found_env, run_dir=run_dir_found, hyperparams=hyperparams)


def _checkpoint_step(path: Path) -> int:
    match = re.fullmatch(r"rl_model_(\d+)_steps", path.stem)
    return int(match.group(1)) if match else -1


# --------------------------------------------------------------------------------------- reading plain fields


def read_zip_data(zip_path: str | Path, max_member_bytes: int = MAX_MEMBER_BYTES) -> dict[str, Any]:
    """The plain JSON ``data`` member of an SB3 zip (no unpickling; every member's declared size checked first)."""
    try:
        with open_zip(zip_path, max_member_bytes, "SB3 model zip") as archive:
            data = json.loads(read_member(archive, "data", str(zip_path), min(max_member_bytes, MAX_DATA_BYTES)))
    except (KeyError, ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise UserError(f"{zip_path} is not a readable SB3 model zip ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise UserError(f"{zip_path} is not an SB3 model zip: its 'data' member is not a JSON object")
    return data


def sb3_version(zip_path: str | Path) -> str | None:
    """The SB3 version that wrote the zip (its ``_stable_baselines3_version`` member), if recorded."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            payload = read_member(archive, "_stable_baselines3_version", str(zip_path), _MAX_VERSION_BYTES)
            return payload.decode("utf-8", "replace").strip()
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, UserError):
        return None


def is_serialized(value: Any) -> bool:
    """Whether a ``data`` entry is a cloudpickle (``{":type:": ..., ":serialized:": ...}``)."""
    return isinstance(value, dict) and ":serialized:" in value


def pickled_class_reference(serialized: str) -> tuple[str, str] | None:
    """``(module, qualname)`` if the base64 pickle is nothing but a reference to a global (a class pickled by
    name), else None. The opcodes are only listed (:func:`pickletools.genops`), never executed."""
    try:
        raw = base64.b64decode(serialized.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    strings: list[str] = []
    found: tuple[str, str] | None = None
    allowed_noise = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP"}
    string_ops = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}
    try:
        for opcode, arg, _ in pickletools.genops(raw):
            if opcode.name in allowed_noise:
                continue
            if opcode.name in string_ops and found is None:
                strings.append(str(arg))
            elif opcode.name == "GLOBAL" and found is None and isinstance(arg, str) and " " in arg:
                module, name = arg.split(" ", 1)
                found = (module, name)
            elif opcode.name == "STACK_GLOBAL" and found is None and len(strings) == 2:
                found = (strings[0], strings[1])
            else:
                return None
    except (ValueError, EOFError, IndexError, KeyError, TypeError):
        return None
    return found


def policy_class_name(data: dict[str, Any]) -> tuple[str, str]:
    """``(module, class name)`` of the zip's policy class, read as text (no unpickling)."""
    entry = data.get("policy_class")
    if not isinstance(entry, dict):
        raise UserError("the zip records no policy class; it is not an SB3 model zip")
    module = str(entry.get("__module__", ""))
    reference = pickled_class_reference(str(entry.get(":serialized:", "")))
    if reference is None:
        raise UnsafeZipError(
            f"the zip's policy class ({module or 'unknown module'}) is not a plain class reference; "
            "it can only be loaded by unpickling: pass --trust-remote-code if you trust where the file comes from"
        )
    if module and reference[0] != module:
        raise UnsafeZipError(
            f"the zip's policy class is recorded as {module} but pickled as {reference[0]}.{reference[1]}; "
            "refusing to guess: pass --trust-remote-code if you trust where the file comes from"
        )
    return reference


def algorithm_class(data: dict[str, Any]) -> type[BaseAlgorithm]:
    """The algorithm that saved a zip, from the module of its pickled policy class (read as plain text)."""
    entry = data.get("policy_class")
    module = str(entry.get("__module__", "")) if isinstance(entry, dict) else ""
    if not module and isinstance(entry, dict):
        reference = pickled_class_reference(str(entry.get(":serialized:", "")))
        module = reference[0] if reference else ""
    for prefix, (algo_path, _) in ALLOWED_POLICIES.items():
        if module == prefix:
            return _import_dotted(algo_path)
    raise UserError(f"the zip's policy ({module or 'unknown'}) is not DQN, NatureDQN or QR-DQN; pass one of those")


def policy_class(data: dict[str, Any]) -> type:
    """The zip's policy class, imported only when it is on the allow-list (:data:`ALLOWED_POLICIES`)."""
    module, name = policy_class_name(data)
    allowed = ALLOWED_POLICIES.get(module)
    if allowed is None or name not in allowed[1]:
        raise UnsafeZipError(
            f"the zip's policy class {module}.{name} is not one this loader knows "
            f"({', '.join(ALLOWED_POLICIES)}); pass --trust-remote-code if you trust where the file comes from"
        )
    return _import_dotted(f"{module}.{name}")


def _import_dotted(path: str) -> Any:
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


# ------------------------------------------------------------------------------------------------- the spaces


def _literal(value: Any, what: str) -> Any:
    """A JSON value as is, a ``repr`` string of a Python literal parsed (never evaluated as code)."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise UnsafeZipError(
            f"{what} = {value[:80]!r} cannot be read without unpickling; "
            "pass --trust-remote-code if you trust where the file comes from"
        ) from exc


def _dtype(value: Any, what: str) -> Any:
    import numpy as np

    text = str(value)
    match = re.fullmatch(r"(?:dtype\()?'?([a-z]+[0-9]*)'?\)?", text.strip())
    try:
        if match is None:
            raise TypeError(text)
        return np.dtype(match.group(1))
    except TypeError as exc:
        raise UnsafeZipError(f"{what} has an unreadable dtype {text[:40]!r}") from exc


def array_from_repr(text: Any, shape: tuple[int, ...], dtype: Any, what: str) -> Any:
    """An array of ``shape``/``dtype`` from numpy's ``repr``/``str`` of it (as SB3 stores ``low``/``high``).

    numpy abbreviates arrays of more than 1000 values (``[0 0 0 ... 0 0 0]``); such an array is rebuilt only
    when every value shown is the same (the usual uniform image bounds, 0 and 255), otherwise the bounds are
    not in the plain fields and :class:`UnsafeZipError` is raised. Float bounds are exact for float32 (numpy
    prints the shortest round-tripping digits) and rounded to 8 decimals for float64.
    """
    import numpy as np

    n = math.prod(shape)
    if n > MAX_SPACE_ELEMENTS or any(d < 0 for d in shape):
        raise UserError(f"{what}: a space of shape {shape} is not one this loader rebuilds")
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return np.full(shape, text, dtype=dtype)
    if isinstance(text, list):
        values = np.asarray(text, dtype=np.float64).reshape(-1)
        truncated = False
    else:
        tokens = re.sub(r"[\[\],]", " ", str(text)).split()
        truncated = "..." in tokens
        try:
            values = np.array([float(t) for t in tokens if t != "..."], dtype=np.float64)
        except ValueError as exc:
            raise UnsafeZipError(f"{what} = {str(text)[:60]!r} is not a numeric array") from exc
    if len(values) == 0:
        raise UnsafeZipError(f"{what} holds no value")
    if truncated or len(values) != n:
        if len(values) == 1 or (truncated and np.all(values == values[0])):
            values = np.full(n, values[0])
        else:
            raise UnsafeZipError(
                f"{what} is abbreviated in the zip's plain fields ({len(values)} of {n} values shown, not all "
                "equal); it can only be read by unpickling: pass --trust-remote-code if you trust the file"
            )
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        finite = np.isfinite(values)
        info = np.iinfo(dtype) if dtype.kind in "iu" else None
        if not np.all(finite) or np.any(values != np.round(values)):
            raise UnsafeZipError(f"{what} holds non-integer bounds for dtype {dtype}")
        if info is not None:
            values = np.clip(values, info.min, info.max)
    return values.astype(dtype).reshape(shape)


def space_from_plain(entry: Any, what: str) -> spaces.Space:
    """Rebuild a gymnasium space from the plain fields SB3 (1.x with ``gym``, or 2.x) stores beside its pickle.

    Supported: ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary``.
    """
    import numpy as np
    from gymnasium import spaces

    if not isinstance(entry, dict):
        raise UserError(f"the zip's {what} is missing or not an SB3 space entry")
    type_text = str(entry.get(":type:", ""))
    match = _CLASS_REPR.fullmatch(type_text)
    kind = match.group(1).rsplit(".", 1)[-1] if match else ""
    if kind == "Box":
        raw_shape = entry.get("_shape", entry.get("shape", _MISSING))
        if raw_shape is _MISSING:
            raise UnsafeZipError(f"the zip's {what} has no plain shape")
        shape = tuple(int(s) for s in _literal(raw_shape, f"{what}.shape"))
        if len(shape) > 8 or math.prod(shape) > MAX_SPACE_ELEMENTS or any(d <= 0 for d in shape):
            raise UserError(f"the zip's {what} has the shape {shape}, not one this loader rebuilds")
        dtype = _dtype(entry.get("dtype", "float32"), what)
        low = array_from_repr(entry.get("low"), shape, dtype, f"{what}.low")
        high = array_from_repr(entry.get("high"), shape, dtype, f"{what}.high")
        return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    if kind == "Discrete":
        n = int(_literal(entry.get("n"), f"{what}.n"))
        start = int(_literal(entry.get("start", 0), f"{what}.start"))
        if not 1 <= n <= MAX_ACTIONS:
            raise UserError(f"the zip's {what} has n = {n}, not a number of actions this loader rebuilds")
        dtype = _dtype(entry.get("dtype", "int64"), what)
        return spaces.Discrete(n, start=start, dtype=dtype)
    if kind == "MultiDiscrete":
        nvec_text = entry.get("nvec")
        tokens = re.sub(r"[\[\],]", " ", str(nvec_text)).split() if isinstance(nvec_text, str) else nvec_text
        if not tokens or "..." in tokens:
            raise UnsafeZipError(f"the zip's {what}.nvec is not in its plain fields")
        return spaces.MultiDiscrete(np.asarray([int(float(t)) for t in tokens], dtype=np.int64))
    if kind == "MultiBinary":
        n = _literal(entry.get("n"), f"{what}.n")
        return spaces.MultiBinary(n if isinstance(n, int) else [int(x) for x in n])
    raise UnsafeZipError(
        f"the zip's {what} is a {type_text or 'space of unknown type'}, which cannot be rebuilt from plain fields; "
        "pass --trust-remote-code if you trust where the file comes from"
    )


def is_old_zip(zip_path: str | Path, data: dict[str, Any]) -> str | None:
    """A description of why the zip is old (SB3 1.x, ``gym`` spaces), or None for a current one."""
    version = sb3_version(zip_path)
    gym_spaces = [key for key in ("observation_space", "action_space") if _is_gym_space(data.get(key))]
    if gym_spaces:
        return f"saved by SB3 {version or '1.x'} with gym spaces"
    if version is not None and re.match(r"^[01]\.", version):
        return f"saved by SB3 {version}"
    return None


def _is_gym_space(entry: Any) -> bool:
    return isinstance(entry, dict) and str(entry.get(":type:", "")).startswith("<class 'gym.")


def _warn_old(zip_path: Path, why: str) -> None:
    key = str(zip_path.resolve())
    if key in _warned_old:
        return
    _warned_old.add(key)
    warnings.warn(
        f"{zip_path} was {why}; its spaces and hyperparameters were rebuilt from the zip's plain fields "
        "(gym is not needed). Save it again with current SB3 to make this warning go away.",
        OldZipWarning,
        stacklevel=3,
    )


# ----------------------------------------------------------------------------------------------- policy kwargs


def policy_kwargs_from_plain(entry: Any) -> dict[str, Any]:
    """``policy_kwargs`` from plain fields: JSON values as they are, literals parsed, classes by allow-listed
    name (:data:`ALLOWED_KWARG_CLASSES`). An optimizer class off the list is dropped (the policy's default
    optimizer is used: its state is not loaded anyway); anything else unreadable raises :class:`UnsafeZipError`."""
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise UserError("the zip's policy_kwargs is not a mapping")
    kwargs: dict[str, Any] = {}
    for key, value in entry.items():
        if key in (":type:", ":serialized:"):
            continue
        if key == "device":  # SB3's own load drops it too
            continue
        class_match = _CLASS_REPR.fullmatch(value) if isinstance(value, str) else None
        if class_match is not None:
            dotted = class_match.group(1)
            allowed = ALLOWED_KWARG_CLASSES.get(key, frozenset())
            if dotted in allowed:
                kwargs[key] = _import_dotted(dotted)
            elif key == "optimizer_class":
                continue
            else:
                raise UnsafeZipError(
                    f"policy_kwargs[{key!r}] names {dotted}, which is not on the loader's allow-list; "
                    "pass --trust-remote-code if you trust where the file comes from"
                )
        elif key in ALLOWED_KWARG_CLASSES and isinstance(value, str):
            raise UnsafeZipError(f"policy_kwargs[{key!r}] = {value[:60]!r} is not a class reference")
        else:
            kwargs[key] = _literal(value, f"policy_kwargs[{key!r}]")
    # SB3 < 1.7 stored net_arch as [dict(...)]; SB3's own load converts it the same way.
    net_arch = kwargs.get("net_arch")
    if isinstance(net_arch, list) and net_arch and isinstance(net_arch[0], dict):
        kwargs["net_arch"] = net_arch[0]
    _check_sizes(kwargs)
    return kwargs


def _check_sizes(kwargs: dict[str, Any]) -> None:
    """The layer sizes ``policy_kwargs`` asks for, within :data:`MAX_LAYER_WIDTH` and :data:`MAX_LAYERS`."""
    net_arch = kwargs.get("net_arch")
    if isinstance(net_arch, dict):
        layers = [w for value in net_arch.values() for w in (value if isinstance(value, list) else [value])]
    else:
        layers = list(net_arch) if isinstance(net_arch, list) else []
    extractor = kwargs.get("features_extractor_kwargs")
    widths = [*layers, kwargs.get("n_quantiles", 1)]
    if isinstance(extractor, dict):
        widths.append(extractor.get("features_dim", 1))
    if len(layers) > MAX_LAYERS or not all(
        isinstance(w, int) and not isinstance(w, bool) and 0 < w <= MAX_LAYER_WIDTH for w in widths
    ):
        shown = str(net_arch)[:80]
        raise UserError(f"the zip's policy_kwargs ask for the layers {shown}: not a network this loader builds")


# ----------------------------------------------------------------------------------------------- the loaders


def _torch_load_member(
    archive: zipfile.ZipFile, name: str, device: Any, zip_path: Path, max_member_bytes: int = MAX_MEMBER_BYTES
) -> Any:
    import torch

    try:
        payload = read_member(archive, name, str(zip_path), max_member_bytes)
    except KeyError as exc:
        raise UserError(f"{zip_path} has no {name}: it is not a complete SB3 model zip") from exc
    try:
        return torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UnsafeZipError(
            f"{zip_path}: {name} holds more than tensors ({first}); refusing to unpickle it: "
            "pass --trust-remote-code if you trust where the file comes from"
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError, IndexError, TypeError,
            AttributeError, UnicodeDecodeError, MemoryError, RecursionError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UserError(f"{zip_path}: {name} is not readable ({exc.__class__.__name__}: {first})") from exc


def load_safely(
    zip_path: str | Path, device: str = "auto", max_member_bytes: int = MAX_MEMBER_BYTES
) -> BaseAlgorithm:
    """Load an SB3 DQN-family zip for inference without unpickling anything (see the module docstring).

    The zip's plain fields are a stranger's data: whatever they make fail while the agent is rebuilt ends as one
    :class:`UserError` line, never a traceback; sizes that would make the rebuilt network exhaust memory
    (:data:`MAX_SPACE_ELEMENTS`, :data:`MAX_ACTIONS`, :data:`MAX_LAYER_WIDTH`) are refused first.
    """
    try:
        return _load_safely(Path(zip_path), device, max_member_bytes)
    except UserError:
        raise
    except Exception as exc:  # reported in one line, with its type
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UserError(
            f"{zip_path}: the agent cannot be rebuilt from the zip's plain fields ({exc.__class__.__name__}: {first})"
        ) from exc


def _load_safely(zip_path: Path, device: str, max_member_bytes: int) -> BaseAlgorithm:
    import torch

    data = read_zip_data(zip_path, max_member_bytes)
    cls = algorithm_class(data)
    policy_cls = policy_class(data)
    observation_space = space_from_plain(data.get("observation_space"), "observation_space")
    action_space = space_from_plain(data.get("action_space"), "action_space")
    policy_kwargs = policy_kwargs_from_plain(data.get("policy_kwargs"))
    old = is_old_zip(zip_path, data)
    if old is not None:
        _warn_old(zip_path, old)

    model: Any = cls(policy=policy_cls, env=None, device=device, _init_setup_model=False)  # type: ignore[call-arg]
    default_policy_kwargs = dict(model.policy_kwargs or {})
    for key, value in data.items():
        # plain JSON only, never a name the class defines (a method or property) nor one the loader sets
        if key in _RESERVED_ATTRIBUTES or is_serialized(value) or hasattr(type(model), key) or not key.isidentifier():
            continue
        if isinstance(value, dict) and ":type:" in value:
            continue
        default = getattr(model, key, None)
        if default is not None and not _same_kind(default, value):
            raise UserError(
                f"{zip_path}: {key} = {str(value)[:60]!r} in the zip's data is not a {type(default).__name__}"
            )
        setattr(model, key, value)
    n_envs = model.n_envs if hasattr(model, "n_envs") else 1
    if not isinstance(n_envs, int) or not 1 <= n_envs <= 65536:
        raise UserError(f"{zip_path}: n_envs = {n_envs!r} in the zip's data is not a number of environments")
    model.n_envs = n_envs
    # NatureDQN's constructor put DeepMindRMSprop (and its constants) into policy_kwargs; keep them unless the
    # zip names its own optimizer.
    if "optimizer_class" not in policy_kwargs and "optimizer_class" in default_policy_kwargs:
        policy_kwargs["optimizer_class"] = default_policy_kwargs["optimizer_class"]
        policy_kwargs.setdefault("optimizer_kwargs", default_policy_kwargs.get("optimizer_kwargs"))
    model.observation_space = observation_space
    model.action_space = action_space
    model.policy_kwargs = policy_kwargs
    model.buffer_size = 1  # inference only: no replay memory (rl_zoo3.enjoy does the same)
    model.optimize_memory_usage = False
    model.replay_buffer_class = None
    model.replay_buffer_kwargs = {}
    try:
        model._setup_model()
    except (TypeError, ValueError, AssertionError, KeyError, RuntimeError, AttributeError) as exc:
        raise UserError(
            f"could not rebuild the agent of {zip_path} from its plain fields ({exc.__class__.__name__}: {exc}); "
            "pass --trust-remote-code to load it with SB3's own loader if you trust the file"
        ) from exc

    with open_zip(zip_path, max_member_bytes) as archive:
        state = _torch_load_member(archive, "policy.pth", model.device, zip_path, max_member_bytes)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise UserError(f"{zip_path}: policy.pth is not a state dict of tensors")
        try:
            model.policy.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise UserError(
                f"{zip_path}: the weights do not fit the network rebuilt from the zip's plain fields "
                f"({' '.join(line.strip() for line in first[:2])})"
            ) from exc
        names = set(archive.namelist())
        _, torch_variables = model._get_torch_save_params()
        if torch_variables and "pytorch_variables.pth" in names:
            variables = _torch_load_member(archive, "pytorch_variables.pth", model.device, zip_path, max_member_bytes)
            for name in torch_variables:
                if isinstance(variables, dict) and name in variables:
                    _set_tensor_attribute(model, name, variables[name])
    model.policy.set_training_mode(False)
    return model


def _same_kind(default: Any, value: Any) -> bool:
    """Whether a plain ``data`` value can stand where the class's own default is (numbers for numbers, ...)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and (
            isinstance(value, int) or not isinstance(default, int) or float(value).is_integer()
        )
    for kind in (str, dict):
        if isinstance(default, kind):
            return isinstance(value, kind)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return True


def _set_tensor_attribute(model: Any, name: str, value: Any) -> None:
    import torch

    if not isinstance(value, torch.Tensor):
        return
    target: Any = model
    *parents, last = name.split(".")
    for part in parents:
        target = getattr(target, part)
    current = getattr(target, last, None)
    if isinstance(current, torch.Tensor):
        with torch.no_grad():
            current.copy_(value)
    else:
        setattr(target, last, value)


def load_trusted(
    zip_path: str | Path, device: str = "auto", max_member_bytes: int = MAX_MEMBER_BYTES
) -> BaseAlgorithm:
    """SB3's own ``cls.load`` (unpickles the zip; only for files you trust), for inference like
    :func:`load_safely` (``buffer_size=1``). ``gym`` spaces are replaced by the rebuilt ones when ``gym`` is
    not installed. The members' declared sizes are checked first (SB3 reads them whole)."""
    import importlib.util

    zip_path = Path(zip_path)
    data = read_zip_data(zip_path, max_member_bytes)
    cls = algorithm_class(data)
    custom_objects: dict[str, Any] = {}
    old = is_old_zip(zip_path, data)
    if old is not None and importlib.util.find_spec("gym") is None:
        for key in ("observation_space", "action_space"):
            if _is_gym_space(data.get(key)):
                custom_objects[key] = space_from_plain(data[key], key)
        _warn_old(zip_path, old)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Could not deserialize object", category=UserWarning)
            return cls.load(
                zip_path,
                device=device,
                custom_objects=custom_objects or None,
                buffer_size=1,
                optimize_memory_usage=False,
            )
    except Exception as exc:  # SB3's loader unpickles: whatever the zip's pickles raise, one line
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UserError(f"could not load {zip_path}: {exc.__class__.__name__}: {first}") from exc


def load_agent(
    path: str | Path,
    device: str = "auto",
    env_id: str | None = None,
    trust_remote_code: bool = False,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> tuple[BaseAlgorithm, ModelSource]:
    """Load the agent at ``path`` (zip or rl-zoo3 run folder) with the class that saved it.

    The folder (or the zip and its rl-zoo3 files) is checked first (:func:`resolve_model`). By default nothing
    in the zip is unpickled (:func:`load_safely`); ``trust_remote_code=True`` uses SB3's own loader
    (:func:`load_trusted`), which runs the zip's pickles, and rl-zoo3's YAML reader.
    """
    source = resolve_model(path, env_id, trust_remote_code, max_member_bytes)
    loader: Callable[[str | Path, str, int], BaseAlgorithm] = load_trusted if trust_remote_code else load_safely
    return loader(source.zip_path, device, max_member_bytes), source
