"""Would running the env step concurrently with the update pay? Measured on this machine, side by side.

In the Lua code's order (``sb3_dqn_atari.lua_order``) the action of an update step is chosen before the update,
so the emulator could play it while the update runs (ALE and torch release the GIL). This script times, on
NatureDQN (``hyperparams/dqn.yml``, exact mode) on Breakout, in alternating rounds:

* ``sequential``: the env step, then the update (what training does);
* ``overlapped``: the env step in a second thread while the main thread runs the update;
* ``update`` and ``env step`` alone.

The overlap pays if ``overlapped`` is clearly below ``sequential``; at best it saves one env step per update
(every 4 agent steps). With torch using every core for the update, the env thread competes with torch's
worker threads instead.

    python benchmarks/env_update_overlap.py --rounds 8 --per-round 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from update_profile import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=30, help="repetitions per variant and round")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from sb3_dqn_atari.agent.hardware import detect

    model = build("exact", args.seed)
    model.learn(model.learning_starts + 4)
    env = model.get_env()
    assert env is not None
    pool = ThreadPoolExecutor(max_workers=1)

    def env_step() -> Any:
        env.step_async(np.array([env.action_space.sample()]))
        return env.step_wait()

    def update() -> None:
        model.train(1, model.batch_size)

    def sequential() -> None:
        env_step()
        update()

    def overlapped() -> None:
        future = pool.submit(env_step)
        update()
        future.result()

    variants: dict[str, Callable[[], Any]] = {
        "sequential": sequential,
        "overlapped": overlapped,
        "update": update,
        "env step": env_step,
    }
    for function in variants.values():  # warm up: kernels, allocator, the thread
        for _ in range(5):
            function()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, function in variants.items():
            start = time.perf_counter()
            for _ in range(args.per_round):
                function()
            times[name].append((time.perf_counter() - start) / args.per_round * 1e3)
    pool.shutdown()
    print(f"host: {detect('cpu').describe()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    print(f"median of {args.rounds} rounds of {args.per_round}, ms per call:")
    for name, values in times.items():
        print(f"  {name:11s} {statistics.median(values):8.2f}  (min {min(values):.2f}, max {max(values):.2f})")
    saved = statistics.median(times["sequential"]) - statistics.median(times["overlapped"])
    per_4_steps = statistics.median(times["sequential"]) + 3 * statistics.median(times["env step"])
    print(f"overlap saves {saved:.2f} ms per update: {100 * saved / per_4_steps:.1f} % of 4 agent steps' env+update")


if __name__ == "__main__":
    main()
