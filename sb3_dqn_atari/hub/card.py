"""The model card (``README.md``): huggingface_sb3's metadata (``model-index``) and the text of ``model_card.md``
(package data), checked by parsing it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from pprint import pformat
from typing import TYPE_CHECKING, Any

from sb3_dqn_atari.agent.variants import describe as describe_variant
from sb3_dqn_atari.atari.envs import is_atari
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.hub.client import METRICS_ZIP, env_folder_name
from sb3_dqn_atari.hub.evaluate import RESULTS_FILE, VIDEO_FILE, EvalSummary

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

    from sb3_dqn_atari.onnx.export import ExportReport


# ------------------------------------------------------------------------------------------------- the card


CURVE_FILE = "learning_curve.png"
CARD_FILE = "README.md"


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




def _verification_text(report: ExportReport) -> str:
    v = report.verification
    return f"action agreement {v.n_agree}/{v.n_observations} ({100 * v.agreement:.2f}%), max |ΔQ| = {v.max_abs_dq:.2g}"


def _score_rows(results: dict[str, Any]) -> str:
    """The results table's rows beyond mean and std: median/min/max, and the human-normalised score."""
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
    return "".join(row + "\n" for row in rows)


def _observation_fields(model: BaseAlgorithm, env_id: str) -> dict[str, Any]:
    """What the card says about the ONNX input: its shape, dtype, and what it holds."""
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
    return {"obs_text": obs_text, "obs_example_shape": str((1, *shape)), "obs_dtype": dtype, "obs_note": obs_note}


def _file_list(built: RepoFolder) -> str:
    """The repo's files that were written, one line each."""
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
    return "\n".join(f"- `{name}`: {text}" for name, text in files.items() if name in built.files)


_NO_HYPERPARAMS = "# not recorded (the model was not trained with rl-zoo3)"


def _training_fields(
    model: BaseAlgorithm, env_id: str, algo: str, hyperparams: dict[str, Any], env_kwargs: dict[str, Any], zoo: bool
) -> dict[str, Any]:
    """How the model was trained: the command, the DQN variant and its papers, the hyperparameters and env kwargs."""
    variant = ""
    if type(model).__name__ == "NatureDQN":  # which improvements it runs, and their papers (agent.variants)
        name, papers = describe_variant(model, hyperparams)
        variant = f"\n\nVariant: **{name}** ({'; '.join(papers)})."
    return {
        "train_command": (
            f"python -m rl_zoo3.train --algo {algo} --env {env_id} -conf hyperparams/dqn.yml -f logs/"
            if zoo
            else f"# trained outside rl-zoo3; with it: python -m rl_zoo3.train --algo {algo} --env {env_id} -f logs/"
        ),
        "zoo_phrase": ", the [RL Zoo](https://github.com/DLR-RM/rl-baselines3-zoo)" if zoo else "",
        "variant": variant,
        "hyperparams": pformat(hyperparams) if hyperparams else _NO_HYPERPARAMS,
        "env_kwargs_block": (
            f"\n## Environment arguments\n\n```python\n{pformat(env_kwargs)}\n```\n" if env_kwargs else ""
        ),
    }


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
    """README.md: model-index metadata and the text of ``model_card.md`` filled in; checked by parsing it back."""
    from huggingface_hub import ModelCard

    algorithm = type(model).__name__
    evaluation = built.evaluation
    extra_tags = ["dqn", algorithm.lower(), "onnx"] + (["atari"] if is_atari(env_id) else [])
    metadata = generate_metadata(algorithm, env_id, evaluation.mean, evaluation.std, extra_tags)
    algo_module = (
        "sb3_dqn_atari" if algorithm == "NatureDQN" else "sb3_contrib" if algorithm == "QRDQN" else "stable_baselines3"
    )
    card = ModelCard.from_template(
        metadata,
        template_str=(resources.files("sb3_dqn_atari.hub") / "model_card.md").read_text(encoding="utf-8"),
        algorithm=algorithm,
        env_id=env_id,
        env_name=env_folder_name(env_id),
        policy=type(model.policy).__name__,
        num_timesteps=f"{int(model.num_timesteps):,}",
        mean=f"{evaluation.mean:.2f}",
        std=f"{evaluation.std:.2f}",
        episodes=evaluation.episodes,
        extra_rows=_score_rows(evaluation.results),
        protocol_description=evaluation.description,
        curve_line=f" `{CURVE_FILE}` shows the training." if CURVE_FILE in built.files else "",
        file_list=_file_list(built),
        algo=algo,
        repo_id=repo_id,
        algo_module=algo_module,
        model_file=built.model_file,
        onnx_file=built.onnx_file,
        n_actions=int(model.action_space.n),  # type: ignore[attr-defined]
        verification=_verification_text(built.export),
        **_observation_fields(model, env_id),
        **_training_fields(model, env_id, algo, hyperparams, env_kwargs, from_zoo),
    )
    text = str(card)
    parsed = ModelCard(text)
    if not getattr(parsed.data, "eval_results", None):
        raise UserError("internal error: the model card's metadata does not parse back")
    (folder / CARD_FILE).write_text(text, encoding="utf-8")
