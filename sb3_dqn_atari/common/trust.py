"""What a stranger's rl-zoo3 files may name: the allow-list, the check of strings rl-zoo3 would ``eval``, and the
check of file names.

rl-zoo3 *imports* some hyperparameter values and *evaluates* others when a run folder or a hyperparameter file is
used (rl-zoo3 2.x: ``exp_manager.py``, ``utils.py``, ``enjoy.py``, ``record_video.py``):

* imported by name (``utils.get_wrapper_class``, ``utils.get_callback_list``, ``utils.get_class_by_name``):
  ``env_wrapper``, ``vec_env_wrapper``, ``callback`` (a name, ``{name: kwargs}`` or a list of those; rl-zoo3
  then *calls* each one, ``wrapper(env, **kwargs)``, ``callback(**kwargs)``), ``policy`` when it holds a dot;
  ``args.yml``'s ``gym_packages``; the module part of an env id ``module:Env-v0`` (gymnasium imports it);
* evaluated with ``eval``: ``normalize`` (``ExperimentManager`` when training, ``utils.get_saved_hyperparams``
  in ``enjoy``/``record_video``), ``policy_kwargs``, ``replay_buffer_class``, ``replay_buffer_kwargs``,
  ``monitor_kwargs`` (``ExperimentManager``) when they are strings, and every value of ``-params`` /
  ``--env-kwargs`` (``utils.StoreDict``).

The rules (no module is imported to apply them; the sources of the allowed packages are read with :mod:`ast`):

* a **dotted name** must be a class (``module.path.Class``, no part starting with ``_``) of a module in one of
  :data:`ALLOWED_PACKAGES`, and that class must be *defined* in such a module: the name is followed through
  the modules' ``import`` statements to the ``class`` statement that defines it, so that a foreign object that an
  allowed module happens to import (``pathlib.Path``, a ``subprocess`` function) is refused. Only classes:
  rl-zoo3 calls what it imports with arguments from the file, and a function of an allowed package can do
  anything its arguments say (``stable_baselines3.common.save_util.load_from_pkl`` unpickles a path).
  A name whose module does not exist here is accepted (rl-zoo3's import fails, nothing runs);
* a **string to be evaluated** is parsed with :func:`ast.parse` and accepted only if it is built from literals
  (numbers, strings, ``True``/``False``/``None``, lists, tuples, sets, dicts, a unary minus),
  ``dict(...)``/``list(...)`` calls of such values (no ``*``/``**``), and classes as above, written as a name
  rl-zoo3's module binds (``nn.ReLU``, ``HerReplayBuffer``, ``RMSpropTFLike``: looked up in the imports of the
  module that evaluates the string) or as ``__import__('allowed.module').Class``;
* a **file name** from a repo or an archive must be a plain relative path: no ``..`` or ``.`` part, not absolute,
  no backslash, no drive letter, no control character.

Everything refused raises :class:`UntrustedError` (a :class:`~sb3_dqn_atari.common.errors.UserError`: one ``error:``
line, exit status 2), which names the file and says that ``--trust-remote-code`` is the way past.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sb3_dqn_atari.common.sources import (
    ALLOWED_PACKAGES,
    IDENTIFIER,
    UntrustedError,
    allowed_module,
    check_class_name,
    quoted,
    refuse,
    resolve,
)

#: The modules of rl-zoo3 that ``eval`` strings, by the hyperparameter they evaluate.
EXP_MANAGER = "rl_zoo3.exp_manager"
ZOO_UTILS = "rl_zoo3.utils"
EVAL_KEYS: dict[str, tuple[str, ...]] = {
    "normalize": (EXP_MANAGER, ZOO_UTILS),
    "policy_kwargs": (EXP_MANAGER,),
    "replay_buffer_class": (EXP_MANAGER,),
    "replay_buffer_kwargs": (EXP_MANAGER,),
    "monitor_kwargs": (EXP_MANAGER,),
}
#: Hyperparameters rl-zoo3 imports and calls: a name, ``{name: kwargs}``, or a list of those.
CLASS_KEYS = ("env_wrapper", "vec_env_wrapper", "callback")
#: Longest string accepted for ``eval`` (rl-zoo3's own are under 200 characters).
MAX_EVAL_CHARS = 10_000
_MODULE = re.compile(rf"{IDENTIFIER}(?:\.{IDENTIFIER})*")


# ------------------------------------------------------------------------------------------------ the checks
def check_module_name(module: Any, what: str, source: str) -> None:
    """Refuse a module name (``gym_packages``, the ``module:`` of an env id) outside :data:`ALLOWED_PACKAGES`."""
    if not isinstance(module, str) or not _MODULE.fullmatch(module) or not allowed_module(module):
        raise refuse(source, f"{what} names the module {quoted(module)}, outside the allow-list "
                             f"({', '.join(ALLOWED_PACKAGES)})")


#: gymnasium's env id form (``envs.registration.ENV_ID_RE``): ``[namespace/]Name[-vN]``, ``module:`` allowed.
_ENV_ID = re.compile(r"(?:[\w:-]+/)?[\w:.-]+?(?:-v\d+)?")


def check_env_id(env_id: Any, what: str, source: str) -> None:
    """An env id from a file must look like one (it becomes part of file names), and ``module:Name-vN`` makes
    gymnasium import ``module``: it must be allowed."""
    if env_id is None:
        return
    if not isinstance(env_id, str) or len(env_id) > 200 or not _ENV_ID.fullmatch(env_id) or ".." in env_id:
        raise refuse(source, f"{what} is {quoted(env_id)}, not a gymnasium env id")
    if ":" in env_id:
        check_module_name(env_id.split(":", 1)[0], what, source)


# ---------------------------------------------------------------------------------------------- eval strings


def _namespace_dotted(node: ast.expr, namespace: str) -> str | None:
    """The dotted name an attribute chain stands for in ``namespace`` (``nn.ReLU`` -> ``torch.nn.ReLU``,
    ``__import__('sb3_dqn_atari').FrameReplayBuffer`` -> ``sb3_dqn_atari.FrameReplayBuffer``); None if its base
    is neither a name the module binds to a module or class nor an ``__import__`` of a constant."""
    chain: list[str] = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call):
        if not (
            _is_import(node)
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and chain
        ):
            return None
        base = node.args[0].value
    elif isinstance(node, ast.Name):
        binding = resolve(namespace, node.id)
        if binding.kind not in ("module", "class"):
            return None
        base = binding.target
    else:
        return None
    return ".".join([base, *reversed(chain)])


def check_eval_string(text: Any, what: str, source: str, namespaces: tuple[str, ...] = (EXP_MANAGER,)) -> None:
    """Refuse a string that rl-zoo3 would ``eval`` (in each module of ``namespaces``) unless it holds only
    literals, ``dict(...)``/``list(...)`` of them and classes of allowed packages (see the module docstring)."""
    if not isinstance(text, str):
        return
    if len(text) > MAX_EVAL_CHARS:
        raise refuse(source, f"{what} is a string of {len(text):,} characters for rl-zoo3 to evaluate")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise refuse(source, f"{what} = {quoted(text)} is not a Python expression of plain values") from None
    count = 0

    def visit(node: ast.expr) -> None:
        nonlocal count
        count += 1
        if count > 10_000:
            raise refuse(source, f"{what} is too large an expression")
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            for element in node.elts:
                visit(element)
            return
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise refuse(source, f"{what} = {quoted(text)} unpacks a mapping (**)")
            for part in [*node.keys, *node.values]:
                if part is not None:
                    visit(part)
            return
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float, complex))
        ):
            return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("dict", "list"):
            if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                raise refuse(source, f"{what} = {quoted(text)} unpacks arguments (* or **)")
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                visit(argument)
            return
        if isinstance(node, (ast.Name, ast.Attribute)) or _is_import(node):
            for namespace in namespaces:
                dotted = _namespace_dotted(node, namespace)
                shown = ast.unparse(node)
                if dotted is None:
                    raise refuse(source, f"{what} = {quoted(text)} uses {shown!r}, which is not a class rl-zoo3's "
                                         f"{namespace} can name")
                check_class_name(dotted, f"{what} ({shown})", source)
            return
        call = " (a call)" if isinstance(node, ast.Call) else ""
        raise refuse(source, f"{what} = {quoted(text)} holds {ast.unparse(node)[:60]!r}{call}, not a plain value")

    visit(tree.body)


def _is_import(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__"


# ------------------------------------------------------------------------------------------- rl-zoo3's files


def _class_entries(value: Any) -> Iterator[Any]:
    """The names of an ``env_wrapper``/``callback`` value: a name, ``{name: kwargs}``, or a list of those."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, Mapping):
            yield from item.keys()
        elif item is not None:
            yield item


def check_hyperparams(params: Any, source: str, where: str = "") -> None:
    """The values of one set of rl-zoo3 hyperparameters (``config.yml``, a section of a hyperparameter file,
    ``args.yml``'s ``hyperparams``) that rl-zoo3 would import or evaluate."""
    if not isinstance(params, Mapping):
        return
    for key in CLASS_KEYS:
        if key in params:
            for name in _class_entries(params[key]):
                check_class_name(name, f"{where}{key}", source)
    policy = params.get("policy")
    if isinstance(policy, str) and "." in policy:
        check_class_name(policy, f"{where}policy", source)
    for key, namespaces in EVAL_KEYS.items():
        check_eval_string(params.get(key), f"{where}{key}", source, namespaces)


def check_hyperparams_file(data: Any, source: str) -> None:
    """A hyperparameter file as ``-conf`` takes it: a section per env id (``atari``, ``default``)."""
    if not isinstance(data, Mapping):
        return
    for section, params in data.items():
        check_hyperparams(params, source, f"{section}.")


def check_zoo_args(args: Any, source: str) -> None:
    """rl-zoo3's ``args.yml``: the env id, ``gym_packages`` (imported by ``train``) and ``hyperparams``
    (``-params``, evaluated again by ``ExperimentManager``)."""
    if not isinstance(args, Mapping):
        return
    check_env_id(args.get("env"), "env", source)
    packages = args.get("gym_packages") or []
    for package in packages if isinstance(packages, list) else [packages]:
        check_module_name(package, "gym_packages", source)
    check_hyperparams(args.get("hyperparams"), source, "hyperparams.")


# ---------------------------------------------------------------------------------------------- file names


def check_relative_name(name: Any, what: str) -> None:
    """Refuse a file name from a repo or an archive that is not a plain relative path (see the module
    docstring): it could land outside the folder it is written to."""
    why = ""
    if not isinstance(name, str) or not name:
        why = "empty"
    elif "\\" in name:
        why = "a backslash"
    elif name.startswith("/"):
        why = "an absolute path"
    elif re.match(r"^[A-Za-z]:", name):
        why = "a drive letter"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        why = "a control character"
    elif any(part in ("", ".", "..") for part in name.split("/")):
        why = "a '..', '.' or empty part"
    if why:
        raise UntrustedError(f"{what} holds the file name {quoted(name)} ({why}), which could be written outside "
                             "its folder; refusing it")


# ------------------------------------------------------------------------------------- rl-zoo3's command line

#: ``rl_zoo3.train`` options whose values ``utils.StoreDict`` evaluates (``key:value``, value ``eval``\ ed).
STORE_DICT_OPTIONS = frozenset({"-params", "--hyperparams", "--env-kwargs", "--eval-env-kwargs"})
_OPTION = re.compile(r"-{1,2}[A-Za-z][\w-]*")


def _option_values(argv: list[str]) -> Iterator[tuple[str, str]]:
    """``(option, value)`` for each value of a command line: ``--opt v1 v2`` and ``--opt=v`` (a value may be
    negative)."""
    option: str | None = None
    for token in argv:
        name, eq, inline = token.partition("=")
        if _OPTION.fullmatch(name):
            option = name
            if eq:
                yield option, inline
        elif option is not None:
            yield option, token


def check_zoo_argv(argv: list[str], source: str) -> None:
    """A ``rl_zoo3.train`` command line read from a file (a checkpoint's manifest), before it runs again: the env
    id, ``--gym-packages`` (imported), ``-conf`` (rl-zoo3 runs a ``.py`` file and imports a module name: only a
    YAML file, itself checked), the ``key:value`` options rl-zoo3 evaluates (``-params``, ``--env-kwargs``), and
    no ``-i`` (an agent zip SB3 would unpickle)."""
    from sb3_dqn_atari.common.safe_yaml import read_yaml

    for option, value in _option_values(argv):
        if option == "--env":
            check_env_id(value, "--env", source)
        elif option == "--gym-packages":
            check_module_name(value, "--gym-packages", source)
        elif option in ("-conf", "--conf-file"):
            if not value.endswith((".yml", ".yaml")):
                raise refuse(source, f"-conf {quoted(value)} is not a YAML file (rl-zoo3 would run or import it)")
            if Path(value).is_file():
                check_hyperparams_file(read_yaml(value), value)
        elif option in ("-i", "--trained-agent") and value:
            raise refuse(source, f"{option} {quoted(value)} names an agent zip that SB3 would unpickle")
        elif option in STORE_DICT_OPTIONS:
            key, _, text = value.partition(":")
            check_eval_string(text, f"{option} {key}", source, (ZOO_UTILS,))
            if option in ("-params", "--hyperparams"):
                try:
                    literal = ast.literal_eval(text.strip())
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    continue  # classes: no string left for rl-zoo3 to evaluate again
                check_hyperparams({key: literal}, source, f"{option} ")
