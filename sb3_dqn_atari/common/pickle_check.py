"""What a pickle would import and call, read with :mod:`pickletools` (the opcodes are listed, nothing is run).

Unpickling runs code: a pickle names globals (``module.name``, imported) and calls some of them (``REDUCE``:
``f(*args)``; ``NEWOBJ``: ``cls.__new__(cls, *args)`` then ``BUILD``: ``obj.__setstate__(state)``). The pickles
SB3 2.x writes into a model zip's ``data`` (spaces, schedules, numpy arrays and random generators, ``deque``\\ s)
and into ``vecnormalize.pkl`` use a small, known set of them. :func:`check_pickle` follows the pickle machine's
stack (strings, the memo, marks) to see which global each ``STACK_GLOBAL`` names and what each ``REDUCE`` /
``NEWOBJ`` calls, and accepts the pickle only if

* every callable it calls is one of :data:`CALLABLES` (numpy's array, dtype, scalar and random-generator
  constructors, ``collections.deque``/``OrderedDict``, ``set``/``frozenset``, SB3's ``TrainFrequencyUnit`` enum),
* every class it instantiates is one of :data:`CLASSES` (gymnasium spaces, SB3's schedules, ``TrainFreq``,
  ``VecNormalize``, ``RunningMeanStd``, rl-zoo3's ``SimpleLinearSchedule``), whose ``__setstate__`` only
  stores values,
* every other global it names is one of those, a numpy bit-generator class, or a class of an allowed package
  (:func:`sb3_dqn_atari.common.trust.check_class_name`: a policy class, a replay buffer class, an optimizer
  class of ``torch.optim`` or of the safe loader's :data:`ALLOWED_KWARG_CLASSES`); such a class may be
  stored, never passed to a call (numpy's generator constructors call what they are given),

and it uses no extension registry, persistent id, out-of-band buffer or protocol-0/1 instantiation. Pickled
functions (cloudpickle writes a function's code; SB3 1.x zips hold such schedules) are refused: their code
would run.

Another set of globals, by the same roles, is an :class:`AllowList` (:data:`PLAIN_DATA` is the one above;
:mod:`sb3_dqn_atari.checkpoint.resume_check` has the one of this project's training checkpoints). A pickle can also
be read from a file: byte strings longer than :data:`SKIP_BYTES` (a replay memory's frames) are then skipped, not read,
since nothing in them is a name or a call.
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from sb3_dqn_atari._legacy import old_name, with_old_names
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.sources import UntrustedError, check_class_name

#: Policy classes a zip may name, by module: the algorithm each module belongs to and the class names allowed
#: (this package's modules under their names before and after the layering, :mod:`sb3_dqn_atari._legacy`).
_POLICIES: dict[str, tuple[str, frozenset[str]]] = {
    "stable_baselines3.dqn.policies": (
        "stable_baselines3.DQN",
        frozenset({"DQNPolicy", "MlpPolicy", "CnnPolicy", "MultiInputPolicy"}),
    ),
    "sb3_dqn_atari.agent.policies": (
        "sb3_dqn_atari.agent.dqn.NatureDQN",
        frozenset({"MlpPolicy", "CnnPolicy", "MultiInputPolicy", "NipsCnnPolicy"}),
    ),
    "sb3_dqn_atari.agent.dueling": ("sb3_dqn_atari.agent.dqn.NatureDQN", frozenset({"DuelingCnnPolicy",
                                                                                   "DuelingMlpPolicy"})),
    "sb3_contrib.qrdqn.policies": (
        "sb3_contrib.QRDQN",
        frozenset({"QRDQNPolicy", "MlpPolicy", "CnnPolicy", "MultiInputPolicy"}),
    ),
}
ALLOWED_POLICIES = {**_POLICIES, **{old_name(m): v for m, v in _POLICIES.items()}}

#: Classes ``policy_kwargs`` may name (dotted path as ``str(cls)`` prints it), by the keyword that takes them.
_KWARG_CLASSES: dict[str, frozenset[str]] = {
    "features_extractor_class": frozenset(
        {
            "stable_baselines3.common.torch_layers.NatureCNN",
            "stable_baselines3.common.torch_layers.FlattenExtractor",
            "stable_baselines3.common.torch_layers.CombinedExtractor",
            "sb3_dqn_atari.agent.networks.NipsCNN",
            "sb3_dqn_atari.agent.networks.NatureTorso",
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
            "sb3_dqn_atari.agent.optim.DeepMindRMSprop",
            "stable_baselines3.common.sb2_compat.rmsprop_tf_like.RMSpropTFLike",
        }
    ),
}
ALLOWED_KWARG_CLASSES = {key: with_old_names(names) for key, names in _KWARG_CLASSES.items()}


CALLABLES: frozenset[tuple[str, str]] = frozenset(
    [(m, "_reconstruct") for m in ("numpy.core.multiarray", "numpy._core.multiarray")]
    + [(m, "scalar") for m in ("numpy.core.multiarray", "numpy._core.multiarray")]
    + [(m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")]
    + [("numpy", "dtype")]
    + [("numpy.random._pickle", n) for n in ("__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor")]
    + [("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence")]
    + [("collections", "deque"), ("collections", "OrderedDict")]
    + [("builtins", n) for n in ("set", "frozenset", "complex", "slice", "bytearray")]
    + [("stable_baselines3.common.type_aliases", "TrainFrequencyUnit")]
)
CLASSES: frozenset[tuple[str, str]] = frozenset(
    [(f"gymnasium.spaces.{m}", c) for m, c in (("box", "Box"), ("discrete", "Discrete"), ("dict", "Dict"),
                                                ("multi_discrete", "MultiDiscrete"), ("tuple", "Tuple"),
                                                ("multi_binary", "MultiBinary"))]
    + [("stable_baselines3.common.utils", c) for c in ("ConstantSchedule", "FloatSchedule", "LinearSchedule")]
    + [("stable_baselines3.common.type_aliases", "TrainFreq")]
    + [("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize")]
    + [("stable_baselines3.common.running_mean_std", "RunningMeanStd")]
    + [("rl_zoo3.utils", "SimpleLinearSchedule")]
)
REFERENCES: frozenset[tuple[str, str]] = (
    CALLABLES
    | CLASSES
    | {("numpy", "ndarray"), ("numpy.random.bit_generator", "SeedSequence")}
    | {(f"numpy.random._{m}", c) for m, c in (("pcg64", "PCG64"), ("pcg64", "PCG64DXSM"), ("mt19937", "MT19937"),
                                               ("philox", "Philox"), ("sfc64", "SFC64"))}
)
#: byte strings longer than this are skipped (seeked over) when a pickle is checked from a file
SKIP_BYTES = 1 << 20


@dataclass(frozen=True)
class AllowList:
    """The globals a pickle may name, by what it may do with them.

    :param calls: callables it may call (``REDUCE``)
    :param classes: classes it may instantiate (``NEWOBJ``, then ``BUILD`` sets the state)
    :param passed: other globals it may hold or pass to one of ``calls``/``classes``
    :param stored: classes it may only hold (never pass to a call, nor set into an object's state); ``None``: any
        class of an allowed package (:func:`sb3_dqn_atari.common.trust.check_class_name`)
    """

    calls: frozenset[tuple[str, str]]
    classes: frozenset[tuple[str, str]]
    passed: frozenset[tuple[str, str]]
    stored: frozenset[tuple[str, str]] | None = None

    def names(self) -> frozenset[tuple[str, str]]:
        """Every global the list admits (what a restricted ``find_class`` may return)."""
        return self.calls | self.classes | self.passed | (self.stored or frozenset())


#: plain data (the module docstring): SB3 zips' ``data`` pickles and ``vecnormalize.pkl``
PLAIN_DATA = AllowList(CALLABLES, CLASSES, REFERENCES - CALLABLES - CLASSES)
_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_REFUSED = {
    "INST": "an old-style instantiation (INST)",
    "OBJ": "an old-style instantiation (OBJ)",
    "EXT1": "the extension registry",
    "EXT2": "the extension registry",
    "EXT4": "the extension registry",
    "PERSID": "a persistent id",
    "BINPERSID": "a persistent id",
    "NEXT_BUFFER": "an out-of-band buffer",
}
_MARK = ("mark", None, False)


class UnsafePickleError(UserError):
    """A pickle that would import or call more than plain data needs.

    :param name: the ``module.name`` of the global it was refused for (``None``: refused for its structure)
    :param reason: what it would do, without the file's name
    """

    def __init__(self, message: str, name: str | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason or message


class _Hole(bytes):
    """What :class:`_SkippingReader` returns for a byte string it skipped: empty, but as long as the string."""

    size: int

    def __new__(cls, size: int) -> _Hole:
        hole = super().__new__(cls)
        hole.size = size
        return hole

    def __len__(self) -> int:
        return self.size

    def decode(self, *args: Any, **kwargs: Any) -> str:
        raise ValueError("a string too long to check")


class _SkippingReader:
    """A pickle file for :func:`pickletools.genops` that seeks over long byte strings instead of reading them."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.end = file.seek(0, io.SEEK_END)
        file.seek(0)

    def read(self, n: int = -1) -> bytes:
        if 0 <= n <= SKIP_BYTES:
            return self.file.read(n)
        if n < 0 or self.file.tell() + n > self.end:
            raise EOFError("the pickle ends inside a byte string")
        self.file.seek(n, io.SEEK_CUR)
        return _Hole(n)

    def readline(self) -> bytes:
        return self.file.readline(SKIP_BYTES)

    def tell(self) -> int:
        return self.file.tell()


def _class_reference_ok(module: str, name: str) -> bool:
    try:
        check_class_name(f"{module}.{name}", "a pickled reference", "")
    except UntrustedError:
        return False
    return True


class _Machine:
    """The pickle machine's stack, followed opcode by opcode without running anything (:func:`check_pickle`).

    Each stack entry is ``(kind, value, tainted)``: ``kind`` ``str`` (a string constant), ``global`` (one of
    ``allowed``'s calls, classes or passed globals), ``class`` (a class it may only store: never passed to a
    call, since numpy's generator constructors call what they are given), ``obj`` (anything else);
    ``tainted`` when the value holds a ``class`` entry.
    """

    def __init__(self, source: str, allowed: AllowList) -> None:
        self.source, self.allowed = source, allowed
        self.stack: list[tuple[str, Any, bool]] = []
        self.memo: dict[int, tuple[str, Any, bool]] = {}
        self.named: list[str] = []
        self.referenced = allowed.calls | allowed.classes | allowed.passed

    def fail(self, why: str, name: str | None = None) -> UnsafePickleError:
        return UnsafePickleError(f"{self.source} {why}; not unpickled", name, why)

    def pop(self) -> tuple[str, Any, bool]:
        if not self.stack or self.stack[-1] is _MARK:
            raise self.fail("is not a well-formed pickle (stack underflow)")
        return self.stack.pop()

    def pop_mark(self) -> bool:
        tainted = False
        while self.stack:
            entry = self.stack.pop()
            if entry is _MARK:
                return tainted
            tainted = tainted or entry[2]
        raise self.fail("is not a well-formed pickle (no mark)")

    def global_(self, module: Any, name: Any) -> tuple[str, Any, bool]:
        if not isinstance(module, str) or not isinstance(name, str):
            raise self.fail("computes the name of a global it imports")
        self.named.append(f"{module}.{name}")
        if (module, name) in self.referenced:
            return ("global", (module, name), False)
        stored = self.allowed.stored
        if _class_reference_ok(module, name) if stored is None else (module, name) in stored:
            return ("class", (module, name), True)
        raise self.fail(f"names {module}.{name}, which is not plain data this project reads", f"{module}.{name}")

    def call(self, callables: frozenset[tuple[str, str]], arguments: tuple[str, Any, bool]) -> None:
        """``REDUCE`` / ``NEWOBJ``: the callable under ``arguments`` must be one of ``callables``, given no class."""
        kind, value, _ = self.pop()
        if kind != "global" or value not in callables:
            what = f"{value[0]}.{value[1]}" if kind in ("global", "class") else "a computed value"
            raise self.fail(f"calls {what}, which is not one of the constructors of plain data",
                            what if kind in ("global", "class") else None)
        if arguments[2]:
            raise self.fail(f"passes a class to {value[0]}.{value[1]}", f"{value[0]}.{value[1]}")
        self.stack.append(("obj", value, False))

    def memo_step(self, name: str, arg: Any) -> None:
        """``MEMOIZE``, ``PUT`` and ``GET``: the memo holds stack entries."""
        if name in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg or 0) not in self.memo:
                raise self.fail("is not a well-formed pickle (an unknown memo entry)")
            self.stack.append(self.memo[int(arg or 0)])
            return
        memoize = name == "MEMOIZE"
        if not self.stack:
            raise self.fail(f"is not a well-formed pickle ({'memoize' if memoize else 'put'} on an empty stack)")
        self.memo[len(self.memo) if memoize else int(arg or 0)] = self.stack[-1]

    def other_step(self, opcode: pickletools.OpcodeInfo) -> None:
        """Containers and constants: what they hold only matters for the taint."""
        before, tainted = opcode.stack_before, False
        if pickletools.markobject in before:
            tainted = self.pop_mark()
            below = before.index(pickletools.markobject)
        else:
            below = len(before)
        for _ in range(below):
            tainted = self.pop()[2] or tainted
        self.stack.extend(("obj", None, tainted) for _ in opcode.stack_after)

    def step(self, opcode: pickletools.OpcodeInfo, arg: Any) -> None:
        name = opcode.name
        if name in _REFUSED:
            raise self.fail(f"uses {_REFUSED[name]}")
        if name in _STRINGS:
            self.stack.append(("str", arg, False))
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            self.stack.append(self.global_(module, attr))
        elif name == "STACK_GLOBAL":
            attr_entry, module_entry = self.pop(), self.pop()
            self.stack.append(self.global_(module_entry[1] if module_entry[0] == "str" else None,
                                           attr_entry[1] if attr_entry[0] == "str" else None))
        elif name == "REDUCE":
            self.call(self.allowed.calls, self.pop())
        elif name in ("NEWOBJ", "NEWOBJ_EX"):
            arguments = self.pop()
            if name == "NEWOBJ_EX":
                keywords = self.pop()
                arguments = ("obj", None, arguments[2] or keywords[2])
            self.call(self.allowed.classes, arguments)
        elif name == "BUILD":
            state, target = self.pop(), self.pop()
            if state[2]:
                raise self.fail("sets a class into an object's state")
            self.stack.append(target)
        elif name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"):
            self.memo_step(name, arg)
        elif name == "MARK":
            self.stack.append(_MARK)
        else:
            self.other_step(opcode)


def check_pickle(data: bytes | BinaryIO, source: str, allowed: AllowList = PLAIN_DATA) -> list[str]:
    """Raise :class:`UnsafePickleError` unless the pickle ``data`` (bytes, or a binary file open at its start;
    from ``source``, named in the message) names and calls only what ``allowed`` admits (default: the module
    docstring's lists); return the globals it names."""
    machine = _Machine(source, allowed)
    try:
        source_file = data if isinstance(data, bytes) else cast(BinaryIO, _SkippingReader(data))
        for opcode, arg, _ in pickletools.genops(source_file):
            if opcode.name == "STOP":
                break
            machine.step(opcode, arg)
    except (ValueError, KeyError, TypeError, IndexError, EOFError, UnicodeDecodeError, OSError) as exc:
        raise machine.fail(f"is not a readable pickle ({exc.__class__.__name__})") from exc
    return machine.named
