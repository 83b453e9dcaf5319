"""``python -m sb3_dqn_atari.export MODEL [-o exported_models/NAME.onnx] [--env ENV] [--quantize] [--overwrite]``:
a DQN agent (SB3 zip or rl-zoo3 run folder) to a verified ONNX file with metadata (:mod:`sb3_dqn_atari.onnx.export`).
A graph that does not match PyTorch exits with status 1, bad input with 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sb3_dqn_atari.common.errors import command_main
from sb3_dqn_atari.onnx.export import DEFAULT_ATOL, DEFAULT_N_RANDOM, DEFAULT_N_REAL, DEFAULT_OPSET, export_command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.export",
        description="Export a DQN agent (SB3 zip or rl-zoo3 run folder) to a verified ONNX file with metadata.",
    )
    parser.add_argument("model", help="an SB3 .zip (NatureDQN, DQN, QRDQN) or an rl-zoo3 run folder")
    parser.add_argument("-o", "--output", type=Path, help="output .onnx (default exported_models/<env>-<algo>.onnx)")
    parser.add_argument("--env", help="env id (default: the one rl-zoo3 recorded; required for a bare zip)")
    parser.add_argument("--quantize", action="store_true", help="also write NAME.int8.onnx (int8 dynamic)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing output files (default: refuse, nothing written)"
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument(
        "--preprocessing", choices=("auto", "nature", "sb3", "none"), default="auto",
        help="the preprocessing to record: auto (the run's config.yml), nature, sb3 (SB3's AtariWrapper), none"
    )
    parser.add_argument("--n-real", type=int, default=DEFAULT_N_REAL, help="env observations compared")
    parser.add_argument("--n-random", type=int, default=DEFAULT_N_RANDOM, help="random observations compared")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="largest tolerated |ΔQ|")
    parser.add_argument("--seed", type=int, default=0, help="seed of the verification rollout")
    parser.add_argument("--legacy-exporter", action="store_true", help="TorchScript-based torch.onnx exporter")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="load the zip with SB3's unpickling loader (trusted files)"
    )
    return parser.parse_args(argv)


main = command_main(parse_args, export_command)


if __name__ == "__main__":
    sys.exit(main())
