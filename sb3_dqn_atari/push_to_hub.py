"""``python -m sb3_dqn_atari.push_to_hub MODEL --repo-id NAMESPACE/NAME``: the arguments of
:mod:`sb3_dqn_atari.hub.push`, which shares a DQN agent on the Hugging Face Hub in one commit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sb3_dqn_atari.common.errors import command_main
from sb3_dqn_atari.hub.client import add_hub_arguments
from sb3_dqn_atari.hub.evaluate import DEFAULT_EPISODES, DEFAULT_VIDEO_LENGTH
from sb3_dqn_atari.hub.push import push_command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.push_to_hub",
        description="Evaluate, export and upload a DQN agent to the Hugging Face Hub (one commit).",
    )
    parser.add_argument("model", nargs="?", help="SB3 .zip or rl-zoo3 run folder (else -f/--algo/--env/--exp-id)")
    parser.add_argument("-f", "--folder", help="rl-zoo3 log folder (with --algo, --env, --exp-id)")
    parser.add_argument("--algo", default="dqn", help="rl-zoo3 algo name (default dqn)")
    parser.add_argument("--env", help="env id (default: the one rl-zoo3 recorded)")
    parser.add_argument("--exp-id", type=int, default=0, help="run number (default 0: the latest)")
    parser.add_argument("--load-best", action="store_true", help="push best_model.zip of the run")
    parser.add_argument("--repo-id", help="NAMESPACE/NAME (default <orga>/<algo>-<env>)")
    parser.add_argument("-orga", "--organization", help="namespace, with the default name <algo>-<env>")
    parser.add_argument("-name", "--repo-name", help="repo name with -orga (default <algo>-<env>)")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES, help="evaluation episodes (paper: 30)")
    parser.add_argument("--protocol", choices=("nature", "machado"), default="nature", help="Atari evaluation")
    parser.add_argument("--epsilon", type=float, default=None, help="ε of the Atari evaluation (default 0.05)")
    parser.add_argument("--max-frames", type=int, default=None, help="episode cap in emulator frames (18000)")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed")
    parser.add_argument(
        "--video-length", type=int, default=DEFAULT_VIDEO_LENGTH, help="agent steps in replay.mp4 (0: no video)"
    )
    parser.add_argument("-m", "--commit-message", help="commit message")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--dry-run", type=Path, metavar="LOCAL_DIR", help="write the folder there; upload nothing")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="load the zip with SB3's unpickling loader and the run's yml files unchecked (trusted files only)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_hub_arguments(parser)
    return parser.parse_args(argv)


main = command_main(parse_args, push_command, "nothing was uploaded", warning_lines=True)


if __name__ == "__main__":
    sys.exit(main())
