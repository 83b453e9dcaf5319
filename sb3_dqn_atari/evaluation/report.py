"""Evaluating a model file with the paper's protocol, as ``python -m sb3_dqn_atari.evaluate`` does: an :class:`Agent`
from an SB3 zip, an rl-zoo3 run folder or an exported ``.onnx`` file, the episodes, the printed report and
``results.json`` (the keys huggingface_sb3 / rl-zoo3 write, plus the protocol's details and every episode), and
the first episode as an MP4."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sb3_dqn_atari.atari.protocols import ProtocolEnv, game_or_none, make_eval_env
from sb3_dqn_atari.atari.spec import NATURE_SPEC, PreprocessingSpec, spec_from_config
from sb3_dqn_atari.common.env_ids import current_env_id
from sb3_dqn_atari.common.errors import EXIT_INTERRUPTED, UserError
from sb3_dqn_atari.common.files import Mp4Writer, atomic_write_bytes, check_output_file
from sb3_dqn_atari.evaluation.protocol import ActFn, EpisodeResult, EvalResult, evaluate_policy_protocol, greedy

#: The emulator runs at 60 Hz; the video shows every frame in real time.
VIDEO_FPS = 60


@dataclass
class Agent:
    """What the evaluation needs from a model, whatever its format."""

    act: ActFn
    n_actions: int
    obs_shape: tuple[int, ...]
    env_id: str | None
    source: str
    action_meanings: list[str] | None = None
    preprocessing: PreprocessingSpec = NATURE_SPEC
    notes: list[str] = field(default_factory=list)  # how the preprocessing was found


def _load_onnx(path: Path) -> Agent:
    try:
        from sb3_dqn_atari.onnx.runtime import NO_WRAPPER, OnnxAgent, PlayerError
    except ImportError as exc:  # the runtime needs onnxruntime
        raise UserError(f"evaluating an .onnx model needs sb3_dqn_atari.onnx.runtime and onnxruntime ({exc})") from exc
    try:
        agent = OnnxAgent(path)  # checks the file first: no external data, no custom operator domain
        agent.metadata.preprocessing.check_supported()
    except PlayerError as exc:
        raise UserError(str(exc)) from exc
    meta = agent.metadata
    if meta.preprocessing.wrapper == NO_WRAPPER:
        raise UserError(f"{path} was exported for {meta.env_id} without Atari preprocessing; nothing to evaluate here")
    return Agent(
        act=agent.predict,
        n_actions=meta.n_actions,
        obs_shape=tuple(meta.observation_shape),
        env_id=meta.env_id,
        source=str(path),
        action_meanings=list(meta.action_meanings),
        preprocessing=meta.preprocessing,
    )


def load_for_evaluation(
    model: str,
    env_id: str | None = None,
    device: str = "auto",
    threads: int | None = None,
    trust_remote_code: bool = False,
    preprocessing: str = "auto",
) -> Agent:
    """An :class:`Agent` for an SB3 zip, an rl-zoo3 run folder or an exported ``.onnx`` file.

    SB3 models act greedily (``predict(deterministic=True)``): the protocol adds its own ε. ``threads``: torch's
    intra-op threads (None: unchanged); ONNX models run on one onnxruntime thread. The preprocessing is the ONNX
    file's, or the one the run's ``config.yml`` records (``preprocessing``: ``"auto"``, ``"nature"``, ``"sb3"``).
    """
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise UserError(f"no such file: {path}; pass an SB3 .zip, an rl-zoo3 log folder or an exported .onnx")
        return _load_onnx(path)
    import torch
    from gymnasium import spaces

    from sb3_dqn_atari.loading import load_agent

    if threads is not None:
        torch.set_num_threads(threads)
    sb3_model, source = load_agent(path, device=device, env_id=env_id, trust_remote_code=trust_remote_code)
    if not isinstance(sb3_model.action_space, spaces.Discrete):
        raise UserError(f"{source.zip_path} acts in {sb3_model.action_space}; Atari evaluation needs discrete actions")
    shape = sb3_model.observation_space.shape
    if shape is None:
        raise UserError(f"{source.zip_path} has an observation space without a shape ({sb3_model.observation_space})")

    image = len(shape) == 3 and sb3_model.observation_space.dtype == np.uint8
    spec, _, notes = spec_from_config(tuple(shape), image, True, source.hyperparams, preprocessing)

    return Agent(
        act=greedy(sb3_model),
        n_actions=int(sb3_model.action_space.n),
        obs_shape=tuple(int(s) for s in shape),
        env_id=source.env_id,
        source=str(source.zip_path),
        preprocessing=spec,
        notes=notes,
    )


def format_report(result: EvalResult) -> str:
    """The per-episode table and the summary, as printed."""
    lines = [f"{'episode':>7}  {'score':>10}  {'steps':>6}  {'frames':>6}  {'no-ops':>6}  end"]
    for i, e in enumerate(result.episodes, 1):
        end = "frame cap" if e.truncated else "game over"
        lines.append(f"{i:>7}  {e.score:>10.1f}  {e.steps:>6}  {e.frames:>6}  {e.noops:>6}  {end}")
    s = result.settings
    start = f"1-{s['noop_max']} no-op starts" if s["noop_max"] else f"sticky actions p={s['repeat_action_probability']}"
    lines.append("")
    if s.get("preprocessing"):
        lines.append(f"preprocessing: {s['preprocessing']}")
    lines.append(
        f"{result.env_id}, {result.protocol} protocol ({start}, epsilon={result.epsilon}, "
        f"{s['max_episode_frames']:,}-frame cap, raw score over all lives), seed {result.seed}, "
        f"{len(result.episodes)} episodes{' (interrupted)' if result.interrupted else ''}"
    )
    if not result.episodes:
        lines.append("no episode finished")
        return "\n".join(lines)
    lines.append(
        f"score: {result.mean:.2f} ± {result.std:.2f} (mean ± std), median {result.median:.1f}, "
        f"min {result.min:.1f}, max {result.max:.1f}"
    )
    paper = result.paper
    if paper is None:
        lines.append(f"human-normalised: n/a ({result.game} is not in the paper's table)")
    else:
        lines.append(
            f"human-normalised: {paper.normalize(result.mean):,.1f}%  "
            f"(paper's random {paper.random:g}, human {paper.human:g})"
        )
        lines.append(
            f"paper's DQN (Mnih et al. 2015, Ext. Data Table 2): {paper.dqn:g} ± {paper.dqn_std:g} "
            f"(human-normalised {paper.normalize(paper.dqn):.1f}%)   this agent: {result.mean:.1f}"
        )
    if result.protocol != "nature" and paper is not None:
        lines.append("note: the paper's numbers come from the nature protocol")
    return "\n".join(lines)


def results_json(result: EvalResult, model: str, when: datetime.datetime) -> bytes:
    data: dict[str, Any] = result.to_dict()
    data["eval_datetime"] = when.isoformat()
    data["model"] = model
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode()


def check_protocol_args(args: argparse.Namespace) -> None:
    """``--episodes``, ``--epsilon`` and ``--max-frames`` of a command that plays the protocol (None: the default)."""
    if args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:
        raise UserError("--epsilon must be within [0, 1]")
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be positive")


def _check_args(args: argparse.Namespace) -> None:
    """The evaluate command's arguments and outputs, checked before the (slow) load."""
    check_protocol_args(args)
    check_output_file(args.output, "the results file")
    if args.video is not None:
        check_output_file(args.video, "the video")
    if args.threads < 1:
        raise UserError("--threads must be at least 1")


def _protocol_env(args: argparse.Namespace, agent: Agent) -> ProtocolEnv:
    """The protocol's env for the agent: ``--env`` or the recorded id, with the actions the agent was trained on
    and the frames of its preprocessing."""
    env_id = args.env or agent.env_id
    env_id = current_env_id(env_id) if env_id else None
    if env_id is None:
        raise UserError(f"no env id recorded with {args.model}; pass --env, e.g. --env BreakoutNoFrameskip-v4")
    env: ProtocolEnv = make_eval_env(
        env_id,
        args.protocol,
        args.seed,
        n_actions=agent.n_actions,
        obs_shape=agent.obs_shape,
        max_episode_frames=args.max_frames,
        spec=agent.preprocessing,
    )
    meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    if agent.action_meanings is not None and agent.action_meanings != meanings:
        env.close()
        raise UserError(f"{env_id} has actions {meanings}; the model was exported with {agent.action_meanings}")
    for note in agent.notes:
        print(f"note: {note}", file=sys.stderr)
    if agent.env_id is not None and env.eval_info.game != game_or_none(agent.env_id):
        print(f"note: the model was trained on {agent.env_id}, evaluating it on {env_id}", file=sys.stderr)
    return env


def evaluate_to_files(
    act_fn: ActFn,
    env: ProtocolEnv,
    output: Path,
    model: str,
    *,
    episodes: int,
    seed: int,
    epsilon: float,
    video: Path | None = None,
    video_frames: int | None = None,
    progress: bool = True,
    partial_on_interrupt: bool = False,
) -> EvalResult:
    """The protocol's episodes on ``env`` (:func:`evaluate_policy_protocol`; the env is closed at the end), written
    to ``output`` (:func:`results_json` of ``model``, atomically, once an episode finished), and the first episode's
    raw screens (at most ``video_frames``) to the MP4 ``video`` at the emulator's rate, kept once that episode
    ended (nothing is left of it otherwise). ``partial_on_interrupt``: Ctrl-C keeps the episodes done so far."""
    writer = Mp4Writer(video, VIDEO_FPS) if video is not None else None

    def record(frame: np.ndarray) -> None:
        if writer is not None and (video_frames is None or writer.frames < video_frames):
            writer(frame)

    def on_episode(index: int, _episode: EpisodeResult) -> None:
        if index == 0 and writer is not None:
            writer.finish()

    started = datetime.datetime.now()
    try:
        result = evaluate_policy_protocol(
            act_fn,
            episodes=episodes,
            seed=seed,
            epsilon=epsilon,
            env=env,
            on_episode=on_episode,
            first_episode_frames=record if writer is not None else None,
            progress=progress,
            partial_on_interrupt=partial_on_interrupt,
        )
    finally:
        if writer is not None:
            writer.abort()  # removes the temp file when the first episode did not finish; no-op after finish()
        env.close()
    if result.episodes:  # written before anything is printed: a closed stdout (| head) cannot lose them
        atomic_write_bytes(output, results_json(result, model, started))
    return result


def evaluate_command(args: argparse.Namespace) -> int:
    """``python -m sb3_dqn_atari.evaluate``: check the arguments and outputs, load the agent, play the episodes
    (Ctrl-C: the episodes done so far are reported), write ``results.json`` and the video, print the report (the
    outputs are checked before the slow load, the JSON is written before anything is printed)."""
    _check_args(args)
    agent = load_for_evaluation(
        args.model, args.env, args.device, args.threads, args.trust_remote_code, args.preprocessing
    )
    result = evaluate_to_files(
        agent.act,
        _protocol_env(args, agent),
        args.output,
        agent.source,
        episodes=args.episodes,
        seed=args.seed,
        epsilon=args.epsilon,
        video=args.video,
        progress=not args.no_progress,
        partial_on_interrupt=True,
    )
    if result.interrupted:
        print("\ninterrupted: reporting the episodes done so far", file=sys.stderr)
    print(format_report(result))
    if result.episodes:
        print(f"wrote {args.output}")
        if args.video is not None and args.video.exists():
            print(f"wrote {args.video}")
    return EXIT_INTERRUPTED if result.interrupted else 0
