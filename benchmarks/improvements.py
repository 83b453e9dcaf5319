"""The cost of each DQN improvement: training steps/s and replay bytes per transition vs plain NatureDQN.

Agents, all on the same game and seed, with ``learning_starts`` lowered to ``--warmup`` so that every measured step is
at steady state (one update every 4 agent steps) and the paper's 1,000,000-transition replay memory allocated
(lazily, as in a real run):

=============  ======================================================================================
nature         ``hyperparams/dqn.yml``
double         the same, ``double_q=True`` (one more forward pass of the online network per update)
dueling        the same, ``policy=DuelingCnnPolicy`` (two 512-unit streams: 3.29M parameters instead of 1.69M)
prioritized    the same, ``replay_buffer_class=PrioritizedFrameReplayBuffer`` (sum tree, weights, priorities)
n-step         the same, ``n_steps=3`` (the window's rewards and flags read at sample time)
improved       ``hyperparams/dqn_improved.yml`` as it is (all four, Adam)
=============  ======================================================================================

Each agent lives in its own worker process (``spawn``: NatureDQN's allocator setting is process-wide), is built and
warmed up there, then the parent runs them in alternating chunks (A, B, C, ..., A, B, C, ...), one computing at a
time, and reports each one's median chunk speed and its ratio to ``nature``. Bytes per transition are the replay
memory's per-slot allocation (:func:`sb3_dqn_atari.memory.slot_nbytes`: frame, bookkeeping, and for prioritized
replay the sum tree), the number the memory check uses.

    python benchmarks/improvements.py --steps 1000 --warmup 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import sys
import time
import traceback
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: keys rl-zoo3 consumes itself
ZOO_KEYS = {"env_wrapper", "frame_stack", "n_timesteps", "policy"}
VARIANTS = ("nature", "double", "dueling", "prioritized", "n-step", "improved")


def hyperparams(file: str, env_id: str) -> tuple[dict[str, Any], str, str]:
    """``(model kwargs, policy, wrapper)`` from one of this project's yml files, its string fields evaluated as
    rl-zoo3 evaluates them (our own files only)."""
    import torch as th
    import yaml

    from sb3_dqn_atari.common.trust import check_eval_string

    table = yaml.safe_load((ROOT / "hyperparams" / file).read_text())
    params = dict(table.get(env_id, table["atari"]))
    for key in ("policy_kwargs", "replay_buffer_class", "replay_buffer_kwargs"):
        if isinstance(params.get(key), str):
            check_eval_string(params[key], key, file)  # only literals and allowed classes, as for a stranger's
            params[key] = eval(params[key], {"th": th})  # rl-zoo3's ExperimentManager does the same
    policy, wrapper = params["policy"], params["env_wrapper"][0]
    return {k: v for k, v in params.items() if k not in ZOO_KEYS}, policy, wrapper


def build(variant: str, env_id: str, seed: int, warmup: int) -> Any:
    from rl_zoo3.utils import get_class_by_name
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from sb3_dqn_atari import DuelingCnnPolicy, NatureDQN, PrioritizedFrameReplayBuffer

    params, policy, wrapper = hyperparams("dqn_improved.yml" if variant == "improved" else "dqn.yml", env_id)
    table: dict[str, dict[str, Any]] = {
        "double": {"double_q": True},
        "dueling": {"policy": DuelingCnnPolicy},
        "prioritized": {"replay_buffer_class": PrioritizedFrameReplayBuffer},
        "n-step": {"n_steps": 3},
    }
    switches = dict(table.get(variant, {}))
    policy = switches.pop("policy", get_class_by_name(policy) if "." in policy else policy)
    params.update(switches, learning_starts=warmup)
    # the wrapper class itself (sb3_dqn_atari.zoo re-exports it for rl-zoo3; its registration is not needed here)
    wrapper = wrapper.replace("sb3_dqn_atari.zoo.", "sb3_dqn_atari.wrappers.")
    env = make_vec_env(env_id, n_envs=1, seed=seed, wrapper_class=get_class_by_name(wrapper))
    return NatureDQN(policy, VecFrameStack(env, 4), seed=seed, device="cpu", **params)


def serve(conn: Connection, variant: str, args: argparse.Namespace) -> None:
    """Worker: build and warm up one agent, report its bytes per transition, then run chunks on request."""
    try:
        import ale_py
        import gymnasium as gym
        import torch

        from sb3_dqn_atari.agent.memory import slot_nbytes

        gym.register_envs(ale_py)
        torch.set_num_threads(args.threads)
        model = build(variant, args.env, args.seed, args.warmup)
        model.learn(args.warmup + 4, reset_num_timesteps=False)
        host, _ = slot_nbytes(model.replay_buffer)
        n_params = sum(p.numel() for p in model.q_net.parameters())
        conn.send(("ready", (host / model.n_envs, n_params)))
        while True:
            steps = conn.recv()
            if steps == 0:
                break
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            conn.send(("done", time.perf_counter() - start))
    except Exception:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def reply(conn: Connection, name: str) -> Any:
    kind, payload = conn.recv()
    if kind == "error":
        raise RuntimeError(f"worker {name} failed:\n{payload}")
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--steps", type=int, default=1000, help="agent steps per measured chunk")
    parser.add_argument("--warmup", type=int, default=1000, help="learning_starts of every agent")
    parser.add_argument("--rounds", type=int, default=3, help="measured chunks per agent, alternating")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per agent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown or "nature" not in variants:
        print(f"error: --variants takes {', '.join(VARIANTS)} (nature included, the reference)", file=sys.stderr)
        raise SystemExit(2)
    ctx = multiprocessing.get_context("spawn")
    workers: dict[str, tuple[Any, Connection]] = {}
    info: dict[str, tuple[float, int]] = {}
    speeds: dict[str, list[float]] = {v: [] for v in variants}
    try:
        for variant in variants:  # one at a time: warm-ups don't compete
            parent, child = ctx.Pipe()
            process = ctx.Process(target=serve, args=(child, variant, args), daemon=True)
            process.start()
            child.close()
            workers[variant] = (process, parent)
            info[variant] = reply(parent, variant)
            print(f"{variant}: ready", flush=True)
        for _ in range(args.rounds):
            for variant, (_, conn) in workers.items():
                conn.send(args.steps)
                elapsed = reply(conn, variant)
                speeds[variant].append(args.steps / elapsed)
                print(f"  {variant:12s} chunk: {args.steps / elapsed:7.1f} steps/s", flush=True)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        for process, conn in workers.values():
            with contextlib.suppress(OSError):  # it may have exited already
                conn.send(0)
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    base_speed = statistics.median(speeds["nature"])
    base_bytes = info["nature"][0]
    print(f"\n{args.env}, CPU, {args.threads} torch thread(s) per agent, {date.today().isoformat()}, "
          f"median of {args.rounds} chunks of {args.steps} steps")  # fmt: skip
    print(f"{'agent':12s} {'steps/s':>8s} {'ratio':>6s} {'bytes/transition':>17s} {'ratio':>7s} {'parameters':>11s}")
    for variant in variants:
        speed, (nbytes, n_params) = statistics.median(speeds[variant]), info[variant]
        print(
            f"{variant:12s} {speed:8.1f} {speed / base_speed:5.2f}x {nbytes:17,.0f} {nbytes / base_bytes:6.3f}x "
            f"{n_params:11,d}"
        )


if __name__ == "__main__":
    main()
