"""The paper's evaluation protocol as a library: environments, the ε-greedy episode loop, scores, a callback.

**Nature protocol** (Mnih et al. 2015, Methods, "Evaluation procedure"): each episode starts with a random
number (1 to 30) of single-frame no-op actions, is played with an ε-greedy policy with ε = 0.05, lasts at
most 5 minutes of emulator time (18,000 frames at 60 Hz), and is scored with the raw game score summed over
all lives (no reward clipping, a lost life is not terminal). Action repeat 4 with the max over the last two
frames, no sticky actions (ALE ``NoFrameskip-v4`` semantics). The published table reports the mean over 30
such episodes. DeepMind's ``run_gpu`` applies ε itself (``eGreedy``: a uniform draw, then either a uniform
random action or the greedy one), independently of the training schedule; so do we.

**Machado protocol** (Machado et al. 2018, "Revisiting the Arcade Learning Environment", JAIR 61, §5):
sticky actions with repeat probability 0.25 (ALE v5) replace the no-op starts as the source of
stochasticity; no life-loss signal; the same 5-minute cap and raw score here, so the two are comparable.
Machado et al. recommend the full action set; an agent can only be evaluated with the action set it was
trained with, so the full set (18 actions) is used exactly when the model has 18 outputs.

Both protocols build the env from the given id with the protocol's settings *forced*
(``frameskip=1`` plus our :class:`~sb3_dqn_atari.atari.wrappers.NatureAtariWrapper`, and the protocol's
``repeat_action_probability``), so ``BreakoutNoFrameskip-v4`` and ``ALE/Breakout-v5`` name the same game and
the protocol alone decides the semantics. Every number records the protocol it came from.

Human-normalised scores use the random/human table of the paper (Extended Data Table 2):
``100 · (agent − random) / (human − random)``.
"""

from __future__ import annotations

from sb3_dqn_atari.atari.protocols import (
    FULL_ACTION_SET,
    HISTORY_LENGTH,
    PROTOCOLS,
    EvalEnvInfo,
    Protocol,
    ProtocolEnv,
    RawFrameTap,
    atari_game,
    get_protocol,
    make_eval_env,
)
from sb3_dqn_atari.evaluation.callback import NatureEvalCallback, PaperProtocolEvalCallback
from sb3_dqn_atari.evaluation.protocol import (
    EVAL_EPISODES,
    EVAL_EPSILON,
    EpisodeResult,
    EvalResult,
    evaluate_policy_protocol,
    protocol_settings,
)
from sb3_dqn_atari.evaluation.scores import PAPER_SCORES, PaperScores, human_normalized_score

__all__ = [
    "EVAL_EPISODES", "EVAL_EPSILON", "FULL_ACTION_SET", "HISTORY_LENGTH", "PAPER_SCORES", "PROTOCOLS",
    "EpisodeResult", "EvalEnvInfo", "EvalResult", "NatureEvalCallback", "PaperProtocolEvalCallback", "PaperScores",
    "Protocol", "ProtocolEnv", "RawFrameTap", "atari_game", "evaluate_policy_protocol",
    "get_protocol", "human_normalized_score", "make_eval_env", "protocol_settings",
]
