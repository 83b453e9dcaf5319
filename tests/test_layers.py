"""The package's layers (issue 13): every import inside ``sb3_dqn_atari`` points down, never up or sideways.

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
