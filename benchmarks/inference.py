"""Inference speed of the exported Nature network: onnxruntime vs PyTorch eager, and the PyTorch-free play loop.

::

    python benchmarks/inference.py [--repeats 300] [--batch 256] [--play-steps 3000] [--json out.json]

Measures, for the Nature DQN network (Mnih et al. 2015: 3 conv + 2 linear layers, 1,686,180 parameters with
Breakout's 4 actions; uint8 ``(4, 84, 84)`` input, ``/255`` in the graph) exported by
:func:`sb3_dqn_atari.export.export_onnx`:

* per-action latency, batch 1, one thread each (``torch.set_num_threads(1)``, onnxruntime
  ``intra_op_num_threads=1``): PyTorch eager ``q_net(obs).argmax`` under ``torch.inference_mode``, SB3's
  ``model.predict`` (what users call, with its numpy/tensor conversions) and onnxruntime ``session.run``;
* throughput at batch 256 (observations per second), with 1 and with all threads;
* the play loop of :mod:`sb3_dqn_atari.runtime` (ALE, numpy preprocessing, frame stack, onnxruntime on one
  thread): agent steps per second of wall time and per second of this process's CPU time, and its parts
  (env step with preprocessing, ``nature_frame`` alone, the network alone).

Targets (issue 5): onnxruntime batch-1 latency <= 0.5x PyTorch eager's; play loop >= 1,000 agent steps/s on one
core. The machine may be shared: the load average is printed, the two engines are timed in alternating blocks
(so load changes hit both alike), and CPU-time rates are printed next to wall-clock ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnxruntime as ort
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sb3_dqn_atari import NatureDQN
from sb3_dqn_atari.atari.preprocessing import nature_frame
from sb3_dqn_atari.atari.wrappers import NatureAtariWrapper
from sb3_dqn_atari.onnx.export import export_onnx
from sb3_dqn_atari.onnx.runtime import OnnxAgent

ENV_ID = "BreakoutNoFrameskip-v4"


def session(path: Path, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_run(ort_session: ort.InferenceSession, obs: np.ndarray) -> Callable[[], Any]:
    """One onnxruntime call for the greedy action, as the runtime makes it."""
    return lambda: ort_session.run(["action"], {"obs": obs})


def time_calls(fn: Callable[[], Any], repeats: int, block: int) -> tuple[list[float], list[float]]:
    """``block`` back-to-back calls of ``fn``, ``repeats // block`` times: per-call wall and CPU seconds."""
    walls, cpus = [], []
    for _ in range(max(repeats // block, 1)):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(block):
            fn()
        walls.append((time.perf_counter() - wall) / block)
        cpus.append((time.process_time() - cpu) / block)
    return walls, cpus


def compare(engines: dict[str, Callable[[], Any]], repeats: int, block: int, desc: str) -> dict[str, dict[str, float]]:
    """Time every engine in alternating blocks; median per-call wall and CPU seconds."""
    for fn in engines.values():  # warm-up: allocations, onnxruntime's first-run graph work, torch's kernels
        for _ in range(5):
            fn()
    walls: dict[str, list[float]] = {name: [] for name in engines}
    cpus: dict[str, list[float]] = {name: [] for name in engines}
    rounds = max(repeats // block, 1)
    for _ in tqdm(range(rounds), desc=desc, leave=False):
        for name, fn in engines.items():
            w, c = time_calls(fn, block, block)
            walls[name] += w
            cpus[name] += c
    return {
        name: {"wall_s": statistics.median(walls[name]), "cpu_s": statistics.median(cpus[name])} for name in engines
    }


def play_loop(path: Path, steps: int, seed: int = 0, episode_frames: int = 2000) -> dict[str, float]:
    """The runtime's own loop (``OnnxAgent.play_episode``, onnxruntime on one thread), ε = 0.05 so the game
    moves, episodes capped at ``episode_frames`` emulator frames, until ``steps`` agent steps; and its parts
    (env step with preprocessing, network) timed alone. The best episode's rate is the least disturbed by
    other processes (as ``timeit`` recommends the minimum time)."""
    agent = OnnxAgent(path, intra_op_num_threads=1)
    env = agent.make_env(max_episode_frames=episode_frames)
    rng = np.random.default_rng(seed)
    done_steps, wall, cpu = 0, 0.0, 0.0
    episode_rates = []
    with tqdm(total=steps, desc="play loop", leave=False) as bar:
        while done_steps < steps:
            w0, c0 = time.perf_counter(), time.process_time()
            result = agent.play_episode(env, seed=seed if done_steps == 0 else None, epsilon=0.05, rng=rng)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            done_steps += result.steps
            episode_rates.append(result.steps / result.seconds)
            bar.update(result.steps)
    n_parts = min(steps, 2000)
    obs = env.reset(seed=seed)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_parts):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(agent.metadata.n_actions)))
        if terminated or truncated:
            obs = env.reset()
    env_wall, env_cpu = (time.perf_counter() - w0) / n_parts, (time.process_time() - c0) / n_parts
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_parts):
        agent.act(obs)
    net_wall, net_cpu = (time.perf_counter() - w0) / n_parts, (time.process_time() - c0) / n_parts
    screen = np.array(env.screen())
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_parts):
        nature_frame(screen)
    frame_wall, frame_cpu = (time.perf_counter() - w0) / n_parts, (time.process_time() - c0) / n_parts
    env.close()
    return {
        "steps": float(done_steps),
        "episodes": float(len(episode_rates)),
        "steps_per_s_wall": done_steps / wall,
        "steps_per_s_cpu": done_steps / cpu,
        "steps_per_s_best_episode": max(episode_rates),
        "env_step_ms_wall": 1e3 * env_wall,
        "env_step_ms_cpu": 1e3 * env_cpu,
        "act_ms_wall": 1e3 * net_wall,
        "act_ms_cpu": 1e3 * net_cpu,
        "nature_frame_ms_wall": 1e3 * frame_wall,
        "nature_frame_ms_cpu": 1e3 * frame_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=300, help="batch-1 calls per engine")
    parser.add_argument("--batch", type=int, default=256, help="batch size for throughput")
    parser.add_argument("--batch-repeats", type=int, default=20, help="large-batch calls per engine")
    parser.add_argument("--play-steps", type=int, default=3000, help="agent steps of the play loop")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}")
    gym.register_envs(__import__("ale_py"))
    venv = VecFrameStack(DummyVecEnv([lambda: NatureAtariWrapper(gym.make(ENV_ID))]), 4)
    model = NatureDQN("CnnPolicy", venv, buffer_size=100, learning_starts=0, seed=0, device="cpu")
    q_net = model.policy.q_net.eval()
    results: dict[str, Any] = {"load_average_before": load_before}

    with tempfile.TemporaryDirectory() as tmp:
        report = export_onnx(model, Path(tmp) / "nature.onnx", ENV_ID, progress=False)
        print(f"exported and verified: {report.verification.summary()}")
        rng = np.random.default_rng(0)
        obs1 = rng.integers(0, 256, (1, 4, 84, 84), dtype=np.uint8)
        obs_b = rng.integers(0, 256, (args.batch, 4, 84, 84), dtype=np.uint8)
        t1, tb = torch.as_tensor(obs1), torch.as_tensor(obs_b)

        def torch_eager(x: torch.Tensor) -> Callable[[], Any]:
            def call() -> Any:
                with torch.inference_mode():
                    return q_net(x).argmax(dim=1)

            return call

        rows = []
        for threads in (1, os.cpu_count() or 1):
            torch.set_num_threads(threads)
            ort_session = session(report.path, threads)
            engines_1: dict[str, Callable[[], Any]] = {
                "pytorch eager": torch_eager(t1),
                "sb3 model.predict": lambda: model.predict(obs1[0], deterministic=True),
                "onnxruntime": onnx_run(ort_session, obs1),
            }
            engines_b: dict[str, Callable[[], Any]] = {
                "pytorch eager": torch_eager(tb),
                "onnxruntime": onnx_run(ort_session, obs_b),
            }
            lat = compare(engines_1, args.repeats, 25, f"batch 1, {threads} thread(s)")
            thr = compare(engines_b, args.batch_repeats, 2, f"batch {args.batch}, {threads} thread(s)")
            rows.append((threads, lat, thr))
            results[f"threads_{threads}"] = {"batch_1": lat, f"batch_{args.batch}": thr}

        results["play"] = play_loop(report.path, args.play_steps)

    print()
    print("| threads | measure | PyTorch eager | SB3 predict | onnxruntime | onnxruntime / PyTorch |")
    print("|---|---|---|---|---|---|")
    for threads, lat, thr in rows:
        pt, sb, ox = (lat[k]["wall_s"] * 1e3 for k in ("pytorch eager", "sb3 model.predict", "onnxruntime"))
        print(f"| {threads} | batch-1 latency, ms (median) | {pt:.3f} | {sb:.3f} | {ox:.3f} | **{ox / pt:.2f}x** |")
        ptc, oxc = (lat[k]["cpu_s"] * 1e3 for k in ("pytorch eager", "onnxruntime"))
        print(f"| {threads} | batch-1 CPU time, ms | {ptc:.3f} | | {oxc:.3f} | {oxc / ptc:.2f}x |")
        ptb, oxb = (args.batch / thr[k]["wall_s"] for k in ("pytorch eager", "onnxruntime"))
        print(f"| {threads} | batch-{args.batch} throughput, obs/s | {ptb:,.0f} | | {oxb:,.0f} | {oxb / ptb:.2f}x |")
    play = results["play"]
    print()
    print(
        f"play loop (onnxruntime 1 thread, {int(play['steps'])} steps in "
        f"{int(play['episodes'])} episodes): {play['steps_per_s_wall']:,.0f} agent steps/s wall, "
        f"{play['steps_per_s_cpu']:,.0f} per CPU-second, best episode {play['steps_per_s_best_episode']:,.0f}/s wall"
    )
    print(
        f"  per step: env + preprocessing {play['env_step_ms_wall']:.3f} ms (CPU {play['env_step_ms_cpu']:.3f}; "
        f"of which nature_frame {play['nature_frame_ms_wall']:.3f} ms), "
        f"network {play['act_ms_wall']:.3f} ms (CPU {play['act_ms_cpu']:.3f})"
    )
    load_after = os.getloadavg()
    results["load_average_after"] = load_after
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
