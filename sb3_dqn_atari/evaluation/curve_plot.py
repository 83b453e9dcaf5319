"""The learning curves of :mod:`sb3_dqn_atari.evaluation.curves` drawn to PNG (training scores above, evaluations
below, one column per game, the paper's scores as lines), and ``python -m sb3_dqn_atari.plot``'s body."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sb3_dqn_atari.atari.wrappers import ACTION_REPEAT
from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.files import atomic_file, check_output_file
from sb3_dqn_atari.evaluation.curves import (
    NATURE_EVAL_FILE,
    NATURE_EVAL_FREQ_FILE,
    ZOO_EVAL_FILE,
    Curve,
    RunData,
    aggregate,
    find_runs,
    group_runs,
    load_run,
    smooth,
)
from sb3_dqn_atari.evaluation.scores import PaperScores, paper_scores

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _millions(value: float, _pos: object = None) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _band(ax: Axes, curve: Curve, color: str, alpha: float, label: str | None = None) -> None:
    if curve.lo is not None and curve.hi is not None:
        ax.fill_between(curve.x, curve.lo, curve.hi, color=color, alpha=alpha, label=label)


EVAL_LABELS = {
    NATURE_EVAL_FILE: "evaluation, paper protocol (evaluations_nature.npz)",
    NATURE_EVAL_FREQ_FILE: "evaluation, paper protocol (evaluations_nature_eval_freq.npz)",
    ZOO_EVAL_FILE: "rl-zoo3 EvalCallback (evaluations.npz, not the paper's protocol)",
}


def plot_runs(
    runs: Sequence[RunData],
    output: str | Path,
    window: int = 100,
    band: str = "minmax",
    dpi: int = 100,
    compare: Sequence[RunData] = (),
) -> tuple[int, int]:
    """Draw the runs (grouped by game: training scores above, evaluations below) and save a PNG atomically;
    returns its ``(width, height)`` in pixels. ``compare``: other runs of the same games (e.g. the RL Zoo's
    published ones), each drawn as its own labelled line, never pooled with ``runs``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(runs)
    others = group_runs(compare)
    ncols = len(groups)
    fig, axes = plt.subplots(2, ncols, figsize=(6.4 * ncols, 8.0), dpi=dpi, squeeze=False)
    band_name = "min-max" if band == "minmax" else "± std"
    for col, (env_id, members) in enumerate(groups.items()):
        ax_train, ax_eval = axes[0, col], axes[1, col]
        _draw_training(ax_train, members, window, band, band_name)
        ax_train.set_title(
            f"{env_id}: training score (raw, full games){'' if len(members) == 1 else f', {len(members)} runs'}"
        )
        _draw_evaluations(ax_eval, members, band, band_name)
        for k, other in enumerate(others.get(env_id, [])):
            _draw_other(ax_train, ax_eval, other, window, color=f"C{k + 4}")
        _paper_lines(ax_eval, paper_scores(env_id))
        ax_eval.set_title(f"{env_id}: evaluation score")
        for ax in (ax_train, ax_eval):
            _agent_step_axes(ax)
    fig.tight_layout()
    try:
        with atomic_file(output, ".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        width, height = (round(float(v)) for v in fig.get_size_inches() * dpi)
        plt.close(fig)
    return width, height


def _draw_training(ax: Axes, members: Sequence[RunData], window: int, band: str, band_name: str) -> None:
    """One run's games as dots with their ``window``-game mean; several runs' means aggregated with a band."""
    trains = [r.train_raw for r in members if r.train_raw is not None]
    if len(trains) == 1:
        raw = trains[0]
        ax.plot(raw.x, raw.y, ".", ms=2, alpha=0.25, color="C0", label="training game")
        ax.plot(raw.x, smooth(raw.y, window), color="C0", label=f"mean of last {window} games")
        return
    if not trains:
        ax.text(0.5, 0.5, "no Monitor files", ha="center", va="center", transform=ax.transAxes)
        return
    smoothed = [Curve(c.x, smooth(c.y, window)) for c in trains]
    agg = aggregate(smoothed, band)
    if agg is None:
        for i, c in enumerate(smoothed):
            ax.plot(c.x, c.y, color=f"C{i}", label=f"run {i + 1}")
    else:
        ax.plot(agg.x, agg.y, color="C0", label=f"mean of {len(trains)} runs ({window}-game average)")
        _band(ax, agg, "C0", 0.25, band_name)


def _draw_evaluations(ax: Axes, members: Sequence[RunData], band: str, band_name: str) -> None:
    """Each evaluation file's curve (one run: its ± std band; several: their mean and ``band``)."""
    drew = False
    for k, name in enumerate(EVAL_LABELS):
        curves = [r.evals[name] for r in members if name in r.evals]
        curve, label = (
            (curves[0], EVAL_LABELS[name])
            if len(curves) == 1
            else (
                aggregate(curves, band) if curves else None,
                f"{EVAL_LABELS[name]}, mean of {len(curves)} runs, band {band_name}",
            )
        )
        if curve is not None:
            color = ("C1", "C2", "C9")[k]  # C3: the human line
            ax.plot(curve.x, curve.y, "o-", ms=3, color=color, label=label)
            _band(ax, curve, color, 0.2)
            drew = True
    if not drew:
        ax.text(0.5, 0.5, "no evaluation files", ha="center", va="center", transform=ax.transAxes)


def run_name(run: RunData) -> str:
    """The run folder's name, or its parent's when the folder is named after the env (``rl-zoo-dqn/PongNo…``)."""
    return run.path.name if run.path.name != run.env_id else run.path.parent.name


def _paper_lines(ax: Axes, row: PaperScores | None) -> None:
    """The paper's DQN, human and random scores as horizontal lines, in the legend with their values; drawn
    within the curves' range (a line far above an early curve would flatten it), the whole line set otherwise.
    A line outside that range says so in the legend ("above"/"below"), so the legend never names a line that
    cannot be seen without saying why."""
    if row is None:
        return
    limits = ax.get_ylim() if ax.lines else None

    def label(name: str, value: float) -> str:
        if limits is not None and value > limits[1]:
            return f"{name} {value:g} (above)"
        if limits is not None and value < limits[0]:
            return f"{name} {value:g} (below)"
        return f"{name} {value:g}"

    ax.axhline(row.dqn, color="k", ls="--", lw=1, label=label("Nature DQN", row.dqn))
    ax.axhline(row.human, color="C3", ls=":", lw=1, label=label("human", row.human))
    ax.axhline(row.random, color="0.5", ls=":", lw=1, label=label("random", row.random))
    if limits is not None:
        ax.set_ylim(*limits)


def _draw_other(ax_train: Axes, ax_eval: Axes, run: RunData, window: int, color: str) -> None:
    """A run of ``--compare``: its training games' ``window``-game mean and its evaluation curves, labelled with
    its folder's name."""
    name = run_name(run)
    if run.train_raw is not None:
        ax_train.plot(
            run.train_raw.x, smooth(run.train_raw.y, window), color=color, label=f"{name}: mean of last {window}"
        )
    for ls, (file, curve) in zip(("--", ":", "-."), sorted(run.evals.items()), strict=False):
        ax_eval.plot(curve.x, curve.y, ls, marker=".", ms=3, color=color, label=f"{name}: {EVAL_LABELS[file]}")


def steps_reached(runs: Sequence[RunData]) -> float:
    """The furthest agent step any of the runs' curves reaches (0 without curves)."""
    curves = [c for r in runs for c in ([r.train_raw] if r.train_raw is not None else []) + list(r.evals.values())]
    return max((float(c.x[-1]) for c in curves if len(c.x)), default=0.0)


def up_to(run: RunData, max_steps: float) -> RunData:
    """The run with every curve cut at ``max_steps`` agent steps (for comparisons at equal agent steps)."""

    def cut(curve: Curve) -> Curve:
        keep = curve.x <= max_steps
        return Curve(*(None if v is None else v[keep] for v in (curve.x, curve.y, curve.lo, curve.hi)))  # type: ignore[arg-type]

    evals = {name: cut(c) for name, c in run.evals.items() if (c.x <= max_steps).any()}
    train = cut(run.train_raw) if run.train_raw is not None and (run.train_raw.x <= max_steps).any() else None
    return RunData(run.path, run.env_id, train, evals)


def comparison_table(runs: Sequence[RunData], compare: Sequence[RunData], every: float) -> list[str]:
    """A Markdown table of each evaluation file's score at every ``every`` agent steps (the evaluation nearest to
    each step, and the step it was made at), for the runs and the ``--compare`` runs side by side."""
    columns = [(r, name) for r in (*runs, *compare) for name in EVAL_LABELS if name in r.evals]
    if not columns:
        return ["no evaluation within the agent steps the runs reach: no table"]
    lines = ["| env | agent steps | " + " | ".join(f"{run_name(r)}: {n}" for r, n in columns) + " |"]
    lines.append("|---|---|" + "---|" * len(columns))
    for step in np.arange(every, steps_reached(runs) + 1, every):
        cells = []
        for run, name in columns:
            curve = run.evals[name]
            i = int(np.abs(curve.x - step).argmin())
            sd = f" ± {(curve.hi[i] - curve.y[i]):.1f}" if curve.hi is not None else ""
            cells.append(f"{curve.y[i]:.1f}{sd} (at {curve.x[i]:,.0f})")
        lines.append(f"| {runs[0].env_id} | {step:,.0f} | " + " | ".join(cells) + " |")
    return lines


def _to_frames(steps: Any) -> Any:
    return steps * ACTION_REPEAT


def _to_steps(frames: Any) -> Any:
    return frames / ACTION_REPEAT


def _agent_step_axes(ax: Axes) -> None:
    """Agent steps below, emulator frames (× the action repeat) above, the legend if anything is labelled."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xlabel("agent steps")
    ax.set_ylabel("score")
    ax.xaxis.set_major_formatter(FuncFormatter(_millions))
    ax.grid(alpha=0.3)
    top = ax.secondary_xaxis("top", functions=(_to_frames, _to_steps))
    top.set_xlabel(f"emulator frames (× {ACTION_REPEAT})")
    top.xaxis.set_major_formatter(FuncFormatter(_millions))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def plot_command(args: argparse.Namespace) -> int:
    """``python -m sb3_dqn_atari.plot``: check the output, read the runs, draw them."""
    if args.window < 1:
        raise UserError("--window must be at least 1")
    out: Path = args.output
    check_output_file(out, "the plot", ".png")
    if (args.max_steps is not None and args.max_steps <= 0) or (args.table_every or 0) < 0:
        raise UserError("--max-steps and --table-every must be positive")
    runs = [load_run(p, args.trust_remote_code) for p in find_runs(args.logdirs)]
    if not any(r.train_raw is not None or r.evals for r in runs):
        raise UserError("the run folders hold no finished episode yet (empty Monitor and evaluation files)")
    compare = [load_run(p, args.trust_remote_code) for p in find_runs(args.compare)]
    max_steps = args.max_steps or (steps_reached(runs) if compare else None)
    if max_steps is not None:
        runs, compare = [up_to(r, max_steps) for r in runs], [up_to(r, max_steps) for r in compare]
    width, height = plot_runs(runs, out, window=args.window, band=args.band, dpi=args.dpi, compare=compare)
    if args.table_every:
        print("\n".join(comparison_table(runs, compare, args.table_every)))
    print(
        f"wrote {out} ({width}x{height}) from {len(runs)} run(s)"
        + (f", up to {max_steps:,.0f} agent steps" if max_steps else "")
    )
    return 0
