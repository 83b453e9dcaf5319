"""``python -m sb3_dqn_atari.load_from_hub --repo-id NAMESPACE/NAME [-f logs] [--onnx]``: download a DQN agent from
the Hugging Face Hub into rl-zoo3's log layout, every file checked first (:mod:`sb3_dqn_atari.hub.pull`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sb3_dqn_atari.common.errors import command_main
from sb3_dqn_atari.hub.client import add_hub_arguments
from sb3_dqn_atari.hub.pull import pull_command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.load_from_hub",
        description="Download a DQN agent from the Hugging Face Hub into rl-zoo3's logs/ layout.",
    )
    parser.add_argument("--repo-id", help="NAMESPACE/NAME, e.g. sb3/dqn-BreakoutNoFrameskip-v4")
    parser.add_argument("-orga", "--organization", default="sb3", help="with --env: repo <orga>/<algo>-<env>")
    parser.add_argument("-name", "--repo-name", help="repo name (default <algo>-<env>)")
    parser.add_argument("-f", "--folder", default="logs", help="log folder (default logs)")
    parser.add_argument("--env", help="env id (default: the one the repo records)")
    parser.add_argument("--algo", help="rl-zoo3 algo folder (default: from the zip: dqn, qrdqn)")
    parser.add_argument("--exp-id", type=int, default=0, help="run number (default 0: the next free one)")
    parser.add_argument("--revision", help="branch, tag or commit (default main)")
    parser.add_argument("--force", action="store_true", help="replace an existing run folder")
    parser.add_argument("--onnx", action="store_true", help="export the agent to ONNX right away (verified)")
    parser.add_argument("-o", "--onnx-output", type=Path, help="ONNX file (default exported_models/<env>-<algo>.onnx)")
    parser.add_argument("--preprocessing", choices=("auto", "nature", "sb3", "none"), default="auto", help="for --onnx")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="skip the checks of the repo's yml files and pickles (rl-zoo3's own reader), skip unsafely named files, "
        "and let --onnx unpickle the zip (SB3's own loader): only for repos you trust",
    )
    add_hub_arguments(parser)
    return parser.parse_args(argv)


main = command_main(parse_args, pull_command, "nothing was written", warning_lines=True)


if __name__ == "__main__":
    sys.exit(main())
