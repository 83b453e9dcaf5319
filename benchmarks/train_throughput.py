"""Training throughput of NatureDQN vs SB3's DQN with rl-zoo3's Atari hyperparameters, side by side.

Both agents are built from their rl-zoo3 hyperparameter files (rl-zoo3's own ``dqn.yml`` ``atari`` block for
SB3, our ``hyperparams/dqn.yml`` for NatureDQN) on the same game and seed, with ``learning_starts`` lowered to
``--warmup`` so that the measured steps are at steady state (one SGD update every 4 agent steps).

Each agent lives in its own worker process (``spawn``), where it is built and warmed up: NatureDQN's
``learn`` applies a process-wide glibc allocator setting (:func:`sb3_dqn_atari.allocator.keep_freed_memory`)
that would speed up SB3's DQN too if they shared a process, and separate processes also keep their torch
thread pools and heaps apart, so each agent is measured as its users run it. The parent still measures them
in alternating chunks (A, B, C, A, B, C, ...), one worker computing at a time while the others wait, so
machine load hits all alike; the median chunk speed of each is reported, with the ratio.

For NatureDQN it also reports where the time goes: env step, action selection, replay add, replay sample,
train step (without the sample), and the rest.

    python benchmarks/train_throughput.py --steps 3000 --warmup 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecFrameStack

ROOT = Path(__file__).resolve().parents[1]
NOT_MODEL_KEYS = {"env_wrapper", "frame_stack", "n_timesteps", "policy", "n_envs", "normalize"}
#: environment variables that cap the instruction sets torch's libraries use (oneDNN, ATen, MKL)
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
BREAKDOWN = ("env step", "action selection", "replay add", "replay sample", "train step")

#: parent to worker: ("run", agent steps) or ("stop", 0)
Command = tuple[str, int]
#: worker to parent: ("ready", torch threads), ("done", (seconds, timer seconds)) or ("error", traceback)
Reply = tuple[str, Any]


def zoo_hyperparams(path: Path, env_id: str) -> tuple[dict[str, Any], str]:
    """The hyperparameters rl-zoo3 would pass for ``env_id`` from ``path``, and the wrapper's dotted path."""
    table = yaml.safe_load(path.read_text())
    params = dict(table.get(env_id, table["atari"]))
    wrapper = params["env_wrapper"]
    wrapper = wrapper[0] if isinstance(wrapper, list) else wrapper
    return {k: v for k, v in params.items() if k not in NOT_MODEL_KEYS}, str(wrapper)


def build(agent: str, env_id: str, seed: int, warmup: int, device: str, mode: str) -> BaseAlgorithm:
    from rl_zoo3.utils import get_class_by_name

    if agent == "sb3":
        import rl_zoo3

        params, wrapper = zoo_hyperparams(Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml", env_id)
        cls: type[BaseAlgorithm] = DQN
    else:
        from sb3_dqn_atari import NatureDQN

        params, wrapper = zoo_hyperparams(ROOT / "hyperparams" / "dqn.yml", env_id)
        cls = NatureDQN
        if mode == "exact-nchw":  # exact mode in PyTorch's default conv layout instead of channels-last
            params["mode"], params["channels_last"] = "exact", False
        else:
            params["mode"] = mode
    params["learning_starts"] = warmup
    env = make_vec_env(env_id, n_envs=1, seed=seed, wrapper_class=get_class_by_name(wrapper))
    return cls("CnnPolicy", VecFrameStack(env, 4), seed=seed, device=device, **params)


class Timers:
    """Wraps bound methods of one model to accumulate their wall time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)


def instrument(model: BaseAlgorithm) -> Timers:
    timers = Timers()
    assert model.env is not None
    timers.wrap(model.env, "step_wait", "env step")
    timers.wrap(model, "predict", "action selection")
    timers.wrap(model.replay_buffer, "add", "replay add")  # type: ignore[attr-defined]
    timers.wrap(model.replay_buffer, "sample", "replay sample")  # type: ignore[attr-defined]
    timers.wrap(model, "train", "train step")
    return timers


def prepare(agent: str, mode: str, args: argparse.Namespace, device: str) -> tuple[BaseAlgorithm, Timers | None]:
    """Build one agent in this (worker) process, fill past ``learning_starts`` and time our agents' parts."""
    import ale_py

    gym.register_envs(ale_py)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = build(agent, args.env, args.seed, args.warmup, device, mode)
    model.learn(args.warmup + 4, reset_num_timesteps=False)  # every measured step is steady state
    return model, None if agent == "sb3" else instrument(model)


def settings(model: BaseAlgorithm) -> str:
    """What NatureDQN chose on this device: fast mode's options with their reasons, exact mode's layout."""
    from sb3_dqn_atari import NatureDQN
    from sb3_dqn_atari.agent.hardware import describe_fast_options

    if not isinstance(model, NatureDQN):
        return ""
    if model.fast_choices:
        return describe_fast_options(model.capabilities, model.fast_choices)
    layout = "channels-last" if model._use_channels_last() else "NCHW"
    return f"exact mode on {model.capabilities.name}: {layout}"


def serve(conn: Connection[Reply, Command], agent: str, mode: str, args: argparse.Namespace, device: str) -> None:
    """Worker process: prepare one agent, then run and time chunks of ``learn`` on request until "stop"."""
    try:
        model, timers = prepare(agent, mode, args, device)
        conn.send(("ready", (torch.get_num_threads(), settings(model))))
        while True:
            command, steps = conn.recv()
            if command == "stop":
                break
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            elapsed = time.perf_counter() - start
            conn.send(("done", (elapsed, dict(timers.seconds) if timers is not None else {})))
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class WorkerError(RuntimeError):
    def __init__(self, name: str, details: str) -> None:
        super().__init__(f"worker {name} failed:\n{details}")


@dataclass
class Worker:
    """The parent's end of one agent's worker process, with what its chunks measured."""

    name: str
    process: BaseProcess
    conn: Connection[Command, Reply]
    threads: int = 0
    settings: str = ""
    speeds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(
        cls, ctx: SpawnContext, name: str, agent: str, mode: str, args: argparse.Namespace, device: str
    ) -> Worker:
        conn, child = ctx.Pipe()
        process = ctx.Process(target=serve, args=(child, agent, mode, args, device), name=name, daemon=True)
        process.start()
        child.close()  # the worker's end is the worker's alone: recv sees EOF if it dies
        worker = cls(name, process, conn)
        worker.threads, worker.settings = worker.reply("ready")
        return worker

    def reply(self, expected: str) -> Any:
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            self.process.join(timeout=5)
            raise WorkerError(self.name, f"exited with code {self.process.exitcode} without replying") from None
        if kind == "error":
            raise WorkerError(self.name, payload)
        assert kind == expected, (kind, expected)
        return payload

    def run(self, steps: int) -> float:
        """Run ``steps`` agent steps in the worker; the seconds ``learn`` took there."""
        self.conn.send(("run", steps))
        elapsed, self.parts = self.reply("done")
        self.speeds.append(steps / elapsed)
        self.seconds += elapsed
        return float(elapsed)

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # it may have exited already
            self.conn.send(("stop", 0))
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.conn.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--steps", type=int, default=2000, help="agent steps per measured chunk")
    parser.add_argument("--warmup", type=int, default=1000, help="learning_starts for both agents")
    parser.add_argument("--rounds", type=int, default=3, help="measured chunks per agent, alternating")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--mode", default="exact,fast", help="NatureDQN modes: exact, fast, exact-nchw (exact in NCHW layout)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads per agent (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def measure(workers: list[Worker], steps: int, rounds: int) -> None:
    """Alternate chunks over the workers, one computing at a time."""
    for _ in range(rounds):
        for worker in workers:
            elapsed = worker.run(steps)
            print(f"  {worker.name:14s} chunk: {steps / elapsed:7.1f} steps/s", flush=True)


def host_description(device: str) -> str:
    """CPU model, cores, the instruction sets oneDNN and ATen use (with any cap set in the environment: an
    emulation of an older CPU) and the native bf16 (what ``mode="fast"`` gains from)."""
    from sb3_dqn_atari.agent.hardware import detect

    caps = ", ".join(f"{k}={os.environ[k]}" for k in ISA_CAPS if os.environ.get(k))
    emulated = f"; instruction sets capped by {caps}" if caps else ""
    line = f"{detect('cpu').describe()}, {os.cpu_count()} cores{emulated}"
    if device != "cpu":
        line += f"; training device: {detect(device).describe()}"
    return line


def report(workers: list[Worker], args: argparse.Namespace, device: str) -> None:
    sb3_speed = statistics.median(workers[0].speeds)
    cpu = "/".join(str(n) for n in sorted({w.threads for w in workers})) + " torch threads"
    print(f"\n{args.env}, device={device} ({cpu}), {date.today().isoformat()}, median of {args.rounds} chunks")
    print(f"host: {host_description(device)}")
    for worker in workers[1:]:
        print(f"  {worker.name}: {worker.settings}")
    print(f"{'agent':32s} {'steps/s':>9s} {'ratio':>7s}")
    print(f"{'SB3 DQN + rl-zoo3 atari':32s} {sb3_speed:9.1f} {1.0:6.2f}x")
    for worker in workers[1:]:
        ours = statistics.median(worker.speeds)
        print(f"{'NatureDQN (' + worker.name.removeprefix('nature-') + ')':32s} {ours:9.1f} {ours / sb3_speed:6.2f}x")
    for worker in workers[1:]:
        breakdown(worker, args.steps * args.rounds)


def breakdown(worker: Worker, n_steps: int) -> None:
    print(f"\n{worker.name}: time per agent step")
    total = worker.seconds / n_steps
    parts = dict(worker.parts)
    parts["train step"] = parts.get("train step", 0.0) - parts.get("replay sample", 0.0)  # sample is inside train
    counted = 0.0
    for label in BREAKDOWN:
        per_step = parts.get(label, 0.0) / n_steps
        counted += per_step
        print(f"  {label:18s} {per_step * 1e6:9.1f} us  {100 * per_step / total:5.1f}%")
    print(f"  {'other':18s} {(total - counted) * 1e6:9.1f} us  {100 * (total - counted) / total:5.1f}%")


def main() -> None:
    args = parse_args()
    device = str(get_device(args.device))
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    agents = [("sb3", "sb3", "exact")] + [(f"nature-{mode}", "nature", mode) for mode in modes]
    ctx = multiprocessing.get_context("spawn")
    workers: list[Worker] = []
    try:
        for name, agent, mode in agents:  # one at a time: warm-ups don't compete either
            workers.append(Worker.start(ctx, name, agent, mode, args, device))
        measure(workers, args.steps, args.rounds)
    except WorkerError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        for worker in workers:
            worker.stop()
    report(workers, args, device)


if __name__ == "__main__":
    main()
