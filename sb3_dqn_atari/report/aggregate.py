"""The numbers of the report: a per-game table over seeds, and aggregate human-normalised scores with 95 %
stratified-bootstrap confidence intervals (Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice", NeurIPS; computed by their library, ``rliable``).

Human-normalised score of a run on a game: ``(score − random) / (human − random)`` with the paper's random and
human scores (Mnih et al. 2015, Extended Data Table 2; 1.0 = human, shown as 100 %). Over a matrix of runs × games:

* **IQM**: the mean of the middle 50 % of all run × game scores (``scipy.stats.trim_mean(·, 0.25)``);
* **median** and **mean**: of the per-game means over runs;
* **optimality gap**: how far below human the scores fall on average: ``1 − mean(min(score, 1))``.

The intervals resample runs within each game (stratified bootstrap, ``rliable.library.get_interval_estimates``,
percentile method). rliable draws the resamples from numpy's global RNG; :func:`seeded_numpy` seeds it for the
call and puts the previous state back, so a report is reproducible and the caller's RNG untouched.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from sb3_dqn_atari.evaluation.report import game_or_none
from sb3_dqn_atari.evaluation.scores import PaperScores, paper_scores
from sb3_dqn_atari.report.references import RL_ZOO_DQN, Reference
from sb3_dqn_atari.report.runs import Run

#: the aggregate metrics, in the order rliable's paper shows them
METRIC_NAMES = {"median": "Median", "iqm": "IQM", "mean": "Mean", "optimality_gap": "Optimality gap"}


@dataclass
class GameRow:
    """One game of the table: its runs (sorted by seed), their final scores' mean and spread, the references."""

    env_id: str
    runs: list[Run] = field(default_factory=list)

    @property
    def game(self) -> str | None:
        return game_or_none(self.env_id)

    @property
    def paper(self) -> PaperScores | None:
        return paper_scores(self.env_id)

    @property
    def rl_zoo(self) -> Reference | None:
        return RL_ZOO_DQN.get(self.env_id)

    @property
    def scores(self) -> np.ndarray:
        return np.array([r.final_score for r in self.runs], dtype=np.float64)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (``ddof=1``); 0 for a single run."""
        return float(np.std(self.scores, ddof=1)) if len(self.runs) > 1 else 0.0

    @property
    def human_normalized(self) -> float | None:
        """Human-normalised score of the mean, in percent (None outside the paper's table)."""
        return None if self.paper is None else self.paper.normalize(self.mean)


def game_rows(runs: list[Run]) -> list[GameRow]:
    """The runs grouped by env id (games in name order, runs in seed order)."""
    rows: dict[str, GameRow] = {}
    for run in runs:
        rows.setdefault(run.env_id, GameRow(run.env_id)).runs.append(run)
    for row in rows.values():
        row.runs.sort(key=lambda r: (r.seed is None, r.seed if r.seed is not None else 0, str(r.path)))
    return [rows[k] for k in sorted(rows)]


def normalized_matrix(rows: list[GameRow]) -> tuple[np.ndarray, list[GameRow], list[str]]:
    """The ``runs × games`` matrix of human-normalised final scores (fractions, 1.0 = human) for rliable, the rows
    it covers, and notes on what it leaves out (games outside the paper's table; runs beyond the number every
    game has, as rliable needs the same number of runs per game)."""
    notes = [f"{r.env_id}: no random/human scores in the paper's table, left out" for r in rows if r.paper is None]
    covered = [r for r in rows if r.paper is not None]
    if not covered:
        return np.zeros((0, 0)), [], notes
    k = min(len(r.runs) for r in covered)
    for r in covered:
        if len(r.runs) > k:
            notes.append(f"{r.env_id}: {len(r.runs) - k} run(s) beyond the first {k} (by seed) left out")
    matrix = np.array([[r.paper.normalize(run.final_score) / 100.0 for run in r.runs[:k]] for r in covered])  # type: ignore[union-attr]
    return matrix.T, covered, notes


@contextlib.contextmanager
def seeded_numpy(seed: int) -> Iterator[None]:
    """numpy's global RNG seeded with ``seed`` inside the block, its previous state restored after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval (same unit)."""

    estimate: float
    low: float
    high: float

    def scaled(self, factor: float) -> Interval:
        return Interval(self.estimate * factor, self.low * factor, self.high * factor)


def _bootstrap(
    scores: np.ndarray, statistics: Callable[[np.ndarray], np.ndarray], reps: int, seed: int, confidence: float = 0.95
) -> list[Interval]:
    """Each value of ``statistics(scores)`` (``scores``: runs first) and its stratified-bootstrap CI (rliable)."""
    from rliable import library

    with seeded_numpy(seed):
        points, intervals = library.get_interval_estimates(
            {"runs": scores}, statistics, reps=reps, confidence_interval_size=confidence
        )
    low, high = intervals["runs"]
    return [Interval(float(p), float(lo), float(hi)) for p, lo, hi in zip(points["runs"], low, high, strict=True)]


def aggregate_intervals(matrix: np.ndarray, reps: int, seed: int, confidence: float = 0.95) -> dict[str, Interval]:
    """The four aggregates of a ``runs × games`` matrix with their stratified-bootstrap CIs, in the matrix's unit
    (rliable's ``aggregate_<name>`` for each name of :data:`METRIC_NAMES`)."""
    from rliable import metrics

    functions = [getattr(metrics, f"aggregate_{name}") for name in METRIC_NAMES]
    intervals = _bootstrap(matrix, lambda scores: np.array([f(scores) for f in functions]), reps, seed, confidence)
    return dict(zip(METRIC_NAMES, intervals, strict=True))


def performance_profile(matrix: np.ndarray, taus: np.ndarray, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The fraction of runs × games scoring above each ``tau`` (rliable's score distribution) and its 95 % CI
    (rows: low, high)."""
    from rliable import library

    with seeded_numpy(seed):
        profiles, cis = library.create_performance_profile({"runs": matrix}, taus, reps=reps)
    return np.asarray(profiles["runs"]), np.asarray(cis["runs"])


#: most points of the learning curve (each one is bootstrapped)
CURVE_POINTS = 50


def learning_curve(rows: list[GameRow], k: int, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The agent steps at which every run of ``rows`` (their first ``k``) was evaluated (at most ``points`` of
    them, evenly spread, the last included), and the ``runs × games × steps`` matrix of human-normalised scores
    there (no steps if the runs share none)."""
    runs = [run for row in rows for run in row.runs[:k]]
    steps = functools.reduce(np.intersect1d, [run.timesteps for run in runs], runs[0].timesteps)  # sorted, unique
    if len(steps) > points:
        steps = steps[np.unique(np.round(np.linspace(0, len(steps) - 1, points)).astype(int))]
    cube = np.zeros((k, len(rows), len(steps)))
    for g, row in enumerate(rows):
        assert row.paper is not None
        for i, run in enumerate(row.runs[:k]):
            index = {int(t): j for j, t in enumerate(run.timesteps)}
            cube[i, g] = [row.paper.normalize(run.scores[index[int(t)]]) / 100.0 for t in steps]
    return steps, cube


def iqm_curve(cube: np.ndarray, reps: int, seed: int) -> list[Interval]:
    """IQM over runs × games at each step of a :func:`learning_curve` cube, with stratified-bootstrap CIs."""
    from rliable import metrics

    def per_step(scores: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(scores[..., t]) for t in range(scores.shape[-1])])

    return _bootstrap(cube, per_step, reps, seed)
