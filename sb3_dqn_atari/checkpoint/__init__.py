"""Exact, atomic training checkpoints for SB3 off-policy agents (NatureDQN): save, find, resume.

A paper run takes days and machines get preempted. A checkpoint here is everything the next step of
training depends on, so that a run stopped at step ``k`` and resumed to step ``n`` computes what an
uninterrupted run to ``n`` computes (on the CPU: the same weights bit for bit, ``tests/test_resume.py``).

What a checkpoint folder ``step_<num_timesteps>/`` holds:

=======================  ===================================================================================
file                     contents
=======================  ===================================================================================
``model.zip``            SB3's zip: weights of the online and target networks, the optimizer state (RMSProp
                         averages), ``num_timesteps`` (hence ε and the target-network phase,
                         ``_last_train_timestep``), ``_n_updates``, ``_total_timesteps``, the episode in
                         progress (``_last_obs``, ``_last_episode_starts``), the episode-info buffer
``replay_buffer.pkl``    the replay memory (SB3's ``save_replay_buffer`` format; :class:`FrameReplayBuffer`
                         pickles only its filled part)
``training_state.pkl``   RNG states (python ``random``, numpy's global RNG, torch CPU and CUDA, the agent's
                         action- and observation-space samplers); the training env's state, layer by layer
                         (every wrapper's attributes: frame stack, Monitor and no-op counters, TimeLimit,
                         each env's ``np_random``; the emulator via ``ALEInterface.cloneState(include_rng=True)``);
                         the other callbacks' counters and their evaluation envs (``EvalCallback`` and ours)
``manifest.json``        written last: step, versions, command line, and each file's size and SHA-256
=======================  ===================================================================================

Atomicity: everything is written into ``.tmp-step_<n>-<pid>/`` (each file fsynced, the manifest last), which
is then renamed to ``step_<n>/`` and the parent folder fsynced. A folder without a manifest, or whose files do
not match it, is never picked; ``kill -9`` at any moment leaves the previous checkpoints loadable. The newest
``keep`` are kept (older ones are renamed away, then deleted).

When: :class:`ResumableCheckpointCallback` saves at the start of a rollout (``on_rollout_start``), i.e. after
the gradient update of the previous one: the only point of SB3's loop where the state is that of a finished
``learn`` iteration, so that ``learn(reset_num_timesteps=False)`` carries on exactly. SIGINT/SIGTERM save one
there (at most ``train_freq`` agent steps later) and exit with status 0.

Resume: :func:`load_checkpoint`, then ``model.learn(remaining, reset_num_timesteps=False)``; with rl-zoo3,
``python -m sb3_dqn_atari.train --resume <folder>`` (:func:`~sb3_dqn_atari.checkpoint.experiment.zoo_train`).
Not rl-zoo3's ``-i``: that restarts the step counter (ε back to 1.0, 50,000 steps without updates), reseeds
the RNGs and resets the env.

What is not restored: string/path attributes (names, files of the new run), file handles (the Monitor CSV
writer), the envs of a ``SubprocVecEnv`` (their env is reset at resume, with a warning).

Loading unpickles the checkpoint. ``--resume`` without ``--trust-remote-code`` first checks every pickle and
unpickles only what this project's checkpoints hold (:mod:`sb3_dqn_atari.checkpoint.resume_check`); the Python
functions here do so inside :func:`~sb3_dqn_atari.checkpoint.resume_check.checked_loading`, and otherwise trust
the checkpoint.
"""

from sb3_dqn_atari.checkpoint.callback import ResumableCheckpointCallback
from sb3_dqn_atari.checkpoint.state import CheckpointError
from sb3_dqn_atari.checkpoint.store import (
    MANIFEST_FILE,
    find_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)

__all__ = [
    "MANIFEST_FILE", "CheckpointError", "ResumableCheckpointCallback", "find_checkpoints", "latest_checkpoint",
    "load_checkpoint", "read_checkpoint", "save_checkpoint",
]
