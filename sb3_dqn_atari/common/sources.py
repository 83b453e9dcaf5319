"""What a dotted name of an allowed package is, read from the modules' sources with :mod:`ast` (nothing is imported):
the name followed through ``import`` statements to the statement that defines it (:func:`resolve`), and the check
built on it that every other check uses (:func:`check_class_name`: only classes defined in :data:`ALLOWED_PACKAGES`;
the rules in :mod:`sb3_dqn_atari.common.trust`)."""

from __future__ import annotations

import ast
import functools
import importlib.machinery
import importlib.util
import pkgutil
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb3_dqn_atari._legacy import current_name
from sb3_dqn_atari.common.errors import UserError, one_line

TRUST_HINT = "use --trust-remote-code for files you trust"
IDENTIFIER = r"[A-Za-z][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"{IDENTIFIER}(?:\.{IDENTIFIER})+")

#: Packages whose classes rl-zoo3 files may name (a module path equal to one of these, or inside it). torch.optim
#: for ``policy_kwargs``' ``optimizer_class`` (``hyperparams/dqn_improved.yml`` names ``th.optim.Adam``; the zip
#: loader allows the same optimizers, :data:`sb3_dqn_atari.common.pickle_check.ALLOWED_KWARG_CLASSES`).
ALLOWED_PACKAGES: tuple[str, ...] = (
    "gymnasium",
    "ale_py",
    "stable_baselines3",
    "sb3_contrib",
    "rl_zoo3",
    "sb3_dqn_atari",
    "torch.nn",
    "torch.optim",
)

def allowed_module(module: str) -> bool:
    """Whether ``module`` is one of :data:`ALLOWED_PACKAGES` or inside one."""
    return any(module == p or module.startswith(p + ".") for p in ALLOWED_PACKAGES)


# ------------------------------------------------------------------------------------- reading module sources


@functools.lru_cache(maxsize=512)
def module_file(module: str) -> tuple[str, Path | None]:
    """``("py", path)``, ``("package", path/__init__.py)``, ``("namespace", None)``, ``("compiled", path)`` or
    ``("missing", None)`` for ``module``, found on ``sys.path`` without importing anything (a retired name of
    this package is looked up at its new home, :mod:`sb3_dqn_atari._legacy`)."""
    parts = current_name(module).split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return "missing", None
    if spec is None:
        return "missing", None
    if spec.submodule_search_locations is None:
        if len(parts) > 1 or spec.origin is None:
            return "missing", None
        origin = Path(spec.origin)
        return ("py", origin) if origin.suffix == ".py" else ("compiled", origin)
    locations = [Path(p) for p in spec.submodule_search_locations]
    kind, path = (("package", Path(spec.origin)) if spec.origin and spec.origin.endswith("__init__.py")
                  else ("namespace", None))
    for i, part in enumerate(parts[1:], start=2):
        found: tuple[str, Path | None] | None = None
        for location in locations:
            if (location / part / "__init__.py").is_file():
                found = ("package", location / part / "__init__.py")
            elif (location / f"{part}.py").is_file():
                found = ("py", location / f"{part}.py")
            elif any((location / f"{part}{s}").is_file() for s in importlib.machinery.EXTENSION_SUFFIXES):
                found = ("compiled", location / part)
            elif (location / part).is_dir():
                found = ("namespace", None)
            if found is not None:
                break
        if found is None:
            return "missing", None
        kind, path = found
        if i < len(parts):
            if kind not in ("package", "namespace"):
                return "missing", None
            locations = [path.parent] if kind == "package" and path is not None else [loc / part for loc in locations]
    return kind, path


@functools.lru_cache(maxsize=256)
def _module_ast(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        return None


def _top_level(statements: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that bind module-level names: the module body, into if/try/with blocks (not functions)."""
    for statement in statements:
        yield statement
        if isinstance(statement, (ast.If, ast.For, ast.While)):
            yield from _top_level([*statement.body, *statement.orelse])
        elif isinstance(statement, ast.Try):
            handlers = [s for h in statement.handlers for s in h.body]
            yield from _top_level([*statement.body, *handlers, *statement.orelse, *statement.finalbody])
        elif isinstance(statement, ast.With):
            yield from _top_level(statement.body)


def _absolute(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The module a ``from <level dots><target> import`` in ``module`` names ("" beyond the top-level package)."""
    package = module if is_package else module.rpartition(".")[0]
    try:
        return importlib.util.resolve_name("." * level + (target or ""), package)
    except ImportError:
        return ""


@dataclass(frozen=True)
class Binding:
    """What a module-level name is: ``kind`` one of ``class``, ``module``, ``function``, ``other`` (assigned
    from an expression), ``foreign`` (imported from outside the allow-list), ``dynamic`` (the module has a
    ``__getattr__``), ``compiled`` (a compiled module), ``missing``; ``target`` the dotted name it stands for."""

    kind: str
    target: str


_BADNESS = ("missing", "class", "module", "dynamic", "compiled", "function", "other", "foreign")


def resolve(module: str, name: str, depth: int = 0) -> Binding:
    """What ``module.name`` is, from the module's source (see :class:`Binding`); nothing is imported."""
    target = f"{module}.{name}"
    if depth > 24:
        return Binding("other", target)
    kind, path = module_file(module)
    if kind in ("missing", "compiled"):
        return Binding(kind, target)
    if module_file(target)[0] != "missing":
        return Binding("module", target)
    if path is None:  # a namespace package holds only submodules
        return Binding("missing", target)
    tree = _module_ast(path)
    if tree is None:
        return Binding("other", target)
    is_package = kind == "package"
    found: list[Binding] = []
    stars: list[str] = []
    has_getattr = False
    for statement in _top_level(tree.body):
        if isinstance(statement, ast.ClassDef) and statement.name == name:
            found.append(Binding("class", target))
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if statement.name == name:
                found.append(Binding("function", target))
            has_getattr = has_getattr or statement.name == "__getattr__"
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                bound = alias.asname or alias.name.split(".")[0]
                if bound == name:
                    found.append(Binding("module", alias.name if alias.asname else bound))
        elif isinstance(statement, ast.ImportFrom):
            source = _absolute(module, is_package, statement.level, statement.module)
            for alias in statement.names:
                if alias.name == "*":
                    stars.append(source)
                elif (alias.asname or alias.name) == name:
                    found.append(_imported(source, alias.name, depth))
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            names |= {e.id for t in targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)}
            if name in names:
                value = statement.value
                found.append(_assigned(module, value, depth) if value is not None else Binding("other", target))
    if not found:
        for source in stars:
            if not allowed_module(source):
                continue
            binding = resolve(source, name, depth + 1)
            if binding.kind != "missing":
                found.append(binding)
                break
    if not found:
        return Binding("dynamic" if has_getattr else "missing", target)
    return max(found, key=lambda b: _BADNESS.index(b.kind))


def _imported(source: str, name: str, depth: int) -> Binding:
    if allowed_module(source):
        return resolve(source, name, depth + 1)
    target = f"{source}.{name}"
    return Binding("module" if module_file(target)[0] != "missing" else "foreign", target)


def _assigned(module: str, value: ast.expr, depth: int) -> Binding:
    """``name = other_name`` and ``name = module.attr`` are followed; anything else is ``other``."""
    chain: list[str] = []
    node = value
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return Binding("other", ast.unparse(value)[:80])
    base = resolve(module, node.id, depth + 1)
    if not chain:
        return base
    if base.kind != "module":
        return Binding("other", ast.unparse(value)[:80])
    dotted = ".".join([base.target, *reversed(chain)])
    parent, _, last = dotted.rpartition(".")
    return _imported(parent, last, depth + 1) if allowed_module(parent) else Binding("foreign", dotted)


def dynamic_class(module: str, name: str) -> bool:
    """For a module that computes its attributes (PEP 562 ``__getattr__``, as ``sb3_dqn_atari`` does): import the
    allowed module and look. Importing an allowed package runs only installed, trusted code."""
    try:
        value = pkgutil.resolve_name(f"{module}.{name}")
    except Exception:  # any failure: not shown to be a class
        return False
    return isinstance(value, type) and allowed_module(str(getattr(value, "__module__", "")))


# ------------------------------------------------------------------------------------------- the class check
class UntrustedError(UserError):
    """A file names code outside the allow-list, or asks rl-zoo3 to evaluate more than plain values."""


def refuse(source: str, what: str) -> UntrustedError:
    return UntrustedError(f"{source}: {what}; not loaded ({TRUST_HINT})")


def quoted(value: Any, limit: int = 100) -> str:
    return repr(one_line(str(value), limit))


def check_class_name(dotted: Any, what: str, source: str) -> None:
    """Refuse ``dotted`` unless it names a class defined in an allowed package (the rules:
    :mod:`sb3_dqn_atari.common.trust`)."""
    if not isinstance(dotted, str) or not _DOTTED.fullmatch(dotted):
        raise refuse(source, f"{what} is {quoted(dotted)}, not a dotted class name (module.Class)")
    module, _, name = dotted.rpartition(".")
    if not allowed_module(module):
        raise refuse(source, f"{what} names {dotted}, outside the allow-list ({', '.join(ALLOWED_PACKAGES)})")
    binding = resolve(module, name)
    if binding.kind == "missing" and module_file(module)[0] == "missing":
        return  # the import fails before anything runs
    if binding.kind == "class" and allowed_module(binding.target.rpartition(".")[0]):
        return
    if binding.kind == "dynamic" and dynamic_class(module, name):
        return
    reason = {
        "missing": f"{module} defines no such class",
        "module": "a module, not a class",
        "function": "a function, not a class",
        "foreign": f"it is {binding.target}, from outside the allow-list",
        "compiled": "it lives in a compiled module the check cannot read",
        "dynamic": "it is computed when the module runs, not defined in it",
    }.get(binding.kind, "it is not defined by a class statement")
    raise refuse(source, f"{what} names {dotted}, which is not a class of an allowed package ({reason})")
