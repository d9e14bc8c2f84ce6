"""Host work per training step that does nothing, taken away.

Per-batch hooks that a callback does not override are taken off it.

Lightning calls every per-batch hook of every callback, overridden or not, each inside a
profiler context with a name built from the callback's `state_key` (ModelCheckpoint's is the
repr of its settings). With the default recipe's 14 callbacks that is ~90 calls per training
step that do nothing: a third of cnnlab's host time per step over a bare LightningModule on a
tiny network (`make bench`, rows "host CPU ms per training step"). Lightning skips an attribute
that is not callable (`trainer/call.py: _call_callback_hooks`), so each unused hook is shadowed
on the instance by None; the hooks a callback does override stay as they are.

A machine with no CUDA device and a CUDA build of torch (pip's default on Linux) is not asked
for NVML at every optimizer step (`no_gpu_probe_per_step`).
"""

from __future__ import annotations

import os

import lightning as L
import torch

# Set by `import lightning` (lightning/fabric/__init__.py) so that availability checks never
# initialise CUDA in a process that may fork DataLoader workers.
NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"

PER_BATCH = (
    "on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
    "on_before_optimizer_step", "on_before_zero_grad", "on_validation_batch_start",
    "on_validation_batch_end", "on_test_batch_start", "on_test_batch_end",
    "on_predict_batch_start", "on_predict_batch_end",
)  # fmt: skip


def skip_unused(callbacks: list[L.Callback]) -> None:
    for callback in callbacks:
        for hook in PER_BATCH:
            if getattr(type(callback), hook, None) is getattr(L.Callback, hook):
                setattr(callback, hook, None)


def no_gpu_probe_per_step() -> None:
    """Adam and AdamW ask `torch.accelerator.current_accelerator(check_available=True)` at every
    step; with NVML_CHECK set and CUDA not initialised, torch answers by loading the NVML
    library again each time (0.10–0.15 ms of host time per step on this project's 2-core VM,
    about a tenth of the plain loop's whole step on a tiny network). With no CUDA device there is
    nothing for the setting to protect, and torch's own check answers in microseconds."""
    if os.environ.get(NVML_CHECK) == "1" and torch.cuda.device_count() == 0:
        del os.environ[NVML_CHECK]
