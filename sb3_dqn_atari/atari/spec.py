"""Which Atari preprocessing a model was trained with, as data (:class:`PreprocessingSpec`), read from what the model
records: rl-zoo3's ``config.yml`` (``env_wrapper`` and its arguments, ``frame_stack``) or an ONNX file's metadata.
Torch-free: the ONNX runtime reads it. Two families are rebuilt exactly:

* :data:`NATURE_WRAPPER`: this project's :class:`~sb3_dqn_atari.atari.wrappers.NatureAtariWrapper` (Mnih et al.
  2015: luminance, torch7 area resize, no FIRE on reset);
* :data:`SB3_WRAPPER`: Stable-Baselines3's ``AtariWrapper`` (rl-zoo3's ``atari`` settings, the sb3 organisation's
  and the Deep RL course's agents: ``cv2.COLOR_RGB2GRAY``, ``cv2.INTER_AREA`` resize, FIRE then action 2 on reset in
  games that have FIRE, SB3's own sticky actions), with every argument it takes.

A wrapper is recognised by its full dotted name against :data:`KNOWN_WRAPPERS`, never imported.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sb3_dqn_atari.atari.preprocessing import FRAME_SIZE, LUMA_WEIGHTS, TRUNCATION_SLACK
from sb3_dqn_atari.common.errors import UserError

NATURE_WRAPPER = "NatureAtariWrapper"
SB3_WRAPPER = "AtariWrapper"
NO_WRAPPER = "none"
#: Resampling and grayscale names recorded in the spec.
TORCH7_AREA = "torch7-area"
CV2_AREA = "cv2.INTER_AREA"
CV2_GRAY = "cv2.COLOR_RGB2GRAY"
#: ``env_wrapper`` names (as rl-zoo3 records them) -> family. Only these are understood.
KNOWN_WRAPPERS = {
    "sb3_dqn_atari.zoo.NatureAtariWrapper": NATURE_WRAPPER,
    "sb3_dqn_atari.atari.wrappers.NatureAtariWrapper": NATURE_WRAPPER,
    "sb3_dqn_atari.wrappers.NatureAtariWrapper": NATURE_WRAPPER,  # before the layering
    "stable_baselines3.common.atari_wrappers.AtariWrapper": SB3_WRAPPER,
}
#: Each family's arguments: wrapper argument -> spec field (None: not preprocessing); the defaults are the spec's.
WRAPPER_ARGS: dict[str, dict[str, str | None]] = {
    NATURE_WRAPPER: {
        "noop_max": "noop_max", "frame_skip": "frame_skip", "frame_size": "frame_size",
        "terminal_on_life_loss": "train_terminal_on_life_loss", "clip_reward": "train_clip_reward",
        "repeat_action_probability": "repeat_action_probability", "max_episode_frames": None,
    },
    SB3_WRAPPER: {
        "noop_max": "noop_max", "frame_skip": "frame_skip", "screen_size": "frame_size",
        "terminal_on_life_loss": "train_terminal_on_life_loss", "clip_reward": "train_clip_reward",
        "action_repeat_probability": "action_repeat_probability",
    },
}


class PlayerError(UserError):
    """A problem the user can fix (missing, unreadable or refused .onnx, missing metadata, an env that cannot be
    made). The ``play`` CLI prints its message on one line and exits with code 2."""


@dataclass(frozen=True)
class PreprocessingSpec:
    """How raw env observations become the network input (JSON in the ONNX ``preprocessing`` metadata key).

    The defaults are the Nature DQN's (Mnih et al. 2015, Methods and Extended Data Table 1; DeepMind's
    ``alewrap`` and ``dqn/Scale.lua``). ``wrapper == "none"``: the env's observations are used as they are.
    """

    wrapper: str = NATURE_WRAPPER
    #: SB3 ``NoopResetEnv``: 1..noop_max single-frame no-ops at every reset (0: none).
    noop_max: int = 30
    noop_action: int = 0
    #: SB3 ``MaxAndSkipEnv``: action repeat, max over the last ``max_pool_frames`` raw frames.
    frame_skip: int = 4
    max_pool_frames: int = 2
    #: Nature: Y = w·RGB on the 0–255 scale, torch7 area resize, ``uint8(floor(y + slack))``; SB3: OpenCV's.
    frame_size: int = FRAME_SIZE
    grayscale: str = "luminance"
    luminance_weights: tuple[float, float, float] = LUMA_WEIGHTS
    resize: str = TORCH7_AREA
    truncation_slack: float = TRUNCATION_SLACK
    #: SB3 ``FireResetEnv``: FIRE, then action 2, after every reset, in games whose action 1 is FIRE.
    fire_reset: bool = False
    #: SB3 ``StickyActionEnv`` (its own draw per raw frame); NatureAtariWrapper: the ALE's own sticky actions.
    action_repeat_probability: float = 0.0
    repeat_action_probability: float = 0.0
    #: Stacked frames are channel-first ``(stack, H, W)``; earlier-episode frames are zeros.
    channels_first: bool = True
    stack_padding: str = "zeros"
    #: Inside the graph: ``obs.float() / 255`` (SB3's ``preprocess_obs``).
    scale_in_graph: str = "x/255"
    #: How the model was *trained* (evaluation and the runtime play full games with raw scores).
    train_terminal_on_life_loss: bool = True
    train_clip_reward: bool = True

    @property
    def family(self) -> str:
        """What results.json and the runtime say about it: ``"NatureAtariWrapper (...)"``."""
        if self.wrapper == NO_WRAPPER:
            return NO_WRAPPER
        sticky = self.action_repeat_probability or self.repeat_action_probability
        return (
            f"{self.wrapper} (noop_max {self.noop_max}, frame_skip {self.frame_skip}, {self.frame_size}x"
            f"{self.frame_size} {self.grayscale} {self.resize}, FIRE on reset {'yes' if self.fire_reset else 'no'}"
            f"{f', sticky actions {sticky:g}' if sticky else ''})"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PreprocessingSpec:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise PlayerError(f"the preprocessing metadata is not valid JSON ({exc.__class__.__name__})") from exc
        if not isinstance(data, dict):
            raise PlayerError("the preprocessing metadata is not a JSON object")
        unknown = sorted(str(k) for k in set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise PlayerError(f"the preprocessing metadata has keys this runtime does not know: {unknown[:5]}")
        defaults = cls()
        for key, value in data.items():
            default = getattr(defaults, key)
            if key == "luminance_weights":
                ok = isinstance(value, list) and len(value) == 3 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
                )
                value = data[key] = tuple(value) if ok else value
            elif isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1 << 16
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                ok = ok and (key == "truncation_slack" or 0.0 <= value <= 1.0)
            else:
                ok = isinstance(value, type(default))
            if not ok:
                raise PlayerError(f"the preprocessing metadata's {key} = {str(value)[:60]!r} is not a valid value")
        return cls(**data)

    def check_supported(self) -> None:
        """Raise :class:`PlayerError` unless the runtime and the evaluation rebuild the spec exactly."""
        if self.wrapper == NO_WRAPPER:
            return
        if self.wrapper not in (NATURE_WRAPPER, SB3_WRAPPER):
            raise PlayerError(
                f"the model was trained with {self.wrapper}; the preprocessing rebuilt here is {NATURE_WRAPPER}'s "
                f"or Stable-Baselines3's {SB3_WRAPPER}"
            )
        wanted = (
            ("luminance", LUMA_WEIGHTS, TORCH7_AREA, TRUNCATION_SLACK, False)
            if self.wrapper == NATURE_WRAPPER
            else (CV2_GRAY, LUMA_WEIGHTS, CV2_AREA, 0.0, True)
        )
        recorded = (self.grayscale, tuple(self.luminance_weights), self.resize, self.truncation_slack, self.fire_reset)
        problems = [] if recorded == wanted else [f"frames {recorded}"]
        if self.max_pool_frames != 2 or self.stack_padding != "zeros" or not self.channels_first:
            problems.append("frame pooling / stacking layout")
        if self.action_repeat_probability if self.wrapper == NATURE_WRAPPER else self.repeat_action_probability:
            problems.append("sticky actions of the other family")
        if problems:
            raise PlayerError(f"this runtime cannot rebuild the recorded preprocessing: {', '.join(problems)}")


#: The paper's preprocessing (every default of :class:`PreprocessingSpec`).
NATURE_SPEC = PreprocessingSpec()


def sb3_atari_spec(**kwargs: Any) -> PreprocessingSpec:
    """SB3's ``AtariWrapper(**kwargs)`` as a spec (its defaults where an argument is not given)."""
    return _spec(SB3_WRAPPER, kwargs)


def _spec(family: str, kwargs: dict[str, Any]) -> PreprocessingSpec:
    unknown = sorted(set(kwargs) - set(WRAPPER_ARGS[family]))
    if unknown:
        raise UserError(f"config.yml: {family} has no argument(s) {unknown}: was the model trained with another one?")
    values: dict[str, Any] = {}
    for arg, field_name in WRAPPER_ARGS[family].items():
        if field_name is None:
            continue
        default = getattr(NATURE_SPEC, field_name)
        value = kwargs.get(arg, default)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise UserError(f"config.yml: {family}'s {arg} = {value!r} is not true or false")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise UserError(f"config.yml: {family}'s {arg} = {value!r} is not a probability")
            value = float(value)
        else:
            value = config_int({arg: value}, arg, default, 1 if arg != "noop_max" else 0, 1024)
        values[field_name] = value
    if family == SB3_WRAPPER:
        values.update(grayscale=CV2_GRAY, resize=CV2_AREA, truncation_slack=0.0, fire_reset=True)
    return PreprocessingSpec(wrapper=family, **values)


def wrapper_entries(env_wrapper: Any) -> list[tuple[str, dict[str, Any]]]:
    """rl-zoo3's ``env_wrapper`` hyperparameter (a name, ``{name: kwargs}``, or a list of those) as pairs."""
    if env_wrapper is None:
        return []
    entries: list[tuple[str, dict[str, Any]]] = []
    for item in env_wrapper if isinstance(env_wrapper, list) else [env_wrapper]:
        if isinstance(item, str):
            entries.append((item, {}))
        elif isinstance(item, dict):
            for name, kwargs in item.items():
                if kwargs is not None and not isinstance(kwargs, dict):
                    raise UserError(f"config.yml: the env_wrapper {name!r} has arguments {kwargs!r}, not a mapping")
                entries.append((str(name), dict(kwargs or {})))
        else:
            raise UserError(f"config.yml: env_wrapper holds {item!r}, not a wrapper name")
    return entries


def config_int(values: dict[str, Any], key: str, default: int, low: int = 0, high: int = 1 << 20) -> int:
    """An integer hyperparameter from a model's files (``frame_stack``, a wrapper's ``noop_max``, ...), checked
    to be one and within ``[low, high]`` (a :class:`UserError` otherwise)."""
    value = values.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise UserError(f"config.yml: {key} = {value!r} is not a whole number")
    if not low <= int(value) <= high:
        raise UserError(f"config.yml: {key} = {value!r} is outside [{low}, {high}]")
    return int(value)


def spec_from_config(
    obs_shape: tuple[int, ...], image: bool, atari: bool, hyperparams: dict[str, Any], choice: str = "auto"
) -> tuple[PreprocessingSpec, int, list[str]]:
    """The preprocessing spec and frame stack a model was trained with, and notes on how they were found.

    :param obs_shape: the model's observation shape; ``image``: uint8 images; ``atari``: the env is an ALE game.
    :param hyperparams: rl-zoo3's ``config.yml`` as the safe YAML reader gave it (``env_wrapper``, ``frame_stack``).
    :param choice: ``"auto"`` (the recorded wrapper; NatureAtariWrapper for an Atari image model that records none),
        ``"nature"``, ``"sb3"`` (SB3's AtariWrapper with its defaults, for a bare zip) or ``"none"``.
    """
    notes: list[str] = []
    frame_stack = config_int(hyperparams, "frame_stack", 0, 0, 64)
    entries = wrapper_entries(hyperparams.get("env_wrapper"))
    if choice == "none" or (choice == "auto" and not image):
        if entries:
            notes.append(f"env_wrapper {[name for name, _ in entries]} ignored: observations are used as they are")
        return PreprocessingSpec(wrapper=NO_WRAPPER), max(frame_stack, 1), notes
    if not atari:
        raise UserError("the env is not an ALE game: the Atari preprocessing applies to Atari games only")
    known = [(KNOWN_WRAPPERS[name], kwargs) for name, kwargs in entries if name in KNOWN_WRAPPERS]
    others = [name for name, _ in entries if name not in KNOWN_WRAPPERS]
    forced = {"nature": NATURE_WRAPPER, "sb3": SB3_WRAPPER}.get(choice)
    if others or len(known) > 1:
        if forced is None:
            raise UserError(
                f"the model was trained with the env_wrapper {[name for name, _ in entries]}; the preprocessing "
                f"rebuilt here is one of {sorted(KNOWN_WRAPPERS)}: pass --preprocessing nature or sb3 only if "
                "its observations are those"
            )
        notes.append(f"env_wrapper {[name for name, _ in entries]} recorded with the model; using {forced} as asked")
        known = []
    if known and forced is not None and known[0][0] != forced:
        notes.append(f"env_wrapper {known[0][0]} recorded with the model; using {forced} as asked")
        known = []
    if not known and forced is None:
        notes.append(f"no env_wrapper recorded with the model: assuming {NATURE_WRAPPER} (pass --preprocessing)")
    family, kwargs = known[0] if known else (forced or NATURE_WRAPPER, {})
    spec = _spec(family, kwargs)
    if frame_stack == 0:
        frame_stack = int(obs_shape[0]) if len(obs_shape) == 3 and obs_shape[1:] == (spec.frame_size,) * 2 else 1
    return spec, frame_stack, notes
