"""Exact resume of a run with every improvement on (Double DQN, dueling network, prioritized replay, 3-step returns):
the sum tree, the maximal priority and the β schedule are part of the checkpoint's replay memory, so a run stopped
by SIGTERM and resumed from its checkpoint ends bit for bit where the uninterrupted run ends.

The machinery (environment, signal, snapshot, comparison) is ``tests/test_resume.py``'s. Run as a module, this file
is the child process: ``python -m tests.test_prioritized_resume MODE DIR``.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tests.test_resume import (
    AGENT_KWARGS,
    N_STEPS,
    _assert_same,
    child,
    run_child,
    snapshot,
)

MODULE = "tests.test_prioritized_resume"


def _agent(env: Any) -> Any:
    from sb3_dqn_atari import DuelingCnnPolicy, NatureDQN, PrioritizedFrameReplayBuffer

    return NatureDQN(
        DuelingCnnPolicy,
        env,
        double_q=True,
        replay_buffer_class=PrioritizedFrameReplayBuffer,
        n_steps=3,
        **AGENT_KWARGS,
    )


def _snapshot(model: Any) -> dict[str, Any]:
    """test_resume's snapshot, with the sum tree as its array of nodes (every partial sum, not only the leaves)."""
    result = snapshot(model)
    tree = result["buffer"].pop("tree")
    result["buffer"]["tree_nodes"] = tree.nodes.copy()
    return result


def test_resume_of_a_prioritized_n_step_run_is_bit_identical(tmp_path: Path) -> None:
    from sb3_dqn_atari.checkpoint import find_checkpoints

    run_child("full", tmp_path, module=MODULE)
    interrupted = run_child("interrupted", tmp_path, module=MODULE)
    assert "SIGTERM: saving a checkpoint" in interrupted.stderr
    assert [c.num_timesteps for c in find_checkpoints(tmp_path / "checkpoints")] == [200, 336]
    run_child("resume", tmp_path, module=MODULE)
    with open(tmp_path / "full.pkl", "rb") as f:
        full = pickle.load(f)
    with open(tmp_path / "resume.pkl", "rb") as f:
        resumed = pickle.load(f)
    buffer = full["buffer"]
    assert full["counters"]["n_updates"] == (N_STEPS - AGENT_KWARGS["learning_starts"]) // 4
    assert buffer["full"] and buffer["n_steps"] == 3
    # the priorities moved away from their starting value and β was annealed to 1 over the run
    leaves = buffer["tree_nodes"][len(buffer["tree_nodes"]) // 2 :]
    assert buffer["max_priority"] > 1.0 and len(np.unique(leaves[leaves > 0])) > 50
    assert (buffer["beta_start"], buffer["beta_steps"]) == (AGENT_KWARGS["learning_starts"], N_STEPS - 100)
    _assert_same(full, resumed)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("folder", type=Path)
    options = parser.parse_args()
    sys.exit(child(options.mode, options.folder, _agent, _snapshot))
