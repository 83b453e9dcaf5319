"""What ``python -m sb3_dqn_atari.train --resume`` unpickles without ``--trust-remote-code``: only what this
project's own checkpoints hold, checked twice.

A checkpoint folder (:mod:`sb3_dqn_atari.checkpoint`) is a file people pass around (preemptible jobs, a
colleague's run), and three of its parts are pickles: ``training_state.pkl`` (RNG, env and callback states),
``replay_buffer.pkl`` and the pickled fields of ``model.zip``'s ``data`` member (SB3 cloudpickles them, base64).
Unpickling calls whatever globals a pickle names. Resuming from a stranger's checkpoint therefore goes through
two guards that admit the same globals, :data:`CHECKPOINT_GLOBALS`:

1. :func:`check_checkpoint`, before anything is unpickled and before the command creates its run folder, reads
   every pickle with :func:`sb3_dqn_atari.common.pickle_check.check_pickle` (:mod:`pickletools` lists the opcodes,
   nothing runs), which also checks what each global is used for (called, instantiated, passed, only held);
2. the loads themselves, inside :func:`checked_loading` (``train --resume`` without ``--trust-remote-code``), go
   through :class:`CheckpointUnpickler`, whose ``find_class`` returns nothing else: :func:`load_pickle` (the
   training state), :func:`load_replay_buffer`, and :func:`load_model`, which unpickles the zip's fields this
   way and hands them to SB3's ``load`` as ``custom_objects``, so that SB3 unpickles nothing (it reads the
   weights and optimizer state with ``torch.load(weights_only=True)``).

:data:`CHECKPOINT_GLOBALS` is exactly the globals that this project's checkpoints name (``tests/
test_resume_pickles.py`` writes them and compares): an Atari run of ``hyperparams/dqn.yml`` (NatureAtariWrapper,
FrameReplayBuffer, the paper-protocol evaluation callback), one of ``hyperparams/dqn_improved.yml`` (dueling
network, Adam, prioritized replay with its sum tree, n-step returns), one of ``hyperparams/dqn_nips2013.yml``
(the NIPS network) and a CartPole run (``MlpPolicy``, SB3's ``ReplayBuffer``), each written by the
``python -m sb3_dqn_atari.train`` command with its callbacks. A checkpoint of anything else (a custom env,
wrapper or callback of your own) resumes with ``--trust-remote-code``.

One substitution: torch pickles a tensor's storage (the torch RNG state) as
``torch.storage._load_from_bytes(<bytes>)``, which runs ``torch.load(weights_only=False)`` on the bytes; here
that name resolves to :func:`_load_storage_weights_only` (torch's own restricted unpickler: tensors and plain
containers only).

What the guards do not cover: the values themselves (a checkpoint can still hold wrong counters or weights, as
any file can), and the ALE's own parser of the emulator state it restores (C++, part of ale_py).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sb3_dqn_atari._legacy import old_name
from sb3_dqn_atari.common.errors import UserError, one_line
from sb3_dqn_atari.common.pickle_check import AllowList, UnsafePickleError, check_pickle
from sb3_dqn_atari.common.sources import resolve

_NUMPY_CORE = "numpy._core"
#: a checkpoint folder's pickles (:mod:`sb3_dqn_atari.checkpoint.store` writes them)
MODEL_FILE = "model.zip"
BUFFER_FILE = "replay_buffer.pkl"
STATE_FILE = "training_state.pkl"

#: What this project's checkpoints name, by role (see :class:`~sb3_dqn_atari.common.pickle_check.AllowList`).
CHECKPOINT_GLOBALS = AllowList(
    calls=frozenset(
        {
            # numpy arrays, scalars and dtypes (protocol 5: the array's bytes, then _frombuffer)
            (f"{_NUMPY_CORE}.numeric", "_frombuffer"),
            (f"{_NUMPY_CORE}.multiarray", "scalar"),
            ("numpy", "dtype"),
            # numpy random generators (env, space and evaluation RNGs), with their seed sequences
            ("numpy.random._pickle", "__generator_ctor"),
            ("numpy.random._pickle", "__bit_generator_ctor"),
            ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
            # torch's RNG state (a uint8 tensor) and the replay memory's device
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch.storage", "_load_from_bytes"),  # resolved to a weights_only load (module docstring)
            ("torch", "device"),
            # containers: the evaluation callback's dicts, SB3's episode-info deques
            ("collections", "OrderedDict"),
            ("collections", "deque"),
            # enums: the ALE's minimal action set, SB3's train_freq unit
            ("ale_py._ale_py", "Action"),
            ("stable_baselines3.common.type_aliases", "TrainFrequencyUnit"),
        }
    ),
    classes=frozenset(
        {
            ("gymnasium.spaces.box", "Box"),
            ("gymnasium.spaces.discrete", "Discrete"),
            ("gymnasium.envs.registration", "EnvSpec"),
            ("gymnasium.envs.registration", "WrapperSpec"),
            ("ale_py._ale_py", "ALEState"),  # the emulator, cloneState(include_rng=True)
            ("stable_baselines3.common.vec_env.stacked_observations", "StackedObservations"),
            ("stable_baselines3.common.buffers", "ReplayBuffer"),
            ("sb3_dqn_atari.agent.replay", "FrameReplayBuffer"),
            ("sb3_dqn_atari.agent.prioritized", "PrioritizedFrameReplayBuffer"),
            ("sb3_dqn_atari.agent.sum_tree", "SumTree"),
            ("stable_baselines3.common.utils", "ConstantSchedule"),
            ("stable_baselines3.common.utils", "FloatSchedule"),
            ("stable_baselines3.common.utils", "LinearSchedule"),
            ("stable_baselines3.common.type_aliases", "TrainFreq"),
            # the paper-protocol evaluation callback's results and settings
            ("sb3_dqn_atari.evaluation.protocol", "EvalResult"),
            ("sb3_dqn_atari.atari.envs", "EpisodeResult"),
            ("sb3_dqn_atari.atari.protocols", "EvalEnvInfo"),
            ("sb3_dqn_atari.atari.spec", "PreprocessingSpec"),
            ("sb3_dqn_atari.atari.protocols", "Protocol"),
        }
    ),
    passed=frozenset({("numpy.random._pcg64", "PCG64"), ("numpy.random.bit_generator", "SeedSequence")}),
    stored=frozenset(
        {
            # model.zip's policy_class and policy_kwargs' optimizer_class: names only, never called by the pickle
            ("sb3_dqn_atari.agent.policies", "MlpPolicy"),
            ("sb3_dqn_atari.agent.policies", "CnnPolicy"),
            ("sb3_dqn_atari.agent.policies", "NipsCnnPolicy"),
            ("sb3_dqn_atari.agent.dueling", "DuelingCnnPolicy"),
            ("sb3_dqn_atari.agent.optim", "DeepMindRMSprop"),
            ("torch.optim.adam", "Adam"),
        }
    ),
)


#: this package's modules that kept their names as packages in the layering, and evaluation.protocol, whose
#: EpisodeResult moved to atari.envs (issue 15); they re-export what they held
_KEPT = ("sb3_dqn_atari.evaluation", "sb3_dqn_atari.checkpoint", "sb3_dqn_atari.zoo", "sb3_dqn_atari.loading",
         "sb3_dqn_atari.evaluation.protocol")


def _before_the_layers(names: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """``names`` and each of this package's globals as a checkpoint written before the layering names it (issue 13):
    in its retired module (``sb3_dqn_atari.replay``: :mod:`sb3_dqn_atari._legacy`) or in the module, now a package,
    that re-exports it (``sb3_dqn_atari.evaluation.EvalEnvInfo``; found in the sources). The same classes."""
    old = set(names)
    for module, name in names:
        if module.startswith("sb3_dqn_atari."):
            old.add((old_name(module), name))
            old |= {(kept, name) for kept in _KEPT if resolve(kept, name).target == f"{module}.{name}"}
    return frozenset(old)


#: :data:`CHECKPOINT_GLOBALS` as the checks and the unpickler admit them: today's names and the earlier ones
ADMITTED = AllowList(*(_before_the_layers(getattr(CHECKPOINT_GLOBALS, f.name)) for f in dataclasses.fields(AllowList)))
_NAMES = ADMITTED.names()
_TRUST_HINT = "not resumed (use --trust-remote-code for checkpoints you trust)"
_checked: contextvars.ContextVar[bool] = contextvars.ContextVar("sb3_dqn_atari_checked_loading", default=False)


def _refusal(source: str, exc: UnsafePickleError) -> UnsafePickleError:
    """The one line of a refusal: the global it would import (or what else is wrong), and the way past."""
    if exc.name is not None:
        return UnsafePickleError(f"{source} would run code when unpickled ({exc.name}); {_TRUST_HINT}", exc.name)
    return UnsafePickleError(f"{source} cannot be checked ({exc.reason}); {_TRUST_HINT}", None, exc.reason)


def _load_storage_weights_only(data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` with torch's restricted unpickler (tensors and containers only)."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


class CheckpointUnpickler(pickle.Unpickler):
    """An unpickler that imports only :data:`CHECKPOINT_GLOBALS` (persistent ids are refused by ``pickle``)."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NAMES:
            raise _refusal(self.source, UnsafePickleError(f"names {module}.{name}", f"{module}.{name}"))
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _load_storage_weights_only
        return super().find_class(module, name)


def _unpickle(file: Any, source: str) -> Any:
    try:
        return CheckpointUnpickler(file, source).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # a pickle the static check passed but that does not load: corrupted
        why = one_line(f"{exc.__class__.__name__}: {exc}", 200)
        raise UserError(f"{source} is not a readable checkpoint pickle ({why}); {_TRUST_HINT}") from exc


# ------------------------------------------------------------------------------------------ static check
def _zip_pickles(zip_path: Path) -> dict[str, bytes]:
    """The pickled fields of an SB3 zip's ``data`` member, decoded (nothing unpickled)."""
    from sb3_dqn_atari.loading.zipdata import is_serialized, read_zip_data, serialized_pickle

    pickles = {}
    for key, value in read_zip_data(zip_path).items():
        if not is_serialized(value):
            continue
        try:
            pickles[key] = serialized_pickle(value)
        except ValueError as exc:
            raise UserError(f"{zip_path}: the data field {key!r} is not base64 ({exc}); {_TRUST_HINT}") from exc
    return pickles


def check_pickle_file(path: Path) -> list[str]:
    """Check one pickle file of a checkpoint against :data:`CHECKPOINT_GLOBALS`; return the globals it names.

    :raises UnsafePickleError: ``<file> would run code when unpickled (<module.name>); not resumed (...)``
    """
    try:
        with open(path, "rb") as f:
            return check_pickle(f, str(path), ADMITTED)
    except UnsafePickleError as exc:
        raise _refusal(str(path), exc) from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc


def check_model_zip(path: Path) -> list[str]:
    """Check every pickled field of the checkpoint's ``model.zip`` against :data:`CHECKPOINT_GLOBALS`; return
    the globals they name."""
    named = []
    for key, raw in _zip_pickles(path).items():
        try:
            named += check_pickle(raw, f"{path} (data field {key!r})", ADMITTED)
        except UnsafePickleError as exc:
            raise _refusal(str(path), exc) from None
    return named


def check_checkpoint(folder: str | Path) -> list[str]:
    """Check every pickle of the checkpoint ``folder`` (model, replay memory, training state) before anything
    of it is unpickled; return the globals they name.

    :raises UnsafePickleError: for the first one that names or calls more than this project's checkpoints
    """
    folder = Path(folder)
    named = check_model_zip(folder / MODEL_FILE) if (folder / MODEL_FILE).is_file() else []
    for name in (BUFFER_FILE, STATE_FILE):
        if (folder / name).is_file():
            named += check_pickle_file(folder / name)
    return named


# ------------------------------------------------------------------------------------------------ loading
@contextlib.contextmanager
def checked_loading(enabled: bool = True) -> Iterator[None]:
    """While active (and ``enabled``), :func:`load_pickle`, :func:`load_replay_buffer` and :func:`load_model`
    check each pickle and unpickle it with :class:`CheckpointUnpickler`; outside it they load as SB3 does
    (``python -m sb3_dqn_atari.train --resume`` without ``--trust-remote-code`` runs inside it)."""
    token = _checked.set(enabled)
    try:
        yield
    finally:
        _checked.reset(token)


def load_pickle(path: str | Path) -> Any:
    """Unpickle the checkpoint file ``path`` (checked, restricted, inside :func:`checked_loading`)."""
    checked = _checked.get()
    if checked:
        check_pickle_file(Path(path))
    with open(path, "rb") as f:
        return _unpickle(f, str(path)) if checked else pickle.load(f)


def load_replay_buffer(model: Any, path: str | Path) -> None:
    """``model.load_replay_buffer(path)``; inside :func:`checked_loading` the pickle is checked and unpickled
    here, then set as SB3's method sets it (the model's device: SB3 GH#1561)."""
    from stable_baselines3.common.buffers import ReplayBuffer

    if not _checked.get():
        model.load_replay_buffer(path)
        return
    buffer = load_pickle(path)
    if not isinstance(buffer, ReplayBuffer):
        raise UserError(f"{path} holds a {type(buffer).__name__}, not a replay buffer")
    model.replay_buffer = buffer
    model.replay_buffer.device = model.device


def load_model(cls: Any, path: str | Path, **kwargs: Any) -> Any:
    """``cls.load(path, **kwargs)``; inside :func:`checked_loading` the zip's pickled fields are checked and
    unpickled here and given to SB3 as ``custom_objects`` (SB3 then unpickles none of them)."""
    if _checked.get():
        path = Path(path)
        check_model_zip(path)
        objects = {key: _unpickle(io.BytesIO(raw), str(path)) for key, raw in _zip_pickles(path).items()}
        kwargs["custom_objects"] = {**objects, **(kwargs.get("custom_objects") or {})}
    return cls.load(path, **kwargs)
