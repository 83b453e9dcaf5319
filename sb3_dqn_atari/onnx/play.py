"""``python -m sb3_dqn_atari.play``'s work, torch-free: the exported agent played, each episode printed, the screens
written as an MP4 (:func:`play_command`)."""

from __future__ import annotations

import argparse
import contextlib

import numpy as np

from sb3_dqn_atari.common.files import Mp4Writer, check_output_file
from sb3_dqn_atari.onnx.runtime import EpisodeResult, OnnxAgent, PlayerError

#: The paper's evaluation cap: 5 minutes at 60 Hz (Methods).
DEFAULT_MAX_FRAMES = 18_000
#: Nearest-neighbour upscaling of the 210×160 screen in videos (players and encoders like bigger frames).
VIDEO_SCALE = 2


def play_command(args: argparse.Namespace) -> list[EpisodeResult]:
    """``python -m sb3_dqn_atari.play``: play the exported agent, print each episode and a summary, write the video."""
    if args.episodes < 1:
        raise PlayerError(f"--episodes must be at least 1, got {args.episodes}")
    if args.video is not None:
        check_output_file(args.video, "the video", ".mp4")
    agent = OnnxAgent(args.model, intra_op_num_threads=args.threads)
    meta = agent.metadata
    atari = meta.preprocessing.wrapper != "none"
    max_frames = args.max_frames if atari and args.max_frames > 0 else None
    print(f"{args.model}: {meta.algorithm} on {meta.env_id}, {meta.n_actions} actions, epsilon {args.epsilon}")
    writer = None
    if args.video is not None:
        fps = 60.0 / meta.preprocessing.frame_skip if atari else 30.0
        writer = Mp4Writer(args.video, fps, scale=VIDEO_SCALE)

    def on_episode(index: int, result: EpisodeResult) -> None:
        frames = f", {result.frames} frames" if result.frames is not None else ""
        cut = " (cut at the frame limit)" if result.truncated else ""
        print(f"episode {index + 1}: score {result.score:g}, {result.steps} steps{frames}{cut}")

    with writer if writer is not None else contextlib.nullcontext():  # the video kept only if all episodes end
        results = agent.play(
            episodes=args.episodes,
            seed=args.seed,
            epsilon=args.epsilon,
            max_episode_frames=max_frames,
            render_mode="human" if args.render else ("rgb_array" if writer is not None and not atari else None),
            on_frame=writer,
            on_episode=on_episode,
        )
    if writer is not None:
        print(f"wrote {args.video} ({writer.frames} frames)")
    scores = np.array([r.score for r in results])  # the standard deviation: the population's (np.std)
    steps, seconds = sum(r.steps for r in results), sum(r.seconds for r in results)
    print(
        f"{len(results)} episode(s): score {scores.mean():.1f} ± {scores.std():.1f} (min {scores.min():g}, "
        f"max {scores.max():g}); {steps} agent steps at {steps / seconds if seconds > 0 else float('nan'):.0f} steps/s"
    )
    return results
