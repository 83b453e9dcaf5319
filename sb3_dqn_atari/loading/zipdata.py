"""Reading an agent zip's plain fields without unpickling: the JSON ``data`` member, the policy and algorithm class
from their pickled references (read as text), the spaces and ``policy_kwargs`` rebuilt from plain values."""

from __future__ import annotations

import ast
import base64
import json
import math
import pickletools
import pkgutil
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb3_dqn_atari.common.bounded_zip import MAX_MEMBER_BYTES, open_zip, read_member
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.pickle_check import ALLOWED_KWARG_CLASSES, ALLOWED_POLICIES

if TYPE_CHECKING:
    from gymnasium import spaces
    from stable_baselines3.common.base_class import BaseAlgorithm



#: Attributes of the model that the plain ``data`` fields must never set (the loader sets them itself).
RESERVED_ATTRIBUTES = frozenset(
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

class UnsafeZipError(UserError):
    """The zip cannot be loaded from its plain fields alone; only ``--trust-remote-code`` (unpickling) would do."""


def unpicklable(why: str) -> UnsafeZipError:
    """An :class:`UnsafeZipError` saying ``why`` (ending in ``;`` or ``:``), then the way past."""
    return UnsafeZipError(f"{why} pass --trust-remote-code if you trust where the file comes from")


class OldZipWarning(UserWarning):
    """The zip was written by SB3 1.x (``gym`` spaces); it was loaded from its plain fields."""



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


def serialized_pickle(value: dict[str, Any]) -> bytes:
    """The pickle of a cloudpickled ``data`` entry (base64 in its ``":serialized:"``); ``ValueError`` (binascii's
    and unicode's errors are ones) when that is not base64."""
    return base64.b64decode(str(value[":serialized:"]).encode("ascii"), validate=True)


def pickled_class_reference(serialized: str) -> tuple[str, str] | None:
    """``(module, qualname)`` if the base64 pickle is nothing but a reference to a global (a class pickled by
    name), else None. The opcodes are only listed (:func:`pickletools.genops`), never executed."""
    try:
        raw = serialized_pickle({":serialized:": serialized})
    except ValueError:
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
        raise unpicklable(f"the zip's policy class ({module or 'unknown module'}) is not a plain class reference; "
                          "it can only be loaded by unpickling:")
    if module and reference[0] != module:
        raise unpicklable(f"the zip's policy class is recorded as {module} but pickled as "
                          f"{reference[0]}.{reference[1]}; refusing to guess:")
    return reference


def algorithm_class(data: dict[str, Any]) -> type[BaseAlgorithm]:
    """The algorithm that saved a zip, from the module of its pickled policy class (read as plain text)."""
    entry = data.get("policy_class")
    module = str(entry.get("__module__", "")) if isinstance(entry, dict) else ""
    if not module and isinstance(entry, dict):
        module = (pickled_class_reference(str(entry.get(":serialized:", ""))) or ("",))[0]
    if module in ALLOWED_POLICIES:
        return pkgutil.resolve_name(ALLOWED_POLICIES[module][0])
    raise UserError(f"the zip's policy ({module or 'unknown'}) is not DQN, NatureDQN or QR-DQN; pass one of those")


def policy_class(data: dict[str, Any]) -> type:
    """The zip's policy class, imported only when it is on the allow-list (:data:`ALLOWED_POLICIES`)."""
    module, name = policy_class_name(data)
    allowed = ALLOWED_POLICIES.get(module)
    if allowed is None or name not in allowed[1]:
        raise unpicklable(f"the zip's policy class {module}.{name} is not one this loader knows "
                          f"({', '.join(ALLOWED_POLICIES)});")
    return pkgutil.resolve_name(f"{module}.{name}")


# ------------------------------------------------------------------------------------------------- the spaces


def _literal(value: Any, what: str) -> Any:
    """A JSON value as is, a ``repr`` string of a Python literal parsed (never evaluated as code)."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise unpicklable(f"{what} = {value[:80]!r} cannot be read without unpickling;") from exc


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
    raise unpicklable(
        f"the zip's {what} is a {type_text or 'space of unknown type'}, which cannot be rebuilt from plain fields;"
    )


def is_old_zip(zip_path: str | Path, data: dict[str, Any]) -> str | None:
    """A description of why the zip is old (SB3 1.x, ``gym`` spaces), or None for a current one."""
    version = sb3_version(zip_path)
    gym_spaces = [key for key in ("observation_space", "action_space") if is_gym_space(data.get(key))]
    if gym_spaces:
        return f"saved by SB3 {version or '1.x'} with gym spaces"
    if version is not None and re.match(r"^[01]\.", version):
        return f"saved by SB3 {version}"
    return None


def is_gym_space(entry: Any) -> bool:
    return isinstance(entry, dict) and str(entry.get(":type:", "")).startswith("<class 'gym.")


def warn_old(zip_path: Path, why: str) -> None:
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
        if key in (":type:", ":serialized:", "device"):  # device: SB3's own load drops it too
            continue
        class_match = _CLASS_REPR.fullmatch(value) if isinstance(value, str) else None
        if class_match is not None:
            dotted = class_match.group(1)
            allowed = ALLOWED_KWARG_CLASSES.get(key, frozenset())
            if dotted in allowed:
                kwargs[key] = pkgutil.resolve_name(dotted)
            elif key == "optimizer_class":
                continue
            else:
                raise unpicklable(f"policy_kwargs[{key!r}] names {dotted}, which is not on the loader's allow-list;")
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
