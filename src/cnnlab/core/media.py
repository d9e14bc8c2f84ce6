"""One path for cnnlab's pictures, tables and text to every active logger, one adapter per kind
of logger, each in the logger's own form and through its public API: TensorBoard (images, Text
tab), MLflow (`log_image` series, `log_text`/`log_table` artifacts), Weights & Biases
(`wandb.Image`, `wandb.Table`). Callbacks call `Media(trainer.loggers)`; with no logger that can
show images (`logger=csv`, `logger=none`), cnnlab says so once and goes on. Rank 0 only, like
every caller. A new kind of logger is one adapter class in `ADAPTERS`."""

from __future__ import annotations

import logging

import numpy as np
import torch
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from cnnlab.core.tables import markdown_table

log = logging.getLogger(__name__)
_said_no_images = False  # once per process: a sweep's jobs share it


def _hwc_uint8(image) -> np.ndarray:
    """(H, W, 3) uint8 from an HWC uint8 array or a CHW float tensor in [0, 1]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = image.permute(1, 2, 0)
        if image.is_floating_point():
            image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
        image = image.numpy()
    image = np.asarray(image)
    return np.repeat(image, 3, axis=2) if image.ndim == 3 and image.shape[2] == 1 else image


def _key(tag: str) -> str:
    return tag.replace("/", "_")  # MLflow artifact and image keys: no folders inside the key


class TensorBoardMedia:
    def __init__(self, logger: TensorBoardLogger) -> None:
        self.writer = logger.experiment

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self.writer.add_image(tag, picture, step, dataformats="HWC")

    def text(self, tag: str, markdown: str, step: int) -> None:
        self.writer.add_text(tag, markdown, step)

    def table(self, tag: str, header: list[str], rows: list[list], step: int) -> None:
        self.writer.add_text(tag, markdown_table(header, rows), step)  # its Text tab


class MLflowMedia:
    def __init__(self, logger: MLFlowLogger) -> None:
        self.client, self.run_id = logger.experiment, logger.run_id
        self.synchronous = getattr(logger, "synchronous", None)  # as the metrics are logged

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self.client.log_image(self.run_id, picture, key=_key(tag), step=step,
                              synchronous=self.synchronous)  # fmt: skip

    def text(self, tag: str, markdown: str, step: int) -> None:
        self.client.log_text(self.run_id, markdown, f"{tag}_step{step}.md")

    def table(self, tag: str, header: list[str], rows: list[list], step: int) -> None:
        data = {h: [r[i] for r in rows] for i, h in enumerate(header)}
        self.client.log_table(self.run_id, data, f"{tag}_step{step}.json")


class WandbMedia:
    def __init__(self, logger: WandbLogger) -> None:
        self.logger = logger

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self.logger.log_image(key=tag, images=[picture])

    def text(self, tag: str, markdown: str, step: int) -> None:
        self.logger.log_text(key=tag, columns=["markdown"], data=[[markdown]])

    def table(self, tag: str, header: list[str], rows: list[list], step: int) -> None:
        self.logger.log_table(key=tag, columns=header, data=[list(r) for r in rows])


# Each kind of logger that can show pictures → its adapter (CSV cannot: not listed).
ADAPTERS = {TensorBoardLogger: TensorBoardMedia, MLFlowLogger: MLflowMedia, WandbLogger: WandbMedia}


def _adapter(logger: Logger):
    kind = next((k for k in ADAPTERS if isinstance(logger, k)), None)
    return ADAPTERS[kind](logger) if kind else None


class Media:
    def __init__(self, loggers) -> None:
        self.loggers = list(loggers or [])
        self.adapters = [a for a in map(_adapter, self.loggers) if a is not None]

    def unavailable(self) -> bool:
        """True (and said once) when no active logger can show images."""
        global _said_no_images
        if not self.adapters and not _said_no_images:
            _said_no_images = True
            names = ", ".join(type(lg).__name__ for lg in self.loggers) or "no logger"
            log.warning(
                "images and tables (Grad-CAM, diagnostics, evaluation report) are not logged: "
                "%s cannot show them; add logger=tensorboard, mlflow or wandb "
                "(e.g. 'logger=[csv,tensorboard]')",
                names,
            )
        return not self.adapters

    def image(self, tag: str, image, step: int = 0) -> None:
        if not self.unavailable():
            picture = _hwc_uint8(image)
            for adapter in self.adapters:
                adapter.image(tag, picture, step)

    def text(self, tag: str, markdown: str, step: int = 0) -> None:
        if not self.unavailable():
            for adapter in self.adapters:
                adapter.text(tag, markdown, step)

    def table(self, tag: str, header: list[str], rows: list[list], step: int = 0) -> None:
        """A table: MLflow and W&B as tables; TensorBoard as Markdown in its Text tab."""
        if not self.unavailable():
            for adapter in self.adapters:
                adapter.table(tag, header, rows, step)
