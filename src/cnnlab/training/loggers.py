"""TensorBoard logging into one events file per run.

Lightning closes the writer when `fit` ends, so the `test` that follows opens a second events file
in the same folder; this logger only flushes between stages and closes once, at the end of the run.
"""

from __future__ import annotations

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class RunTensorBoardLogger(TensorBoardLogger):
    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()
        if status == "success":
            self.save()

    @rank_zero_only
    def close(self) -> None:
        if self._experiment is not None:
            self._experiment.close()
