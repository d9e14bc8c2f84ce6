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


class StateAround(L.Callback):
    """Copies of the weights and the optimizer's state just before training `step` and just
    after its optimizer step (`before`, `after`: name → tensor)."""

    def __init__(self, step: int):
        self.step, self.before, self.after = step, None, None

    def _state(self, trainer, pl_module) -> dict:
        import torch

        out = {f"w.{k}": v.detach().clone() for k, v in pl_module.state_dict().items()}
        for i, state in enumerate(trainer.optimizers[0].state.values()):
            for k, v in state.items():
                if isinstance(v, torch.Tensor):
                    out[f"opt.{i}.{k}"] = v.detach().clone()
        return out

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            self.before = self._state(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step + 1 and self.after is None:
            self.after = self._state(trainer, pl_module)
