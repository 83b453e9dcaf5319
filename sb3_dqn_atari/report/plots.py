"""The report's figures, drawn by ``rliable.plot_utils`` (Agarwal et al. 2021's own plotting code) with
matplotlib's Agg backend; every score axis is human-normalised in percent (100 % = the paper's human tester)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sb3_dqn_atari.report.aggregate import METRIC_NAMES, Interval

DPI = 100
HNS_LABEL = "Human-normalised score (%)"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes() -> tuple[Any, Any]:
    """A figure of one 6.4 x 4 inch panel (matplotlib's default width) and its axes."""
    return _pyplot().subplots(figsize=(6.4, 4.0))


def _estimates(label: str, intervals: list[Interval]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's point estimates and intervals (rows: low, high) of one algorithm, ``label``."""
    points = np.array([i.estimate for i in intervals])
    return {label: points}, {label: np.array([[i.low for i in intervals], [i.high for i in intervals]])}


#: rliable's label sizes for the one-panel figures
_LABELS = {"labelsize": "medium", "ticklabelsize": "medium"}


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)


def interval_estimates(path: Path, intervals: dict[str, Interval], label: str) -> None:
    """One panel per aggregate (median, IQM, mean, optimality gap): point estimate and 95 % CI."""
    from rliable import plot_utils

    _pyplot()
    fig, _ = plot_utils.plot_interval_estimates(
        *_estimates(label, [intervals[name] for name in METRIC_NAMES]),
        metric_names=list(METRIC_NAMES.values()),
        algorithms=[label],
        xlabel=HNS_LABEL,
        row_height=1.0,  # rliable's 0.37 per algorithm leaves no room under one row for the axis label
        xlabel_y_coordinate=-0.5,
    )
    _save(fig, path)


def performance_profile(path: Path, taus: np.ndarray, profile: np.ndarray, ci: np.ndarray, label: str) -> None:
    """Fraction of runs × games scoring above τ, with its 95 % CI band."""
    from rliable import plot_utils

    fig, ax = _axes()
    plot_utils.plot_performance_profiles(
        {label: profile},
        taus,
        performance_profile_cis={label: ci},
        ax=ax,
        xlabel=r"Human-normalised score $\tau$ (%)",
        ylabel=r"Fraction of runs with score $> \tau$",
        **_LABELS,
    )
    ax.legend(loc="upper right")
    _save(fig, path)


def sample_efficiency(path: Path, steps: np.ndarray, curve: list[Interval], label: str) -> None:
    """IQM over runs × games at each evaluation step, with its 95 % CI band, against agent steps."""
    from rliable import plot_utils

    fig, ax = _axes()
    scale, unit = (1e6, "millions") if steps[-1] >= 1e6 else (1e3, "thousands")
    plot_utils.plot_sample_efficiency_curve(
        steps / scale,
        *_estimates(label, curve),
        algorithms=[label],
        ax=ax,
        xlabel=f"Agent steps (in {unit}; x4 emulator frames)",
        ylabel=f"IQM {HNS_LABEL}",
        **_LABELS,
    )
    ax.legend(loc="upper left")
    _save(fig, path)
