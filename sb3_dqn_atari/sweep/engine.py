"""The sweep as a Ray Tune experiment: one trial per (game, seed), each retried from its last checkpoint when its
worker process or node dies, the whole resumable after an interruption.

* **Where it runs.** Without an address, :func:`connect` starts a Ray instance on this machine (the embedded
  default, on 127.0.0.1 only); with one (``host:6379``, ``auto``, ``ray://host:10001``) it joins an existing
  cluster (``ray start --head`` on one node, ``ray start --address=…`` on the others).
* **Resources.** Each trial asks Ray for ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs (fractions share a
  GPU; Ray sets ``CUDA_VISIBLE_DEVICES``); its torch runs ``int(cpus_per_trial)`` threads, so trials never
  oversubscribe a node's cores.
* **Failures.** Tune retries a failed trial up to ``max_failures`` times from its latest checkpoint
  (``FailureConfig``); the trial resumes it exactly (:mod:`sb3_dqn_atari.sweep.trial`). Tune keeps the 2 newest
  checkpoints of each trial (``CheckpointConfig(num_to_keep=2)``).
* **Resume.** :func:`run_sweep` with ``resume=True`` restores the experiment (``Tuner.restore``): finished trials
  stay finished, the others continue from their latest checkpoints, errored ones too (``resume_errored``).
* **Progress.** Tune's table, with each trial's ``timesteps`` and latest ``paper_score``, every few seconds;
  each trial's own output goes to ``stdout.log``/``stderr.log`` in its trial folder.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sb3_dqn_atari.common.errors import UserError, one_line
from sb3_dqn_atari.sweep.spec import (
    SweepSpec,
    create_sweep,
    env_id_for,
    load_sweep,
    read_attempts,
    trial_name,
)

#: object store of the Ray instance started on this machine when no --address is given
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
#: Tune keeps this many checkpoints per trial (the newest; each holds the replay memory)
TUNE_CHECKPOINTS_KEPT = 2


@dataclass
class TrialOutcome:
    """How one trial ended: ``done``, ``error`` (after its retries), ``unfinished`` (stopped: resume the sweep)
    or ``pending`` (not started)."""

    name: str
    status: str
    attempts: int
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def connect(address: str | None = None) -> None:
    """Connect to the Ray cluster at ``address``, or start a Ray instance on this machine, on 127.0.0.1 only
    (Ray's single-machine mode, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, set before Ray is imported)."""
    if address is None and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return
    if address is None:
        # Only metrics go through the object store (checkpoints go through the file system): a small one will do.
        ray.init(include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        return
    try:
        ray.init(address=address)
    except ConnectionError as exc:
        raise UserError(
            f"cannot connect to the Ray cluster at {address} ({one_line(str(exc), 160)}); is it running "
            "(ray start --head)? With token authentication (the default of ray start), set RAY_AUTH_MODE=token"
        ) from None


def _check_resources(spec: SweepSpec) -> None:
    """A :class:`UserError` if no node of the cluster has the CPUs and GPUs one trial asks for (Tune would wait)."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(n.get("CPU", 0) >= spec.cpus_per_trial and n.get("GPU", 0) >= spec.gpus_per_trial for n in nodes):
        have = ", ".join(f"{n.get('CPU', 0):g} CPU/{n.get('GPU', 0):g} GPU" for n in nodes)
        raise UserError(
            f"a trial asks for {spec.cpus_per_trial:g} CPU(s) and {spec.gpus_per_trial:g} GPU(s), but the Ray nodes "
            f"have {have}: lower --cpus-per-trial/--gpus-per-trial"
        )


def _trial_name(trial: Any) -> str:
    return trial_name(str(trial.config["env_id"]), int(trial.config["seed"]))


def _tuner(spec: SweepSpec, resume: bool, verbose: int) -> Any:
    from ray import tune

    from sb3_dqn_atari.sweep.trial import train_trial

    trainable = tune.with_resources(
        tune.with_parameters(train_trial, sweep=spec),
        {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial},
    )
    if resume:
        return tune.Tuner.restore(str(spec.path), trainable=trainable, resume_errored=True)
    return tune.Tuner(
        trainable,
        param_space={"env_id": tune.grid_search(spec.env_ids), "seed": tune.grid_search(spec.seeds)},
        tune_config=tune.TuneConfig(
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
            max_concurrent_trials=spec.max_concurrent_trials,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(spec.path.parent),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=TUNE_CHECKPOINTS_KEPT),
            verbose=verbose,
        ),
    )


def _outcome(spec: SweepSpec, env_id: str, seed: int, result: Any) -> TrialOutcome:
    name, folder = trial_name(env_id, seed), spec.trial_folder(env_id, seed)
    attempts = len(read_attempts(folder))
    if attempts == 0 or result is None or isinstance(result.error, FileNotFoundError):  # never reported anything
        return TrialOutcome(name, "unfinished" if attempts else "pending", attempts)
    metrics = dict(result.metrics or {})
    if result.error is not None:
        return TrialOutcome(name, "error", attempts, metrics, one_line(str(result.error)))
    done = bool(metrics.get("done")) or _finished(spec, env_id, folder, metrics)
    return TrialOutcome(name, "done" if done else "unfinished", attempts, metrics)


def _finished(spec: SweepSpec, env_id: str, folder: Path, metrics: dict[str, Any]) -> bool:
    """A trial that finished before the sweep was interrupted: restored by ``--resume``, Tune gives its last
    result row, in which ``done`` is never set (Tune adds it in memory when the function returns). It finished if
    it reported its whole budget and a run folder holds the final model (rl-zoo3 writes it after the last step;
    a killed attempt has none)."""
    reached = int(metrics.get("timesteps") or 0) >= spec.budget(env_id)
    return reached and any(folder.glob(f"{spec.algo}/{env_id}_*/{env_id}.zip"))


def run_sweep(
    spec: SweepSpec, address: str | None = None, resume: bool = False, verbose: int = 1
) -> list[TrialOutcome]:
    """Run (or, with ``resume``, continue) the sweep of ``spec`` (its folder made by
    :func:`~sb3_dqn_atari.sweep.spec.create_sweep`) on Ray; returns each trial's outcome, games then seeds."""
    connect(address)
    _check_resources(spec)
    results = {Path(r.path).name: r for r in _tuner(spec, resume, verbose).fit()}
    return [
        _outcome(spec, env_id, seed, results.get(trial_name(env_id, seed)))
        for env_id in spec.env_ids
        for seed in spec.seeds
    ]


def summary(outcomes: list[TrialOutcome]) -> str:
    """A plain-text table of the outcomes (one line per trial)."""
    lines = [f"{'trial':<36} {'status':<10} {'attempts':>8} {'timesteps':>11} {'paper score':>12}"]
    for o in outcomes:
        score = o.metrics.get("paper_score")
        shown = "-" if score is None else f"{score:.1f}"
        lines.append(f"{o.name:<36} {o.status:<10} {o.attempts:>8} {o.metrics.get('timesteps', 0):>11,} {shown:>12}")
        if o.error:
            lines.append(f"    {o.error}")
    return "\n".join(lines)


def _sweep_folder(log_folder: str | Path, name: str | None, resume: bool) -> Path:
    """``<log_folder>/<name>``; without a name, the next ``sweep_<k>`` (the latest one with ``resume``), as
    rl-zoo3 numbers its run folders."""
    from rl_zoo3.utils import get_latest_run_id

    root = Path(log_folder).resolve()
    if name is not None:
        if not name or "/" in name or name in (".", ".."):
            raise UserError(f"--name {name!r}: give a plain folder name")
        return root / name
    latest = get_latest_run_id(str(root), "sweep") if root.is_dir() else 0
    if resume and latest == 0:
        raise UserError(f"no sweep_<k> folder in {root} to resume; pass -f and --name of the sweep")
    return root / f"sweep_{latest if resume else latest + 1}"


def sweep_command(
    *,
    games: list[str] | None,
    seeds: list[int] | None,
    conf: str,
    log_folder: str,
    name: str | None,
    resume: bool,
    address: str | None,
    verbose: int = 1,
    **settings: Any,
) -> int:
    """``python -m sb3_dqn_atari.sweep``: create (or ``resume``) the sweep folder, run the sweep, print each
    trial's outcome; 0 if every trial finished, 1 if one failed after its retries or the sweep was interrupted."""
    if importlib.util.find_spec("ray") is None:
        raise UserError('Ray Tune is not installed: pip install -e ".[cluster]"')
    folder = _sweep_folder(log_folder, name, resume)
    if resume:
        spec = load_sweep(folder)
        given = (None if games is None else [env_id_for(g) for g in games], seeds)
        if (given[0] is not None and given[0] != spec.env_ids) or (given[1] is not None and given[1] != spec.seeds):
            raise UserError(
                f"{folder} is the sweep of {spec.env_ids} x seeds {spec.seeds}; resume it with those (or none), "
                "or start another with --name"
            )
    else:
        if not games or not seeds:
            raise UserError("pass --games and --seeds (or --resume to continue a sweep)")
        spec = SweepSpec(folder=str(folder), env_ids=[env_id_for(g) for g in games], seeds=list(seeds), **settings)
        create_sweep(spec, conf)
    print(f"Sweep {spec.path}: {len(spec.env_ids)} game(s) x {len(spec.seeds)} seed(s)", flush=True)
    outcomes = run_sweep(spec, address=address, resume=resume, verbose=verbose)
    print(summary(outcomes))
    unfinished = [o for o in outcomes if o.status != "done"]
    if unfinished:
        print(
            f"{len(unfinished)} trial(s) not done; continue with: python -m sb3_dqn_atari.sweep --resume "
            f"-f {spec.path.parent} --name {spec.name}",
            file=sys.stderr,
        )
        return 1
    print(f"Report: python -m sb3_dqn_atari.report {spec.path} -o {spec.path / 'report'}")
    return 0
