"""Export a trained DQN agent to ONNX, verified against PyTorch at every export.

::

    python -m sb3_dqn_atari.export MODEL [-o exported_models/NAME.onnx] [--env ENV] [--quantize] [--overwrite]
        [--opset N]

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

``metadata_props`` (all strings; :class:`sb3_dqn_atari.runtime.AgentMetadata` parses them): ``format``,
``env_id``, ``env_kwargs`` (JSON), ``algorithm``, ``policy_class``, ``action_meanings`` (JSON),
``observation_shape`` (JSON, without the batch), ``observation_dtype``, ``frame_stack``, ``preprocessing``
(JSON :class:`~sb3_dqn_atari.runtime.PreprocessingSpec`), ``num_timesteps``, ``versions`` (JSON),
``verification`` (JSON) and, for the int8 file, ``quantization``.

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
import contextlib
import copy
import io
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from gymnasium import spaces
from tqdm.auto import tqdm

from sb3_dqn_atari.files import set_default_permissions
from sb3_dqn_atari.loading import ModelSource, UserError, load_agent, resolve_model
from sb3_dqn_atari.runtime import (
    ACTION_NAME,
    INPUT_NAME,
    METADATA_FORMAT,
    NATURE_WRAPPER,
    NO_WRAPPER,
    Q_VALUES_NAME,
    PreprocessingSpec,
)

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv

#: Default opset: widely supported (onnxruntime >= 1.14, onnxruntime-web), and native to the torch.export exporter.
DEFAULT_OPSET = 18
#: Largest tolerated |Q_onnx - Q_torch| for the float32 graph.
DEFAULT_ATOL = 1e-4
#: Observations compared at every export: from the model's env, and uniformly random.
DEFAULT_N_REAL = 256
DEFAULT_N_RANDOM = 256
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


class VerificationError(UserError):
    """The exported graph does not reproduce the PyTorch model; nothing was written (the CLI exits with 1)."""


@dataclass
class VerificationReport:
    """onnxruntime vs PyTorch on ``n_observations`` observations."""

    label: str
    n_observations: int
    n_real: int
    max_abs_dq: float
    mean_abs_dq: float
    n_agree: int
    n_near_ties: int
    atol: float
    required: bool
    passed: bool

    @property
    def agreement(self) -> float:
        return self.n_agree / max(self.n_observations, 1)

    @property
    def within_tolerance(self) -> bool:
        """max |ΔQ| ≤ atol and every action equal or a near-tie: what the float32 file must meet."""
        return self.max_abs_dq <= self.atol and self.n_agree + self.n_near_ties == self.n_observations

    def summary(self) -> str:
        ties = f", {self.n_near_ties} near-tie(s)" if self.n_near_ties else ""
        if self.required:
            verdict = "ok" if self.passed else "FAILED"
        elif self.within_tolerance:
            verdict = "within the float32 tolerance"
        else:
            verdict = "OUTSIDE the float32 tolerance (written anyway: int8 agreement is reported, not required)"
        return (
            f"{self.label}: max |ΔQ| = {self.max_abs_dq:.3g} (mean {self.mean_abs_dq:.3g}, tolerance {self.atol:g}), "
            f"action agreement {self.n_agree}/{self.n_observations} ({100 * self.agreement:.2f}%){ties} "
            f"on {self.n_real} env + {self.n_observations - self.n_real} random observations: {verdict}"
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


# ------------------------------------------------------------------------------------------------ the graph


class QValueGraph(torch.nn.Module):
    """``obs -> (q_values, greedy action)`` for DQN-family policies.

    DQN / NatureDQN: ``policy.q_net`` (SB3's ``QNetwork``: ``preprocess_obs`` (``/255`` for images),
    features extractor, linear head). QR-DQN: ``policy.quantile_net``, averaged over quantiles as
    ``QuantileNetwork._predict`` does.
    """

    def __init__(self, policy: torch.nn.Module) -> None:
        super().__init__()
        net = getattr(policy, "quantile_net", None) or getattr(policy, "q_net", None)
        if isinstance(net, torch.nn.Module):
            self.net = net
            self.quantiles = hasattr(policy, "quantile_net")
        else:
            raise UserError(f"{type(policy).__name__} has no q_net or quantile_net: not a DQN-family policy")

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(obs)
        q_values = out.mean(dim=1) if self.quantiles else out
        return q_values, q_values.argmax(dim=1)


def reference_q_values(model: BaseAlgorithm, observations: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The PyTorch model's Q-values, through the policy's own modules (float64 for comparisons)."""
    policy = model.policy
    policy.set_training_mode(False)
    quantile_net: Any = getattr(policy, "quantile_net", None)
    q_net: Any = getattr(policy, "q_net", None)
    chunks = []
    with torch.no_grad():
        for start in range(0, len(observations), batch_size):
            obs = torch.as_tensor(observations[start : start + batch_size], device=policy.device)
            q = quantile_net(obs).mean(dim=1) if quantile_net is not None else q_net(obs)
            chunks.append(q.cpu().numpy().astype(np.float64))
    return np.concatenate(chunks)


def reference_actions(model: BaseAlgorithm, observations: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's own greedy actions: ``model.predict(obs, deterministic=True)``."""
    chunks = [
        np.asarray(model.predict(observations[start : start + batch_size], deterministic=True)[0]).reshape(-1)
        for start in range(0, len(observations), batch_size)
    ]
    return np.concatenate(chunks).astype(np.int64)


@contextlib.contextmanager
def _quiet_exporter(verbose: bool) -> Iterator[None]:
    """Silence the exporter's progress prints, its torchvision notices and deprecation warnings."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def torch_to_onnx(
    model: BaseAlgorithm, opset: int = DEFAULT_OPSET, dynamo: bool = True, verbose: bool = False
) -> onnx.ModelProto:
    """Trace the Q-value graph with ``torch.onnx.export`` (``torch.export``-based by default), dynamic batch.

    The example batch has 2 observations: ``torch.export`` specialises dimensions seen as 0 or 1.
    Node-level ``pkg.torch.*`` annotations are dropped (they name Python source lines, nothing a runtime uses).
    """
    policy = model.policy if model.device.type == "cpu" else copy.deepcopy(model.policy).cpu()
    graph = QValueGraph(policy).eval()
    space = model.observation_space
    assert space.shape is not None and space.dtype is not None
    example = torch.as_tensor(np.stack([space.sample() for _ in range(2)]))
    with _quiet_exporter(verbose), torch.no_grad():
        if dynamo:
            program = torch.onnx.export(
                graph,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[Q_VALUES_NAME, ACTION_NAME],
                opset_version=opset,
                dynamo=True,
                external_data=False,
                dynamic_shapes={"obs": {0: torch.export.Dim("batch")}},
                optimize=True,
                verbose=verbose,
            )
            assert program is not None
            proto = program.model_proto
        else:
            with tempfile.TemporaryDirectory() as tmp:
                legacy_path = Path(tmp) / "legacy.onnx"
                torch.onnx.export(
                    graph,
                    (example,),
                    str(legacy_path),
                    input_names=[INPUT_NAME],
                    output_names=[Q_VALUES_NAME, ACTION_NAME],
                    opset_version=opset,
                    dynamo=False,
                    dynamic_axes={INPUT_NAME: {0: "batch"}, Q_VALUES_NAME: {0: "batch"}, ACTION_NAME: {0: "batch"}},
                )
                proto = onnx.load(str(legacy_path))
    # value_info entries of initializers restate their shapes; onnxruntime's quantizer transposes Gemm weights
    # and then trips over the stale entries, so keep value_info for computed tensors only.
    initializers = {init.name for init in proto.graph.initializer}
    computed = [v for v in proto.graph.value_info if v.name not in initializers]
    del proto.graph.value_info[:]
    proto.graph.value_info.extend(computed)
    for node in proto.graph.node:
        del node.metadata_props[:]
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        del value.metadata_props[:]
    del proto.graph.metadata_props[:]
    proto.producer_name = "sb3-dqn-atari"
    proto.producer_version = _version("sb3-dqn-atari")
    return proto


def set_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace ``proto``'s ``metadata_props`` by ``props``."""
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


# --------------------------------------------------------------------------------------------- verification


def _session(path: str | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path: str | Path, observations: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(q_values, actions)`` of the graph at ``path`` on ``observations``, in batches."""
    session = _session(path)
    qs, actions = [], []
    for start in range(0, len(observations), batch_size):
        q, a = session.run([Q_VALUES_NAME, ACTION_NAME], {INPUT_NAME: observations[start : start + batch_size]})
        qs.append(np.asarray(q))
        actions.append(np.asarray(a))
    return np.concatenate(qs), np.concatenate(actions)


def compare(
    q_onnx: np.ndarray,
    a_onnx: np.ndarray,
    q_torch: np.ndarray,
    a_torch: np.ndarray,
    n_real: int,
    atol: float = DEFAULT_ATOL,
    label: str = "float32",
    required: bool = True,
) -> VerificationReport:
    """Compare onnxruntime's outputs to PyTorch's (see the module docstring for the near-tie rule)."""
    if q_onnx.shape != q_torch.shape or a_onnx.shape != a_torch.shape:
        raise VerificationError(
            f"{label}: the graph's outputs have shapes {q_onnx.shape}/{a_onnx.shape}, "
            f"PyTorch's {q_torch.shape}/{a_torch.shape}"
        )
    dq = np.abs(q_onnx.astype(np.float64) - q_torch)
    max_dq = float(dq.max()) if dq.size else 0.0
    rows = np.arange(len(a_torch))
    agree = a_onnx == a_torch
    in_range = (a_onnx >= 0) & (a_onnx < q_torch.shape[1])
    gap = np.full(len(a_torch), np.inf)
    gap[in_range] = q_torch[rows[in_range], a_torch[in_range]] - q_torch[rows[in_range], a_onnx[in_range]]
    # |gap| <= 2 max|ΔQ| (+ float64 rounding slack): both actions are maximal within the graph's error.
    near_tie = ~agree & (np.abs(gap) <= 2 * max_dq * (1 + 1e-6) + 1e-12)
    passed = max_dq <= atol and bool(np.all(agree | near_tie))
    return VerificationReport(
        label=label,
        n_observations=len(a_torch),
        n_real=n_real,
        max_abs_dq=max_dq,
        mean_abs_dq=float(dq.mean()) if dq.size else 0.0,
        n_agree=int(agree.sum()),
        n_near_ties=int(near_tie.sum()),
        atol=atol,
        required=required,
        passed=passed if required else True,
    )


def verify_onnx(
    path: str | Path,
    model: BaseAlgorithm,
    observations: np.ndarray,
    n_real: int | None = None,
    atol: float = DEFAULT_ATOL,
    label: str = "float32",
    required: bool = True,
) -> VerificationReport:
    """``onnx.checker`` then onnxruntime vs PyTorch on ``observations``; never raises on a numeric mismatch
    (read ``report.passed``), raises :class:`VerificationError` if the file is not a valid, runnable graph."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise VerificationError(f"{label}: onnx.checker rejects the graph: {str(exc).splitlines()[0]}") from exc
    try:
        q_onnx, a_onnx = run_onnx(path, observations)
    except Exception as exc:  # onnxruntime's own exception types
        raise VerificationError(f"{label}: onnxruntime cannot run the graph: {str(exc).splitlines()[0]}") from exc
    q_torch = reference_q_values(model, observations)
    a_torch = reference_actions(model, observations)
    return compare(
        q_onnx, a_onnx, q_torch, a_torch, len(observations) if n_real is None else n_real, atol, label, required
    )


def _temp_path(path: Path) -> Path:
    """An empty file next to ``path``, with the permissions a plain ``open(path, "w")`` would give it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".onnx.tmp")
    os.close(fd)
    set_default_permissions(tmp)
    return Path(tmp)


def save_verified(
    proto: onnx.ModelProto,
    path: str | Path,
    model: BaseAlgorithm,
    observations: np.ndarray,
    n_real: int | None = None,
    atol: float = DEFAULT_ATOL,
    label: str = "float32",
    required: bool = True,
) -> VerificationReport:
    """Write ``proto`` to ``path`` only if it verifies (:func:`verify_onnx`); otherwise raise
    :class:`VerificationError` and leave nothing behind. The verification result goes into the metadata."""
    path = Path(path)
    tmp = _temp_path(path)
    try:
        onnx.save_model(proto, str(tmp))
        report = verify_onnx(tmp, model, observations, n_real, atol, label, required)
        if not report.passed:
            raise VerificationError(f"verification failed, nothing written: {report.summary()}")
        props = {p.key: p.value for p in proto.metadata_props}
        props["verification"] = json.dumps(asdict(report), sort_keys=True)
        set_metadata(proto, props)
        onnx.save_model(proto, str(tmp))
        os.replace(tmp, path)
        return report
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------------- environment and metadata


def _version(package: str) -> str:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        if package == "sb3-dqn-atari":
            from sb3_dqn_atari import __version__

            return __version__
        return "not installed"


def _wrapper_entries(env_wrapper: Any) -> list[tuple[str, dict[str, Any]]]:
    """rl-zoo3's ``env_wrapper`` hyperparameter (a name, ``{name: kwargs}``, or a list of those) as pairs."""
    if env_wrapper is None:
        return []
    items = env_wrapper if isinstance(env_wrapper, list) else [env_wrapper]
    entries: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        if isinstance(item, str):
            entries.append((item, {}))
        elif isinstance(item, dict):
            for name, kwargs in item.items():
                if kwargs is not None and not isinstance(kwargs, dict):
                    raise UserError(f"config.yml: the env_wrapper {name!r} has arguments {kwargs!r}, not a mapping")
                entries.append((str(name), dict(kwargs or {})))
        else:
            raise UserError(f"config.yml: env_wrapper holds {item!r}, not a wrapper name")
    return entries


def config_int(values: dict[str, Any], key: str, default: int, low: int = 0, high: int = 1 << 20) -> int:
    """An integer hyperparameter from a model's files (``frame_stack``, a wrapper's ``noop_max``, ...), checked
    to be one and within ``[low, high]`` (a :class:`UserError` otherwise)."""
    value = values.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise UserError(f"config.yml: {key} = {value!r} is not a whole number")
    if not low <= int(value) <= high:
        raise UserError(f"config.yml: {key} = {value!r} is outside [{low}, {high}]")
    return int(value)


def _is_atari(env_id: str) -> bool:
    import gymnasium as gym

    try:
        entry = str(gym.spec(env_id).entry_point)
    except gym.error.Error as exc:
        raise UserError(f"unknown env id {env_id!r} ({exc})") from exc
    return "ale_py" in entry


def preprocessing_for(
    model: BaseAlgorithm, env_id: str, hyperparams: dict[str, Any], choice: str = "auto"
) -> tuple[PreprocessingSpec, int, list[str]]:
    """The preprocessing spec and frame stack the model was trained with, and notes on how they were found.

    ``choice``: ``"auto"`` (rl-zoo3's ``config.yml``, else NatureAtariWrapper for Atari image models),
    ``"nature"`` or ``"none"``.
    """
    notes: list[str] = []
    space = model.observation_space
    assert isinstance(space, spaces.Box) and space.shape is not None
    image = len(space.shape) == 3 and space.dtype == np.uint8
    frame_stack = config_int(hyperparams, "frame_stack", 0, 0, 64)
    entries = _wrapper_entries(hyperparams.get("env_wrapper"))
    if choice == "none" or (choice == "auto" and not image):
        if entries:
            notes.append(f"env_wrapper {[name for name, _ in entries]} ignored: observations are used as they are")
        return PreprocessingSpec(wrapper=NO_WRAPPER), max(frame_stack, 1), notes
    if not _is_atari(env_id):
        raise UserError(f"{env_id} is not an ALE env: the Nature preprocessing applies to Atari games only")
    kwargs: dict[str, Any] = {}
    recorded = [(name, kw) for name, kw in entries if name.rsplit(".", 1)[-1] == NATURE_WRAPPER]
    others = [name for name, _ in entries if name.rsplit(".", 1)[-1] != NATURE_WRAPPER]
    if others and choice == "nature":
        notes.append(f"env_wrapper {others} recorded with the model; recording {NATURE_WRAPPER} as asked")
    elif others:
        raise UserError(
            f"the model was trained with {others}; the export records (and the runtime rebuilds) only "
            f"{NATURE_WRAPPER}'s preprocessing: pass --preprocessing nature if the observations are the same"
        )
    if recorded:
        kwargs = recorded[0][1]
    elif choice == "auto":
        notes.append(f"no env_wrapper recorded with the model: assuming {NATURE_WRAPPER} (pass --preprocessing)")
    spec = PreprocessingSpec(
        noop_max=config_int(kwargs, "noop_max", PreprocessingSpec.noop_max, 0, 10_000),
        frame_skip=config_int(kwargs, "frame_skip", PreprocessingSpec.frame_skip, 1, 100),
        frame_size=config_int(kwargs, "frame_size", PreprocessingSpec.frame_size, 1, 1024),
        train_terminal_on_life_loss=bool(kwargs.get("terminal_on_life_loss", True)),
        train_clip_reward=bool(kwargs.get("clip_reward", True)),
    )
    if frame_stack == 0:
        frame_stack = int(space.shape[0])
    return spec, frame_stack, notes


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Any:
    """``gym.make(env_id, **env_kwargs)``; whatever stops it (an unknown id, arguments the env does not take, a
    missing dependency) ends as one :class:`UserError` line."""
    import gymnasium as gym

    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except Exception as exc:  # gymnasium's errors, the env constructor's TypeError/ValueError, ALE's
        args = f" with {json.dumps(env_kwargs, default=str)[:120]}" if env_kwargs else ""
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        raise UserError(f"cannot make env {env_id!r}{args}: {text}") from exc


def make_model_env(
    env_id: str, spec: PreprocessingSpec, frame_stack: int, env_kwargs: dict[str, Any] | None = None, seed: int = 0
) -> VecEnv:
    """The model's env as SB3 trained it (evaluation flags): ``DummyVecEnv`` + ``VecFrameStack`` +
    ``VecTransposeImage``; built from the same spec the runtime reads."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

    from sb3_dqn_atari.wrappers import NatureAtariWrapper

    def make() -> gym.Env:
        env = make_env(env_id, env_kwargs)
        if spec.wrapper == NATURE_WRAPPER:
            env = NatureAtariWrapper(
                env,
                noop_max=spec.noop_max,
                frame_skip=spec.frame_skip,
                terminal_on_life_loss=False,
                clip_reward=False,
                frame_size=spec.frame_size,
            )
        return env

    venv: VecEnv = DummyVecEnv([make])
    if frame_stack > 1:
        venv = VecFrameStack(venv, frame_stack)
    if spec.wrapper == NATURE_WRAPPER:
        venv = VecTransposeImage(venv)
    venv.seed(seed)
    return venv


def check_env_matches(model: BaseAlgorithm, venv: VecEnv, env_id: str) -> None:
    """Raise :class:`UserError` if ``env_id`` gives other observations or actions than the model's."""
    m_obs, e_obs = model.observation_space, venv.observation_space
    m_act, e_act = model.action_space, venv.action_space
    if not isinstance(m_act, spaces.Discrete):
        raise UserError(f"the model acts in {m_act}; DQN export needs a discrete action space")
    if m_obs.shape != e_obs.shape or m_obs.dtype != e_obs.dtype:
        raise UserError(
            f"the model expects observations {m_obs.shape} {m_obs.dtype} but {env_id} gives "
            f"{e_obs.shape} {e_obs.dtype}: wrong --env for this model?"
        )
    if not isinstance(e_act, spaces.Discrete) or int(e_act.n) != int(m_act.n):
        raise UserError(f"the model has {m_act.n} actions but {env_id} has {e_act}: wrong --env for this model?")


#: A Box dimension whose bound is infinite or larger than this in magnitude has no meaningful range to sample
#: from (CartPole's velocities are bounded by ±3.4e38, float32's largest value): see :func:`verification_bounds`.
MEANINGFUL_BOUND = 1e3


def verification_bounds(space: spaces.Box, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per dimension of ``space``, the range the random verification observations are drawn from.

    The rule: a dimension whose bounds are finite and at most :data:`MEANINGFUL_BOUND` in magnitude (Atari
    frames' 0..255, Acrobot's angles) is drawn within its bounds. Any other dimension (infinite bounds, or
    ±3.4e38 as CartPole's velocities) is drawn within the range that dimension takes in the env's own
    observations ``real`` (the verification rollout), widened by half its width on each side (by 1 on each side
    when the env kept it constant), then cut to the bounds: Q-values of inputs near ±3.4e38 overflow float32 and
    say nothing about the graph. Without env observations such a dimension is drawn within [-1, 1].
    """
    low = np.asarray(space.low, dtype=np.float64).reshape(space.shape)
    high = np.asarray(space.high, dtype=np.float64).reshape(space.shape)
    meaningful = np.isfinite(low) & np.isfinite(high) & (np.abs(low) <= MEANINGFUL_BOUND)
    meaningful &= np.abs(high) <= MEANINGFUL_BOUND
    if len(real):
        seen = np.asarray(real, dtype=np.float64)
        seen_low, seen_high = seen.min(axis=0), seen.max(axis=0)
        margin = np.where(seen_high > seen_low, (seen_high - seen_low) / 2, 1.0)
        seen_low, seen_high = seen_low - margin, seen_high + margin
    else:
        seen_low, seen_high = np.full(space.shape, -1.0), np.full(space.shape, 1.0)
    draw_low = np.where(meaningful, low, np.clip(seen_low, low, high))
    draw_high = np.where(meaningful, high, np.clip(seen_high, low, high))
    return draw_low, draw_high


def random_observations(space: spaces.Box, real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations drawn uniformly within :func:`verification_bounds` (integers for integer dtypes)."""
    rng = np.random.default_rng(seed)
    low, high = verification_bounds(space, real)
    dtype = np.dtype(space.dtype)
    shape = (n, *space.shape)
    if dtype.kind in "iub":
        whole = rng.integers(np.ceil(low).astype(np.int64), np.floor(high).astype(np.int64), size=shape, endpoint=True)
        return whole.astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def collect_observations(
    model: BaseAlgorithm, venv: VecEnv, n_real: int, n_random: int, seed: int = 0, progress: bool = True
) -> np.ndarray:
    """``n_real`` observations from rolling ``venv`` (half greedy actions of the model, half uniformly random,
    so untrained agents do not sit in one state), then ``n_random`` random observations of the observation
    space, drawn where they mean something (:func:`verification_bounds`)."""
    rng = np.random.default_rng(seed)
    obs: Any = venv.reset()
    real = []
    n_actions = int(model.action_space.n)  # type: ignore[attr-defined]
    for _ in tqdm(range(n_real), desc="rolling the env", unit="step", disable=not progress, leave=False):
        real.append(obs[0].copy())
        if rng.random() < 0.5:
            action = np.asarray(model.predict(obs, deterministic=True)[0]).reshape(1)
        else:
            action = np.array([rng.integers(n_actions)])
        obs = venv.step(action)[0]
    space = model.observation_space
    assert isinstance(space, spaces.Box) and space.shape is not None
    real_array = np.stack(real).astype(space.dtype) if real else np.zeros((0, *space.shape), space.dtype)
    samples = random_observations(space, real_array, n_random, seed)
    if not len(real_array) + len(samples):
        raise UserError("nothing to verify: pass n_real + n_random > 0")
    return np.concatenate([real_array, samples])


def action_meanings(env_id: str, n_actions: int, env_kwargs: dict[str, Any] | None = None) -> list[str]:
    """The ALE's action names, or ``["0", "1", ...]`` for envs without them."""
    env = make_env(env_id, env_kwargs)
    try:
        getter = getattr(env.unwrapped, "get_action_meanings", None)
        names = [str(a) for a in getter()] if getter is not None else [str(i) for i in range(n_actions)]
    finally:
        env.close()
    return names


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
        "versions": json.dumps({p: _version(p) for p in VERSIONED_PACKAGES}, sort_keys=True),
    }
    if source is not None:
        props["source"] = source.zip_path.name
    return props


def default_path(env_id: str, algorithm: str) -> Path:
    """``exported_models/<env_id>-<algo>.onnx`` (``/`` in ids such as ``ALE/Breakout-v5`` becomes ``_``)."""
    stem = ALGO_STEMS.get(algorithm, algorithm.lower())
    return EXPORT_DIR / f"{env_id.replace('/', '_')}-{stem}.onnx"


def quantized_path(path: Path) -> Path:
    """``NAME.onnx`` -> ``NAME.int8.onnx``."""
    return path.with_name(f"{path.stem}.int8.onnx")


def _check_writable(path: Path) -> None:
    if path.suffix.lower() != ".onnx":
        raise UserError(f"the output {path} should end in .onnx")
    if path.is_dir():
        raise UserError(f"the output {path} is a folder; pass a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _temp_path(path).unlink()
    except OSError as exc:
        raise UserError(f"cannot write to {path.parent}: {exc.strerror or exc}") from exc


def quantize(float_path: Path, proto: onnx.ModelProto) -> onnx.ModelProto:
    """int8 dynamic quantization (``quantize_dynamic``: uint8 weights, activations quantized at run time, Conv and
    MatMul/Gemm), after onnxruntime's recommended ``quant_pre_process`` (shape inference, graph optimization).
    uint8 rather than int8 weights: onnxruntime's CPU ``ConvInteger`` is about 2x faster with them here."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=float_path.parent, prefix=".quantize.") as tmp:
        plain = Path(tmp) / "float.onnx"
        prepared = Path(tmp) / "prepared.onnx"
        out = Path(tmp) / "int8.onnx"
        onnx.save_model(proto, str(plain))
        with _quiet_exporter(False):
            quant_pre_process(str(plain), str(prepared))
            quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QUInt8)
        quantized = onnx.load(str(out))
    set_metadata(quantized, {p.key: p.value for p in proto.metadata_props})
    return quantized


# ------------------------------------------------------------------------------------------------ the export


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
    :param preprocessing: ``"auto"``, ``"nature"`` or ``"none"`` (see :func:`preprocessing_for`).
    :param quantize_int8: also write ``NAME.int8.onnx`` (agreement reported, not required).
    :raises UserError: for a wrong env, an unwritable folder, ...; :class:`VerificationError` if the graph does
        not match (nothing is written then).
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
    _check_writable(out)
    if not isinstance(model.observation_space, spaces.Box):
        raise UserError(f"the model observes {model.observation_space}; export supports Box observations")
    spec, frame_stack, notes = preprocessing_for(model, env_id, hyperparams, preprocessing)
    venv = make_model_env(env_id, spec, frame_stack, env_kwargs, seed)
    try:
        check_env_matches(model, venv, env_id)
        observations = collect_observations(model, venv, n_real, n_random, seed, progress)
    finally:
        venv.close()
    meanings = action_meanings(env_id, int(model.action_space.n), env_kwargs)  # type: ignore[attr-defined]
    try:
        proto = torch_to_onnx(model, opset, dynamo)
    except Exception as exc:  # the exporter's many exception types: one line, not a trace
        raise UserError(
            f"torch.onnx.export failed (opset {opset}): {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    set_metadata(proto, build_metadata(model, env_id, spec, frame_stack, meanings, env_kwargs, source))
    report = save_verified(proto, out, model, observations, n_real, atol, "float32", required=True)
    n_params = sum(p.numel() for p in QValueGraph(model.policy).parameters())
    result = ExportReport(
        path=out,
        env_id=env_id,
        algorithm=algorithm,
        opset=opset,
        n_parameters=n_params,
        size_bytes=out.stat().st_size,
        metadata={p.key: p.value for p in onnx.load(str(out)).metadata_props},
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
                f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
        props = {p.key: p.value for p in q_proto.metadata_props}
        props["quantization"] = "int8 dynamic (onnxruntime.quantization.quantize_dynamic, QUInt8 weights)"
        set_metadata(q_proto, props)
        result.quantized = save_verified(q_proto, q_out, model, observations, n_real, atol, "int8", required=False)
        result.quantized_path = q_out
        result.quantized_size_bytes = q_out.stat().st_size
    return result


# ----------------------------------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_dqn_atari.export",
        description="Export a DQN agent (SB3 zip or rl-zoo3 run folder) to a verified ONNX file with metadata.",
    )
    parser.add_argument("model", help="an SB3 .zip (NatureDQN, DQN, QRDQN) or an rl-zoo3 run folder")
    parser.add_argument("-o", "--output", type=Path, help="output .onnx (default exported_models/<env>-<algo>.onnx)")
    parser.add_argument("--env", help="env id (default: the one rl-zoo3 recorded; required for a bare zip)")
    parser.add_argument("--quantize", action="store_true", help="also write NAME.int8.onnx (int8 dynamic)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing output files (default: refuse, nothing written)"
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument(
        "--preprocessing", choices=("auto", "nature", "none"), default="auto", help="recorded preprocessing"
    )
    parser.add_argument("--n-real", type=int, default=DEFAULT_N_REAL, help="env observations compared")
    parser.add_argument("--n-random", type=int, default=DEFAULT_N_RANDOM, help="random observations compared")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help="largest tolerated |ΔQ|")
    parser.add_argument("--seed", type=int, default=0, help="seed of the verification rollout")
    parser.add_argument("--legacy-exporter", action="store_true", help="TorchScript-based torch.onnx exporter")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="load the zip with SB3's unpickling loader (trusted files)"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> ExportReport:
    # the folder's files checked, and the env known, before the (slow) load
    if resolve_model(args.model, args.env, args.trust_remote_code).env_id is None:
        raise UserError("pass --env ENV_ID: a bare SB3 zip does not record its environment")
    model, source = load_agent(args.model, device="cpu", env_id=args.env, trust_remote_code=args.trust_remote_code)
    output = args.output if args.output is not None else default_path(str(source.env_id), type(model).__name__)
    for target in (output, quantized_path(output)) if args.quantize else (output,):
        if target.exists() and not args.overwrite:  # an earlier export is never replaced without a word
            raise UserError(f"{target} exists; pass -o NEW.onnx to keep it, or --overwrite to replace it")
    report = export_onnx(
        model,
        output,
        source.env_id,
        hyperparams=source.hyperparams,
        preprocessing=args.preprocessing,
        opset=args.opset,
        quantize_int8=args.quantize,
        n_real=args.n_real,
        n_random=args.n_random,
        atol=args.atol,
        seed=args.seed,
        dynamo=not args.legacy_exporter,
        source=source,
        progress=not args.quiet,
    )
    for note in report.notes:
        print(f"note: {note}")
    print(f"{report.verification.summary()}")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except VerificationError as exc:  # a graph that does not match PyTorch: not the user's doing
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
