"""One sweep trial on a Ray worker: ``python -m sb3_dqn_atari.train`` for one (env id, seed), resumed exactly from
the trial's last Tune checkpoint when Tune runs it again (a killed worker process or node, or ``--resume``).

The trial calls the train command's ``main`` with the argument list of :meth:`SweepSpec.trial_argv
<sb3_dqn_atari.sweep.spec.SweepSpec.trial_argv>`, plus ``--resume <checkpoint>`` on a retry, in the worker
process (one trial per Ray actor; torch gets ``--num-threads`` = the trial's CPUs). Each attempt appends one line
to the trial folder's ``attempts.jsonl``: its process id and node, and the checkpoint it resumed from.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ray import tune

from sb3_dqn_atari.checkpoint import CheckpointError, read_checkpoint
from sb3_dqn_atari.common.files import atomic_write_bytes
from sb3_dqn_atari.sweep.spec import (
    ATTEMPTS_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    TRIAL_FILE,
    SweepSpec,
    read_attempts,
    trial_name,
)


class TrialError(RuntimeError):
    """The train command ended with a non-zero status (its one-line reason is in the trial's ``stderr``)."""


def _start_attempt(folder: Path, spec: SweepSpec, env_id: str, seed: int, argv: list[str], resume: str | None) -> None:
    import ray

    resumed_step = None
    if resume is not None:
        with contextlib.suppress(CheckpointError):
            resumed_step = read_checkpoint(resume).num_timesteps
    record = {
        "attempt": len(read_attempts(folder)) + 1,
        "pid": os.getpid(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "resumed_from": resume,
        "resumed_step": resumed_step,
    }
    trial = {"env_id": env_id, "seed": seed, "algo": spec.algo, "n_timesteps": spec.budget(env_id), "argv": argv}
    atomic_write_bytes(folder / TRIAL_FILE, (json.dumps(trial, indent=1) + "\n").encode())
    with open(folder / ATTEMPTS_FILE, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def train_trial(config: dict[str, Any], sweep: SweepSpec) -> None:
    """Ray Tune's function trainable: ``config`` holds ``env_id`` and ``seed``, ``sweep`` the sweep (bound with
    ``tune.with_parameters``). The train command's output goes to ``stdout.log``/``stderr.log`` in the trial folder
    (Tune's table shows the progress)."""
    import sb3_dqn_atari.zoo  # noqa: F401  (registers NatureDQN as rl-zoo3's "dqn")
    from sb3_dqn_atari.checkpoint.experiment import zoo_train as train_main

    env_id, seed = str(config["env_id"]), int(config["seed"])
    folder = sweep.trial_folder(env_id, seed)
    folder.mkdir(parents=True, exist_ok=True)
    argv = sweep.trial_argv(env_id, seed)
    checkpoint = tune.get_checkpoint()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(folder / STDOUT_FILE, "a", buffering=1))
        err = stack.enter_context(open(folder / STDERR_FILE, "a", buffering=1))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        resume = stack.enter_context(checkpoint.as_directory()) if checkpoint is not None else None
        _start_attempt(folder, sweep, env_id, seed, argv, resume)
        code = train_main(argv + (["--resume", str(resume)] if resume is not None else []))
    if code != 0:
        raise TrialError(
            f"{trial_name(env_id, seed)}: python -m sb3_dqn_atari.train exited with status {code}; its error is "
            f"the last line of {folder / STDERR_FILE}"
        )
