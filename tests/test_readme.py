"""Every code block of README.md runs (issue 18): the blocks are parsed out of the README, so a new block is picked
up without touching this file, and one that no rule below covers fails ``test_every_readme_command_has_a_rule``.

Each shell line is split at ``&&`` into commands; a command is either run as a subprocess in a scratch folder
(``hyperparams/`` linked in, so relative paths work as in a clone) after the substitutions below, or skipped
with its reason. The substitutions only shrink the budget or point at this machine's stand-ins; they are the
rule, stated once:

* training (``rl_zoo3.train``, ``sb3_dqn_atari.train``): ``-n 1200`` (replacing or adding ``-n``),
  ``-params learning_starts:1000 buffer_size:5000``, ``--eval-freq -1`` (an untrained agent's paper-protocol
  episode runs to the 18,000-frame cap; ``tests/test_zoo.py`` covers ``--eval-freq``); ``--device cuda``
  → ``--device cpu`` (no GPU here); ``--checkpoint-freq N`` → ``600``; ``--resume PATH`` → the run folder of the
  README's previous ``--checkpoint-freq`` command, with nothing added (it reuses that command line);
* ``sb3_dqn_atari.evaluate``: ``--episodes 1 --max-frames 2000 --no-progress``;
  ``sb3_dqn_atari.play``: ``--episodes 1``; ``sb3_dqn_atari.push_to_hub``: ``--episodes 1 --max-frames 2000``;
  ``sb3_dqn_atari.export``: ``--n-real 32 --n-random 32``; ``rl_zoo3.enjoy``: ``--no-render -n 300``;
* the Hub (``push_to_hub``, ``load_from_hub``): :class:`tests.hub_server.FakeHub` on 127.0.0.1 through
  ``HF_ENDPOINT``, user ``YOU``; ``sb3/dqn-BreakoutNoFrameskip-v4`` is planted there as a copy of what the
  README's push uploaded;
* Python blocks: ``model.learn(10_000_000`` → ``model.learn(300``.

Skipped, with the reason in ``SKIPS``: installs (``pip``: this suite runs in the installed package;
``test_rl_zoo3_commands_need_only_declared_dependencies`` checks what an install brings), the suite's own gate
(``ruff``, ``mypy``, ``pytest``), Ray (``ray start``, ``sb3_dqn_atari.sweep``, and ``report`` on a sweep folder:
``tests/test_sweep.py`` and ``tests/test_report.py`` run them on a Ray cluster on 127.0.0.1) and the Optuna
commands (``-optimize``, ``--trial-id``: ``tests/test_hpo.py`` runs two workers on one study).

The default suite runs the quick start's training command, ``rl_zoo3.enjoy`` and ``rl_zoo3.record_video`` on its
run folder, and the Python example; every other command runs in ``test_every_readme_command`` (``slow``).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sb3_dqn_atari.common.safe_yaml import read_yaml_mapping
from tests.conftest import ROOT
from tests.hub_server import FakeHub, client_env
from tests.zoo_runs import zoo_env

README = ROOT / "README.md"
#: ``../shared`` of a clone (reference curves); the scratch folder gets a link to it at the same relative place
SHARED = ROOT.parent / "shared"
TRAIN_MODULES = ("rl_zoo3.train", "sb3_dqn_atari.train")
N_TRAIN = 1200
HUB_TOKEN = "hf_readme_test_token"
#: command prefix or module -> why it is not run here
SKIPS = {
    "pip": "installs: the suite runs in the installed package (the dependency check covers a fresh install)",
    "ruff": "the suite's own gate (run before the tests, as the README says)",
    "mypy": "the suite's own gate (run before the tests, as the README says)",
    "pytest": "this suite itself",
    "ray": "starts Ray nodes: tests/test_sweep.py runs a two-node Ray cluster on 127.0.0.1 (tests/ray_cluster.py)",
    "sb3_dqn_atari.sweep": "Ray Tune sweep: tests/test_sweep.py runs it on a Ray cluster on 127.0.0.1",
    "sb3_dqn_atari.report": "reads the skipped sweep's folder: tests/test_report.py runs the report on run folders",
    "optuna": "Optuna search on a shared storage: tests/test_hpo.py runs two workers on one JournalStorage file",
}


@dataclass
class Command:
    argv: list[str]
    line: int  # README line of the command

    @property
    def module(self) -> str | None:
        return self.argv[2] if self.argv[:2] == ["python", "-m"] and len(self.argv) > 2 else None

    def __str__(self) -> str:
        return f"README.md:{self.line}: {shlex.join(self.argv)}"


def readme_blocks(text: str | None = None) -> list[tuple[str, str, int]]:
    """The fenced blocks of the README: (language, body, line of the body's first line)."""
    text = README.read_text() if text is None else text
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        found.append((match.group(1), match.group(2), text[: match.start(2)].count("\n") + 1))
    return found


def shell_commands(body: str, first_line: int) -> list[Command]:
    """The commands of a shell block: ``\\`` continuations joined, ``#`` comments dropped, ``&&`` chains split;
    a leading ``VAR=value`` environment assignment is dropped (the command's module decides its rule)."""
    commands: list[Command] = []
    pending, start = "", first_line
    for offset, raw in enumerate(body.splitlines()):
        if not pending:
            start = first_line + offset
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        words = shlex.split(pending, comments=True)
        pending = ""
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            part, words = words[:cut], words[cut + 1 :]
            while part and re.fullmatch(r"[A-Z_]+=\S*", part[0]):
                part = part[1:]
            if part:
                commands.append(Command(part, start))
    return commands


def all_commands() -> list[Command]:
    blocks = readme_blocks()
    return [c for lang, body, line in blocks if lang in ("bash", "sh", "shell") for c in shell_commands(body, line)]


def skip_reason(command: Command) -> str | None:
    argv = command.argv
    if argv[0] in SKIPS:
        return SKIPS[argv[0]]
    if argv[:3] == ["python", "-m", "pytest"]:
        return SKIPS["pytest"]
    if command.module in SKIPS:
        return SKIPS[str(command.module)]
    if command.module in TRAIN_MODULES and ({"-optimize", "--optimize"} & set(argv) or "--trial-id" in argv):
        return SKIPS["optuna"]
    if any(arg.startswith("../shared/") for arg in argv) and not SHARED.is_dir():
        return "names ../shared (the RL Zoo's reference curves), which is not beside this clone"
    return None


def _set_option(argv: list[str], option: str, value: str) -> list[str]:
    if option in argv:
        argv = list(argv)
        argv[argv.index(option) + 1] = value
        return argv
    return [*argv, option, value]


def adapt(command: Command, previous_checkpoint_run: Path | None = None) -> list[str]:
    """The command as run here (the module docstring's substitutions), with this interpreter."""
    argv, module = list(command.argv), command.module
    if module in TRAIN_MODULES:
        if "--resume" in argv:
            assert previous_checkpoint_run is not None, f"{command}: no --checkpoint-freq run before it"
            argv[argv.index("--resume") + 1] = str(previous_checkpoint_run)
        else:
            argv = _set_option(argv, "-n", str(N_TRAIN))
            if "--device" in argv and argv[argv.index("--device") + 1] == "cuda":
                argv = _set_option(argv, "--device", "cpu")
            if "--checkpoint-freq" in argv:
                argv = _set_option(argv, "--checkpoint-freq", "600")
            argv += ["--eval-freq", "-1", "-params", "learning_starts:1000", "buffer_size:5000"]
    elif module == "sb3_dqn_atari.evaluate":
        argv = [*_set_option(_set_option(argv, "--episodes", "1"), "--max-frames", "2000"), "--no-progress"]
    elif module == "sb3_dqn_atari.play":
        argv = _set_option(argv, "--episodes", "1")
    elif module == "sb3_dqn_atari.push_to_hub":
        argv = _set_option(_set_option(argv, "--episodes", "1"), "--max-frames", "2000")
    elif module == "sb3_dqn_atari.export":
        argv = _set_option(_set_option(argv, "--n-real", "32"), "--n-random", "32")
    elif module == "rl_zoo3.enjoy":
        argv = [*_set_option(argv, "-n", "300"), "--no-render"]
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900, env=env or zoo_env())
    assert result.returncode == 0, f"{shlex.join(argv)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _workspace(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparams").symlink_to(ROOT / "hyperparams")
    if SHARED.is_dir() and not (folder.parent / "shared").exists():
        (folder.parent / "shared").symlink_to(SHARED)
    return folder


def _quick_start() -> Command:
    [command] = [c for c in shell_commands(readme_blocks()[0][1], readme_blocks()[0][2]) if c.module in TRAIN_MODULES]
    return command


# ------------------------------------------------------------------------------------------------ coverage


def test_every_readme_command_has_a_rule() -> None:
    """Each block's language is one this test runs, and each command is run or skipped with a reason."""
    blocks = readme_blocks()
    # text: output shown in the README (the quick start's first lines: checked against a run below)
    assert {lang for lang, _, _ in blocks} <= {"bash", "python", "yaml", "text"}, "a new kind of block: add it here"
    runnable = {
        *TRAIN_MODULES,
        "rl_zoo3.enjoy",
        "sb3_dqn_atari.evaluate",
        "sb3_dqn_atari.plot",
        "sb3_dqn_atari.export",
        "sb3_dqn_atari.play",
        "sb3_dqn_atari.push_to_hub",
        "sb3_dqn_atari.load_from_hub",
    }
    commands = all_commands()
    assert len(commands) >= 20
    for command in commands:
        assert skip_reason(command) or command.module in runnable, f"{command}: no rule in tests/test_readme.py"
    # the parser itself, on a block written here: continuation, comment, chain, env assignment
    parsed = shell_commands("A=1 python -m x \\\n    --y 2  # note\npip install . && ruff check .\n", 10)
    assert [(c.argv, c.line) for c in parsed] == [
        (["python", "-m", "x", "--y", "2"], 10),
        (["pip", "install", "."], 12),
        (["ruff", "check", "."], 12),
    ]


def _install_closure() -> set[str]:
    """The distributions ``pip install -e .`` installs: pyproject's dependencies (read from pyproject.toml: the
    installed metadata may predate an edit) and, recursively, theirs, with the extras they name."""
    import tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    todo = [
        Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    closure: set[str] = {"sb3-dqn-atari"}
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        name, extras = canonicalize_name(requirement.name), frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        closure.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            child = Requirement(text)
            wanted = child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras | {""})
            if wanted:
                todo.append(child)
    return closure


def test_rl_zoo3_commands_need_only_declared_dependencies() -> None:
    """What a fresh ``pip install -e .`` brings is the closure of pyproject's dependencies. Every other installed
    distribution is hidden from a subprocess (its top-level modules raise ModuleNotFoundError, as in a fresh
    venv), which then imports ``rl_zoo3.train``/``enjoy``/``record_video`` and our hook (issue 18: ``requests``
    was not in the closure, and ``rl_zoo3.enjoy`` crashed in a fresh venv)."""
    from packaging.utils import canonicalize_name

    closure = _install_closure()
    assert "requests" in closure and "rl-zoo3" in closure
    hidden = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in closure for d in dists) and module not in sys.stdlib_module_names
    )
    probe = (
        "import importlib.abc, sys\n"
        f"HIDDEN = set({hidden!r})\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in HIDDEN:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (not installed by pip install -e .)')\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import rl_zoo3.train, rl_zoo3.enjoy, rl_zoo3.record_video, sb3_dqn_atari.zoo\n"
        "print('imported')\n"
    )
    assert _run([sys.executable, "-c", probe], ROOT).stdout.strip().endswith("imported")


# ------------------------------------------------------------------------------ the default suite's share


def test_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    [(body, line)] = [(body, line) for lang, body, line in readme_blocks() if lang == "python"]
    assert "model.learn(10_000_000" in body, f"README.md:{line}: the budget rule no longer matches"
    script = tmp_path / "example.py"
    script.write_text(body.replace("model.learn(10_000_000", "model.learn(300"))
    _run([sys.executable, str(script)], tmp_path)
    assert (tmp_path / "breakout.zip").is_file()


def test_readme_yaml_callback_builds_the_paper_evaluation() -> None:
    from rl_zoo3.utils import get_callback_list

    from sb3_dqn_atari.evaluation import NatureEvalCallback

    [body] = [body for lang, body, _ in readme_blocks() if lang == "yaml"]
    [callback] = get_callback_list(yaml.safe_load(body))
    assert isinstance(callback, NatureEvalCallback) and callback.eval_freq == 250_000


def test_quick_start_then_rl_zoo3_enjoy_and_record_video(tmp_path: Path) -> None:
    """The quick start's command (small budget), then rl-zoo3's own ``enjoy`` (the README's command) and
    ``record_video`` on its run folder, each a subprocess; the run's first lines say what it trains and its
    ``config.yml`` the steps it ran (issue 18, items 1 and 5)."""
    work = _workspace(tmp_path / "work")
    train = _run(adapt(_quick_start()), work)
    run = work / "logs" / "dqn" / "BreakoutNoFrameskip-v4_1"
    head = train.stdout.split("Log path:")[0].splitlines()
    # the README shows these lines for its -n 100000 and a chosen thread count; here -n and OMP_NUM_THREADS differ
    [shown] = [body for lang, body, _ in readme_blocks() if lang == "text"]
    banner, threads = shown.splitlines()
    assert banner.replace("100,000 agent steps", f"{N_TRAIN:,} agent steps") in head
    assert threads.startswith("torch threads: 1 (chosen: ") and "torch threads: 1 (set by OMP_NUM_THREADS)" in head
    config = read_yaml_mapping(run / "BreakoutNoFrameskip-v4" / "config.yml")
    assert config["n_timesteps"] == N_TRAIN

    [enjoy] = [c for c in all_commands() if c.module == "rl_zoo3.enjoy"]
    played = _run(adapt(enjoy), work)
    assert "Loading latest experiment, id=1" in played.stdout
    video = work / "videos"
    _run(
        [sys.executable, "-m", "rl_zoo3.record_video", "--algo", "dqn", "--env", "BreakoutNoFrameskip-v4", "-f",
         "logs/", "-n", "100", "-o", str(video)],
        work,
    )  # fmt: skip
    [mp4] = list(video.rglob("*.mp4"))
    assert mp4.stat().st_size > 1000


# ------------------------------------------------------------------------------------------- every command


@pytest.mark.slow
def test_every_readme_command(tmp_path: Path) -> None:
    """Every command of every shell block, in README order, in one scratch folder (a clone's working copy):
    each run with the module docstring's substitutions, or skipped with its reason (printed)."""
    work = _workspace(tmp_path / "work")
    hub = FakeHub({HUB_TOKEN: ("YOU", "write")}).start()
    env = {**zoo_env(), **client_env(hub, HUB_TOKEN, tmp_path / "hf_home")}
    checkpoint_run: Path | None = None
    ran, skipped = [], []
    try:
        for command in all_commands():
            reason = skip_reason(command)
            if reason is not None:
                skipped.append(f"{command}: {reason}")
                continue
            if command.module == "sb3_dqn_atari.load_from_hub":
                pushed = hub.repos["YOU/dqn-BreakoutNoFrameskip-v4"]
                repo_id = command.argv[command.argv.index("--repo-id") + 1]
                hub.add_repo(repo_id, dict(pushed.commits[-1].files))
            runs_before = set((work / "logs" / "dqn").glob("*_*")) if (work / "logs").exists() else set()
            _run(adapt(command, checkpoint_run), work, env)
            ran.append(str(command))
            if "--checkpoint-freq" in command.argv:
                [checkpoint_run] = set((work / "logs" / "dqn").glob("*_*")) - runs_before
                assert list((checkpoint_run / "checkpoints").glob("step_*"))
    finally:
        hub.stop()
    print("\n".join(["ran:", *ran, "skipped:", *skipped]))
    assert len(ran) >= 15
    assert (work / "exported_models" / "BreakoutNoFrameskip-v4-nature-dqn.onnx").is_file()
    assert (work / "breakout.png").is_file() and (work / "results.json").is_file()
    assert "YOU/dqn-BreakoutNoFrameskip-v4" in hub.repos and os.path.isdir(work / "hub" / "breakout")
    # the model card and config.yml record the steps the run trained, not the yml's 50M (issue 18, item 5)
    card = (work / "hub" / "breakout" / "README.md").read_text()
    assert f"'n_timesteps': {N_TRAIN}" in card and "50000000" not in card
