"""The loaders: :func:`load_agent` (safe by default, see :mod:`sb3_dqn_atari.loading`), :func:`load_safely` and
:func:`load_trusted`."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb3_dqn_atari.common.bounded_zip import MAX_MEMBER_BYTES, open_zip, read_member
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.loading.source import ModelSource, resolve_model
from sb3_dqn_atari.loading.zipdata import (
    RESERVED_ATTRIBUTES,
    algorithm_class,
    is_gym_space,
    is_old_zip,
    is_serialized,
    policy_class,
    policy_kwargs_from_plain,
    read_zip_data,
    space_from_plain,
    unpicklable,
    warn_old,
)

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


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
        raise unpicklable(f"{zip_path}: {name} holds more than tensors ({first}); refusing to unpickle it:") from exc
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


def _set_plain_fields(model: Any, data: dict[str, Any], zip_path: Path) -> None:
    """The zip's plain JSON fields as the model's attributes: never a name the class defines (a method or
    property) nor one the loader sets, and each of the kind of the class's own default."""
    for key, value in data.items():
        if key in RESERVED_ATTRIBUTES or is_serialized(value) or hasattr(type(model), key) or not key.isidentifier():
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


def _load_weights(model: Any, zip_path: Path, max_member_bytes: int) -> None:
    """``policy.pth`` with ``torch.load(weights_only=True)``, into the model (DQN, NatureDQN and QR-DQN save no
    ``pytorch_variables.pth``: their ``_get_torch_save_params`` lists no variable)."""
    import torch

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


def _load_safely(zip_path: Path, device: str, max_member_bytes: int) -> BaseAlgorithm:
    """The agent rebuilt from the zip's plain fields (see the package docstring), its weights loaded."""
    data = read_zip_data(zip_path, max_member_bytes)
    cls = algorithm_class(data)
    policy_cls = policy_class(data)
    observation_space = space_from_plain(data.get("observation_space"), "observation_space")
    action_space = space_from_plain(data.get("action_space"), "action_space")
    policy_kwargs = policy_kwargs_from_plain(data.get("policy_kwargs"))
    old = is_old_zip(zip_path, data)
    if old is not None:
        warn_old(zip_path, old)

    model: Any = cls(policy=policy_cls, env=None, device=device, _init_setup_model=False)  # type: ignore[call-arg]
    default_policy_kwargs = dict(model.policy_kwargs or {})
    _set_plain_fields(model, data, zip_path)
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
    _load_weights(model, zip_path, max_member_bytes)
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
    for kind in (str, dict, (list, tuple)):
        if isinstance(default, kind):
            return isinstance(value, kind)
    return True


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
            if is_gym_space(data.get(key)):
                custom_objects[key] = space_from_plain(data[key], key)
        warn_old(zip_path, old)
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
