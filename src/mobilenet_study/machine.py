"""What this CPU is: its model name, family and model, and the vector extensions that decide
how fast it trains (read from /proc/cpuinfo, as `lscpu` does)."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

# The flags that matter here: AVX2/FMA everywhere, AVX-512, and native bf16 (AVX-512 BF16 on
# Zen 4/5 and Cooper Lake on, AMX tiles on Sapphire Rapids on).
SPEED_FLAGS = ("fma", "avx2", "avx512f", "avx512_bf16", "amx_bf16")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return fields
    for line in path.read_text().splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> frozenset[str]:
    return frozenset(cpuinfo().get("flags", "").split())


def speed_flags() -> list[str]:
    """The vector extensions of :data:`SPEED_FLAGS` this CPU has, sorted."""
    return sorted(flag for flag in SPEED_FLAGS if flag in cpu_flags())


def has_native_bf16() -> bool:
    """Whether the CPU computes bf16 in hardware (without, torch emulates it, far slower)."""
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def cpu_model() -> str:
    return cpuinfo().get("model name") or platform.processor() or "unknown"


def cpu_description() -> str:
    """``Intel(R) Xeon(R) Processor, family 6 model 143, avx2 avx512_bf16 ...``."""
    info = cpuinfo()
    return (
        f"{cpu_model()}, family {info.get('cpu family', '?')} model {info.get('model', '?')}, "
        f"{' '.join(speed_flags()) or 'no AVX2'}"
    )
