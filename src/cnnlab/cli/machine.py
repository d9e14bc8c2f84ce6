"""How many devices this machine has, found without importing torch (the config is checked
before torch's seconds of start-up): CPU cores this process may use, and NVIDIA GPUs as the
driver lists them, narrowed by CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import os
from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU the driver sees (Linux)


def cpu_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's name (/proc/cpuinfo on Linux): measured tables name the machine they ran on."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "CPU model unknown"
    names = [x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")]
    return names[0] if names else "CPU model unknown"


def gpus() -> int | None:
    """NVIDIA GPUs visible to this process; None where that cannot be told without CUDA."""
    if not NVIDIA_GPUS.is_dir():
        return None
    count = sum(1 for _ in NVIDIA_GPUS.iterdir())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([d for d in visible.split(",") if d.strip()]))
    return count


def available(accelerator: str) -> tuple[int | None, str]:
    """(devices of that kind here, their name); None where unknown (Lightning then answers)."""
    if accelerator == "cpu":
        return cpu_cores(), "CPU"
    if accelerator in ("gpu", "cuda"):
        return gpus(), "GPU"
    if accelerator == "auto":
        found = gpus()
        if found:
            return found, "GPU"
        if found is None and any(Path("/dev").glob("nvidia[0-9]*")):
            return None, "GPU"  # a GPU the driver's /proc entries do not list: Lightning counts
        return cpu_cores(), "CPU"
    return None, accelerator


def device_count(devices: object) -> int | None:
    """How many devices `trainer.devices` asks for: N, [i, j, …] or "i,j"; None for auto / -1."""
    if isinstance(devices, bool):
        return None
    if isinstance(devices, int):
        return devices if devices > 0 else None
    if isinstance(devices, list | tuple):
        return len(devices)
    if isinstance(devices, str):
        text = devices.strip()
        if text.lstrip("-").isdigit():
            return device_count(int(text))
        if "," in text:
            return len([d for d in text.split(",") if d.strip()])
    return None
