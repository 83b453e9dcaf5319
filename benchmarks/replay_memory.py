"""Replay memory for Atari: FrameReplayBuffer against SB3's ReplayBuffer, memory and speed.

Fills each buffer with ``N`` transitions of 4x84x84 uint8 stacks (a VecFrameStack-like stream of random
frames, episodes ending about every ``--episode-length`` steps, a tenth of them truncations) and reports
bytes per transition (resident, measured), the process's peak RSS, the mean ``add`` time and the
``sample(32)`` time. Each buffer is measured in a fresh subprocess, so RSS is that buffer's alone.

SB3's buffers store stacked observations (x2 without ``optimize_memory_usage``); they run at each requested
size that fits in ``--memory-fraction`` of the memory available now, and otherwise at the largest size that
does (the table says which). Ratios are taken at equal sizes where both ran, else against SB3's largest run.

    python benchmarks/replay_memory.py                       # 10k and 100k
    python benchmarks/replay_memory.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = {
    "frame": "FrameReplayBuffer",
    "frame-device": "FrameReplayBuffer(frames_on_device=True)",
    "sb3": "SB3 ReplayBuffer",
    "sb3-opt": "SB3 ReplayBuffer(optimize_memory_usage=True)",
}


@dataclass
class Result:
    kind: str
    size: int
    frame_bytes: int  # stacked-observation or frame bytes allocated per transition
    resident_per_transition: float  # RSS growth while building and filling, per transition
    peak_rss: int
    add_us: float
    sample_us: float
    sample_us_p90: float
    fill_s: float


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def make_buffer(kind: str, size: int, stack: int, side: int, device: str) -> Any:
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    from sb3_dqn_atari.agent.replay import FrameReplayBuffer

    obs_space = spaces.Box(0, 255, (stack, side, side), np.uint8)
    act_space = spaces.Discrete(4)
    if kind == "frame":
        return FrameReplayBuffer(size, obs_space, act_space, device=device)
    if kind == "frame-device":
        return FrameReplayBuffer(size, obs_space, act_space, device=device, frames_on_device=True)
    if kind == "sb3":
        return ReplayBuffer(size, obs_space, act_space, device=device)
    return ReplayBuffer(
        size, obs_space, act_space, device=device, optimize_memory_usage=True, handle_timeout_termination=False
    )


def worker(args: argparse.Namespace) -> Result:
    """Build, fill and time one buffer in this (fresh) process."""
    import stable_baselines3.common.buffers  # noqa: F401  (imports before the RSS baseline)
    import torch as th

    import sb3_dqn_atari.agent.replay  # noqa: F401

    th.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    side, stack = args.frame_size, args.stack
    pool = rng.integers(0, 256, (1024, 1, 1, side, side), dtype=np.uint8)  # frame content does not matter
    start = rss()
    buffer = make_buffer(args.kind, args.size, stack, side, args.device)
    obs = np.zeros((1, stack, side, side), np.uint8)
    obs[:, -1:] = pool[0]
    ends = rng.random(args.size) < 1 / args.episode_length
    truncations = rng.random(args.size) < 0.1
    action, reward = np.array([1]), np.array([1.0], np.float32)
    add_time = 0.0
    begin = time.perf_counter()
    for i in range(args.size):
        next_obs = np.concatenate([obs[:, 1:], pool[i % 1024]], axis=1)
        done = ends[i : i + 1]
        infos = [{"TimeLimit.truncated": bool(done[0] and truncations[i])}]
        tic = time.perf_counter()
        buffer.add(obs, next_obs, action, reward, done, infos)
        add_time += time.perf_counter() - tic
        if done[0]:
            next_obs = np.zeros_like(obs)
            next_obs[:, -1:] = pool[(7 * i) % 1024]
        obs = next_obs
    fill_s = time.perf_counter() - begin
    grown = rss() - start
    if args.kind.startswith("frame"):
        frame_bytes = buffer.frames.nbytes // args.size
    else:
        frame_bytes = buffer.observations.nbytes // args.size * (1 if args.kind == "sb3-opt" else 2)
    np.random.seed(args.seed)
    for _ in range(100):  # warm up
        buffer.sample(32)
    times = []
    for _ in range(args.samples):
        tic = time.perf_counter()
        buffer.sample(32)
        times.append(time.perf_counter() - tic)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return Result(
        kind=args.kind,
        size=args.size,
        frame_bytes=frame_bytes,
        resident_per_transition=grown / args.size,
        peak_rss=peak,
        add_us=add_time / args.size * 1e6,
        sample_us=float(np.median(times)) * 1e6,
        sample_us_p90=float(np.percentile(times, 90)) * 1e6,
        fill_s=fill_s,
    )


def run_one(args: argparse.Namespace, kind: str, size: int) -> Result:
    command = [sys.executable, __file__, "--worker", "--kind", kind, "--size", str(size)]
    for name in ("stack", "frame_size", "episode_length", "samples", "seed", "device"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} at {size} failed:\n{done.stderr[-2000:]}")
    return Result(**json.loads(done.stdout.strip().splitlines()[-1]))


def sb3_sizes(args: argparse.Namespace, kind: str) -> list[int]:
    """The requested sizes SB3's buffer fits in, or the largest size (in 10k steps) that fits."""
    import psutil

    budget = psutil.virtual_memory().available * args.memory_fraction
    per_transition = args.stack * args.frame_size**2 * (2 if kind == "sb3" else 1) + 16
    fits = [n for n in args.sizes if n * per_transition <= budget]
    if len(fits) < len(args.sizes):
        largest = int(budget // per_transition) // 10_000 * 10_000
        if largest > 0 and largest not in fits:
            fits.append(largest)
        print(
            f"# {KINDS[kind]}: {max(args.sizes):,} transitions need {max(args.sizes) * per_transition / 1e9:.1f} GB > "
            f"{budget / 1e9:.1f} GB ({args.memory_fraction:.0%} of available); largest run: {max(fits, default=0):,}",
            flush=True,
        )
    return sorted(fits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="transitions to store")
    parser.add_argument("--kinds", nargs="+", default=["frame", "sb3", "sb3-opt"], choices=list(KINDS))
    parser.add_argument("--stack", type=int, default=4, help="frames per observation")
    parser.add_argument("--frame-size", type=int, default=84)
    parser.add_argument("--episode-length", type=float, default=40.0, help="mean steps between episode ends")
    parser.add_argument("--samples", type=int, default=2000, help="timed sample(32) calls")
    parser.add_argument("--memory-fraction", type=float, default=0.6, help="of available memory, for SB3's runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="frame", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args).__dict__))
        return

    results: list[Result] = []
    header = (
        f"{'buffer':<46} {'size':>9} {'frame B/tr':>10} {'resident B/tr':>13} {'peak RSS GB':>11} "
        f"{'add us':>7} {'sample(32) us':>13} {'p90 us':>7} {'fill s':>7}"
    )
    print(header)
    print("-" * len(header))
    for kind in args.kinds:
        sizes = sb3_sizes(args, kind) if kind.startswith("sb3") else sorted(args.sizes)
        for size in sizes:
            r = run_one(args, kind, size)
            results.append(r)
            print(
                f"{KINDS[kind]:<46} {size:>9,} {r.frame_bytes:>10,} {r.resident_per_transition:>13,.0f} "
                f"{r.peak_rss / 1e9:>11.2f} {r.add_us:>7.1f} {r.sample_us:>13.0f} {r.sample_us_p90:>7.0f} "
                f"{r.fill_s:>7.1f}",
                flush=True,
            )

    ours = [r for r in results if r.kind == "frame"]
    if ours and any(r.kind.startswith("sb3") for r in results):
        print("\nratios (SB3 / FrameReplayBuffer; > 1: FrameReplayBuffer is smaller or faster)")
        for kind in ("sb3", "sb3-opt"):
            theirs = {r.size: r for r in results if r.kind == kind}
            if not theirs:
                continue
            for mine in ours:
                other = theirs.get(mine.size) or theirs[max(theirs)]
                at = "" if other.size == mine.size else f" (SB3 at {other.size:,})"
                print(
                    f"  {KINDS[kind]:<46} at {mine.size:>9,}{at}: resident bytes/transition "
                    f"{other.resident_per_transition / mine.resident_per_transition:5.2f}x, "
                    f"add {other.add_us / mine.add_us:5.2f}x, sample(32) {other.sample_us / mine.sample_us:5.2f}x"
                )


if __name__ == "__main__":
    main()
