"""The metrics a training run logs, by name: the LightningModule logs them, and the config check
refuses a `monitor` that names another before anything runs. No torch import here."""

from __future__ import annotations

# Per epoch, for validation and test (`ClassifierModule._eval_step`).
EVAL_METRICS = ("loss", "acc", "acc5", "balanced_acc", "macro_f1")
# Per epoch for training (running totals in `ClassifierModule.on_train_epoch_end`).
TRAIN_METRICS = ("loss", "acc", "acc5")
BEST = "val/acc_best"  # the running best, what sweeps rank by
POINTING_GAME = "val/pointing_game"  # the Grad-CAM callback, on data with object boxes
NONFINITE_SKIPPED = "train/nonfinite_skipped"  # the guard (policy=skip): batches skipped so far


def monitorable(*, gradcam: bool) -> list[str]:
    """What ModelCheckpoint, EarlyStopping and ReduceLROnPlateau can watch in a training run."""
    names = [f"val/{n}" for n in EVAL_METRICS] + [BEST] + [f"train/{n}" for n in TRAIN_METRICS]
    return [*names, POINTING_GAME] if gradcam else names
