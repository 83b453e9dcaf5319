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
    """A built repo folder: what went into it, and its files (relative paths) once complete."""

    model_file: str
    onnx_file: str
    evaluation: EvalSummary
    export: ExportReport
    files: list[str] = field(default_factory=list)


def _file_list(folder: Path, built: RepoFolder) -> str:
    """The repo's files written so far, one line each."""
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
    return "\n".join(f"- `{name}`: {text}" for name, text in files.items() if (folder / name).is_file())


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

    try:  # huggingface_sb3's model-card metadata: library_name, tags, model-index "mean +/- std"
        from huggingface_sb3.push_to_hub import generate_metadata
    except ImportError:  # the name in huggingface_sb3 3.2
        from huggingface_sb3.push_to_hub import _generate_metadata as generate_metadata

    algorithm = type(model).__name__
    results = built.evaluation.results
    metadata = generate_metadata(algorithm, env_id, results["mean_reward"], results["std_reward"])
    extra_tags = ["dqn", algorithm.lower(), "onnx"] + (["atari"] if is_atari(env_id) else [])
    metadata.tags += [t for t in extra_tags if t not in metadata.tags]
    algo_module = {"NatureDQN": "sb3_dqn_atari", "QRDQN": "sb3_contrib"}.get(algorithm, "stable_baselines3")
    space = model.observation_space
    shape = tuple(int(s) for s in (space.shape or ()))
    dtype = str(getattr(space, "dtype", "float32"))
    card = ModelCard.from_template(  # the text, and how each value is written, is in model_card.md
        metadata,
        template_str=(resources.files("sb3_dqn_atari.hub") / "model_card.md").read_text(encoding="utf-8"),
        algorithm=algorithm,
        algo=algo,
        algo_module=algo_module,
        # which improvements a NatureDQN runs, and their papers (agent.variants)
        variant=describe_variant(model, hyperparams) if algorithm == "NatureDQN" else None,
        policy=type(model.policy).__name__,
        num_timesteps=int(model.num_timesteps),
        env_id=env_id,
        env_name=env_folder_name(env_id),
        repo_id=repo_id,
        zoo=from_zoo,
        results=results,
        description=built.evaluation.description,
        curve_file=CURVE_FILE if (folder / CURVE_FILE).is_file() else None,
        file_list=_file_list(folder, built),
        model_file=built.model_file,
        onnx_file=built.onnx_file,
        shape=shape,
        dtype=dtype,
        image=len(shape) == 3 and dtype == "uint8",  # stacked preprocessed frames
        example_shape=str((1, *shape)),
        n_actions=int(model.action_space.n),  # type: ignore[attr-defined]
        v=built.export.verification,
        hyperparams=pformat(hyperparams) if hyperparams else "# not recorded (the model was not trained with rl-zoo3)",
        env_kwargs=pformat(env_kwargs) if env_kwargs else None,
    )
    text = str(card)
    parsed = ModelCard(text)
    if not getattr(parsed.data, "eval_results", None):
        raise UserError("internal error: the model card's metadata does not parse back")
    (folder / CARD_FILE).write_text(text, encoding="utf-8")
