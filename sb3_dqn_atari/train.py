"""``python -m sb3_dqn_atari.train``: rl-zoo3's ``train`` with NatureDQN registered as ``dqn`` beforehand.

Takes exactly rl-zoo3's arguments. Needed only with a hyperparameter file that does not name
``sb3_dqn_atari.zoo`` (ours do, so ``python -m rl_zoo3.train`` works as well).
"""

from __future__ import annotations

import sb3_dqn_atari.zoo  # noqa: F401  (registers NatureDQN as rl-zoo3's "dqn")


def main() -> None:
    from rl_zoo3.train import train

    train()


if __name__ == "__main__":
    main()
