"""Finding and loading a trained agent: an SB3 zip or an rl-zoo3 log folder, without unpickling by default.

Shared by ``evaluate``, ``export``, ``push_to_hub``, ``load_from_hub`` and friends so that they accept the same
inputs.

**Safe loading** (:func:`load_agent`, the default of every CLI). An SB3 zip holds a JSON member ``data`` whose
non-JSON values (spaces, schedules, the policy class, ...) are cloudpickles, base64 in a ``":serialized:"``
field; unpickling one runs whatever code its author put there. SB3 also writes *plain* fields next to each
pickle (the object's JSON-able attributes, the others as ``str()``), and that is all this module reads:

* the observation and action spaces are rebuilt from their plain fields (``_shape``/``shape``, ``dtype``,
  ``low``/``high`` as numpy ``repr`` strings, ``n``, ``start``, ``nvec``); this is also why agents saved by
  SB3 1.x with ``gym`` spaces load without ``gym`` installed (with one warning);
* the algorithm and policy class come from the pickled class *reference*, read as text with
  :mod:`pickletools` (opcodes are listed, nothing is executed), checked against an allow-list:
  ``stable_baselines3.dqn.policies`` (SB3's DQN), ``sb3_dqn_atari.agent.policies`` (NatureDQN) and
  ``sb3_contrib.qrdqn.policies`` (QR-DQN);
* ``policy_kwargs`` from plain fields: JSON values as they are, ``repr`` strings of literals with
  :func:`ast.literal_eval`, classes (features extractor, activation, optimizer) by allow-listed name;
* the weights from ``policy.pth`` with ``torch.load(..., weights_only=True)`` (tensors and plain containers only).

What this path does not restore, because inference, evaluation and export do not use it: the optimizer state
(``policy.optimizer.pth``; the optimizer is the policy's default, ``DeepMindRMSprop`` for NatureDQN, or an
allow-listed class named in ``policy_kwargs``), the learning-rate and exploration schedules (rebuilt from the
plain ``learning_rate`` / ``exploration_*`` numbers), the last observation and episode buffers, and the replay
memory, which is a one-transition placeholder (``buffer_size=1``, as ``rl_zoo3.enjoy`` loads off-policy agents).
To resume *training*, load the zip with SB3 (``NatureDQN.load``) from a source you trust.

``trust_remote_code=True`` (``--trust-remote-code`` on the command line) uses SB3's own ``cls.load``, which
unpickles everything; spaces pickled with ``gym`` (not installed) are still replaced by the rebuilt ones.

**The files around the zip.** :func:`resolve_model` checks a run folder before it uses it
(:func:`sb3_dqn_atari.common.vetting.vet_run_folder`: rl-zoo3's YAML files with the safe reader and the allow-list,
zips and ``.npz`` files for members that declare more than :data:`~sb3_dqn_atari.common.bounded_zip.MAX_MEMBER_BYTES`,
ONNX files for external data); every member of a zip is read only after its declared size is checked.
``trust_remote_code`` skips the YAML and allow-list checks (rl-zoo3's own YAML reader), not the size bounds.
"""

from __future__ import annotations

from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.loading.load import load_agent, load_safely, load_trusted
from sb3_dqn_atari.loading.source import ModelSource, resolve_model
from sb3_dqn_atari.loading.zipdata import OldZipWarning, UnsafeZipError, algorithm_class, is_serialized, read_zip_data

__all__ = [
    "ModelSource", "OldZipWarning", "UnsafeZipError", "UserError", "algorithm_class", "is_serialized", "load_agent",
    "load_safely", "load_trusted", "read_zip_data", "resolve_model",
]
