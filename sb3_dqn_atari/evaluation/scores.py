"""Extended Data Table 2 of Mnih et al. 2015 (random, human and DQN scores) and human-normalised scores:
``100 · (agent − random) / (human − random)``."""

from __future__ import annotations

from dataclasses import dataclass

from sb3_dqn_atari.atari.protocols import game_or_none

# ----------------------------------------------------------------------------------------------- paper tables


@dataclass(frozen=True)
class PaperScores:
    """One row of Extended Data Table 2 (Mnih et al. 2015): random, human and DQN (mean ± std) scores."""

    name: str
    random: float
    human: float
    dqn: float
    dqn_std: float

    def normalize(self, score: float) -> float:
        """Human-normalised score in percent: ``100 · (score − random) / (human − random)``."""
        return 100.0 * (score - self.random) / (self.human - self.random)


#: Extended Data Table 2 rows for the games the project reports, keyed by the ALE ROM id (``spec.kwargs["game"]``).
PAPER_SCORES: dict[str, PaperScores] = {
    "breakout": PaperScores("Breakout", 1.7, 31.8, 401.2, 26.9),
    "pong": PaperScores("Pong", -20.7, 9.3, 18.9, 1.3),
    "space_invaders": PaperScores("Space Invaders", 148.0, 1652.0, 1976.0, 893.0),
    "seaquest": PaperScores("Seaquest", 68.4, 20182.0, 5286.0, 1310.0),
    "beam_rider": PaperScores("Beam Rider", 363.9, 5775.0, 6846.0, 1619.0),
    "enduro": PaperScores("Enduro", 0.0, 309.6, 301.8, 24.6),
    "qbert": PaperScores("Q*bert", 163.9, 13455.0, 10596.0, 3294.0),
    "asteroids": PaperScores("Asteroids", 719.1, 13157.0, 1629.0, 542.0),
    "ms_pacman": PaperScores("Ms. Pac-Man", 307.3, 15693.0, 2311.0, 525.0),
}


def human_normalized_score(game: str, score: float) -> float | None:
    """The paper's human-normalised score (percent) of ``score`` in ``game`` (ALE ROM id); None if not in the table."""
    row = PAPER_SCORES.get(game)
    return None if row is None else row.normalize(score)


def paper_scores(env_id: str) -> PaperScores | None:
    """The row of the game ``env_id`` plays (any ALE id of it); None for other envs and games outside the table."""
    game = game_or_none(env_id)
    return None if game is None else PAPER_SCORES.get(game)
