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
* every other global it names is one of those, a numpy bit-generator class, an optimizer class the safe loader
  knows (:data:`ALLOWED_KWARG_CLASSES`), or a class of an allowed package
  (:func:`sb3_dqn_atari.common.trust.check_class_name`: a policy class, a replay buffer class); such a class may be
  stored, never passed to a call (numpy's generator constructors call what they are given),

and it uses no extension registry, persistent id, out-of-band buffer or protocol-0/1 instantiation. Pickled
functions (cloudpickle writes a function's code; SB3 1.x zips hold such schedules) are refused: their code
would run.
"""

from __future__ import annotations

import pickletools
from typing import Any

from sb3_dqn_atari._legacy import old_name, with_old_names
from sb3_dqn_atari.common.errors import UserError

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
    """A pickle that would import or call more than plain data needs."""


def _class_reference_ok(module: str, name: str) -> bool:
    from sb3_dqn_atari.common.trust import UntrustedError, check_class_name

    if f"{module}.{name}" in ALLOWED_KWARG_CLASSES["optimizer_class"]:
        return True
    try:
        check_class_name(f"{module}.{name}", "a pickled reference", "")
    except UntrustedError:
        return False
    return True


def check_pickle(data: bytes, source: str) -> list[str]:
    """Raise :class:`UnsafePickleError` unless the pickle ``data`` (from ``source``, named in the message)
    names and calls only what the module docstring lists; return the globals it names.

    Each stack entry is ``(kind, value, tainted)``: ``kind`` ``str`` (a string constant), ``global`` (one of
    :data:`REFERENCES`), ``class`` (another class of an allowed package: may be stored, never passed to a call,
    since numpy's generator constructors call what they are given), ``obj`` (anything else); ``tainted`` when
    the value holds a ``class`` entry.

    Long on purpose: one sequence of steps, in this order, sharing their state.
    """
    stack: list[tuple[str, Any, bool]] = []
    memo: dict[int, tuple[str, Any, bool]] = {}
    named: list[str] = []

    def fail(why: str) -> UnsafePickleError:
        return UnsafePickleError(f"{source} {why}; not unpickled")

    def pop() -> tuple[str, Any, bool]:
        if not stack or stack[-1] is _MARK:
            raise fail("is not a well-formed pickle (stack underflow)")
        return stack.pop()

    def pop_mark() -> bool:
        tainted = False
        while stack:
            entry = stack.pop()
            if entry is _MARK:
                return tainted
            tainted = tainted or entry[2]
        raise fail("is not a well-formed pickle (no mark)")

    def global_(module: Any, name: Any) -> tuple[str, Any, bool]:
        if not isinstance(module, str) or not isinstance(name, str):
            raise fail("computes the name of a global it imports")
        named.append(f"{module}.{name}")
        if (module, name) in REFERENCES:
            return ("global", (module, name), False)
        if _class_reference_ok(module, name):
            return ("class", (module, name), True)
        raise fail(f"names {module}.{name}, which is not plain data this project reads")

    def call(kind: str, value: Any, arguments: tuple[str, Any, bool], allowed: frozenset[tuple[str, str]]) -> None:
        if kind != "global" or value not in allowed:
            what = f"{value[0]}.{value[1]}" if kind in ("global", "class") else "a computed value"
            raise fail(f"calls {what}, which is not one of the constructors of plain data")
        if arguments[2]:
            raise fail(f"passes a class to {value[0]}.{value[1]}")

    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name in _REFUSED:
                raise fail(f"uses {_REFUSED[name]}")
            if name in _STRINGS:
                stack.append(("str", arg, False))
            elif name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                stack.append(global_(module, attr))
            elif name == "STACK_GLOBAL":
                attr_entry, module_entry = pop(), pop()
                stack.append(global_(module_entry[1] if module_entry[0] == "str" else None,
                                     attr_entry[1] if attr_entry[0] == "str" else None))
            elif name == "REDUCE":
                arguments = pop()
                kind, value, _ = pop()
                call(kind, value, arguments, CALLABLES)
                stack.append(("obj", value, False))
            elif name in ("NEWOBJ", "NEWOBJ_EX"):
                arguments = pop()
                if name == "NEWOBJ_EX":
                    keywords = pop()
                    arguments = ("obj", None, arguments[2] or keywords[2])
                kind, value, _ = pop()
                call(kind, value, arguments, CLASSES)
                stack.append(("obj", value, False))
            elif name == "BUILD":
                state = pop()
                target = pop()
                if state[2]:
                    raise fail("sets a class into an object's state")
                stack.append(target)
            elif name == "MEMOIZE":
                if not stack:
                    raise fail("is not a well-formed pickle (memoize on an empty stack)")
                memo[len(memo)] = stack[-1]
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                if not stack:
                    raise fail("is not a well-formed pickle (put on an empty stack)")
                memo[int(arg or 0)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if int(arg or 0) not in memo:
                    raise fail("is not a well-formed pickle (an unknown memo entry)")
                stack.append(memo[int(arg or 0)])
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "STOP":
                break
            else:  # containers and constants: what they hold only matters for the taint
                before, after = opcode.stack_before, opcode.stack_after
                tainted = False
                if pickletools.markobject in before:
                    tainted = pop_mark()
                    below = before.index(pickletools.markobject)
                else:
                    below = len(before)
                for _ in range(below):
                    tainted = pop()[2] or tainted
                stack.extend(("obj", None, tainted) for _ in after)
    except UnsafePickleError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, EOFError, UnicodeDecodeError) as exc:
        raise fail(f"is not a readable pickle ({exc.__class__.__name__})") from exc
    return named
