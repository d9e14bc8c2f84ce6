"""Per-batch hooks that a callback does not override are taken off it.

Lightning calls every per-batch hook of every callback, overridden or not, each inside a
profiler context with a name built from the callback's `state_key`: with the default recipe's
callbacks that is dozens of calls per training step that do nothing. Without this, cnnlab's
default recipe misses the host-cost gate (default ≤ a same-recipe bare LightningModule + 0.5 ms
per step: make bench's host-cost rows, docs/performance.md). Lightning skips an attribute that is
not callable (`trainer/call.py: _call_callback_hooks`), so each unused hook is shadowed on the
instance by None; the hooks a callback does override stay as they are.
"""

from __future__ import annotations

import lightning as L

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
