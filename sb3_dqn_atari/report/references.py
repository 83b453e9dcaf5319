"""Published reference scores the report puts beside each game.

* the paper: Mnih et al. 2015, Extended Data Table 2 (random, human, DQN mean ± std), in
  :data:`sb3_dqn_atari.evaluation.PAPER_SCORES`;
* the RL Zoo: rl-baselines3-zoo's ``benchmark.md``, SB3's DQN (rl-zoo3's ``atari`` hyperparameters: Adam 1e-4,
  100k buffer, target every 1,000 steps) after 10M agent steps, one run, evaluated by ``python -m
  rl_zoo3.benchmark`` (rl-zoo3's evaluation, not the paper's protocol): mean ± std episode reward.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    mean: float
    std: float
    steps: int
    source: str


RL_ZOO_SOURCE = "rl-baselines3-zoo benchmark.md, SB3 DQN, 10M steps, 1 run"

#: SB3 DQN in rl-baselines3-zoo's benchmark.md (``dqn`` rows), keyed by env id
RL_ZOO_DQN: dict[str, Reference] = {
    env_id: Reference(mean, std, 10_000_000, RL_ZOO_SOURCE)
    for env_id, mean, std in (
        ("AsteroidsNoFrameskip-v4", 782.687, 259.247),
        ("BeamRiderNoFrameskip-v4", 4295.946, 1790.458),
        ("BreakoutNoFrameskip-v4", 358.327, 61.981),
        ("EnduroNoFrameskip-v4", 830.929, 194.544),
        ("PongNoFrameskip-v4", 20.602, 0.613),
        ("QbertNoFrameskip-v4", 9496.774, 5399.633),
        ("RoadRunnerNoFrameskip-v4", 40396.350, 7069.131),
        ("SeaquestNoFrameskip-v4", 2000.290, 606.644),
        ("SpaceInvadersNoFrameskip-v4", 622.742, 201.564),
    )
}
