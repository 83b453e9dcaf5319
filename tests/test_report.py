"""``python -m sb3_dqn_atari.report``: the numbers against hand computations and an independent bootstrap, run
folders that rl-zoo3 wrote, and bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sb3_dqn_atari.report.__main__ import main as report_main
from tests.conftest import SHARED

# Human-normalised scores (fractions: 1.0 = human) of 3 runs on 3 games, chosen to compute by hand.
HNS = {
    "PongNoFrameskip-v4": [0.1, 0.5, 0.9],
    "BreakoutNoFrameskip-v4": [0.2, 1.0, 3.0],
    "EnduroNoFrameskip-v4": [0.0, 0.4, 1.2],
}
# Extended Data Table 2 (random, human), written here again rather than read from the package.
RANDOM_HUMAN = {
    "PongNoFrameskip-v4": (-20.7, 9.3),
    "BreakoutNoFrameskip-v4": (1.7, 31.8),
    "EnduroNoFrameskip-v4": (0.0, 309.6),
}
# By hand, in percent. The 9 values sorted: 0, .1, .2, .4, .5, .9, 1, 1.2, 3.
# IQM: scipy's trim_mean cuts int(0.25 * 9) = 2 values at each end -> mean(.2, .4, .5, .9, 1) = 3.0 / 5 = 0.6.
# Per-game means: Pong 1.5/3 = .5, Breakout 4.2/3 = 1.4, Enduro 1.6/3 = .5333...; median .5333..., mean 2.4333.../3.
# Optimality gap: 1 - mean(min(x, 1)) = 1 - (0 + .1 + .2 + .4 + .5 + .9 + 1 + 1 + 1) / 9 = 1 - 5.1 / 9.
EXPECTED = {
    "iqm": 60.0,
    "median": 160 / 3,
    "mean": 100 * (0.5 + 1.4 + 1.6 / 3) / 3,
    "optimality_gap": 100 * (1 - 5.1 / 9),
}


def _score(env_id: str, hns: float) -> float:
    random, human = RANDOM_HUMAN[env_id]
    return random + hns * (human - random)


def _zoo_run(folder: Path, env_id: str, seed: int, timesteps: list[int], scores: list[list[float]], name: str) -> Path:
    """A run folder as rl-zoo3 lays it out: ``<env>/args.yml`` (rl-zoo3's OrderedDict form) and an evaluations
    file (``evaluations_nature.npz`` from our callback, ``evaluations.npz`` from SB3's)."""
    folder.mkdir(parents=True)
    (folder / env_id).mkdir()
    args = yaml.dump(__import__("collections").OrderedDict([("algo", "dqn"), ("env", env_id), ("seed", seed)]))
    (folder / env_id / "args.yml").write_text(args)
    np.savez(folder / name, timesteps=np.array(timesteps), results=np.array(scores, dtype=np.float64))
    (folder / f"{env_id}.zip").write_bytes(b"")
    return folder


def _fixed_table(root: Path) -> None:
    for env_id, values in HNS.items():
        for seed, h in enumerate(values):
            final = _score(env_id, h)
            # two episodes averaging to the final score; an earlier evaluation at the random score (HNS 0)
            episodes = [[_score(env_id, 0.0)] * 2, [final - 1.0, final + 1.0]]
            _zoo_run(
                root / "dqn" / f"{env_id}_{seed + 1}", env_id, seed, [5_000, 10_000], episodes, "evaluations_nature.npz"
            )


def _report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = report_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_aggregates_match_hand_computation_and_an_independent_bootstrap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rliable import library, metrics

    from sb3_dqn_atari.report.aggregate import seeded_numpy

    _fixed_table(tmp_path / "logs")
    args = [str(tmp_path / "logs"), "-o", str(tmp_path / "report"), "--reps", "1000", "--curve-reps", "200"]
    code, out, err = _report(args, capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    for name, value in EXPECTED.items():
        assert report["aggregates"][name]["estimate"] == pytest.approx(value, abs=1e-9), name
    # the per-game table: mean and sample std (n-1) of the final scores, and the HNS of the mean
    pong = next(g for g in report["games"] if g["env_id"] == "PongNoFrameskip-v4")
    assert pong["scores"] == pytest.approx([-17.7, -5.7, 6.3])
    assert pong["mean"] == pytest.approx(-5.7) and pong["std"] == pytest.approx(12.0)
    assert pong["human_normalized"] == pytest.approx(50.0) and pong["paper"]["dqn"] == 18.9
    assert pong["rl_zoo"]["mean"] == pytest.approx(20.602) and pong["steps"] == [10_000]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| PongNoFrameskip-v4 | 3 | 10,000 | -5.7 ± 12.0 | 50.0 % | 18.9 ± 1.3 | 20.6 ± 0.6 |" in markdown
    assert f"| {EXPECTED['median']:.1f} % [" in markdown and "| 60.0 % [" in markdown

    # the intervals are rliable's: the same call with the same seed gives the same numbers
    matrix = np.array([HNS[g] for g in sorted(HNS)]).T  # runs x games, games in name order as the report
    funcs = [metrics.aggregate_median, metrics.aggregate_iqm, metrics.aggregate_mean, metrics.aggregate_optimality_gap]
    with seeded_numpy(0):
        _, intervals = library.get_interval_estimates(
            {"x": matrix}, lambda s: np.array([f(s) for f in funcs]), reps=1000
        )
    for i, name in enumerate(["median", "iqm", "mean", "optimality_gap"]):
        assert report["aggregates"][name]["low"] == pytest.approx(100 * intervals["x"][0][i], rel=1e-12)
        assert report["aggregates"][name]["high"] == pytest.approx(100 * intervals["x"][1][i], rel=1e-12)

    # and they agree with a naive stratified bootstrap written here: resample the 3 runs of each game with
    # replacement, 100,000 times; percentile interval of the IQM and of the mean
    rng = np.random.default_rng(123)
    picks = rng.integers(0, 3, size=(100_000, 3, 3))  # (resample, run slot, game)
    resampled = np.take_along_axis(np.broadcast_to(matrix, (100_000, 3, 3)), picks, axis=1)
    flat = np.sort(resampled.reshape(100_000, 9), axis=1)
    naive = {"iqm": flat[:, 2:7].mean(axis=1), "mean": resampled.mean(axis=(1, 2))}
    for name, values in naive.items():
        low, high = np.percentile(values, [2.5, 97.5]) * 100
        assert report["aggregates"][name]["low"] == pytest.approx(low, abs=2.5), name
        assert report["aggregates"][name]["high"] == pytest.approx(high, abs=2.5), name
        assert report["aggregates"][name]["low"] < report["aggregates"][name]["estimate"]
    # the learning curve: at 5,000 steps every run scored the random score (HNS 0), at 10,000 the table
    curve = report["curve"]
    assert curve["timesteps"] == [5_000, 10_000]
    assert curve["iqm"][0]["estimate"] == pytest.approx(0.0, abs=1e-9)
    assert curve["iqm"][1]["estimate"] == pytest.approx(60.0, abs=1e-9)
    for figure in ("aggregates.png", "sample_efficiency.png", "performance_profile.png"):
        assert (tmp_path / "report" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["figures"] == {
        "aggregates": "aggregates.png",
        "sample_efficiency": "sample_efficiency.png",
        "performance_profile": "performance_profile.png",
    }
    assert "3 run(s) of 3 game(s)" not in out and "9 run(s) of 3 game(s)" in out


def test_report_keeps_the_callers_rng_and_is_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fixed_table(tmp_path / "logs")
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    for out in ("a", "b"):
        assert (
            _report([str(tmp_path / "logs"), "-o", str(tmp_path / out), "--reps", "300", "--curve-reps", "50"], capsys)[
                0
            ]
            == 0
        )
    assert np.array_equal(np.random.get_state()[1], before)
    a, b = (json.loads((tmp_path / o / "report.json").read_text()) for o in ("a", "b"))
    assert a["aggregates"] == b["aggregates"] and a["curve"] == b["curve"]


def test_report_from_folders_rl_zoo3_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m rl_zoo3.train`` with our yml, two seeds of Pong and one of Breakout, tiny budgets, its
    ``--eval-freq`` (the paper's protocol once our yml is read); one more run stopped by SIGINT after a checkpoint
    and never resumed (skipped); then the report of the log folder."""
    import rl_zoo3.train

    from tests.conftest import ROOT

    monkeypatch.chdir(tmp_path)
    conf = str(ROOT / "hyperparams" / "dqn.yml")
    tiny = ["-params", "learning_starts:100", "buffer_size:1000", "exploration_decay_steps:200"]
    runs = [("PongNoFrameskip-v4", 0), ("PongNoFrameskip-v4", 1), ("BreakoutNoFrameskip-v4", 0)]
    for env_id, seed in runs:
        argv = ["--algo", "dqn", "--env", env_id, "-conf", conf, "-n", "400", "--seed", str(seed), "-f", "logs",
                "--eval-freq", "200", "--eval-episodes", "1", "--num-threads", "1", "--verbose", "0",
                *tiny]  # fmt: skip
        monkeypatch.setattr(sys, "argv", ["rl_zoo3.train", *argv])
        rl_zoo3.train.train()
    stopped = tmp_path / "logs" / "dqn" / "PongNoFrameskip-v4_3"
    (stopped / "checkpoints" / "step_000000000200").mkdir(parents=True)  # as a run stopped after a checkpoint
    (stopped / "PongNoFrameskip-v4").mkdir()
    (stopped / "PongNoFrameskip-v4" / "args.yml").write_text("env: PongNoFrameskip-v4\nseed: 2\n")
    np.savez(stopped / "evaluations_nature.npz", timesteps=np.array([200]), results=np.array([[-21.0]]))
    capsys.readouterr()

    code, _, err = _report(["logs", "-o", "report", "--reps", "200", "--curve-reps", "50"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [(g["env_id"], g["seeds"]) for g in report["games"]] == [
        ("BreakoutNoFrameskip-v4", [0]),
        ("PongNoFrameskip-v4", [0, 1]),
    ]
    assert [Path(s["path"]).name for s in report["skipped"]] == ["PongNoFrameskip-v4_3"]
    assert "interrupted" in report["skipped"][0]["why"]
    for run in report["runs"]:
        # the run's score is the last paper-protocol evaluation rl-zoo3's --eval-freq wrote: read it here
        with np.load(Path(run["path"]) / "evaluations_nature.npz") as data:
            assert list(data["timesteps"]) == [200, 400]
            assert run["score"] == float(data["results"][-1].mean()) and run["source"] == "paper"
            assert data["ep_frames"][-1][0] <= 18_000
    pong = next(g for g in report["games"] if g["env_id"] == "PongNoFrameskip-v4")
    assert pong["mean"] == pytest.approx(np.mean([r["score"] for r in report["runs"][1:]]))
    assert report["runs_per_game"] == 1  # rliable needs as many runs per game: the first (by seed) of Pong's two
    assert any("1 run(s) beyond the first 1" in n for n in report["notes"])
    assert report["curve"]["timesteps"] == [200, 400]


@pytest.mark.skipif(not (SHARED / "reference" / "rl-zoo-dqn").is_dir(), reason="needs ../shared")
def test_report_of_the_rl_zoo_published_runs_says_they_are_not_the_paper_protocol(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rl-trained-agents' folders (flat layout, SB3's ``evaluations.npz``) as rl-zoo3 wrote them."""
    args = [str(SHARED / "reference" / "rl-zoo-dqn"), "-o", str(tmp_path / "r"), "--reps", "100", "--curve-reps", "100"]
    code, _, err = _report(args, capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {g["env_id"] for g in report["games"]} == {
        "BreakoutNoFrameskip-v4",
        "PongNoFrameskip-v4",
        "SpaceInvadersNoFrameskip-v4",
    }
    assert all(r["source"] == "zoo" and r["step"] == 10_000_000 and r["episodes"] == 10 for r in report["runs"])
    # 1,000 evaluations each: the learning curve bootstraps 50 of them, evenly spread, the first and last included
    steps = report["curve"]["timesteps"]
    assert len(steps) == 50 and steps[0] == 10_000 and steps[-1] == 10_000_000
    with np.load(SHARED / "reference" / "rl-zoo-dqn" / "PongNoFrameskip-v4" / "evaluations.npz") as data:
        expected = float(data["results"][-1].mean())
    pong = next(g for g in report["games"] if g["env_id"] == "PongNoFrameskip-v4")
    assert pong["mean"] == pytest.approx(expected) and pong["std"] == 0.0
    assert "NOT the paper's protocol" in (tmp_path / "r" / "report.md").read_text()


def _one_line_error(code: int, err: str) -> str:
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such folder"),
        ("empty", "no finished run with evaluations"),
        ("not-a-report", "exists and is not a report folder"),
        ("bad-npz", "is not an evaluations file"),
        ("truncated-npz", "is not an evaluations file"),  # a run killed while it wrote the file
        ("wrong-size", "is not an evaluations file"),  # 3 scores for 2 evaluation steps
        ("python-tag", "carries a Python object tag"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    logs = tmp_path / "logs"
    out = tmp_path / "out"
    if setup != "missing":
        logs.mkdir()
    if setup == "not-a-report":
        _fixed_table(logs)
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    if setup == "bad-npz":
        (logs / "run").mkdir()
        (logs / "run" / "evaluations_nature.npz").write_bytes(b"not a zip")
    if setup == "truncated-npz":
        npz = _zoo_run(logs / "run", "PongNoFrameskip-v4", 0, [1, 2], [[0.0], [1.0]], "evaluations_nature.npz")
        npz /= "evaluations_nature.npz"
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    if setup == "wrong-size":
        _zoo_run(logs / "run", "PongNoFrameskip-v4", 0, [1, 2], [[0.0, 1.0, 2.0]], "evaluations_nature.npz")
    if setup == "python-tag":
        run = _zoo_run(logs / "run", "PongNoFrameskip-v4", 0, [1], [[0.0]], "evaluations_nature.npz")
        (run / "PongNoFrameskip-v4" / "args.yml").write_text("!!python/object/apply:os.system ['echo hi']\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    err = _one_line_error(*_report([str(logs), "-o", str(out), "--reps", "10"], capsys)[::2])
    assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no staging folder left behind
    if setup == "not-a-report":
        assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_report_folder_is_replaced_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fixed_table(tmp_path / "logs")
    args = [str(tmp_path / "logs"), "-o", str(tmp_path / "report"), "--reps", "10", "--curve-reps", "10"]
    assert _report(args, capsys)[0] == 0
    (tmp_path / "report" / "stale.png").write_bytes(b"old")
    assert _report([*args, "--label", "again"], capsys)[0] == 0
    report: dict[str, Any] = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["label"] == "again" and not (tmp_path / "report" / "stale.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "report"]
