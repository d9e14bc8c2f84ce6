"""More of what the network does, in TensorBoard, every N epochs on the validation split:
confusion matrix and per-class accuracy, the most confidently wrong images, the first layer's
filters, and one image's feature maps at a few depths (the lecture's feature visualisation).
Rank 0 only."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassConfusionMatrix
from torchvision.utils import make_grid

from cnnlab.analysis import inside
from cnnlab.analysis.eval_figures import DRAWN_UP_TO
from cnnlab.analysis.render import confusion_image, mistakes_grid
from cnnlab.callbacks.picture_epochs import draws_after_this_epoch
from cnnlab.core.media import Media

MAX_IMAGES = 2000  # validation images scanned per call


def _val_tensors(dm) -> tuple[torch.Tensor, torch.Tensor]:
    images, targets = [], []
    seen = 0
    for batch_images, batch_targets in dm.val_dataloader():
        images.append(batch_images)
        targets.append(torch.as_tensor(batch_targets))
        seen += len(batch_images)
        if seen >= MAX_IMAGES:
            break
    return torch.cat(images)[:MAX_IMAGES], torch.cat(targets)[:MAX_IMAGES]


class Diagnostics(L.Callback):
    def __init__(self, every_n_epochs: int = 0, worst: int = 16, feature_maps: int = 16):
        self.every_n_epochs = every_n_epochs
        self.worst = worst
        self.feature_maps = feature_maps
        # (probabilities, targets) per validation batch of a due epoch, in the split's order
        self._seen: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # One process sees the whole split in order; DDP ranks see shards, so they predict again.
        self._seen = (
            []
            if draws_after_this_epoch(trainer, self.every_n_epochs) and trainer.world_size == 1
            else None
        )

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        seen = self._seen
        if seen is None or not isinstance(outputs, torch.Tensor) or outputs.ndim != 2:
            return
        if sum(len(t) for _, t in seen) < MAX_IMAGES:
            seen.append((torch.softmax(outputs.float(), 1).cpu(), torch.as_tensor(batch[1]).cpu()))

    def _validation_pass(self, dm) -> tuple[torch.Tensor, torch.Tensor] | None:
        """This epoch's validation probabilities and targets when they cover the split's first
        min(len, MAX_IMAGES) images in order (the targets agree); else None (then the split is
        predicted again)."""
        seen, self._seen = self._seen, None
        val = dm.val_set
        if not seen or getattr(val, "streaming", False):
            return None
        probs, targets = torch.cat([p for p, _ in seen]), torch.cat([t for _, t in seen])
        n = min(len(val), MAX_IMAGES)
        if len(targets) < n or not torch.equal(targets[:n], torch.as_tensor(val.targets[:n])):
            return None
        return probs[:n], targets[:n]

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not draws_after_this_epoch(trainer, self.every_n_epochs):
            return
        media = Media(trainer.loggers)
        if media.unavailable():
            return
        dm, net, step = trainer.datamodule, pl_module.net, trainer.current_epoch
        reused = self._validation_pass(dm)
        was_training = net.training
        net.eval()
        if reused is not None:
            probs, targets = reused
            first = dm.val_set[0][0][None]

            def images_at(idx: list[int]) -> torch.Tensor:
                return torch.stack([torch.as_tensor(dm.val_set[i][0]) for i in idx])
        else:
            images, targets = _val_tensors(dm)
            first = images[:1]
            with torch.no_grad():
                x = dm.preprocess(images.to(pl_module.device))
                probs = torch.cat([torch.softmax(net(c), 1) for c in x.split(256)]).cpu()

            def images_at(idx: list[int]) -> torch.Tensor:
                return images[idx]

        worst = self.worst_grid(dm, images_at, targets, probs)
        per_class = self.per_class_accuracy(probs, targets, dm.class_names)
        drawn = {  # (H, W, 3) uint8, drawn with PIL
            "diagnostics/confusion_matrix": self.confusion(probs, targets, dm.class_names),
            "diagnostics/worst_misclassified": worst,
        }
        pictures = {  # (C, H, W) tensors
            "diagnostics/first_layer_filters": self.filters(net),
            "diagnostics/feature_maps": self.maps(net, dm.preprocess(first.to(pl_module.device))),
        }
        net.train(was_training)
        for tag, img in {**pictures, **drawn}.items():
            if img is not None:
                media.image(tag, img, step)
        per_class = {f"val_per_class_acc/{name}": acc for name, acc in per_class.items()}
        for lg in trainer.loggers:
            lg.log_metrics(per_class, step=trainer.global_step)

    @staticmethod
    def confusion(probs, targets, names):
        # Rank 0 only: syncing would wait for ranks that never call it (a gloo collective mismatch).
        if len(names) > DRAWN_UP_TO:  # no picture can name them (analysis.eval_figures)
            return None
        metric = MulticlassConfusionMatrix(num_classes=len(names), sync_on_compute=False)
        metric.update(probs.argmax(1), targets)
        return confusion_image(metric.compute().numpy(), [n[:12] for n in names])

    @staticmethod
    def per_class_accuracy(probs, targets, names) -> dict[str, float]:
        preds = probs.argmax(1)
        return {
            f"{i:03d}_{n[:20]}": float((preds[targets == i] == i).float().mean())
            for i, n in enumerate(names)
            if (targets == i).any()
        }

    def worst_grid(self, dm, images_at, targets, probs):
        """`images_at(indices)`: those validation images, uint8 (N, C, H, W)."""
        conf, preds = probs.max(1)
        wrong = torch.nonzero(preds != targets).flatten()
        order = wrong[conf[wrong].argsort(descending=True)][: self.worst].tolist()
        images = images_at(order) if order else []
        mistakes = [
            (float(conf[i]), images[k], int(targets[i]), int(preds[i])) for k, i in enumerate(order)
        ]
        return mistakes_grid(mistakes, dm.to_unit, dm.class_names, count=self.worst)

    @staticmethod
    def filters(net: nn.Module):
        return inside.filter_grid(net)  # the playground's picture of them, too

    def maps(self, net: nn.Module, x: torch.Tensor):
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            return None
        picked = sorted({0, len(convs) // 2, len(convs) - 1})
        outputs: list[torch.Tensor] = []
        hooks = [convs[i].register_forward_hook(lambda m, i, o: outputs.append(o)) for i in picked]
        with torch.no_grad():
            net(x)
        for h in hooks:
            h.remove()
        size = x.shape[-1]
        tiles = []
        for out in outputs:
            maps = out[0, : self.feature_maps].unsqueeze(1).float().cpu()
            tiles.append(torch.nn.functional.interpolate(inside.scaled(maps), size=(size, size)))
        return make_grid(torch.cat(tiles), nrow=self.feature_maps, padding=1, pad_value=1.0)
