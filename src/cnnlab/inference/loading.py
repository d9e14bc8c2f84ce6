"""A trained checkpoint in a notebook or script, without Hydra:

    import cnnlab
    model = cnnlab.load("outputs/train/runs/x/checkpoints/best.ckpt")
    probs = model.predict(images)          # uint8 (N, C, H, W) → class probabilities
    probs = model.predict_files(["cat.jpg", "dog.png"])   # files, read as `predict` reads them
    model.class_names[probs.argmax(1)[0]]

The network comes back in eval mode, rebuilt from the config the checkpoint stores, with the
class names and the preprocessing (mean, std, input size) it was trained with. Nothing is
downloaded: the checkpoint holds the trained weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.core import checkpoint
from cnnlab.core.preprocessing import Preprocessing
from cnnlab.models import build


@dataclass
class LoadedModel:
    net: nn.Module  # in eval mode
    class_names: list[str]
    preprocessing: Preprocessing  # mean, std, input_size
    in_channels: int
    config: dict[str, Any]  # the resolved training config
    temperature: float = 1.0  # logits are divided by it (`eval calibrate=true` stores it)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) images → the normalised float batch the network expects."""
        return self.preprocessing(images)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) images → logits (N, classes), calibrated when a temperature is
        stored."""
        logits = self.net(self.preprocess(images.to(self.device)))
        return logits / self.temperature if self.temperature != 1.0 else logits

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) images → class probabilities (N, classes)."""
        return torch.softmax(self.logits(images), dim=1)

    def read(self, paths: Sequence[str | Path]) -> torch.Tensor:
        """Image files → uint8 (N, C, S, S), read exactly as `predict` reads them: turned upright
        by their EXIF orientation, transparency on white, 16-bit scaled to 8, converted to the
        network's channels, then the run's eval resize and centre crop. An unreadable file
        raises UserError naming it."""
        from cnnlab.core.errors import UserError
        from cnnlab.inference.images import ImageFiles

        files = ImageFiles.for_model([Path(p) for p in paths], self)
        images = []
        for i in range(len(files)):
            image, _, error = files[i]
            if image is None:
                raise UserError(error)
            images.append(image)
        if not images:
            raise UserError("no image files given")
        return torch.stack(images)

    def predict_files(self, paths: Sequence[str | Path]) -> torch.Tensor:
        """Image files → class probabilities (N, classes): `predict`'s numbers (tta=none)."""
        return self.predict(self.read(paths))


def load(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    config_dir: str | Path | None = None,
    trusted: Iterable[str] = (),
) -> LoadedModel:
    """`config_dir`: a project's config folder (as `--config-dir` on the command line) whose
    `_target_`s the checkpoint may name; without it only cnnlab's own builders are accepted.
    `trusted`: further builder names the caller vouches for (the overrides it trained with)."""
    path = Path(path)
    ckpt = checkpoint.load(path)  # weights_only=True: never runs code stored in the file
    dirs = [config_dir] if config_dir else ()
    stored = checkpoint.run_config(ckpt, path, dirs, also=trusted)
    cfg, prep, net = build.restore_network(stored)
    checkpoint.load_state(net, checkpoint.network_state(ckpt, path), path)
    num_classes = int(cfg.data.num_classes)
    names = checkpoint.class_names(ckpt, num_classes, path)
    return LoadedModel(
        net=net.to(map_location).eval(),
        class_names=list(names),
        preprocessing=prep,
        in_channels=int(cfg.data.in_channels),
        config=stored,
        temperature=checkpoint.temperature(ckpt, path),
    )
