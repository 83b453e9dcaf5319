"""``python -m sb3_dqn_atari.report``: from run folders to a report folder (``report.json``, ``report.md``, PNGs).

The folder is written next to its destination and moved into place when complete (an existing report folder is
replaced the same way); nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.files import move_into_place, staging_dir
from sb3_dqn_atari.report import aggregate as agg
from sb3_dqn_atari.report import plots
from sb3_dqn_atari.report.runs import SOURCES, Run, find_runs

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
FIGURES = {
    "aggregates": "aggregates.png",
    "sample_efficiency": "sample_efficiency.png",
    "performance_profile": "performance_profile.png",
}
FORMAT = 1


@dataclass
class Settings:
    """How the intervals are computed: ``reps`` bootstrap resamples for the aggregates (rliable defaults to 50,000),
    ``curve_reps`` for the performance profile and the learning curve (its profile default), one ``seed``."""

    reps: int = 10_000
    curve_reps: int = 2_000
    seed: int = 0
    confidence: float = 0.95
    label: str = "NatureDQN"


@contextlib.contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` that replaces ``out`` when the block completes (removed if it fails)."""
    out = out.resolve()
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / REPORT_JSON).is_file())):
        raise UserError(f"{out} exists and is not a report folder; pass another -o")
    with staging_dir(out) as stage:
        yield stage
        move_into_place(stage, out, force=True)


def _run_json(run: Run) -> dict[str, Any]:
    return {
        "path": str(run.path),
        "env_id": run.env_id,
        "seed": run.seed,
        "source": run.source,
        "score": run.final_score,
        "step": run.final_step,
        "episodes": run.episodes,
        "curve": {"timesteps": run.timesteps.tolist(), "scores": run.scores.tolist()},
    }


def _game_json(row: agg.GameRow) -> dict[str, Any]:
    paper, zoo = row.paper, row.rl_zoo
    return {
        "env_id": row.env_id,
        "game": row.game,
        "seeds": [r.seed for r in row.runs],
        "runs": len(row.runs),
        "steps": sorted({r.final_step for r in row.runs}),
        "sources": sorted({r.source for r in row.runs}),
        "mean": row.mean,
        "std": row.std,
        "scores": row.scores.tolist(),
        "human_normalized": row.human_normalized,  # finite: every score was checked finite when read
        "paper": None
        if paper is None
        else {"random": paper.random, "human": paper.human, "dqn": paper.dqn, "dqn_std": paper.dqn_std},
        "rl_zoo": None if zoo is None else asdict(zoo),
    }


def _statistics(
    rows: list[agg.GameRow], settings: Settings, stage: Path, say: Callable[[str], None]
) -> tuple[dict[str, Any], list[str]]:
    """Aggregates, profile and learning curve of the rows in the paper's table; the figures go to ``stage``."""
    matrix, covered, notes = agg.normalized_matrix(rows)
    result: dict[str, Any] = {"aggregates": None, "games_in_aggregates": [r.env_id for r in covered], "curve": None}
    if matrix.size == 0:
        notes.append("no game with the paper's random/human scores: no aggregates")
        return result, notes
    say(f"Aggregates over {matrix.shape[1]} game(s) x {matrix.shape[0]} run(s): {settings.reps:,} bootstrap resamples")
    intervals = {k: v.scaled(100.0) for k, v in agg.aggregate_intervals(matrix, settings.reps, settings.seed).items()}
    result["aggregates"] = {k: asdict(v) for k, v in intervals.items()}
    result["runs_per_game"] = int(matrix.shape[0])
    plots.interval_estimates(stage / FIGURES["aggregates"], intervals, settings.label)
    taus = np.linspace(0.0, max(1.0, float(matrix.max()) * 1.05), 101)
    profile, ci = agg.performance_profile(matrix, taus, settings.curve_reps, settings.seed)
    plots.performance_profile(stage / FIGURES["performance_profile"], taus * 100.0, profile, ci, settings.label)
    result["performance_profile"] = {"tau": (taus * 100.0).tolist(), "fraction": profile.tolist()}
    steps, cube = agg.learning_curve(covered, matrix.shape[0])
    if len(steps) >= 2:
        say(f"IQM at {len(steps)} evaluation steps: {settings.curve_reps:,} bootstrap resamples")
        curve = [c.scaled(100.0) for c in agg.iqm_curve(cube, settings.curve_reps, settings.seed)]
        plots.sample_efficiency(stage / FIGURES["sample_efficiency"], steps, curve, settings.label)
        result["curve"] = {"timesteps": steps.tolist(), "iqm": [asdict(c) for c in curve]}
    else:
        notes.append("the runs share fewer than 2 evaluation steps: no sample-efficiency curve")
    return result, notes


def build_report(
    paths: list[str | Path], out: str | Path, settings: Settings | None = None, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Build the report of the runs under ``paths`` into the folder ``out``; returns the ``report.json`` content."""
    settings = settings or Settings()
    if settings.reps < 1 or settings.curve_reps < 1:
        raise UserError("--reps and --curve-reps must be at least 1")
    runs, skipped = find_runs(paths)
    if not runs:
        reasons = "; ".join(f"{s.path}: {s.why}" for s in skipped[:3])
        raise UserError(
            f"no finished run with evaluations under {', '.join(map(str, paths))}"
            + (f" ({reasons})" if reasons else "")
        )
    rows = agg.game_rows(runs)
    say(f"{len(runs)} run(s) of {len(rows)} game(s); {len(skipped)} folder(s) skipped")
    with staged_folder(Path(out)) as stage:
        statistics, notes = _statistics(rows, settings, stage, say)
        if len({r.source for r in runs}) > 1:
            notes.append("the runs' scores come from different evaluation protocols (see each game's sources)")
        report = {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "label": settings.label,
            "sources": {k: v for k, v in SOURCES.items() if any(r.source == k for r in runs)},
            "unit": "human-normalised score in percent: 100 * (score - random) / (human - random), Mnih et al. 2015",
            "bootstrap": {
                "method": "stratified bootstrap over runs, percentile intervals (rliable)",
                "confidence": settings.confidence,
                "reps": settings.reps,
                "curve_reps": settings.curve_reps,
                "seed": settings.seed,
            },
            "games": [_game_json(r) for r in rows],
            **statistics,
            "notes": notes,
            "figures": {k: v for k, v in FIGURES.items() if (stage / v).is_file()},
            "runs": [_run_json(r) for r in runs],
            "skipped": [{"path": str(s.path), "why": s.why} for s in skipped],
        }
        (stage / REPORT_JSON).write_text(json.dumps(report, indent=1) + "\n")
        (stage / REPORT_MD).write_text(markdown(report))
    say(f"Report: {Path(out) / REPORT_MD}")
    return report


def report_command(args: argparse.Namespace) -> None:
    """``python -m sb3_dqn_atari.report``: :func:`build_report` with the parsed arguments."""
    settings = Settings(reps=args.reps, curve_reps=args.curve_reps, seed=args.seed, label=args.label)
    build_report(args.runs, args.output, settings)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pm(mean: float, std: float) -> str:
    return f"{_fmt(mean)} ± {_fmt(std)}"


def _steps(steps: list[int]) -> str:
    return f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,}-{steps[-1]:,}"


def markdown(report: dict[str, Any]) -> str:
    """The Markdown summary of a ``report.json`` (for a README or a model card)."""
    games = report["games"]
    seeds = sorted({g["runs"] for g in games})
    lines = [
        f"### {report['label']}: {len(games)} game(s) x {'/'.join(map(str, seeds))} seed(s)",
        "",
        "Each run's score is its last evaluation: "
        + "; ".join(f"{SOURCES[k]}" for k in report["sources"])
        + ". Mean ± standard deviation over seeds (n−1).",
        "",
        "| game | seeds | steps | score | human-normalised | Nature DQN (paper, 50M steps) | RL Zoo DQN (10M steps) |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in games:
        paper, zoo = g["paper"], g["rl_zoo"]
        cells = [
            g["env_id"],
            str(g["runs"]),
            _steps(g["steps"]),
            _pm(g["mean"], g["std"]),
            "-" if g["human_normalized"] is None else f"{_fmt(g['human_normalized'])} %",
            "-" if paper is None else _pm(paper["dqn"], paper["dqn_std"]),
            "-" if zoo is None else _pm(zoo["mean"], zoo["std"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    aggregates = report.get("aggregates")
    if aggregates:
        b = report["bootstrap"]
        lines += [
            "",
            f"Aggregate human-normalised scores over {len(report['games_in_aggregates'])} game(s) x "
            f"{report['runs_per_game']} run(s), {b['confidence']:.0%} stratified-bootstrap confidence intervals "
            f"(rliable, {b['reps']:,} resamples):",
            "",
            "| " + " | ".join(agg.METRIC_NAMES.values()) + " |",
            "|---|---|---|---|",
            "| "
            + " | ".join(
                f"{_fmt(aggregates[k]['estimate'])} % [{_fmt(aggregates[k]['low'])}, {_fmt(aggregates[k]['high'])}]"
                for k in agg.METRIC_NAMES
            )
            + " |",
            "",
        ]
        lines += [f"![{name.replace('_', ' ')}]({file})" for name, file in report["figures"].items()]
    if report["notes"]:
        lines += ["", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"
