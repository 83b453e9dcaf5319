"""Export a trained DQN agent to ONNX (``python -m sb3_dqn_atari.export MODEL``), verified against PyTorch every time.

``MODEL`` is an SB3 zip (:class:`~sb3_dqn_atari.NatureDQN`, SB3's ``DQN`` with ``CnnPolicy`` or ``MlpPolicy``,
sb3-contrib's ``QRDQN``) or an rl-zoo3 run folder (``logs/dqn/BreakoutNoFrameskip-v4_1``).

The graph (opset 18 by default: onnxruntime >= 1.14, onnxruntime-web and TensorRT run it; ``--opset`` picks
another, which the ``torch.export``-based exporter converts to):

* input ``obs``: a batch of observations as the replay memory stores them, ``(batch, 4, 84, 84)`` uint8
  (channel-first, stacked, oldest frame first) for Atari, float32 ``(batch, d)`` for vector envs; the
  ``/255`` scaling of SB3's ``preprocess_obs`` is inside the graph;
* outputs ``q_values`` ``(batch, n_actions)`` float32 (QR-DQN: the mean over quantiles, as its ``_predict``)
  and ``action`` ``(batch,)`` int64, the greedy action (``ArgMax``: the first maximal action on exact ties,
  where NatureDQN draws one at random).

``metadata_props`` (all strings; :class:`sb3_dqn_atari.onnx.runtime.AgentMetadata` parses them): ``format``,
``env_id``, ``env_kwargs`` (JSON), ``algorithm``, ``policy_class``, ``action_meanings`` (JSON),
``observation_shape`` (JSON, without the batch), ``observation_dtype``, ``frame_stack``, ``preprocessing``
(JSON :class:`~sb3_dqn_atari.onnx.runtime.PreprocessingSpec`), ``num_timesteps``, ``versions`` (JSON),
``verification`` (JSON), for the int8 file ``quantization``, and when known ``source`` (the zip's name),
``hyperparams_file`` (the ``-conf`` yml rl-zoo3 recorded in the run's ``args.yml``) and ``evaluation`` (JSON: the
score of the agent, added by :func:`record_evaluation` once it is evaluated, e.g. by ``push_to_hub``).

Verification (:func:`save_verified`): ``onnx.checker`` (full check, with shape inference), then onnxruntime
against the PyTorch model on observations from the model's own env (rolled a few hundred steps, partly
greedy, partly random actions) plus random observations of the observation space. The file is written to a
temporary file in the output folder and moved into place with ``os.replace`` only if the largest
``|Q_onnx − Q_torch|`` is at most ``atol`` (1e-4) and every greedy action agrees. The one tolerated action
difference is a near-tie: if onnxruntime's action is the argmax of its own Q-values, ``Q_torch`` of the two
actions differ by at most ``2·max|ΔQ|``, and such a pair is reported, not failed. The optional int8 file
(``onnxruntime.quantization.quantize_dynamic``) goes through the same comparison and reports its agreement
without requiring 100%; when it misses the float32 tolerance, the summary says so in a ``warning:`` line.

The command never replaces an existing file without being told: when the output (or, with ``--quantize``, its
``NAME.int8.onnx``) exists, it stops with one ``error:`` line before writing anything, unless ``--overwrite``.

Context: users report mismatches between SB3 policies and their ONNX export (SB3 issue #1211, rl-zoo3 #394);
the graph here is checked at every export instead.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from gymnasium import spaces

from sb3_dqn_atari.atari.envs import is_atari
from sb3_dqn_atari.atari.spec import spec_from_config
from sb3_dqn_atari.common.errors import arguments
from sb3_dqn_atari.common.files import atomic_write_bytes, check_output_file
from sb3_dqn_atari.loading import ModelSource, UserError, load_agent, resolve_model
from sb3_dqn_atari.onnx.graph import DEFAULT_OPSET, QValueGraph, package_version, quantize, torch_to_onnx
from sb3_dqn_atari.onnx.runtime import (
    ACTION_NAME,
    INPUT_NAME,
    METADATA_FORMAT,
    Q_VALUES_NAME,
    PreprocessingSpec,
    first_line,
)
from sb3_dqn_atari.onnx.verify import (
    DEFAULT_ATOL,
    DEFAULT_N_RANDOM,
    DEFAULT_N_REAL,
    Check,
    VerificationReport,
    check_env_matches,
    collect_observations,
    make_model_env,
    save_verified,
)

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


#: Where exports land by default.
EXPORT_DIR = Path("exported_models")
#: File-name stem of each algorithm (``<env_id>-<stem>.onnx``).
ALGO_STEMS = {"NatureDQN": "nature-dqn", "DQN": "dqn", "QRDQN": "qrdqn"}
#: Packages whose versions go into the metadata.
VERSIONED_PACKAGES = (
    "sb3-dqn-atari",
    "stable-baselines3",
    "sb3-contrib",
    "torch",
    "onnx",
    "onnxruntime",
    "gymnasium",
    "ale-py",
    "numpy",
)


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how it checked it."""

    path: Path
    env_id: str
    algorithm: str
    opset: int
    n_parameters: int
    size_bytes: int
    metadata: dict[str, str]
    verification: VerificationReport
    quantized_path: Path | None = None
    quantized_size_bytes: int | None = None
    quantized: VerificationReport | None = None
    notes: list[str] = field(default_factory=list)


def preprocessing_for(
    model: BaseAlgorithm, env_id: str, hyperparams: dict[str, Any], choice: str = "auto"
) -> tuple[PreprocessingSpec, int, list[str]]:
    """The preprocessing spec and frame stack the model was trained with, and notes on how they were found
    (:func:`sb3_dqn_atari.atari.spec.spec_from_config` on the model's observation space)."""
    space = model.observation_space
    assert isinstance(space, spaces.Box) and space.shape is not None
    image = len(space.shape) == 3 and space.dtype == np.uint8
    atari = image and choice != "none" and is_atari(env_id)
    return spec_from_config(tuple(space.shape), image, atari, hyperparams, choice)


def build_metadata(
    model: BaseAlgorithm,
    env_id: str,
    spec: PreprocessingSpec,
    frame_stack: int,
    meanings: list[str],
    env_kwargs: dict[str, Any] | None = None,
    source: ModelSource | None = None,
) -> dict[str, str]:
    """The ``metadata_props`` of an export (see the module docstring)."""
    space = model.observation_space
    assert space.shape is not None and space.dtype is not None
    props = {
        "format": METADATA_FORMAT,
        "env_id": env_id,
        "env_kwargs": json.dumps(env_kwargs or {}, sort_keys=True),
        "algorithm": type(model).__name__,
        "policy_class": f"{type(model.policy).__module__}.{type(model.policy).__qualname__}",
        "action_meanings": json.dumps(meanings),
        "observation_shape": json.dumps([int(d) for d in space.shape]),
        "observation_dtype": str(np.dtype(space.dtype)),
        "frame_stack": str(frame_stack),
        "preprocessing": spec.to_json(),
        "inputs": json.dumps({INPUT_NAME: "batch of observations as stored (uint8 images: channel-first stack)"}),
        "outputs": json.dumps({Q_VALUES_NAME: "float32 (batch, n_actions)", ACTION_NAME: "int64 (batch,) greedy"}),
        "num_timesteps": str(int(model.num_timesteps)),
        "versions": json.dumps({p: package_version(p) for p in VERSIONED_PACKAGES}, sort_keys=True),
    }
    if source is not None:
        props["source"] = source.zip_path.name
        if source.conf_file is not None:
            props["hyperparams_file"] = source.conf_file
    return props


def record_evaluation(path: Path, results: dict[str, Any], description: str) -> None:
    """Add the ``evaluation`` metadata (protocol, episodes, mean and std of the score, the protocol in words) to
    the exported file ``path``, its graph untouched; the file is replaced atomically."""
    proto = onnx.load_model(str(path))
    keys = ("protocol", "n_eval_episodes", "mean_reward", "std_reward", "epsilon", "seed")
    evaluation = {key: results[key] for key in keys if key in results} | {"description": description}
    props = {p.key: p.value for p in proto.metadata_props} | {"evaluation": json.dumps(evaluation)}
    onnx.helper.set_model_props(proto, props)
    atomic_write_bytes(path, proto.SerializeToString())


def default_path(env_id: str, algorithm: str) -> Path:
    """``exported_models/<env_id>-<algo>.onnx`` (``/`` in ids such as ``ALE/Breakout-v5`` becomes ``_``)."""
    stem = ALGO_STEMS.get(algorithm, algorithm.lower())
    return EXPORT_DIR / f"{env_id.replace('/', '_')}-{stem}.onnx"


def quantized_path(path: Path) -> Path:
    """``NAME.onnx`` -> ``NAME.int8.onnx``."""
    return path.with_name(f"{path.stem}.int8.onnx")


def export_onnx(
    model: BaseAlgorithm,
    path: str | Path | None = None,
    env_id: str | None = None,
    *,
    hyperparams: dict[str, Any] | None = None,
    preprocessing: str = "auto",
    opset: int = DEFAULT_OPSET,
    quantize_int8: bool = False,
    n_real: int = DEFAULT_N_REAL,
    n_random: int = DEFAULT_N_RANDOM,
    atol: float = DEFAULT_ATOL,
    seed: int = 0,
    dynamo: bool = True,
    source: ModelSource | None = None,
    progress: bool = True,
) -> ExportReport:
    """Export ``model`` to ``path`` (default ``exported_models/<env_id>-<algo>.onnx``), verified.

    :param model: a loaded DQN, NatureDQN or QRDQN.
    :param env_id: the env the model was trained on (its observations feed the verification; its id,
        action names and preprocessing go into the metadata).
    :param hyperparams: rl-zoo3's ``config.yml`` (``env_wrapper``, ``frame_stack``, ``env_kwargs``), if any.
    :param preprocessing: ``"auto"``, ``"nature"``, ``"sb3"`` or ``"none"`` (see :func:`preprocessing_for`).
    :param quantize_int8: also write ``NAME.int8.onnx`` (agreement reported, not required).
    :raises UserError: for a wrong env, an unwritable folder, ...; :class:`VerificationError` if the graph does
        not match (nothing is written then).

    Long on purpose: one sequence of steps, in this order, sharing their state.
    """
    if env_id is None:
        raise UserError("pass --env ENV_ID: a bare SB3 zip does not record its environment")
    hyperparams = dict(hyperparams or {})
    env_kwargs = hyperparams.get("env_kwargs") or {}
    if not isinstance(env_kwargs, dict):
        raise UserError(f"config.yml: env_kwargs = {str(env_kwargs)[:80]!r} is not a mapping")
    env_kwargs = dict(env_kwargs)
    algorithm = type(model).__name__
    out = Path(path) if path is not None else default_path(env_id, algorithm)
    check_output_file(out, "the output", ".onnx", make_folder=True)
    if not isinstance(model.observation_space, spaces.Box):
        raise UserError(f"the model observes {model.observation_space}; export supports Box observations")
    spec, frame_stack, notes = preprocessing_for(model, env_id, hyperparams, preprocessing)
    venv = make_model_env(env_id, spec, frame_stack, env_kwargs, seed)
    try:
        check_env_matches(model, venv, env_id)
        observations = collect_observations(model, venv, n_real, n_random, seed, progress)
        getter = getattr(venv.get_attr("unwrapped")[0], "get_action_meanings", None)  # the ALE's action names
        n_actions = int(model.action_space.n)  # type: ignore[attr-defined]
        meanings = [str(a) for a in getter()] if getter else [str(i) for i in range(n_actions)]
    finally:
        venv.close()
    try:
        proto = torch_to_onnx(model, opset, dynamo)
    except Exception as exc:  # the exporter's many exception types: one line, not a trace
        raise UserError(
            f"torch.onnx.export failed (opset {opset}): {exc.__class__.__name__}: {first_line(exc)}"
        ) from exc
    onnx.helper.set_model_props(proto, build_metadata(model, env_id, spec, frame_stack, meanings, env_kwargs, source))
    report = save_verified(proto, out, model, observations, Check(n_real, atol))
    n_params = sum(p.numel() for p in QValueGraph(model.policy).parameters())
    result = ExportReport(
        path=out,
        env_id=env_id,
        algorithm=algorithm,
        opset=opset,
        n_parameters=n_params,
        size_bytes=out.stat().st_size,
        metadata={p.key: p.value for p in proto.metadata_props},
        verification=report,
        notes=notes,
    )
    if quantize_int8:
        q_out = quantized_path(out)
        try:
            q_proto = quantize(out, proto)
        except Exception as exc:  # onnxruntime.quantization's own errors: one line, not a trace
            raise UserError(
                f"{out} was written and verified, but int8 quantization failed: "
                f"{exc.__class__.__name__}: {first_line(exc)}"
            ) from exc
        result.quantized = save_verified(q_proto, q_out, model, observations, Check(n_real, atol, "int8", False))
        result.quantized_path = q_out
        result.quantized_size_bytes = q_out.stat().st_size
    return result


def export_and_report(
    model: BaseAlgorithm, output: Path | None, source: ModelSource, progress: bool, **options: Any
) -> ExportReport:
    """:func:`export_onnx` of a model loaded from ``source`` (its env id, hyperparameters and run folder), then its
    notes and verification printed (the export and ``load_from_hub --onnx`` commands)."""
    report = export_onnx(
        model, output, source.env_id, hyperparams=source.hyperparams, source=source, progress=progress, **options
    )
    for note in report.notes:
        print(f"note: {note}")
    print(report.verification.summary())
    return report


def export_command(args: argparse.Namespace) -> ExportReport:
    """``python -m sb3_dqn_atari.export``: load the agent its arguments name, export it, say what was written."""
    # the folder's files checked, and the env known, before the (slow) load
    if resolve_model(args.model, args.env, args.trust_remote_code).env_id is None:
        raise UserError("pass --env ENV_ID: a bare SB3 zip does not record its environment")
    model, source = load_agent(args.model, device="cpu", env_id=args.env, trust_remote_code=args.trust_remote_code)
    output = args.output if args.output is not None else default_path(str(source.env_id), type(model).__name__)
    for target in (output, quantized_path(output)) if args.quantize else (output,):
        if target.exists() and not args.overwrite:  # an earlier export is never replaced without a word
            raise UserError(f"{target} exists; pass -o NEW.onnx to keep it, or --overwrite to replace it")
    options = arguments(args, "preprocessing", "opset", "n_real", "n_random", "atol", "seed")
    report = export_and_report(
        model, output, source, not args.quiet, quantize_int8=args.quantize, dynamo=not args.legacy_exporter, **options
    )
    print(
        f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, opset {report.opset}, "
        f"{report.n_parameters:,} parameters, {report.algorithm} on {report.env_id})"
    )
    if report.quantized is not None and report.quantized_path is not None:
        print(report.quantized.summary())
        print(f"wrote {report.quantized_path} ({(report.quantized_size_bytes or 0) / 1e6:.2f} MB)")
        if not report.quantized.within_tolerance:
            print(
                f"warning: {report.quantized_path} is OUTSIDE the float32 tolerance (max |ΔQ| "
                f"{report.quantized.max_abs_dq:.3g} > {report.quantized.atol:g}, or greedy actions that differ "
                f"beyond a near-tie: {report.quantized.n_agree}/{report.quantized.n_observations} agree); "
                f"{report.path} is the verified file"
            )
    print(f"play it: python -m sb3_dqn_atari.play {report.path}")
    return report
