"""``NatureDQN(mode="fast")``'s options on the training device, and the conv layout of both modes (the choices:
:mod:`sb3_dqn_atari.agent.hardware`; what each option changes: :mod:`sb3_dqn_atari.agent.dqn`)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.dqn.policies import QNetwork

from sb3_dqn_atari.agent.hardware import (
    Capabilities,
    Choice,
    channels_last_pays,
    choose_fast_options,
    describe_fast_options,
    detect,
)
from sb3_dqn_atari.agent.layout import convert_observations


class FastMode(OffPolicyAlgorithm):
    """Mixin of :class:`~sb3_dqn_atari.agent.dqn.NatureDQN`: detects the device when the model is set up, chooses
    fast mode's options there, and applies the layout and ``torch.compile`` to the online and target networks."""

    mode: str
    fast_options: dict[str, bool]
    channels_last: bool | None
    q_net: QNetwork
    q_net_target: QNetwork

    def _setup_fast_mode(self) -> None:
        """After SB3's ``_setup_model``: the device's capabilities, fast mode's choices, the networks' layout."""
        self._capabilities = detect(self.device)
        self._fast_choices: dict[str, Choice] = {}
        if getattr(self, "mode", "exact") == "fast":
            overrides = dict(getattr(self, "fast_options", None) or {})
            if getattr(self, "channels_last", None) is not None:
                overrides.setdefault("channels_last", bool(self.channels_last))
            self._fast_choices = choose_fast_options(self._capabilities, overrides)
        self._fast_choices_shown = False
        if self._use_channels_last():
            self.policy.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            for net in (self.q_net, self.q_net_target):  # the frames change layout as bytes, not as floats
                convert_observations(net)
        if self._fast("compile"):
            for net in (self.q_net, self.q_net_target):
                net.forward = torch.compile(net.forward)  # type: ignore[method-assign]

    def _show_fast_choices(self) -> None:
        """Print fast mode's choices once, when the first ``learn`` starts with ``verbose >= 1``."""
        if self._fast_choices and self.verbose >= 1 and not self._fast_choices_shown:
            print(describe_fast_options(self._capabilities, self._fast_choices))
            self._fast_choices_shown = True

    def _excluded_save_params(self) -> list[str]:
        """Also not saved: what was detected on this device (a loaded model detects its own)."""
        return [*super()._excluded_save_params(), "_capabilities", "_fast_choices", "_fast_choices_shown"]

    @property
    def capabilities(self) -> Capabilities:
        """What the training device offers (:func:`sb3_dqn_atari.agent.hardware.detect`)."""
        return self._capabilities

    @property
    def fast_choices(self) -> dict[str, Choice]:
        """Fast mode's options on this device, each with its reason (empty in exact mode)."""
        return dict(self._fast_choices)

    def _use_channels_last(self) -> bool:
        if "channels_last" in self._fast_choices:
            return self._fast_choices["channels_last"].on
        choice = getattr(self, "channels_last", None)
        if choice is None:
            return channels_last_pays(self._capabilities)[0]
        return bool(choice)

    def _fast(self, option: str) -> bool:
        choice = getattr(self, "_fast_choices", {}).get(option)
        return choice is not None and choice.on

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self._fast("bf16_autocast"):
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()
