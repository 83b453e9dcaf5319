"""Share a DQN agent on the Hugging Face Hub: model zip, verified ONNX, configs, paper-protocol results, replay
video, learning curve and a model card, uploaded in one commit.

::

    # an rl-zoo3 run (logs/dqn/BreakoutNoFrameskip-v4_1), as rl_zoo3.push_to_hub takes it
    python -m sb3_dqn_atari.push_to_hub -f logs --algo dqn --env BreakoutNoFrameskip-v4 [--exp-id 1] \\
        --repo-id ORG/dqn-BreakoutNoFrameskip-v4
    # or a model zip / run folder directly
    python -m sb3_dqn_atari.push_to_hub logs/dqn/BreakoutNoFrameskip-v4_1 --repo-id ORG/NAME
    # build the folder only, nothing uploaded (no token needed)
    python -m sb3_dqn_atari.push_to_hub MODEL --env BreakoutNoFrameskip-v4 --dry-run hub/dqn-Breakout

What the repo gets (names as rl-zoo3's ``push_to_hub`` writes them, so ``rl_zoo3.load_from_hub`` and our
:mod:`sb3_dqn_atari.load_from_hub` read it):

* ``<algo>-<env>.zip``: the model zip, byte for byte;
* ``<algo>-<env>.onnx``: the ONNX export of :mod:`sb3_dqn_atari.export`, verified against PyTorch (100% action
  agreement required, its report in the file's metadata);
* ``config.yml``, ``args.yml``, ``env_kwargs.yml``: copied as rl-zoo3 wrote them (for a bare zip, written from
  what the export found: the env id and, for Atari, the NatureAtariWrapper/frame-stack preprocessing);
* ``results.json``: Atari games: the paper's evaluation protocol (:mod:`sb3_dqn_atari.evaluation`: 1–30 no-op
  starts, ε = 0.05, 5-minute cap, raw score over all lives; ``--episodes`` of them, the paper used 30), with the
  keys huggingface_sb3 writes (``mean_reward``, ``std_reward``, ...); other envs: ``--episodes`` greedy episodes
  (SB3 ``evaluate_policy``);
* ``replay.mp4``: the first evaluation episode (raw screens at 60 Hz), at most ``--video-length`` agent steps;
* ``learning_curve.png`` (:mod:`sb3_dqn_atari.plot`) and ``train_eval_metrics.zip`` (Monitor and evaluation
  files) when the run folder has training logs;
* ``README.md``: Hub model-index metadata (``library_name: stable-baselines3``, tags, ``mean_reward`` "X +/- Y"
  as huggingface_sb3's ``generate_metadata``) and how to download, evaluate and run the agent, ONNX included.

The upload (``huggingface_hub.HfApi``): ``create_repo(exist_ok=True)`` first, so that a missing token or
permission shows before minutes of evaluation, then one ``create_commit`` with every file. The token comes from
``HF_TOKEN`` or ``hf auth login``; the Hub from ``HF_ENDPOINT``. Transient failures (HTTP 5xx / 429, connection
errors) are retried with exponential backoff (``--retries``, ``--retry-wait``). Every failure ends with one
``error: ...`` line and exit code 2; the folder is built in a temporary directory (``--dry-run DIR``: moved to
``DIR`` only when complete).

The run folder is checked before anything in it is used (:func:`sb3_dqn_atari.common.vetting.vet_run_folder`: rl-zoo3's
YAML files with the safe reader and the allow-list, zip member sizes, ONNX files), and the zip is loaded without
unpickling (:mod:`sb3_dqn_atari.loading`), unless ``--trust-remote-code`` is given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from pprint import pformat
from typing import TYPE_CHECKING, Any

import yaml

from sb3_dqn_atari.common.safe_yaml import plain_data
from sb3_dqn_atari.load_from_hub import (
    RetryPolicy,
    algo_name,
    env_folder_name,
    hub_endpoint,
    hub_token,
    latest_run_id,
    model_name,
    move_into_place,
    run_cli,
    staging_dir,
    with_retries,
)
from sb3_dqn_atari.loading import ModelSource, UserError, algorithm_class, read_zip_data, resolve_model

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from sb3_dqn_atari.onnx.export import ExportReport

#: huggingface_sb3 / rl-zoo3 default number of evaluation episodes (the paper used 30: pass --episodes 30).
DEFAULT_EPISODES = 10
#: rl-zoo3's ``-n`` default (agent steps recorded).
DEFAULT_VIDEO_LENGTH = 1000
RESULTS_FILE = "results.json"
VIDEO_FILE = "replay.mp4"
CURVE_FILE = "learning_curve.png"
METRICS_ZIP = "train_eval_metrics.zip"
CARD_FILE = "README.md"


@dataclass
class EvalSummary:
    """What the model card says about the evaluation."""

    mean: float
    std: float
    episodes: int
    protocol: str
    description: str
    results: dict[str, Any]


@dataclass
class RepoFolder:
    """A built repo folder: its files (relative paths) and what went into them."""

    path: Path
    files: list[str]
    model_file: str
    onnx_file: str
    evaluation: EvalSummary
    export: ExportReport
    notes: list[str] = field(default_factory=list)


@dataclass
class PushOptions:
    """How to evaluate and record the agent."""

    episodes: int = DEFAULT_EPISODES
    protocol: str = "nature"
    seed: int = 0
    epsilon: float | None = None  # None: the protocol's (0.05 for Atari), greedy for other envs
    max_frames: int | None = None  # None: the paper's 18,000-frame cap
    video_length: int = DEFAULT_VIDEO_LENGTH
    progress: bool = True
    trust_remote_code: bool = False  # read the run's rl-zoo3 files with rl-zoo3's own YAML reader, unchecked


# ------------------------------------------------------------------------------------------------- locating


def locate_model(
    model: str | None,
    folder: str | None,
    algo: str,
    env_id: str | None,
    exp_id: int,
    load_best: bool = False,
    trust_remote_code: bool = False,
) -> ModelSource:
    """The model to push: a zip / run folder given directly, or rl-zoo3's ``folder/algo/<env>_<exp_id>``
    (``exp_id`` 0: the latest run), as ``rl_zoo3.push_to_hub`` finds it; its files checked
    (:func:`sb3_dqn_atari.loading.resolve_model`)."""
    if model is not None:
        return resolve_model(model, env_id, trust_remote_code)
    if folder is None or env_id is None:
        raise UserError("pass a MODEL (zip or run folder), or -f LOG_FOLDER with --env ENV_ID (and --algo, --exp-id)")
    log_path = Path(folder) / algo
    env_name = env_folder_name(env_id)
    if exp_id == 0:
        exp_id = latest_run_id(log_path, env_name)
        if exp_id == 0:
            raise UserError(f"no run of {env_id} in {log_path} (expected {log_path}/{env_name}_1/)")
    run_dir = log_path / f"{env_name}_{exp_id}" if exp_id > 0 else log_path
    if not run_dir.is_dir():
        raise UserError(f"no such run folder: {run_dir}")
    if load_best:
        resolve_model(run_dir, env_id, trust_remote_code)  # the run folder's files checked, as for the folder
    target = run_dir / "best_model.zip" if load_best else run_dir
    return resolve_model(target, env_id, trust_remote_code)


def _config_dir(source: ModelSource) -> Path | None:
    """rl-zoo3's config folder of the run (``<run>/<env>/`` holding args.yml and config.yml)."""
    if source.run_dir is None:
        return None
    for args_file in sorted(source.run_dir.glob("*/args.yml")):
        return args_file.parent
    return None


# ----------------------------------------------------------------------------------------------- evaluation


class _FrameCap:
    """Passes at most ``limit`` frames to ``sink`` (the video of the first episode, capped)."""

    def __init__(self, sink: Any, limit: int) -> None:
        self.sink, self.limit, self.frames = sink, limit, 0

    def __call__(self, frame: Any) -> None:
        if self.frames < self.limit:
            self.sink(frame)
            self.frames += 1


def _is_atari(env_id: str) -> bool:
    import gymnasium as gym

    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass
    try:
        return "ale_py" in str(gym.spec(env_id).entry_point)
    except gym.error.Error as exc:
        raise UserError(f"unknown env id {env_id!r} ({exc})") from exc


def evaluate_atari(
    model: BaseAlgorithm, env_id: str, folder: Path, options: PushOptions, model_file: str
) -> EvalSummary:
    """The paper's protocol (:func:`sb3_dqn_atari.evaluation.evaluate_policy_protocol`); ``replay.mp4`` is the
    first episode's raw screens."""
    import numpy as np

    from sb3_dqn_atari.atari.protocols import make_eval_env
    from sb3_dqn_atari.atari.wrappers import EVAL_MAX_FRAMES
    from sb3_dqn_atari.common.files import Mp4Writer
    from sb3_dqn_atari.evaluation.protocol import EVAL_EPSILON, evaluate_policy_protocol
    from sb3_dqn_atari.evaluation.report import VIDEO_FPS, results_json

    epsilon = EVAL_EPSILON if options.epsilon is None else options.epsilon
    env = make_eval_env(
        env_id,
        options.protocol,
        options.seed,
        n_actions=int(model.action_space.n),  # type: ignore[attr-defined]
        obs_shape=model.observation_space.shape,
        max_episode_frames=options.max_frames or EVAL_MAX_FRAMES,
    )

    def act(obs: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(obs, deterministic=True)[0])

    video = Mp4Writer(folder / VIDEO_FILE, VIDEO_FPS) if options.video_length > 0 else None
    sink = _FrameCap(video, options.video_length * env.eval_info.protocol.frame_skip + 1) if video else None
    started = datetime.datetime.now()
    try:
        result = evaluate_policy_protocol(
            act,
            protocol=options.protocol,
            episodes=options.episodes,
            seed=options.seed,
            epsilon=epsilon,
            env=env,
            first_episode_frames=sink,
            progress=options.progress,
        )
        if video is not None:
            video.finish()
    finally:
        if video is not None:
            video.abort()  # no-op after finish()
        env.close()
    (folder / RESULTS_FILE).write_bytes(results_json(result, model_file, started))
    settings = result.settings
    description = (
        f"{result.protocol} protocol: {settings['protocol_description']}, ε = {result.epsilon:g}, "
        f"{settings['max_episode_frames']:,}-frame cap, raw score summed over all lives"
    )
    return EvalSummary(result.mean, result.std, len(result.episodes), result.protocol, description, result.to_dict())


def evaluate_other(
    model: BaseAlgorithm,
    env_id: str,
    folder: Path,
    options: PushOptions,
    model_file: str,
    env_kwargs: dict[str, Any],
    frame_stack: int,
) -> EvalSummary:
    """Non-Atari envs (no paper protocol): SB3's ``evaluate_policy`` with greedy actions; ``replay.mp4`` from
    ``render()`` of the first episode."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecFrameStack

    from sb3_dqn_atari.common.files import Mp4Writer

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen rendering; SDL complains without a display

    def make() -> gym.Env:
        try:
            return Monitor(gym.make(env_id, render_mode="rgb_array", **env_kwargs))
        except gym.error.Error as exc:
            raise UserError(f"cannot make env {env_id!r}: {exc}") from exc

    venv: VecEnv = DummyVecEnv([make])
    if frame_stack > 1:
        venv = VecFrameStack(venv, frame_stack)
    venv.seed(options.seed)
    fps = int(venv.get_attr("metadata")[0].get("render_fps") or 30)
    video = Mp4Writer(folder / VIDEO_FILE, fps) if options.video_length > 0 else None
    recorded = 0

    def record(locals_: dict[str, Any], _globals: dict[str, Any]) -> None:
        nonlocal recorded
        if video is not None and locals_["episode_counts"][0] == 0 and recorded < options.video_length:
            frame = venv.env_method("render", indices=[0])[0]
            if frame is not None:
                video(np.asarray(frame))
                recorded += 1

    started = datetime.datetime.now()
    try:
        rewards, lengths = evaluate_policy(
            model,
            venv,
            n_eval_episodes=options.episodes,
            deterministic=True,
            return_episode_rewards=True,
            callback=record,
            warn=False,
        )
        if video is not None:
            video.finish()
    finally:
        if video is not None:
            video.abort()
        venv.close()
    scores = np.asarray(rewards, dtype=np.float64).reshape(-1)
    steps = np.asarray(lengths, dtype=np.int64).reshape(-1)
    description = "greedy actions (SB3 evaluate_policy, deterministic=True); the Nature protocol is for Atari games"
    results = {
        "mean_reward": float(scores.mean()),
        "std_reward": float(scores.std()),
        "is_deterministic": True,
        "n_eval_episodes": len(scores),
        "eval_datetime": started.isoformat(),
        "env_id": env_id,
        "protocol": "greedy",
        "protocol_description": description,
        "seed": options.seed,
        "episodes": [{"score": float(r), "steps": int(n)} for r, n in zip(scores, steps, strict=True)],
        "model": model_file,
    }
    (folder / RESULTS_FILE).write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    return EvalSummary(float(scores.mean()), float(scores.std()), len(scores), "greedy", description, results)


# ------------------------------------------------------------------------------------------------- the card


def generate_metadata(algorithm: str, env_id: str, mean: float, std: float, extra_tags: list[str]) -> Any:
    """The model card metadata, as huggingface_sb3's ``generate_metadata`` (library, tags, model-index)."""
    from huggingface_hub import ModelCardData
    from huggingface_hub.repocard import metadata_eval_result

    tags = [env_id, "deep-reinforcement-learning", "reinforcement-learning", "stable-baselines3"]
    tags += [t for t in extra_tags if t not in tags]
    evaluation = metadata_eval_result(
        model_pretty_name=algorithm,
        task_pretty_name="reinforcement-learning",
        task_id="reinforcement-learning",
        metrics_pretty_name="mean_reward",
        metrics_id="mean_reward",
        metrics_value=f"{mean:.2f} +/- {std:.2f}",
        dataset_pretty_name=env_id,
        dataset_id=env_id,
    )
    return ModelCardData(library_name="stable-baselines3", tags=tags, **evaluation)


_CARD_TEMPLATE = """---
{{ card_data }}
---

# **{{ algorithm }}** agent playing **{{ env_id }}**

A **{{ algorithm }}** agent ({{ policy }}) playing **{{ env_id }}**, trained with
[Stable-Baselines3](https://github.com/DLR-RM/stable-baselines3){{ zoo_phrase }} and sb3-dqn-atari
(DeepMind's 2015 Nature DQN as an SB3 / RL Zoo plugin), at {{ num_timesteps }} agent steps.

## Evaluation

| | |
|---|---|
| mean ± std | **{{ mean }} ± {{ std }}** over {{ episodes }} episodes |
{{ extra_rows }}| protocol | {{ protocol_description }} |

Every episode is in `results.json`; `replay.mp4` is the first one.{{ curve_line }}

## Files

{{ file_list }}

## Usage

Download into rl-zoo3's layout (`logs/{{ algo }}/{{ env_name }}_1/`), then watch, evaluate or export it:

```bash
# with sb3-dqn-atari installed (it brings stable-baselines3, rl-zoo3, gymnasium, ale-py, onnxruntime)
python -m sb3_dqn_atari.load_from_hub --repo-id {{ repo_id }} -f logs/
python -m rl_zoo3.enjoy --algo {{ algo }} --env {{ env_id }} -f logs/
python -m sb3_dqn_atari.evaluate logs/{{ algo }}/{{ env_name }}_1 --episodes 30   # the paper's protocol
```

The zip is loaded without unpickling it (spaces, hyperparameters and weights are read from plain data);
`--trust-remote-code` switches to SB3's own loader. With SB3 alone:

```python
from huggingface_hub import hf_hub_download
from {{ algo_module }} import {{ algorithm }}

path = hf_hub_download("{{ repo_id }}", "{{ model_file }}")
model = {{ algorithm }}.load(path, buffer_size=1)  # unpickles the file: only for repos you trust
```

## Run the ONNX file (no PyTorch)

`{{ onnx_file }}` maps a batch of observations `obs` ({{ obs_text }}) to `q_values` (float32,
`(batch, {{ n_actions }})`) and the greedy `action` (int64). It was checked against the PyTorch model when it
was written: {{ verification }}. Its metadata records the env id, action names and preprocessing.

```bash
python -m sb3_dqn_atari.load_from_hub --repo-id {{ repo_id }} --onnx   # or download {{ onnx_file }} directly
python -m sb3_dqn_atari.play {{ onnx_file }} --episodes 3 --epsilon 0.05 --video play.mp4
```

With onnxruntime only:

```python
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("{{ onnx_file }}", providers=["CPUExecutionProvider"])
print(session.get_modelmeta().custom_metadata_map["env_id"])
obs = np.zeros({{ obs_example_shape }}, dtype=np.{{ obs_dtype }})  # {{ obs_note }}
q_values, action = session.run(["q_values", "action"], {"obs": obs})
```

## Training

```bash
{{ train_command }}
python -m sb3_dqn_atari.push_to_hub -f logs/ --algo {{ algo }} --env {{ env_id }} --repo-id {{ repo_id }}
```

## Hyperparameters

```python
{{ hyperparams }}
```
{{ env_kwargs_block }}"""


def _verification_text(report: ExportReport) -> str:
    v = report.verification
    return f"action agreement {v.n_agree}/{v.n_observations} ({100 * v.agreement:.2f}%), max |ΔQ| = {v.max_abs_dq:.2g}"


def write_model_card(
    folder: Path,
    model: BaseAlgorithm,
    env_id: str,
    repo_id: str,
    algo: str,
    built: RepoFolder,
    hyperparams: dict[str, Any],
    env_kwargs: dict[str, Any],
    from_zoo: bool,
) -> None:
    """README.md: model-index metadata and the text (see the module docstring); checked by parsing it back."""
    from huggingface_hub import ModelCard

    algorithm = type(model).__name__
    evaluation = built.evaluation
    extra_tags = ["dqn", algorithm.lower(), "onnx"]
    if _is_atari(env_id):
        extra_tags += ["atari"]
    metadata = generate_metadata(algorithm, env_id, evaluation.mean, evaluation.std, extra_tags)
    results = evaluation.results
    rows = []
    if results.get("median_reward") is not None:
        rows.append(
            f"| median, min, max | {results['median_reward']:.1f}, {results['min_reward']:.1f}, "
            f"{results['max_reward']:.1f} |"
        )
    if results.get("human_normalized_score") is not None:
        paper = results.get("paper") or {}
        rows.append(
            f"| human-normalised | {results['human_normalized_score']:.1f}% (paper's DQN: {paper.get('dqn', 'n/a')} "
            f"± {paper.get('dqn_std', 'n/a')}, Mnih et al. 2015, Extended Data Table 2) |"
        )
    space = model.observation_space
    shape = tuple(int(s) for s in (space.shape or ()))
    dtype = str(getattr(space, "dtype", "float32"))
    image = len(shape) == 3 and dtype == "uint8"
    obs_text = f"`(batch, {', '.join(map(str, shape))})` {dtype}: " + (
        f"the last {shape[0]} preprocessed 84×84 grayscale frames, oldest first; the /255 scaling is in the graph"
        if image
        else "the env's observation vector"
    )
    obs_note = (
        "stacked 84x84 frames: python -m sb3_dqn_atari.play rebuilds the preprocessing from the metadata"
        if image
        else f"one {env_id} observation"
    )
    algo_module = (
        "sb3_dqn_atari" if algorithm == "NatureDQN" else "sb3_contrib" if algorithm == "QRDQN" else "stable_baselines3"
    )
    files = {
        built.model_file: "the SB3 model (zip)",
        built.onnx_file: f"ONNX export (opset {built.export.opset}), verified",
        RESULTS_FILE: "evaluation: every episode, the protocol's settings",
        VIDEO_FILE: "the first evaluation episode",
        "config.yml": "rl-zoo3 hyperparameters",
        "args.yml": "rl-zoo3 arguments",
        "env_kwargs.yml": "env keyword arguments",
        CURVE_FILE: "learning curve (sb3_dqn_atari.plot)",
        METRICS_ZIP: "training Monitor and evaluation files",
    }
    file_list = "\n".join(f"- `{name}`: {text}" for name, text in files.items() if name in built.files)
    train_command = (
        f"python -m rl_zoo3.train --algo {algo} --env {env_id} -conf hyperparams/dqn.yml -f logs/"
        if from_zoo
        else f"# trained outside rl-zoo3; with it: python -m rl_zoo3.train --algo {algo} --env {env_id} -f logs/"
    )
    card = ModelCard.from_template(
        metadata,
        template_str=_CARD_TEMPLATE,
        algorithm=algorithm,
        env_id=env_id,
        env_name=env_folder_name(env_id),
        policy=type(model.policy).__name__,
        zoo_phrase=", the [RL Zoo](https://github.com/DLR-RM/rl-baselines3-zoo)" if from_zoo else "",
        num_timesteps=f"{int(model.num_timesteps):,}",
        mean=f"{evaluation.mean:.2f}",
        std=f"{evaluation.std:.2f}",
        episodes=evaluation.episodes,
        extra_rows="".join(row + "\n" for row in rows),
        protocol_description=evaluation.description,
        curve_line=f" `{CURVE_FILE}` shows the training." if CURVE_FILE in built.files else "",
        file_list=file_list,
        algo=algo,
        repo_id=repo_id,
        algo_module=algo_module,
        model_file=built.model_file,
        onnx_file=built.onnx_file,
        obs_text=obs_text,
        n_actions=int(model.action_space.n),  # type: ignore[attr-defined]
        verification=_verification_text(built.export),
        obs_example_shape=str((1, *shape)),
        obs_dtype=dtype,
        obs_note=obs_note,
        train_command=train_command,
        hyperparams=pformat(hyperparams) if hyperparams else "# not recorded (the model was not trained with rl-zoo3)",
        env_kwargs_block=f"\n## Environment arguments\n\n```python\n{pformat(env_kwargs)}\n```\n" if env_kwargs else "",
    )
    text = str(card)
    parsed = ModelCard(text)
    if not getattr(parsed.data, "eval_results", None):
        raise UserError("internal error: the model card's metadata does not parse back")
    (folder / CARD_FILE).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------- the folder


def _generated_config(report: ExportReport, model: BaseAlgorithm) -> dict[str, Any]:
    """rl-zoo3 ``config.yml`` entries for a bare zip, from what the export found (preprocessing, frame stack)."""
    from sb3_dqn_atari.onnx.runtime import NATURE_WRAPPER, PreprocessingSpec

    policy = type(model.policy).__name__
    config: dict[str, Any] = {"policy": "MlpPolicy" if policy in ("DQNPolicy", "QRDQNPolicy") else policy}
    spec = PreprocessingSpec.from_json(report.metadata["preprocessing"])
    if spec.wrapper == NATURE_WRAPPER:
        config["env_wrapper"] = [
            {
                "sb3_dqn_atari.zoo.NatureAtariWrapper": {
                    "noop_max": spec.noop_max,
                    "frame_skip": spec.frame_skip,
                    "frame_size": spec.frame_size,
                    "terminal_on_life_loss": spec.train_terminal_on_life_loss,
                    "clip_reward": spec.train_clip_reward,
                }
            }
        ]
    frame_stack = int(report.metadata.get("frame_stack", "1"))
    if frame_stack > 1:
        config["frame_stack"] = frame_stack
    return config


def _env_kwargs(config_dir: Path | None, trust_remote_code: bool = False) -> dict[str, Any]:
    if config_dir is None or not (config_dir / "args.yml").is_file():
        return {}
    from sb3_dqn_atari.common.vetting import read_zoo_file

    env_kwargs = read_zoo_file(config_dir / "args.yml", trust_remote_code).get("env_kwargs") or {}
    if not isinstance(env_kwargs, dict):
        raise UserError(f"{config_dir / 'args.yml'}: env_kwargs is not a mapping")
    return dict(env_kwargs)


def build_repo_folder(
    model: BaseAlgorithm,
    source: ModelSource,
    env_id: str,
    folder: Path,
    repo_id: str,
    algo: str,
    options: PushOptions,
) -> RepoFolder:
    """Write every file of the repo into the (empty) ``folder``; see the module docstring."""
    from sb3_dqn_atari.onnx.export import export_onnx

    name = model_name(algo, env_id)
    model_file, onnx_file = f"{name}.zip", f"{name}.onnx"
    notes: list[str] = []
    shutil.copyfile(source.zip_path, folder / model_file)

    config_dir = _config_dir(source)
    env_kwargs = _env_kwargs(config_dir, options.trust_remote_code)
    report = export_onnx(
        model,
        folder / onnx_file,
        env_id,
        hyperparams=source.hyperparams,
        source=source,
        progress=options.progress,
    )
    notes += report.notes
    copied = []
    if config_dir is not None:
        for config_name in ("config.yml", "args.yml", "env_kwargs.yml"):
            if (config_dir / config_name).is_file():
                shutil.copyfile(config_dir / config_name, folder / config_name)
                copied.append(config_name)
    header = "# written by sb3_dqn_atari.push_to_hub: the model came without rl-zoo3's files\n"
    if "config.yml" not in copied:
        config = _generated_config(report, model)
        (folder / "config.yml").write_text(header + yaml.safe_dump(config, sort_keys=True))
    if "args.yml" not in copied:
        args = {"algo": algo, "env": env_id, "env_kwargs": env_kwargs or None}
        (folder / "args.yml").write_text(header + yaml.safe_dump(plain_data(args), sort_keys=False))
    if "env_kwargs.yml" not in copied:  # rl-zoo3's push_to_hub writes it from args.yml's env_kwargs
        (folder / "env_kwargs.yml").write_text(yaml.dump(plain_data(env_kwargs)))

    if _is_atari(env_id):
        evaluation = evaluate_atari(model, env_id, folder, options, model_file)
    else:
        frame_stack = int(source.hyperparams.get("frame_stack") or 1)
        evaluation = evaluate_other(model, env_id, folder, options, model_file, env_kwargs, frame_stack)

    if source.run_dir is not None:
        _write_training_files(source.run_dir, folder, notes, options.trust_remote_code)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return RepoFolder(folder, files, model_file, onnx_file, evaluation, report, notes)


def _write_training_files(run_dir: Path, folder: Path, notes: list[str], trust_remote_code: bool = False) -> None:
    """rl-zoo3's ``train_eval_metrics.zip`` (Monitor and evaluation files) and ``learning_curve.png``, when the
    run folder has such files."""
    from sb3_dqn_atari.evaluation.curves import MONITOR_GLOB, load_run, plot_runs

    logs = sorted(run_dir.glob(MONITOR_GLOB)) + sorted(run_dir.glob("evaluations*.npz"))
    logs += sorted(run_dir.glob("evaluations*.csv"))
    if not logs:
        return
    with zipfile.ZipFile(folder / METRICS_ZIP, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for log in logs:
            archive.write(log, arcname=log.name)
    try:
        run = load_run(run_dir, trust_remote_code)
    except UserError as exc:
        notes.append(f"no learning curve: {exc}")
        return
    if run.train_raw is not None or run.evals:
        plot_runs([run], folder / CURVE_FILE)


# ------------------------------------------------------------------------------------------------ uploading


def upload_folder(
    folder: Path, repo_id: str, commit_message: str, token: str, endpoint: str, retry: RetryPolicy
) -> str:
    """Every file of ``folder`` in one commit on ``main``; returns the commit's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint, token=token)
    paths = sorted(p for p in folder.rglob("*") if p.is_file())

    def commit() -> Any:
        operations = [
            CommitOperationAdd(path_in_repo=str(p.relative_to(folder)), path_or_fileobj=str(p)) for p in paths
        ]
        return api.create_commit(repo_id, operations, commit_message=commit_message, repo_type="model")

    info = with_retries(commit, "push to", repo_id, endpoint, retry)
    return str(info.commit_url)


def create_repo(repo_id: str, private: bool, token: str, endpoint: str, retry: RetryPolicy) -> str:
    """``create_repo(exist_ok=True)``: the repo's URL (an existing repo is fine, and keeps its visibility)."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import validate_repo_id

    with_retries(lambda: validate_repo_id(repo_id), "push to", repo_id, endpoint, RetryPolicy(attempts=1))
    if "/" not in repo_id:
        raise UserError(f"--repo-id {repo_id!r} should be NAMESPACE/NAME (your user or organisation name first)")
    api = HfApi(endpoint=endpoint, token=token)
    url = with_retries(
        lambda: api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model"),
        "create",
        repo_id,
        endpoint,
        retry,
    )
    return str(url)


# ------------------------------------------------------------------------------------------------------ CLI


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
    parser.add_argument("--retries", type=int, default=RetryPolicy.attempts, help="attempts per Hub call")
    parser.add_argument("--retry-wait", type=float, default=RetryPolicy.base_delay, help="first backoff (s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def _check_args(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    if args.video_length < 0:
        raise UserError("--video-length must be 0 (no video) or positive")
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be positive")
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:
        raise UserError("--epsilon must be within [0, 1]")
    if args.retries < 1 or args.retry_wait < 0:
        raise UserError("--retries must be at least 1 and --retry-wait not negative")
    if args.dry_run is not None and args.dry_run.exists() and any(args.dry_run.iterdir()):
        raise UserError(f"{args.dry_run} exists and is not empty; pass a new folder to --dry-run")


def run(args: argparse.Namespace) -> RepoFolder:
    _check_args(args)
    source = locate_model(
        args.model, args.folder, args.algo, args.env, args.exp_id, args.load_best, args.trust_remote_code
    )
    env_id = source.env_id  # args.env, else the recorded one (a retired id mapped: sb3_dqn_atari.common.env_ids)
    if env_id is None:
        raise UserError("pass --env ENV_ID: a bare SB3 zip does not record its environment")
    upload = args.dry_run is None
    policy = RetryPolicy(attempts=args.retries, base_delay=args.retry_wait)
    endpoint = hub_endpoint()
    token = hub_token(required=True) if upload else None
    # rl-zoo3's --algo for a run folder; the class that saved the zip otherwise (read as plain text)
    algo = args.algo if args.model is None else algo_name(algorithm_class(read_zip_data(source.zip_path)).__name__)
    if args.repo_id is None and upload and args.organization is None:
        raise UserError("pass --repo-id NAMESPACE/NAME (or -orga NAMESPACE)")
    repo_id = args.repo_id or f"{args.organization or 'ORG'}/{args.repo_name or model_name(algo, env_id)}"
    if token is not None:
        url = create_repo(repo_id, args.private, token, endpoint, policy)
        print(f"Repository {url} ready")

    import torch

    from sb3_dqn_atari.loading import load_agent

    if args.device == "cpu":
        torch.set_num_threads(1)
    model, _ = load_agent(source.zip_path, device=args.device, env_id=env_id, trust_remote_code=args.trust_remote_code)
    options = PushOptions(
        episodes=args.episodes,
        protocol=args.protocol,
        seed=args.seed,
        epsilon=args.epsilon,
        max_frames=args.max_frames,
        video_length=args.video_length,
        progress=not args.quiet,
        trust_remote_code=args.trust_remote_code,
    )
    final = args.dry_run if args.dry_run is not None else None
    with staging_dir(final) if final is not None else tempfile.TemporaryDirectory(prefix="sb3-hub-") as staged_name:
        staged = Path(staged_name)
        built = build_repo_folder(model, source, env_id, staged, repo_id, algo, options)
        write_model_card(
            staged,
            model,
            env_id,
            repo_id,
            algo,
            built,
            source.hyperparams,
            _env_kwargs(_config_dir(source), args.trust_remote_code),
            from_zoo=_config_dir(source) is not None,
        )
        built.files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
        for note in built.notes:
            print(f"note: {note}")
        print(built.export.verification.summary())
        evaluation = built.evaluation
        mean = "nan" if math.isnan(evaluation.mean) else f"{evaluation.mean:.2f}"
        print(f"evaluation ({evaluation.protocol}, {evaluation.episodes} episodes): {mean} +/- {evaluation.std:.2f}")
        if final is not None:
            if final.exists():
                final.rmdir()  # empty (checked above)
            move_into_place(staged, final)
            built.path = final
            print(f"wrote {len(built.files)} files to {final} (dry run: nothing uploaded)")
            for name in built.files:
                print(f"  {name}")
            return built
        assert token is not None
        message = args.commit_message or f"Upload {type(model).__name__} agent playing {env_id} (sb3-dqn-atari)"
        url = upload_folder(staged, repo_id, message, token, endpoint, policy)
        print(f"pushed {len(built.files)} files to {repo_id} in one commit: {url}")
        return built


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args), "nothing was uploaded")


if __name__ == "__main__":
    sys.exit(main())
