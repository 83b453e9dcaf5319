"""Evaluate a trained agent with the paper's protocol and report scores people can compare.

::

    python -m sb3_dqn_atari.evaluate MODEL --env BreakoutNoFrameskip-v4 [--protocol nature|machado]
        [--episodes 30] [--seed 0] [--epsilon 0.05] [--video PATH] [-o results.json] [--device auto]

``MODEL`` is an SB3 zip, an rl-zoo3 run folder (``logs/dqn/BreakoutNoFrameskip-v4_1``) or an ``.onnx`` file
written by :mod:`sb3_dqn_atari.export`. The protocols are described in :mod:`sb3_dqn_atari.evaluation`
(Mnih et al. 2015, Methods; Machado et al. 2018). Prints one row per episode and a summary (mean ± std,
median, min/max, the human-normalised score and the paper's DQN score), and writes ``results.json`` with the
keys huggingface_sb3 / rl-zoo3 write (``mean_reward``, ``std_reward``, ``is_deterministic``,
``n_eval_episodes``, ``eval_datetime``) plus the protocol's details and every episode. ``--video`` saves the
first episode's raw RGB screens (every emulator frame, 60 fps) as an MP4.

Ctrl-C stops the evaluation: the episodes done so far are printed and written (``"interrupted": true``).
Mistakes a user can make (a missing path, an unknown env id, a model for another game, an unwritable output)
end with one ``error: ...`` line on stderr, exit code 2, and no output file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sb3_dqn_atari.atari.wrappers import EVAL_MAX_FRAMES
from sb3_dqn_atari.common.errors import command_main
from sb3_dqn_atari.evaluation.protocol import EVAL_EPISODES, EVAL_EPSILON
from sb3_dqn_atari.evaluation.report import evaluate_command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.evaluate",
        description="Evaluate a DQN agent with the Nature 2015 (or Machado 2018) evaluation protocol.",
    )
    parser.add_argument("model", help="SB3 .zip, rl-zoo3 run folder (logs/dqn/Env_1) or exported .onnx")
    parser.add_argument("--env", default=None, help="Atari env id (default: the one the model was trained on)")
    parser.add_argument(
        "--protocol",
        choices=["nature", "machado"],
        default="nature",
        help="nature: 1-30 no-op starts (Mnih 2015); machado: sticky actions p=0.25 (Machado 2018)",
    )
    parser.add_argument("--episodes", type=int, default=EVAL_EPISODES, help="episodes (paper: 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilon", type=float, default=EVAL_EPSILON, help="epsilon-greedy (paper: 0.05)")
    parser.add_argument(
        "--max-frames",
        type=int,
        default=EVAL_MAX_FRAMES,
        help="episode cap in emulator frames (paper: 18000 = 5 min); change it only for quick checks",
    )
    parser.add_argument("--video", type=Path, default=None, help="write the first episode as an MP4")
    parser.add_argument("-o", "--output", type=Path, default=Path("results.json"), help="results JSON")
    parser.add_argument("--device", default="auto", help="torch device for SB3 models (auto, cpu, cuda)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for SB3 models (default 1: fastest for one observation at a time)",
    )
    parser.add_argument(
        "--preprocessing",
        choices=["auto", "nature", "sb3"],
        default="auto",
        help="the model's frames: auto (the ONNX metadata or the run's config.yml), nature (NatureAtariWrapper), "
        "sb3 (SB3's AtariWrapper defaults) for a bare zip",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="load a zip with SB3's unpickling loader (trusted files)"
    )
    return parser.parse_args(argv)


main = command_main(parse_args, evaluate_command)


if __name__ == "__main__":
    sys.exit(main())
