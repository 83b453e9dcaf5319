"""The learning agent: :class:`~sb3_dqn_atari.agent.dqn.NatureDQN` (Table 1 of Mnih et al. 2015, entry by
entry), its optimizer, networks, policies, replay memories and the improvements (Double, dueling, prioritized,
n-step)."""
