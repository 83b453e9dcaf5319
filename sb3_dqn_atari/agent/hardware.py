"""What the training device offers, and which of ``mode="fast"``'s options pay on it.

:func:`detect` reads the device into a :class:`Capabilities` (plain data); :func:`choose_fast_options` and
:func:`channels_last_pays` decide from that data alone, so tests pass hand-made capabilities.

What is read, and why it must be the *effective* capability, not the CPU's:

* the CPU's instruction sets (``torch.cpu``'s checks, which use the cpuinfo library; ``/proc/cpuinfo``
  flags where torch lacks a check);
* oneDNN's ISA cap. oneDNN (PyTorch's CPU convolution and bf16 matmul library) uses nothing above
  ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) when that is set: on a CPU with AMX, ``=AVX2`` makes it
  behave as on an AVX2-only CPU, and ``torch.cpu`` still reports AMX. ATen's own check for bf16 convolutions
  and matmuls asks oneDNN, so with the cap below bf16 they fall back to emulated kernels;
* ATen's vector ISA (``torch.backends.cpu.get_cpu_capability()``, which honours ``ATEN_CPU_CAPABILITY``);
* on CUDA, whether the GPU has bf16 tensor cores (compute capability 8.0 or later).

Native bf16 on x86 means AVX512-BF16 (Cooper Lake, Zen 4 and later) or AMX (Sapphire Rapids and later) with
oneDNN allowed to use it. Without it, bf16 autocast is emulated: fast mode measured 0.20x SB3's DQN on an
AVX2-only Zen 3 and on an AMX Xeon with oneDNN capped at AVX2, where it is faster than exact mode with native
bf16 (``benchmarks/train_throughput.py``; README, "Performance").
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

#: oneDNN's ISA names and their bit masks (``dnnl_cpu_isa_t``): an ISA is usable under a cap when its bits
#: are a subset of the cap's (oneDNN's own rule). ``avx2_vnni_2`` is not a subset of ``avx512_core``.
ONEDNN_ISA_BITS: dict[str, int] = {
    "sse41": 0x1,
    "avx": 0x3,
    "avx2": 0x7,
    "avx2_vnni": 0xF,
    "avx2_vnni_2": 0x1F,
    "avx512_core": 0x27,
    "avx512_core_vnni": 0x67,
    "avx512_core_bf16": 0xE7,
    "avx10_1_512": 0x1EF,
    "avx512_core_fp16": 0x1EF,
    "avx10_1_512_amx": 0xFEF,
    "avx512_core_amx": 0xFEF,
    "avx10_1_512_amx_fp16": 0x1FEF,
    "avx512_core_amx_fp16": 0x1FEF,
}
#: the environment variables oneDNN reads its cap from, in its order of precedence
ONEDNN_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
#: x86 instruction sets this module looks at, by their Linux ``/proc/cpuinfo`` names
AVX2, AVX512, AVX512_BF16, AMX_BF16 = "avx2", "avx512f", "avx512_bf16", "amx_bf16"
#: what ``mode="fast"`` can change, each chosen per device (:func:`choose_fast_options`)
FAST_OPTION_NAMES = ("bf16_autocast", "channels_last", "compile")


@dataclass(frozen=True)
class Capabilities:
    """What one training device offers (see the module docstring for where each field comes from).

    :param device_type: ``torch.device.type`` (``"cpu"``, ``"cuda"``, ``"mps"``, ...)
    :param name: CPU model or GPU name, for messages
    :param cpu_flags: the CPU's instruction sets, by their ``/proc/cpuinfo`` names (``avx2``, ``avx512f``,
        ``avx512_bf16``, ``amx_bf16``)
    :param onednn_cap: the value of ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``), ``None`` when unset
    :param aten_isa: ATen's vector ISA (``"AVX512"``, ``"AVX2"``, ``"DEFAULT"``, ...)
    :param gpu_bf16: the GPU has bf16 tensor cores
    """

    device_type: str = "cpu"
    name: str = "unknown CPU"
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    onednn_cap: str | None = None
    aten_isa: str = "DEFAULT"
    gpu_bf16: bool = False

    def onednn_allows(self, isa: str) -> bool:
        """oneDNN may use ``isa`` under its cap (an unknown cap value is ignored, as oneDNN ignores it)."""
        cap = (self.onednn_cap or "").strip().lower()
        if cap in ("", "all", "default") or cap not in ONEDNN_ISA_BITS:
            return True
        bits = ONEDNN_ISA_BITS[isa]
        return bits & ONEDNN_ISA_BITS[cap] == bits

    @property
    def onednn_isa(self) -> str:
        """The widest ISA oneDNN runs its kernels with here (of those this module tells apart)."""
        for isa, flag in (("avx10_1_512_amx", AMX_BF16), ("avx512_core_bf16", AVX512_BF16),
                          ("avx512_core", AVX512), ("avx2", AVX2)):  # fmt: skip
            if flag in self.cpu_flags and self.onednn_allows(isa):
                return isa
        return "older than avx2"

    @property
    def native_bf16(self) -> str | None:
        """What runs bf16 natively here (``"AMX"``, ``"AVX512-BF16"``, ``"bf16 tensor cores"``), else ``None``."""
        if self.device_type == "cuda":
            return "bf16 tensor cores" if self.gpu_bf16 else None
        if self.device_type != "cpu":
            return None
        return {"avx10_1_512_amx": "AMX", "avx512_core_bf16": "AVX512-BF16"}.get(self.onednn_isa)

    def no_bf16_reason(self) -> str:
        """Why :attr:`native_bf16` is ``None``, in a few words."""
        if self.device_type == "cuda":
            return "no bf16 tensor cores"
        if self.device_type != "cpu":
            return f"bf16 not measured on {self.device_type}"
        if {AMX_BF16, AVX512_BF16} & self.cpu_flags:
            return f"no native bf16: oneDNN capped at {self.onednn_cap} (ONEDNN_MAX_CPU_ISA)"
        return "no native bf16"

    def describe(self) -> str:
        """One line: the device, its instruction sets as oneDNN and ATen use them, and its bf16."""
        if self.device_type != "cpu":
            return f"{self.name} ({self.device_type}), bf16: {self.native_bf16 or self.no_bf16_reason()}"
        cap = f" (capped: ONEDNN_MAX_CPU_ISA={self.onednn_cap})" if self.onednn_cap else ""
        bf16 = self.native_bf16 or self.no_bf16_reason()
        return f"{self.name}, oneDNN ISA {self.onednn_isa}{cap}, ATen {self.aten_isa}, bf16: {bf16}"


@dataclass(frozen=True)
class Choice:
    """One fast-mode option on one device: on or off, and why."""

    on: bool
    reason: str


def channels_last_pays(caps: Capabilities, bf16: bool | None = None) -> tuple[bool, str]:
    """Whether the Nature network's update is faster in the channels-last conv layout on this device, with the
    update under bf16 autocast or not (``bf16``; ``None``: where bf16 is native).

    Measured with ``benchmarks/train_throughput.py --mode exact,exact-nchw`` (README, "Performance"):
    faster with oneDNN's AVX-512 kernels (Zen 4: 1.57x vs 1.43x SB3's DQN; AMX Xeon likewise) and with its
    AVX2 kernels (AMX Xeon with oneDNN capped at AVX2). On GPUs it pays with bf16 tensor cores (cuDNN's NHWC
    kernels); in float32 it was not measured and stays off.
    """
    if caps.device_type == "cpu":
        if AVX2 in caps.cpu_flags:
            return True, f"faster with oneDNN's {caps.onednn_isa} kernels"
        return False, "not measured on CPUs without AVX2"
    if caps.device_type == "cuda" and (caps.native_bf16 is not None if bf16 is None else bf16):
        return True, "tensor cores prefer NHWC"
    return False, f"not measured on {caps.device_type} in float32"


def choose_fast_options(caps: Capabilities, overrides: Mapping[str, bool] | None = None) -> dict[str, Choice]:
    """``mode="fast"``'s options on a device with ``caps``: each on only where it pays; ``overrides`` (the
    user's ``fast_options``) win.

    * ``bf16_autocast``: where bf16 is native (:attr:`Capabilities.native_bf16`); emulated bf16 is ~5x slower
      than float32;
    * ``channels_last``: where :func:`channels_last_pays` (on a GPU: with bf16 autocast);
    * ``compile``: off (``torch.compile`` measured slower than eager on the CPU; not measured on GPUs).

    Everything off is exactly exact mode, so fast mode is never slower than exact mode.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(FAST_OPTION_NAMES)
    if unknown:
        raise ValueError(f"unknown fast_options {sorted(unknown)}; known: {sorted(FAST_OPTION_NAMES)}")
    bf16 = caps.native_bf16
    chosen = {"bf16_autocast": Choice(True, f"native bf16: {bf16}") if bf16 else Choice(False, caps.no_bf16_reason())}
    chosen["channels_last"] = Choice(*channels_last_pays(caps, overrides.get("bf16_autocast", bool(bf16))))
    chosen["compile"] = Choice(False, "slower than eager on the CPU" if caps.device_type == "cpu" else "not measured")
    for name, value in overrides.items():
        chosen[name] = Choice(bool(value), "set by fast_options")
    return chosen


def describe_fast_options(caps: Capabilities, choices: Mapping[str, Choice]) -> str:
    """``fast mode on <device>: bf16 off (no native bf16), channels-last on (...), compile off (...)``."""
    labels = {"bf16_autocast": "bf16", "channels_last": "channels-last", "compile": "compile"}
    parts = [f"{labels.get(name, name)} {'on' if c.on else 'off'} ({c.reason})" for name, c in choices.items()]
    return f"fast mode on {caps.name}: " + ", ".join(parts)


# ----------------------------------------------------------------------------------------------- detection
#: torch's cpuinfo checks of the instruction sets this module looks at
TORCH_CPU_CHECKS = {AVX2: "_is_avx2_supported", AVX512: "_is_avx512_supported",
                    AVX512_BF16: "_is_avx512_bf16_supported", AMX_BF16: "_is_amx_tile_supported"}  # fmt: skip


@functools.lru_cache(maxsize=1)
def _cpu() -> tuple[str, frozenset[str]]:
    """The CPU model and the instruction sets torch's checks report (any OS), with the model name and flags of the
    first processor in ``/proc/cpuinfo`` (Linux; the flags count where this torch lacks a check)."""
    name = platform.processor() or platform.machine() or "unknown CPU"
    flags = {flag for flag, check in TORCH_CPU_CHECKS.items() if getattr(torch.cpu, check, lambda: False)()}
    with contextlib.suppress(OSError):
        first = Path("/proc/cpuinfo").read_text(errors="replace").split("\n\n")[0]
        info = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in first.splitlines())}
        name = info.get("model name", name)
        listed = set(info.get("flags", "").split())
        if not {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= listed:  # oneDNN's avx512_core needs all four
            listed.discard(AVX512)
        flags |= listed & {AVX2, AVX512, AVX512_BF16, AMX_BF16}
    return name, frozenset(flags)


def detect(device: torch.device | str = "cpu") -> Capabilities:
    """The :class:`Capabilities` of ``device`` in this process (its environment variables included)."""
    device = torch.device(device)
    name, flags = _cpu()
    cap = next((os.environ[v] for v in ONEDNN_CAP_VARIABLES if os.environ.get(v)), None)
    aten = torch.backends.cpu.get_cpu_capability()
    if device.type == "cuda":  # a device without an index: torch's current one
        gpu = torch.cuda.get_device_properties(device)
        return Capabilities("cuda", gpu.name, flags, cap, aten, gpu_bf16=gpu.major >= 8)
    return Capabilities(device.type, name if device.type == "cpu" else device.type, flags, cap, aten)
