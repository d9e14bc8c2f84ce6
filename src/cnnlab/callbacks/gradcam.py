"""Grad-CAM in TensorBoard during training: every N epochs, for a fixed, class-balanced set of
validation images, one grid of original | CAM for the predicted class | CAM for the true class,
captioned with labels and probability. With known object boxes (data=shapes, the shortcut demo)
it also logs the pointing game as `val/pointing_game`. Rank 0 only."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch

from cnnlab.analysis.cam import NoFeatureMaps, cam_maps, overlay, pointing_game, resolve_layer
from cnnlab.analysis.render import grid
from cnnlab.callbacks.picture_epochs import draws_after_this_epoch
from cnnlab.core.media import Media
from cnnlab.data.tensor_dataset import TensorImages

log = logging.getLogger(__name__)


def balanced_indices(targets: torch.Tensor, count: int, seed: int) -> list[int]:
    """`count` indices, as evenly spread over the classes as possible, the same every run."""
    g = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(targets == c).flatten() for c in targets.unique().tolist()]
    per_class = [idx[torch.randperm(len(idx), generator=g)] for idx in per_class]
    picked, rank = [], 0
    while len(picked) < count and any(rank < len(idx) for idx in per_class):
        picked += [int(idx[rank]) for idx in per_class if rank < len(idx)][: count - len(picked)]
        rank += 1
    return picked


class GradCamGrid(L.Callback):
    def __init__(
        self,
        every_n_epochs: int = 5,
        num_images: int = 8,
        method: str = "gradcam",
        layer: str | None = None,
        pointing_images: int = 200,
        seed: int = 0,
    ):
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images
        self.method = method
        self.layer = layer
        self.pointing_images = pointing_images
        self.seed = seed
        self._disabled = False

    def _layer(self, pl_module, example) -> str | None:
        name = self.layer or pl_module.hparams.get("config", {}).get("model", {}).get("cam_layer")
        try:
            return resolve_layer(pl_module.net, name, example)
        except NoFeatureMaps as err:
            log.warning("Grad-CAM skipped: %s", err)
            self._disabled = True
            return None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._disabled or not draws_after_this_epoch(trainer, self.every_n_epochs):
            return
        dm = trainer.datamodule
        val = dm.val_set.as_tensors(256)  # image folders: the first 256, decoded once
        idx = balanced_indices(val.targets, self.num_images, self.seed)
        x = dm.preprocess(val.images[idx].to(pl_module.device))
        layer = self._layer(pl_module, x[:1])
        if layer is None:
            return
        self._log_grid(trainer, pl_module, dm, val, idx, x, layer)
        if val.boxes is not None:
            score = self.pointing(pl_module, dm, val, layer)
            pl_module.log("val/pointing_game", score, rank_zero_only=True)

    def pointing(self, pl_module, dm, val: TensorImages, layer: str) -> float:
        """Pointing game on the first `pointing_images` validation images, CAM of the true class."""
        n = min(self.pointing_images, len(val))
        x = dm.preprocess(val.images[:n].to(pl_module.device))
        maps = cam_maps(pl_module.net, layer, x, val.targets[:n].tolist(), self.method)
        scale = val.images.shape[-1] / maps.shape[-1]  # maps come at the network's input size
        return pointing_game(maps, (val.boxes[:n].float() / scale).long())

    def _log_grid(self, trainer, pl_module, dm, val, idx, x, layer) -> None:
        was_training = pl_module.net.training
        pl_module.net.eval()
        with torch.no_grad():
            probs = torch.softmax(pl_module.net(x), dim=1).cpu()
        pl_module.net.train(was_training)
        preds = probs.argmax(1).tolist()
        truths = val.targets[idx].tolist()
        # One CAM pass over the images twice (predicted classes, then true): each image's map
        # depends on its own row only (eval mode), and one pass of 16 costs less than two of 8.
        maps = cam_maps(pl_module.net, layer, torch.cat([x, x]), preds + truths, self.method)
        pred_maps, true_maps = maps[: len(idx)], maps[len(idx) :]
        unit = dm.to_unit(val.images[idx]).permute(0, 2, 3, 1).cpu().numpy()
        picture = grid_image(unit, pred_maps, true_maps, preds, truths, probs, dm.class_names)
        Media(trainer.loggers).image(f"gradcam/{self.method}", picture, trainer.current_epoch)


def grid_image(images: np.ndarray, pred_maps, true_maps, preds, truths, probs, names) -> np.ndarray:
    """Rows of original | CAM of the predicted class | CAM of the true class, captioned."""
    tiles, captions = [], []
    for r in range(len(images)):
        tiles += [images[r], overlay(images[r], pred_maps[r]), overlay(images[r], true_maps[r])]
        captions += [
            f"true {names[truths[r]][:13]}",
            f"pred {names[preds[r]][:9]}\np={probs[r, preds[r]]:.2f}",
            f"true-class CAM\np={probs[r, truths[r]]:.2f}",
        ]
    captions[0] = captions[0] + "\n"  # keep rows aligned (2 caption lines everywhere)
    return grid(tiles, captions, columns=3)
