"""Verification of an exported graph against the PyTorch model: onnxruntime on observations from the model's env
and random ones drawn where they mean something; the file is written only if it agrees (see
:mod:`sb3_dqn_atari.onnx.export`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import torch
from gymnasium import spaces
from tqdm.auto import tqdm

from sb3_dqn_atari.atari.envs import make_atari_env, make_env
from sb3_dqn_atari.common.files import atomic_file
from sb3_dqn_atari.loading import UserError
from sb3_dqn_atari.onnx.graph import QValueGraph, add_metadata
from sb3_dqn_atari.onnx.runtime import (
    ACTION_NAME,
    INPUT_NAME,
    NO_WRAPPER,
    Q_VALUES_NAME,
    PreprocessingSpec,
    first_line,
    inference_session,
)

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv


#: Largest tolerated |Q_onnx - Q_torch| for the float32 graph.
DEFAULT_ATOL = 1e-4
#: Observations compared at every export: from the model's env, and uniformly random.
DEFAULT_N_REAL = 256
DEFAULT_N_RANDOM = 256
#: Observations per onnxruntime / PyTorch call.
BATCH_SIZE = 256


class VerificationError(UserError):
    """The exported graph does not reproduce the PyTorch model; nothing was written (the CLI exits with 1)."""

    exit_status = 1


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


@dataclass(frozen=True)
class Check:
    """How a graph is judged: ``n_real`` of the observations come from the env (None: all of them), ``atol`` is the
    largest tolerated |ΔQ|, ``label`` names the graph in the report, ``required``: a mismatch fails (int8: not)."""

    n_real: int | None = None
    atol: float = DEFAULT_ATOL
    label: str = "float32"
    required: bool = True


def _in_batches(function: Callable[[np.ndarray], Any], observations: np.ndarray) -> list[Any]:
    return [function(observations[start : start + BATCH_SIZE]) for start in range(0, len(observations), BATCH_SIZE)]


def reference_outputs(model: BaseAlgorithm, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PyTorch model's Q-values, through the policy's own modules as exported (:class:`QValueGraph`; float64 for
    comparisons), and its own greedy actions: ``model.predict(obs, deterministic=True)``."""
    model.policy.set_training_mode(False)
    graph = QValueGraph(model.policy)

    def q_values(batch: np.ndarray) -> np.ndarray:
        return graph(torch.as_tensor(batch, device=model.policy.device))[0].cpu().numpy()

    with torch.no_grad():
        q = np.concatenate(_in_batches(q_values, observations)).astype(np.float64)
    actions = _in_batches(lambda batch: np.asarray(model.predict(batch, deterministic=True)[0]), observations)
    return q, np.concatenate([a.reshape(-1) for a in actions]).astype(np.int64)


def run_onnx(path: str | Path, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(q_values, actions)`` of the graph at ``path`` on ``observations``, in batches."""
    session = inference_session(str(path))
    outputs = _in_batches(lambda batch: session.run([Q_VALUES_NAME, ACTION_NAME], {INPUT_NAME: batch}), observations)
    return np.concatenate([q for q, _ in outputs]), np.concatenate([a for _, a in outputs])


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
    path: str | Path, model: BaseAlgorithm, observations: np.ndarray, check: Check | None = None
) -> VerificationReport:
    """``onnx.checker`` then onnxruntime vs PyTorch on ``observations``; never raises on a numeric mismatch
    (read ``report.passed``), raises :class:`VerificationError` if the file is not a valid, runnable graph."""
    check = check or Check()
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise VerificationError(f"{check.label}: onnx.checker rejects the graph: {first_line(exc)}") from exc
    try:
        q_onnx, a_onnx = run_onnx(path, observations)
    except Exception as exc:  # onnxruntime's own exception types
        raise VerificationError(f"{check.label}: onnxruntime cannot run the graph: {first_line(exc)}") from exc
    q_torch, a_torch = reference_outputs(model, observations)
    n_real = len(observations) if check.n_real is None else check.n_real
    return compare(q_onnx, a_onnx, q_torch, a_torch, n_real, check.atol, check.label, check.required)


def save_verified(
    proto: onnx.ModelProto, path: str | Path, model: BaseAlgorithm, observations: np.ndarray, check: Check | None = None
) -> VerificationReport:
    """Write ``proto`` to ``path`` only if it verifies (:func:`verify_onnx`); otherwise raise
    :class:`VerificationError` and leave nothing behind. The verification result goes into the metadata."""
    with atomic_file(path, ".onnx.tmp") as tmp:
        onnx.save_model(proto, str(tmp))
        report = verify_onnx(tmp, model, observations, check)
        if not report.passed:
            raise VerificationError(f"verification failed, nothing written: {report.summary()}")
        add_metadata(proto, {"verification": json.dumps(asdict(report), sort_keys=True)})
        onnx.save_model(proto, str(tmp))
    return report


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


def make_model_env(
    env_id: str, spec: PreprocessingSpec, frame_stack: int, env_kwargs: dict[str, Any] | None = None, seed: int = 0
) -> VecEnv:
    """The model's env as it plays (the family's training wrapper with evaluation flags, the stacked frames of
    :func:`sb3_dqn_atari.atari.envs.make_atari_env`; other envs: SB3's ``VecFrameStack``), as a seeded VecEnv;
    built from the same spec the runtime reads."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    if spec.wrapper == NO_WRAPPER:
        venv: VecEnv = DummyVecEnv([lambda: make_env(env_id, env_kwargs)])
        venv = VecFrameStack(venv, frame_stack) if frame_stack > 1 else venv
    else:
        venv = DummyVecEnv([lambda: make_atari_env(env_id, spec, frame_stack, env_kwargs=env_kwargs)])
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
