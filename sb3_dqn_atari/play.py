"""Play an exported agent without PyTorch: ``python -m sb3_dqn_atari.play exported_models/NAME.onnx``.

::

    python -m sb3_dqn_atari.play exported_models/BreakoutNoFrameskip-v4-nature-dqn.onnx \\
        [--episodes N] [--seed S] [--epsilon E] [--max-frames F] [--video out.mp4] [--render]

Imports only numpy, onnxruntime, gymnasium/ale-py (through :mod:`sb3_dqn_atari.onnx.runtime`) and, with
``--video``, imageio-ffmpeg (not moviepy: it is not needed to stream frames into ffmpeg). Prints each
episode's raw score and a summary. ``--epsilon 0.05 --max-frames 18000`` is the paper's evaluation policy and
5-minute cap (Mnih et al. 2015, Methods); the defaults are greedy play and the same cap. ``--video`` writes the
raw screens (one per agent step, so the video runs at 60 / frame_skip = 15 fps, real time) as H.264 MP4;
``--render`` opens the ALE's window.

The file is checked before onnxruntime sees it (no external data, no custom operator domain, an env id that
imports nothing outside the allow-list: :class:`sb3_dqn_atari.onnx.runtime.OnnxAgent`); a refused file ends in one
``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sb3_dqn_atari.common.errors import command_main
from sb3_dqn_atari.onnx.play import DEFAULT_MAX_FRAMES, play_command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.play",
        description="Play an agent exported by sb3_dqn_atari.export, with onnxruntime only (no PyTorch).",
    )
    parser.add_argument("model", type=Path, help="an .onnx file written by python -m sb3_dqn_atari.export")
    parser.add_argument("--episodes", type=int, default=1, help="episodes to play (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the emulator, the no-op starts and ε")
    parser.add_argument("--epsilon", type=float, default=0.0, help="ε-greedy (0: greedy; the paper's eval: 0.05)")
    parser.add_argument(
        "--max-frames",
        type=int,
        default=DEFAULT_MAX_FRAMES,
        help=f"emulator frames per episode (default {DEFAULT_MAX_FRAMES}: 5 minutes; 0: no cap; Atari only)",
    )
    parser.add_argument("--video", type=Path, help="write the episodes' screens to this .mp4")
    parser.add_argument("--render", action="store_true", help="show the game in a window")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    return parser.parse_args(argv)


main = command_main(parse_args, play_command, "")


if __name__ == "__main__":
    sys.exit(main())
