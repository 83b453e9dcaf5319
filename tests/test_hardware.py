"""Fast mode's option choice per device, from capabilities given as data (no timing, nothing patched).

The CPU kinds this project has met: AMD Zen 3 (AVX2 only), AMD Zen 4 (AVX-512 with AVX512-BF16, no AMX) and an
Intel Xeon with AMX; plus the same Xeon with oneDNN capped at AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``), which must be
treated as an AVX2-only CPU although the CPU itself reports AMX.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from sb3_dqn_atari.agent.hardware import (
    AMX_BF16,
    AVX2,
    AVX512,
    AVX512_BF16,
    FAST_OPTION_NAMES,
    Capabilities,
    Choice,
    choose_fast_options,
    describe_fast_options,
    detect,
)
from tests.conftest import ROOT

ZEN3 = Capabilities("cpu", "AMD EPYC 7B13", frozenset({AVX2}), None, "AVX2")
ZEN4 = Capabilities("cpu", "AMD EPYC 9B14", frozenset({AVX2, AVX512, AVX512_BF16}), None, "AVX512")
SPR = Capabilities(
    "cpu", "Intel(R) Xeon(R) Processor", frozenset({AVX2, AVX512, AVX512_BF16, AMX_BF16}), None, "AVX512"
)


def _with_cap(caps: Capabilities, cap: str | None, aten: str | None = None) -> Capabilities:
    return Capabilities(caps.device_type, caps.name, caps.cpu_flags, cap, aten or caps.aten_isa, caps.gpu_bf16)


def _on(choices: dict[str, Choice]) -> dict[str, bool]:
    return {name: choice.on for name, choice in choices.items()}


def test_bf16_only_where_native() -> None:
    assert _on(choose_fast_options(ZEN3)) == {"bf16_autocast": False, "channels_last": True, "compile": False}
    assert _on(choose_fast_options(ZEN4)) == {"bf16_autocast": True, "channels_last": True, "compile": False}
    assert _on(choose_fast_options(SPR)) == {"bf16_autocast": True, "channels_last": True, "compile": False}
    assert SPR.native_bf16 == "AMX" and ZEN4.native_bf16 == "AVX512-BF16" and ZEN3.native_bf16 is None
    assert choose_fast_options(ZEN3)["bf16_autocast"].reason == "no native bf16"
    # an x86 CPU older than AVX2: nothing measured there, everything off
    old = Capabilities("cpu", "old", frozenset(), None, "DEFAULT")
    assert not any(choice.on for choice in choose_fast_options(old).values())


@pytest.mark.parametrize(
    "cap, bf16",
    [
        ("AVX2", None),  # the emulation of an AVX2-only CPU on the AMX Xeon
        ("avx2", None),  # oneDNN reads the value case-insensitively
        ("AVX512_CORE", None),  # AVX-512 without its bf16 instructions
        ("AVX512_CORE_VNNI", None),
        ("AVX2_VNNI_2", None),  # bf16 conversions only; not a subset of avx512_core either
        ("AVX512_CORE_BF16", "AVX512-BF16"),  # AMX off, AVX512-BF16 still allowed
        ("AVX10_1_512", "AVX512-BF16"),
        ("AVX512_CORE_AMX", "AMX"),
        ("AVX10_1_512_AMX", "AMX"),
        ("ALL", "AMX"),
        ("DEFAULT", "AMX"),
    ],
)
def test_a_onednn_cap_below_bf16_turns_bf16_off(cap: str, bf16: str | None) -> None:
    capped = _with_cap(SPR, cap)
    assert capped.native_bf16 == bf16
    assert choose_fast_options(capped)["bf16_autocast"].on is (bf16 is not None)
    if bf16 is None:
        assert f"oneDNN capped at {cap}" in choose_fast_options(capped)["bf16_autocast"].reason
    # the cap never adds what the CPU lacks
    assert _with_cap(ZEN3, cap).native_bf16 is None


def test_onednn_isa_follows_the_cap() -> None:
    assert SPR.onednn_isa == "avx10_1_512_amx"
    assert _with_cap(SPR, "AVX2").onednn_isa == "avx2"
    assert _with_cap(SPR, "AVX512_CORE_VNNI").onednn_isa == "avx512_core"
    assert _with_cap(SPR, "AVX512_CORE_BF16").onednn_isa == "avx512_core_bf16"
    assert ZEN4.onednn_isa == "avx512_core_bf16" and ZEN3.onednn_isa == "avx2"
    assert _with_cap(SPR, "SSE41").onednn_isa == "older than avx2"
    assert not _with_cap(SPR, "SSE41").onednn_allows("avx2")


def test_gpus() -> None:
    ampere = Capabilities("cuda", "NVIDIA A100", frozenset({AVX2}), None, "AVX2", gpu_bf16=True)
    volta = Capabilities("cuda", "Tesla V100", frozenset({AVX2, AVX512, AVX512_BF16}), None, "AVX512", gpu_bf16=False)
    assert _on(choose_fast_options(ampere)) == {"bf16_autocast": True, "channels_last": True, "compile": False}
    # no bf16 tensor cores: the host CPU's bf16 does not count for the GPU's update
    assert _on(choose_fast_options(volta)) == {"bf16_autocast": False, "channels_last": False, "compile": False}
    # channels-last goes with bf16 on a GPU, also when bf16 is forced on
    forced = choose_fast_options(volta, {"bf16_autocast": True})
    assert forced["bf16_autocast"].on and forced["channels_last"].on
    mps = Capabilities("mps", "mps", frozenset(), None, "DEFAULT")
    assert not any(choice.on for choice in choose_fast_options(mps).values())


def test_overrides_win_and_unknown_ones_are_refused() -> None:
    forced = choose_fast_options(ZEN3, {"bf16_autocast": True, "channels_last": False})
    assert _on(forced) == {"bf16_autocast": True, "channels_last": False, "compile": False}
    assert forced["bf16_autocast"].reason == "set by fast_options"
    assert _on(choose_fast_options(SPR, {"bf16_autocast": False}))["bf16_autocast"] is False
    with pytest.raises(ValueError, match="unknown fast_options"):
        choose_fast_options(SPR, {"fp8": True})
    assert set(choose_fast_options(SPR)) == set(FAST_OPTION_NAMES)


def test_the_message_names_cpu_and_every_choice() -> None:
    line = describe_fast_options(ZEN3, choose_fast_options(ZEN3))
    assert line.startswith("fast mode on AMD EPYC 7B13: bf16 off (no native bf16), channels-last on (")
    assert "compile off (" in line and "\n" not in line
    assert "bf16 on (native bf16: AMX)" in describe_fast_options(SPR, choose_fast_options(SPR))


def test_detect_reads_the_onednn_cap_from_the_environment() -> None:
    """In a fresh interpreter with ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN reads it once per process)."""
    code = (
        "from sb3_dqn_atari.hardware import detect; c = detect(); "
        "print(c.onednn_cap, c.native_bf16, c.onednn_isa, sep='|')"
    )
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    cap, bf16, isa = out.stdout.strip().split("|")
    assert cap == "AVX2" and bf16 == "None" and isa in ("avx2", "older than avx2")
    here = detect("cpu")
    assert here.device_type == "cpu" and here.aten_isa == torch.backends.cpu.get_cpu_capability()
    if getattr(torch.cpu, "_is_avx2_supported", lambda: False)():
        assert AVX2 in here.cpu_flags
