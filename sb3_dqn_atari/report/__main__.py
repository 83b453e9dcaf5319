"""``python -m sb3_dqn_atari.report RUNS… -o report/``: per-game table, human-normalised aggregates with 95 %
stratified-bootstrap CIs (rliable), PNGs, ``report.json`` and ``report.md`` (:mod:`sb3_dqn_atari.report.build`).
Argument parsing only."""

from __future__ import annotations

import argparse
import sys

from sb3_dqn_atari.common.errors import command_main
from sb3_dqn_atari.report.build import report_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.report",
        description="Report sweep or rl-zoo3 run folders: per-game table (mean +/- std over seeds, paper and RL Zoo "
        "references, human-normalised score) and aggregates (IQM, median, mean, optimality gap) with 95%% "
        "stratified-bootstrap CIs through rliable; PNGs, report.json and report.md. Needs the 'cluster' extra.",
    )
    parser.add_argument("runs", nargs="+", help="sweep folders, sweep trial folders, rl-zoo3 log or run folders")
    parser.add_argument("-o", "--output", required=True, help="report folder to write (replaced if it is one)")
    parser.add_argument(
        "--reps", type=int, default=10_000, help="bootstrap resamples for the aggregates (rliable: 50,000)"
    )
    parser.add_argument("--curve-reps", type=int, default=2_000, help="resamples for the profile and the curve")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--label", default="NatureDQN", help="name of the agent in the figures")
    return parser


main = command_main(build_parser().parse_args, report_command)


if __name__ == "__main__":
    sys.exit(main())
