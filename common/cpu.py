"""The INT8 instruction set of this CPU: INT8 results and speed depend on it, so reports name it.

x86-64: AVX-512 VNNI or AVX-VNNI accumulate uint8 x int8 products in int32 (VPDPBUSD); AVX2
alone uses VPMADDUBSW, whose int16 pair sums saturate (asl-export's pair-safe weights keep them
in range). ARM64: the dot-product extension (SDOT/UDOT, "asimddp") or plain NEON, both exact.
"""
from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path


def _flags_linux() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def int8_isa_from(machine: str, flags: set[str]) -> str:
    """Name the INT8 kernel family onnxruntime picks, from the machine and its CPU flags."""
    machine = machine.lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        if not flags:
            return "x86-64 (INT8 instruction set unknown)"
        if "avx512_vnni" in flags:
            return "x86-64 AVX-512 VNNI"
        if "avx_vnni" in flags:
            return "x86-64 AVX-VNNI"
        if "avx2" in flags:
            return "x86-64 AVX2 (no VNNI: saturating int16 pair sums)"
        return "x86-64 SSE (no AVX2)"
    if machine in ("aarch64", "arm64"):
        if not flags:
            return "ARM64 NEON (dot product unknown)"
        return "ARM64 NEON with dot product" if "asimddp" in flags else "ARM64 NEON (no dot product)"
    return f"{machine or 'unknown CPU'} (INT8 instruction set unknown)"


AT_HWCAP = 16
ARM64_HWCAP = {"asimd": 1 << 1, "asimddp": 1 << 20}  # Linux arch/arm64 uapi hwcap bits


def _flags_arm64_auxv(raw: bytes | None = None) -> set[str]:
    """ARM64 features from the kernel's auxiliary vector (what onnxruntime itself reads); unlike
    /proc/cpuinfo it is also right under qemu-user emulation."""
    if raw is None:
        try:
            raw = Path("/proc/self/auxv").read_bytes()
        except OSError:
            return set()
    words = memoryview(raw)[: len(raw) // 16 * 16].cast("Q")
    for key, value in zip(words[0::2], words[1::2]):
        if key == AT_HWCAP:
            return {name for name, bit in ARM64_HWCAP.items() if value & bit}
    return set()


@lru_cache(maxsize=1)
def int8_isa() -> str:
    """This machine's INT8 instruction set, e.g. "x86-64 AVX-512 VNNI"."""
    flags = _flags_linux() if platform.system() == "Linux" else set()
    if platform.system() == "Linux" and platform.machine() in ("aarch64", "arm64"):
        flags = _flags_arm64_auxv() or flags
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        flags = {"asimddp"}  # every Apple silicon core has the dot-product extension
    return int8_isa_from(platform.machine(), flags)
