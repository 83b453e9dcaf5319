"""The Hugging Face Hub: :mod:`~sb3_dqn_atari.hub.client` (endpoint, token, retries, errors, rl-zoo3's names),
:mod:`~sb3_dqn_atari.hub.pull` (a repo into rl-zoo3's ``logs/``, every file checked first: ``vet.py``),
:mod:`~sb3_dqn_atari.hub.push` (a run to a repo in one commit: zip, verified ONNX, evaluation, video, curve) with its
:mod:`~sb3_dqn_atari.hub.evaluate` and :mod:`~sb3_dqn_atari.hub.card` (``model_card.md``, package data)."""
