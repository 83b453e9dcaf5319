"""``python -m sb3_dqn_atari.sweep``: every game × seed trained on Ray Tune, one trial each, retried from its last
checkpoint on failure (:func:`sb3_dqn_atari.sweep.engine.sweep_command`). Argument parsing only."""

from __future__ import annotations

import argparse
import sys

from sb3_dqn_atari.atari.wrappers import EVAL_MAX_FRAMES
from sb3_dqn_atari.common.errors import command_main
from sb3_dqn_atari.sweep.engine import sweep_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.sweep",
        description="Train every game x seed on Ray Tune (each trial: python -m sb3_dqn_atari.train), evaluate with "
        "the paper's protocol, retry a failed trial from its last exact checkpoint. Needs the 'cluster' extra.",
    )
    parser.add_argument("--games", nargs="+", help="short names (Pong SpaceInvaders) or env ids")
    parser.add_argument("--seeds", nargs="+", type=int, help="one trial per game and seed")
    parser.add_argument("-conf", "--conf-file", dest="conf", default="hyperparams/dqn.yml", help="rl-zoo3 yml file")
    parser.add_argument("-n", "--n-timesteps", dest="n_timesteps", type=int, help="agent steps per trial")
    parser.add_argument("-params", "--hyperparams", dest="params", nargs="+", default=[], help="key:value overrides")
    parser.add_argument("-f", "--log-folder", dest="log_folder", default="logs", help="where the sweep folder goes")
    parser.add_argument("--name", help="sweep folder name (default: the next sweep_<k>; the latest with --resume)")
    parser.add_argument("--algo", default="dqn", help="rl-zoo3 algorithm (default dqn: NatureDQN with our yml)")
    parser.add_argument("--address", help="existing Ray cluster (127.0.0.1:6379, auto, ray://host:10001)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs (and torch threads) per trial")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial; fractions share a GPU")
    parser.add_argument("--eval-freq", type=int, help="paper-protocol evaluation every N steps (default 250,000)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation (default 10)")
    parser.add_argument(
        "--eval-max-frames", type=int, default=EVAL_MAX_FRAMES, help="episode cap in emulator frames (18,000)"
    )
    parser.add_argument("--checkpoint-freq", type=int, help="exact checkpoint every N steps (default 500,000)")
    parser.add_argument("--max-failures", type=int, default=3, help="retries of a failed trial (default 3)")
    parser.add_argument("--max-concurrent-trials", type=int, help="at most N trials at once (default: all that fit)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="Tune's output (default 1)")
    return parser


main = command_main(build_parser().parse_args, lambda args: sweep_command(**vars(args)))


if __name__ == "__main__":
    sys.exit(main())
