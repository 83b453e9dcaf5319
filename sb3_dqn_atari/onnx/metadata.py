"""What an exported file says about its agent (``metadata_props``): the graph's names, the preprocessing spec the
runtime rebuilds, the agent's env, actions and observations (see :mod:`sb3_dqn_atari.onnx.runtime`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sb3_dqn_atari.atari.spec import (  # noqa: F401 (re-exported: the runtime's names)
    NATURE_WRAPPER,
    NO_WRAPPER,
    SB3_WRAPPER,
    PlayerError,
    PreprocessingSpec,
)
from sb3_dqn_atari.common.trust import UntrustedError, check_env_id

#: Value of the ``format`` metadata key; bump it when the meaning of a key changes.
METADATA_FORMAT = "sb3-dqn-atari/onnx/1"
#: Graph input and output names.
INPUT_NAME = "obs"
Q_VALUES_NAME = "q_values"
ACTION_NAME = "action"
#: onnxruntime's names of numpy's dtypes (``NodeArg.type`` is ``tensor(<name>)``).
ORT_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "float16", "bool": "bool"}


@dataclass(frozen=True)
class AgentMetadata:
    """The ``metadata_props`` of an exported agent, parsed."""

    env_id: str
    algorithm: str
    action_meanings: list[str]
    observation_shape: tuple[int, ...]
    observation_dtype: str
    frame_stack: int
    preprocessing: PreprocessingSpec
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def n_actions(self) -> int:
        return len(self.action_meanings)

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "the model") -> AgentMetadata:
        missing = [
            key
            for key in ("format", "env_id", "algorithm", "action_meanings", "observation_shape", "observation_dtype")
            if key not in props
        ]
        if missing:
            raise PlayerError(
                f"{source} lacks the metadata {missing}: export it with `python -m sb3_dqn_atari.export MODEL`"
            )
        if props["format"] != METADATA_FORMAT:
            raise PlayerError(f"{source} has metadata format {props['format']!r}; this runtime reads {METADATA_FORMAT}")
        try:
            check_env_id(props["env_id"], "the env_id metadata", source)
        except UntrustedError as exc:
            raise PlayerError(str(exc)) from None
        try:
            spec_text = props.get("preprocessing", json.dumps({"wrapper": NO_WRAPPER}))
            metadata = cls(
                env_id=props["env_id"],
                algorithm=props["algorithm"],
                action_meanings=[str(a) for a in json.loads(props["action_meanings"])],
                observation_shape=tuple(int(d) for d in json.loads(props["observation_shape"])),
                observation_dtype=str(np.dtype(props["observation_dtype"])),
                frame_stack=int(props.get("frame_stack", "1")),
                preprocessing=PreprocessingSpec.from_json(spec_text),
                env_kwargs=dict(json.loads(props.get("env_kwargs", "{}"))),
                raw=dict(props),
            )
        except (ValueError, TypeError, RecursionError) as exc:
            raise PlayerError(f"{source} has malformed metadata ({exc.__class__.__name__}: {exc})") from exc
        if np.dtype(metadata.observation_dtype).kind not in "uifb":
            raise PlayerError(f"{source} has malformed metadata (observation_dtype {metadata.observation_dtype})")
        if not 1 <= metadata.frame_stack <= 64 or not all(0 < d <= 1 << 16 for d in metadata.observation_shape):
            raise PlayerError(f"{source} has malformed metadata (frame_stack or observation_shape out of range)")
        if not metadata.action_meanings or any(not isinstance(k, str) for k in metadata.env_kwargs):
            raise PlayerError(f"{source} has malformed metadata (no actions, or env_kwargs keys that are not names)")
        return metadata
