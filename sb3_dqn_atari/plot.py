"""``python -m sb3_dqn_atari.plot LOGDIR... [-o curve.png] [--window 100] [--band minmax|std] [--compare DIR...]``:
learning curves from rl-zoo3 run folders, to PNG (what is drawn: :mod:`sb3_dqn_atari.evaluation.curves`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sb3_dqn_atari.common.errors import command_main
from sb3_dqn_atari.evaluation.curve_plot import plot_command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.plot", description="Learning curves from rl-zoo3 run folders, to PNG."
    )
    parser.add_argument("logdirs", nargs="+", help="rl-zoo3 run folders (or folders of them)")
    parser.add_argument("-o", "--output", type=Path, default=Path("curve.png"), help="PNG file (default curve.png)")
    parser.add_argument("--window", type=int, default=100, help="training games averaged per point (default 100)")
    parser.add_argument("--band", choices=["minmax", "std"], default="minmax", help="spread across runs")
    parser.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="DIR",
        help="other runs of the same games (e.g. ../shared/reference/rl-zoo-dqn/PongNoFrameskip-v4), each drawn as its "
        "own line, up to the agent steps the LOGDIRs reach",
    )
    parser.add_argument("--max-steps", type=float, help="draw up to this many agent steps")
    parser.add_argument(
        "--table-every", type=float, help="also print each evaluation's score every this many agent steps (Markdown)"
    )
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="read the run folders' rl-zoo3 yml files unchecked"
    )
    return parser.parse_args(argv)


main = command_main(parse_args, plot_command)


if __name__ == "__main__":
    sys.exit(main())
