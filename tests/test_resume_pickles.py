"""``train --resume`` unpickles nothing of a stranger's checkpoint but what this project's checkpoints hold
(issue 12, :mod:`sb3_dqn_atari.resume_check`).

Real checkpoints are written here by ``python -m sb3_dqn_atari.train`` (in this process, for speed) with its
callbacks, one run per kind (:data:`KINDS`): an Atari run of ``hyperparams/dqn.yml`` (NatureAtariWrapper,
FrameReplayBuffer, the paper-protocol evaluation), one of ``hyperparams/dqn_improved.yml`` (dueling, Adam,
prioritized replay, 3-step returns), one of ``hyperparams/dqn_nips2013.yml`` and a CartPole ``MlpPolicy`` run (SB3's
``ReplayBuffer``). They show that:

* the allow-list is exactly the globals these checkpoints name, and the static check and the restricted unpickler
  see the same names in each pickle;
* each kind resumed from its step-200 checkpoint *without* ``--trust-remote-code`` ends bit for bit where the run
  that was never stopped ends (weights, optimizer state, counters, replay memory, evaluations), and nothing on the
  way is unpickled by ``pickle.load``/``cloudpickle.loads`` or ``torch.load`` without ``weights_only``;
* payloads planted in each pickle (a ``__reduce__`` to ``os.system`` that would write a marker file; a harmless
  global off the list, ``builtins.print``) are refused with one line, exit status 2, no marker, no run folder;
  with ``--trust-remote-code`` the harmless one loads.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import shutil
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import ROOT

BREAKOUT = "BreakoutNoFrameskip-v4"
N_STEPS = 360
COMMON = ["--algo", "dqn", "-n", str(N_STEPS), "--seed", "0", "--num-threads", "1", "--device", "cpu",
          "--verbose", "0", "--save-replay-buffer", "--checkpoint-freq", "200", "--checkpoint-keep", "3",
          "-f", "logs"]  # fmt: skip
_SMALL = ["buffer_size:300", "learning_starts:100", "target_update_interval:100", "exploration_decay_steps:300",
          "batch_size:8"]
#: kind -> (env id, the rest of the command line); the step-200 checkpoint is resumed to step 360 (the ring of
#: 300 transitions wraps after the checkpoint). The Atari run evaluates once, at step 200 (~7 s an evaluation):
#: the checkpoint holds the callback's results and counters, and the resumed run must not evaluate again.
_ATARI = ["-conf", str(ROOT / "hyperparams" / "dqn.yml"), "--eval-freq", "200", "--eval-episodes", "1"]
_IMPROVED = ["-conf", str(ROOT / "hyperparams" / "dqn_improved.yml"), "--eval-freq", "-1"]
KINDS: dict[str, tuple[str, list[str]]] = {
    "atari": (BREAKOUT, [*_ATARI, "-params", *_SMALL]),
    "prioritized_n_step": (BREAKOUT, [*_IMPROVED, "-params", *_SMALL]),
    "cartpole": ("CartPole-v1", ["--eval-freq", "-1", "-params", *_SMALL, "train_freq:4", "gradient_steps:1"]),
}
#: written for the allow-list only (its network is the one difference): a short run, one checkpoint at its end
NIPS = (BREAKOUT, ["-conf", str(ROOT / "hyperparams" / "dqn_nips2013.yml"), "-n", "80", "--eval-freq", "-1",
                   "-params", "buffer_size:100", "learning_starts:60"])  # fmt: skip


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``python -m sb3_dqn_atari.train argv`` in this process: exit status, stdout, stderr."""
    from sb3_dqn_atari import train

    capsys.readouterr()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code: Any = train.main(argv)
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return int(code or 0), out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Each kind's uninterrupted run folder (``logs/dqn/<env>_1``, checkpoints at 200 and 360), and NIPS's."""
    root = tmp_path_factory.mktemp("resume_pickles")
    found = {}
    saved = Path.cwd()
    os.chdir(root)
    try:
        for kind, (env_id, args) in {**KINDS, "nips": NIPS}.items():
            folder = root / kind
            folder.mkdir()
            os.chdir(folder)
            argv = [*COMMON, "--env", env_id, *args]  # NIPS's -n 80 comes last: it wins
            from sb3_dqn_atari import train

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert train.main(argv) == 0, kind
            found[kind] = folder / "logs" / "dqn" / f"{env_id}_1"
    finally:
        os.chdir(saved)
    yield found


def _checkpoint(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step:012d}"


def _pickles(checkpoint: Path) -> dict[str, bytes]:
    """Every pickle of a checkpoint: its two files and the pickled fields of its zip's ``data``."""
    found = {name: (checkpoint / name).read_bytes() for name in ("training_state.pkl", "replay_buffer.pkl")}
    with zipfile.ZipFile(checkpoint / "model.zip") as archive:
        data = json.loads(archive.read("data"))
    for key, value in data.items():
        if isinstance(value, dict) and ":serialized:" in value:
            found[f"model.zip:{key}"] = base64.b64decode(value[":serialized:"])
    return found


class _Recording(pickle.Unpickler):
    """Loads our own test files as ``pickle`` does, recording what ``find_class`` is asked for."""

    def __init__(self, file: Any) -> None:
        super().__init__(file)
        self.asked: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.asked.add(f"{module}.{name}")
        return super().find_class(module, name)


# ------------------------------------------------------------------------------------------- the allow-list
def test_the_allow_list_is_what_our_checkpoints_name(runs: dict[str, Path]) -> None:
    """Every global of every pickle of the four kinds' checkpoints is on the list, the list holds nothing else,
    and in each pickle the static check names exactly what plain unpickling asks ``find_class`` for."""
    from sb3_dqn_atari.checkpoint.resume_check import CHECKPOINT_GLOBALS, CheckpointUnpickler, check_checkpoint
    from sb3_dqn_atari.common.pickle_check import check_pickle

    allowed = {f"{m}.{n}" for m, n in CHECKPOINT_GLOBALS.names()}
    seen: set[str] = set()
    for kind, run in runs.items():
        checkpoints = sorted((run / "checkpoints").iterdir())
        assert checkpoints, kind
        for checkpoint in checkpoints:
            assert set(check_checkpoint(checkpoint)) <= allowed
            for name, raw in _pickles(checkpoint).items():
                recording = _Recording(io.BytesIO(raw))
                recording.load()
                static = check_pickle(raw, name, CHECKPOINT_GLOBALS)
                assert set(static) == recording.asked, (kind, name)
                CheckpointUnpickler(io.BytesIO(raw), name).load()  # the restricted one admits them all
                seen |= recording.asked
    assert seen == allowed, (sorted(allowed - seen), sorted(seen - allowed))


# ----------------------------------------------------------------------------------------- exact resume
def _state(run: Path, env_id: str) -> dict[str, Any]:
    """What the final zip and replay memory of a run hold (loaded with SB3: our own files)."""
    from sb3_dqn_atari import NatureDQN

    model = NatureDQN.load(run / f"{env_id}.zip", device="cpu")
    model.load_replay_buffer(run / "replay_buffer.pkl")
    buffer = {k: v for k, v in model.replay_buffer.__getstate__().items() if isinstance(v, np.ndarray)}
    if "tree" in model.replay_buffer.__dict__:
        buffer["tree"] = model.replay_buffer.tree.nodes
    optimizer = model.policy.optimizer.state_dict()["state"]
    return {
        "weights": {k: v.numpy() for k, v in model.policy.state_dict().items()},
        "optimizer": {(i, k): np.asarray(v) for i, s in optimizer.items() for k, v in s.items()},
        "counters": (model.num_timesteps, model._n_updates, model._episode_num, model.exploration_rate),
        "buffer": buffer,
    }


@pytest.fixture
def no_unchecked_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if anything unpickles with ``pickle.load(s)``/``cloudpickle.loads``, or calls ``torch.load``
    without ``weights_only=True``."""
    import cloudpickle

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unpickled without the checks")

    torch_load = torch.load

    def weights_only(*args: Any, **kwargs: Any) -> Any:
        assert kwargs.get("weights_only") is True, "torch.load without weights_only=True"
        return torch_load(*args, **kwargs)

    for module, name in ((pickle, "load"), (pickle, "loads"), (cloudpickle, "loads")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(torch, "load", weights_only)


@pytest.mark.parametrize("kind", list(KINDS))
def test_resume_without_trust_is_bit_identical(
    kind: str,
    runs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    env_id = KINDS[kind][0]
    full = shutil.copytree(runs[kind], tmp_path / "logs" / "dqn" / f"{env_id}_1")
    monkeypatch.chdir(tmp_path)
    request.getfixturevalue("no_unchecked_unpickling")
    code, out, err = _main(["--resume", str(_checkpoint(full, 200))], capsys)
    monkeypatch.undo()
    assert code == 0, out[-2000:] + err[-2000:]
    assert "Resuming from" in out
    resumed = tmp_path / "logs" / "dqn" / f"{env_id}_2"
    a, b = _state(full, env_id), _state(resumed, env_id)
    assert a["counters"][0] == N_STEPS and a["counters"][1] == (N_STEPS - 100) // 4
    for part in ("weights", "optimizer", "buffer"):
        assert a[part].keys() == b[part].keys(), part
        for key in a[part]:
            assert np.array_equal(a[part][key], b[part][key]), (part, key)
    assert a["counters"] == b["counters"]
    if kind == "atari":  # the evaluation at step 200, before the checkpoint, is not done again
        with np.load(full / "evaluations_nature.npz") as x:
            assert list(x["timesteps"]) == [200]
        assert "Paper-protocol eval" not in out and not (resumed / "evaluations_nature.npz").exists()


# ------------------------------------------------------------------------------------------------ payloads
class _System:
    """Pickles as ``os.system(<command>)``: unpickling it runs the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def _rewrite(checkpoint: Path, name: str, data: bytes) -> None:
    """Replace a checkpoint file and its manifest entry (size and SHA-256), as anyone editing one would."""
    (checkpoint / name).write_bytes(data)
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


def _plant(checkpoint: Path, where: str, payload: Any) -> None:
    """Put ``payload`` into the checkpoint's training state, replay memory, or a pickled field of its zip."""
    if where == "training_state.pkl":
        with open(checkpoint / where, "rb") as f:
            state = pickle.load(f)
        state["planted"] = payload
        _rewrite(checkpoint, where, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    elif where == "replay_buffer.pkl":
        with open(checkpoint / where, "rb") as f:
            buffer = pickle.load(f)
        buffer.planted = payload
        _rewrite(checkpoint, where, pickle.dumps(buffer, protocol=pickle.HIGHEST_PROTOCOL))
    else:  # model.zip: the exploration schedule's pickle
        out = io.BytesIO()
        with zipfile.ZipFile(checkpoint / "model.zip") as source, zipfile.ZipFile(out, "w") as archive:
            for info in source.infolist():
                content = source.read(info.filename)
                if info.filename == "data":
                    data = json.loads(content)
                    data["exploration_schedule"][":serialized:"] = base64.b64encode(pickle.dumps(payload)).decode()
                    content = json.dumps(data).encode()
                archive.writestr(info, content)
        _rewrite(checkpoint, "model.zip", out.getvalue())


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): -1 if p.is_dir() else p.stat().st_size for p in folder.rglob("*")}


PAYLOADS = [
    pytest.param(where, what, id=f"{what}-in-{where}")
    for where in ("training_state.pkl", "replay_buffer.pkl", "model.zip")
    for what in ("os.system", "builtins.print")
]


@pytest.mark.parametrize(("where", "what"), PAYLOADS)
def test_planted_payloads_are_refused_in_one_line(
    where: str, what: str, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Exit status 2, ``error: <file> would run code when unpickled (<global>); not resumed (...)`` before rl-zoo3
    starts, no marker, no run folder, nothing changed; each guard alone (the static check, the restricted
    unpickler) refuses the same global."""
    from sb3_dqn_atari.checkpoint.resume_check import CheckpointUnpickler, check_checkpoint
    from sb3_dqn_atari.common.pickle_check import UnsafePickleError

    run = shutil.copytree(runs["cartpole"], tmp_path / "logs" / "dqn" / "CartPole-v1_1")
    marker = tmp_path / "marker"
    payload = _System(f"touch {marker}") if what == "os.system" else print
    global_name = f"{os.system.__module__}.system" if what == "os.system" else "builtins.print"
    checkpoint = _checkpoint(run, 200)
    _plant(checkpoint, where, payload)
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    code, out, err = _main(["--resume", str(checkpoint)], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert out == ""  # refused before rl-zoo3 started (it prints the env and hyperparameters first)
    assert lines == [f"error: {checkpoint / where} would run code when unpickled ({global_name}); not resumed "
                     "(use --trust-remote-code for checkpoints you trust)"]  # fmt: skip
    assert not marker.exists()
    assert _tree(tmp_path) == before  # no run folder, nothing written
    # each guard alone refuses it: the static check, and the unpickler without the static check
    with pytest.raises(UnsafePickleError, match=rf"\({global_name}\)"):
        check_checkpoint(checkpoint)
    raw = _pickles(checkpoint)["model.zip:exploration_schedule" if where == "model.zip" else where]
    with pytest.raises(UnsafePickleError, match=rf"\({global_name}\)"):
        CheckpointUnpickler(io.BytesIO(raw), "planted").load()
    assert not marker.exists()


def test_a_tensor_storage_is_loaded_with_weights_only(tmp_path: Path) -> None:
    """torch pickles a storage as ``torch.storage._load_from_bytes(<a torch.save file>)``, which torch loads
    with ``weights_only=False``: a storage whose bytes hold a payload runs it under plain unpickling, and is
    refused by the checkpoint unpickler (torch's restricted loader), while a real tensor loads as itself."""
    from sb3_dqn_atari.checkpoint.resume_check import (
        CheckpointUnpickler,
        check_pickle_file,
        checked_loading,
        load_pickle,
    )
    from sb3_dqn_atari.common.errors import UserError

    marker = tmp_path / "marker"
    inner = io.BytesIO()
    torch.save(_System(f"touch {marker}"), inner, _use_new_zipfile_serialization=False)

    class _Storage:
        def __reduce__(self) -> tuple[Any, ...]:
            return (torch.storage._load_from_bytes, (inner.getvalue(),))

    planted = tmp_path / "training_state.pkl"
    planted.write_bytes(pickle.dumps({"torch": _Storage()}))
    check_pickle_file(planted)  # the static check admits the call (its argument is torch's to check) ...
    with pytest.raises(pickle.UnpicklingError, match=f"{os.system.__module__}.system"), open(planted, "rb") as f:
        CheckpointUnpickler(f, str(planted)).load()  # ... which refuses the payload inside
    with checked_loading(), pytest.raises(UserError, match=f"{planted} is not a readable checkpoint pickle"):
        load_pickle(planted)  # as a resume meets it: one line
    assert not marker.exists()
    rng = torch.get_rng_state()
    assert torch.equal(CheckpointUnpickler(io.BytesIO(pickle.dumps(rng)), "rng").load(), rng)
    pickle.loads(planted.read_bytes())  # plain unpickling: the payload runs
    assert marker.exists()


def test_the_payload_is_live(tmp_path: Path) -> None:
    """What the refused pickle would do: plain unpickling runs the command."""
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_System(f"touch {marker}")))
    assert marker.exists()


def test_trust_remote_code_loads_the_harmless_global(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``builtins.print`` in the training state: refused above, loaded with ``--trust-remote-code`` (the last
    checkpoint, trained 8 steps further with ``-n``: arguments after ``--resume`` override the recorded ones)."""
    run = shutil.copytree(runs["cartpole"], tmp_path / "logs" / "dqn" / "CartPole-v1_1")
    checkpoint = _checkpoint(run, N_STEPS)
    _plant(checkpoint, "training_state.pkl", print)
    monkeypatch.chdir(tmp_path)
    code, _, err = _main(["--resume", str(checkpoint)], capsys)
    assert code == 2 and "(builtins.print)" in err
    code, out, err = _main(["--resume", str(checkpoint), "--trust-remote-code", "-n", str(N_STEPS + 8)], capsys)
    assert code == 0, out[-2000:] + err[-2000:]
    assert f"Resuming from {checkpoint}" in out and f"Continuing the run in {run}" in out
    assert (run / "checkpoints" / f"step_{N_STEPS + 8:012d}").is_dir()


def test_a_truncated_pickle_is_refused_in_one_line(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replay memory cut inside its arrays (and the manifest made to match): one line, exit 2, no run folder."""
    run = shutil.copytree(runs["atari"], tmp_path / "logs" / "dqn" / f"{BREAKOUT}_1")
    checkpoint = _checkpoint(run, 200)
    data = (checkpoint / "replay_buffer.pkl").read_bytes()
    _rewrite(checkpoint, "replay_buffer.pkl", data[: len(data) // 2])
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    code, _, err = _main(["--resume", str(checkpoint)], capsys)
    lines = [line for line in err.splitlines() if line.strip() and "A.L.E" not in line and "Stella" not in line]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: {checkpoint / 'replay_buffer.pkl'} cannot be checked"), lines
    assert _tree(tmp_path) == before
