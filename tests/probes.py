"""Probes for tests: callbacks that record what training saw, without changing it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L


class SeenImages(L.Callback):
    """Append a digest of every training image to `folder/epoch<e>_rank<r>.txt`."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        images = batch[0].detach().cpu().contiguous()
        lines = [hashlib.blake2b(im.numpy().tobytes(), digest_size=8).hexdigest() for im in images]
        path = self.folder / f"epoch{trainer.current_epoch}_rank{trainer.global_rank}.txt"
        with path.open("a") as out:
            out.write("\n".join(lines) + "\n")
