"""The package's layers (issue 13): every import inside ``sb3_dqn_atari`` points down, never up or sideways, and no
two modules import each other, directly or around a loop (not even inside one folder).

The order is the one the package docstring and the README's "Layout" give, bottom to top. A module may import
from its own package (folder) and from any lower layer; a feature never imports a sibling feature of its own
layer. Imports inside functions and ``TYPE_CHECKING`` blocks count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "sb3_dqn_atari"
#: layer of each part of the package (the first name under ``sb3_dqn_atari``), bottom to top
LAYERS: dict[str, int] = {
    "_legacy": -1,
    "common": 0,
    "agent": 1,
    "atari": 1,
    "loading": 2,
    "checkpoint": 3,
    "onnx": 3,
    "evaluation": 4,
    "hub": 5,
    "zoo": 6,
    "sweep": 7,
    "report": 7,
    **{verb: 8 for verb in ("train", "evaluate", "export", "play", "plot", "push_to_hub", "load_from_hub")},
}
#: entry points that may import anything below them: the commands of the sweep and report packages
COMMANDS = {"sweep/__main__.py", "report/__main__.py"}


def _part(module: str) -> str | None:
    """``sb3_dqn_atari.agent.dqn`` -> ``agent``; None for the root package and for other packages."""
    parts = module.split(".")
    return parts[1] if parts[0] == "sb3_dqn_atari" and len(parts) > 1 else None


def _imported(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from sb3_dqn_atari import evaluation`` names a part; ``import __version__`` the root package
            found += [(node.lineno, f"{target}.{alias.name}" if target == "sb3_dqn_atari" and alias.name in LAYERS
                       else target) for alias in node.names]
    return found


def violations(source: str, path: str) -> list[str]:
    """The imports of the module at ``path`` (relative to the package) that point up or sideways."""
    module = ".".join(["sb3_dqn_atari", *Path(path).with_suffix("").parts]).removesuffix(".__init__")
    own = _part(module)
    if own is None:  # the root package: the lazy public API, above everything
        return []
    level = 8 if path in COMMANDS else LAYERS[own]
    bad = []
    for line, target in _imported(ast.parse(source), module, path.endswith("__init__.py")):
        part = _part(target)
        if part is None or part == own:
            continue
        if part not in LAYERS:
            bad.append(f"{path}:{line} imports {target}, a part of no layer (add it to LAYERS)")
        elif LAYERS[part] > level or (LAYERS[part] == level and path not in COMMANDS):
            bad.append(f"{path}:{line} imports {target} (layer {LAYERS[part]}) from layer {level}")
    return bad


def test_the_checker_finds_upward_and_sideways_imports() -> None:
    assert violations("from sb3_dqn_atari.hub.push import push_command\n", "onnx/export.py")  # up
    assert violations("def f():\n    import sb3_dqn_atari.atari.envs\n", "agent/dqn.py")  # sideways, lazy
    assert violations("from sb3_dqn_atari import evaluation\n", "loading/load.py")  # up, as a package
    assert violations("from ..hub import client\n", "onnx/export.py")  # up, relative
    assert not violations("from sb3_dqn_atari.common.errors import UserError\n", "hub/pull.py")  # down
    assert not violations("from sb3_dqn_atari.agent.dqn import NatureDQN\n", "agent/variants.py")  # its own
    assert not violations("from sb3_dqn_atari.zoo import hpo\n", "sweep/__main__.py")  # a command


@pytest.mark.parametrize("path", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")))
def test_imports_point_down(path: str) -> None:
    assert violations((PACKAGE / path).read_text(encoding="utf-8"), path) == []


def _module_name(path: Path) -> str:
    return ".".join(["sb3_dqn_atari", *path.with_suffix("").parts]).removesuffix(".__init__")


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """``{module: the package's modules it imports}`` for ``{path relative to the package: source}``; ``from a.b
    import c`` points at ``a.b.c`` when that is a module, else at ``a.b``."""
    modules = {_module_name(Path(path)): path for path in sources}
    graph = {}
    for module, path in modules.items():
        targets = {target for _, target in _imported(ast.parse(sources[path]), module, path.endswith("__init__.py"))}
        for node in ast.walk(ast.parse(sources[path])):  # from a.b import c: the module a.b.c
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[module] = {target for target in targets if target in modules and target != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import loop once, as the modules along it (a depth-first search that reports every back edge)."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                found.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def _package_sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}


def test_the_cycle_check_finds_a_planted_cycle() -> None:
    planted = _package_sources()  # a lazy import back up, inside one folder, as safe_yaml <-> trust once was
    planted["common/errors.py"] += "\ndef _f():\n    from sb3_dqn_atari.common.files import atomic_file\n"
    assert ["sb3_dqn_atari.common.errors", "sb3_dqn_atari.common.files", "sb3_dqn_atari.common.errors"] in cycles(
        import_graph(planted)
    )


def test_no_import_cycles() -> None:
    assert cycles(import_graph(_package_sources())) == []
