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

from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.files import Mp4Writer
from sb3_dqn_atari.onnx.runtime import EpisodeResult, OnnxAgent, PlayerError, summarize

#: The paper's evaluation cap: 5 minutes at 60 Hz (Methods).
DEFAULT_MAX_FRAMES = 18_000
#: Nearest-neighbour upscaling of the 210×160 screen in videos (players and encoders like bigger frames).
VIDEO_SCALE = 2


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


def run(args: argparse.Namespace) -> list[EpisodeResult]:
    if args.episodes < 1:
        raise PlayerError(f"--episodes must be at least 1, got {args.episodes}")
    agent = OnnxAgent(args.model, intra_op_num_threads=args.threads)
    meta = agent.metadata
    atari = meta.preprocessing.wrapper != "none"
    max_frames = args.max_frames if atari and args.max_frames > 0 else None
    print(f"{args.model}: {meta.algorithm} on {meta.env_id}, {meta.n_actions} actions, epsilon {args.epsilon}")
    writer = None
    if args.video is not None:
        fps = 60.0 / meta.preprocessing.frame_skip if atari else 30.0
        if args.video.suffix.lower() != ".mp4":
            raise PlayerError(f"the video {args.video} should end in .mp4")
        if args.video.is_dir():
            raise PlayerError(f"the video {args.video} is a folder; pass a file name")
        try:
            writer = Mp4Writer(args.video, fps, scale=VIDEO_SCALE)
        except OSError as exc:
            raise PlayerError(f"cannot write the video {args.video}: {exc.strerror or exc}") from exc

    def on_episode(index: int, result: EpisodeResult) -> None:
        frames = f", {result.frames} frames" if result.frames is not None else ""
        cut = " (cut at the frame limit)" if result.truncated else ""
        print(f"episode {index + 1}: score {result.score:g}, {result.steps} steps{frames}{cut}")

    try:
        results = agent.play(
            episodes=args.episodes,
            seed=args.seed,
            epsilon=args.epsilon,
            max_episode_frames=max_frames,
            render_mode="human" if args.render else ("rgb_array" if writer is not None and not atari else None),
            on_frame=writer,
            on_episode=on_episode,
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.finish()
        print(f"wrote {args.video} ({writer.frames} frames)")
    s = summarize(results)
    print(
        f"{int(s['episodes'])} episode(s): score {s['mean']:.1f} ± {s['std']:.1f} "
        f"(min {s['min']:g}, max {s['max']:g}); {int(s['steps'])} agent steps at {s['steps_per_second']:.0f} steps/s"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except UserError as exc:  # PlayerError, and the ONNX file checks (sb3_dqn_atari.common.onnx_check)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
