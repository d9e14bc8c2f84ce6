"""`trainer.precision=mixed` decided for the card, and a warning before a precision that this
machine runs slowly."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 CPU flags for native bfloat16 matmul


CPUINFO = Path("/proc/cpuinfo")


def cpu_has_fast_bf16() -> bool:
    try:
        flags = CPUINFO.read_text()
    except OSError:  # not Linux: no way to tell, assume it is fine
        return True
    return any(flag in flags for flag in BF16_FLAGS)


def warn_if_slow(precision: str, on_cpu: bool) -> None:
    if on_cpu and str(precision).startswith("bf16") and not cpu_has_fast_bf16():
        log.warning(
            "trainer.precision=%s on a CPU without native bfloat16 (no %s): emulated, and far "
            "slower than 32-true (make bench measures it); use 32-true on this machine",
            precision,
            " or ".join(BF16_FLAGS),
        )


MIXED = "mixed"  # cnnlab's: bf16-mixed where the GPU has bfloat16, 16-mixed on older GPUs


def resolve(precision, accelerator: str):
    """`mixed` → bf16-mixed on a GPU with bfloat16 (Ampere and later: no loss scaling needed),
    16-mixed on an older GPU, 32-true without a CUDA GPU (bf16 is emulated on most CPUs)."""
    if str(precision) != MIXED:
        return precision
    import torch

    if str(accelerator) in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"
