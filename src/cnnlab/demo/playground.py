"""The playground page (`make playground`, the demo extra): the lecture's interactive demos,
computed with torch (`cnnlab.demo.lessons`) and drawn here. Tabs: image kernels, convolution
arithmetic (with receptive fields), and, given `ckpt_path=`, inside a trained network. It reads
only what is uploaded to it and writes only into its run folder."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from cnnlab.analysis import inside, kernels
from cnnlab.analysis.render import grid
from cnnlab.core.errors import UserError
from cnnlab.demo import drawing, lessons
from cnnlab.demo.page import Classifier, read_upload

KEEP = 32  # files the run folder keeps of the pages' answers (the newest)


class Playground:
    """The tabs' answers: pictures, Markdown and numbers; a bad input raises one UserError."""

    def __init__(self, data_dir: str | Path, folder: Path, uploads: str | Path,
                 classifier: Classifier | None = None, test_images=None):  # fmt: skip
        self.data_dir, self.folder, self.uploads = data_dir, folder, uploads
        self.classifier, self.test_images = classifier, test_images

    def _file(self, name: str, data: bytes) -> str:
        """Written into the run folder (the only place the page serves files from), under a
        name of its own (handlers may run at once); only the newest KEEP stay, so a class
        session does not fill the disk (Gradio has copied the older ones to its cache)."""
        path = self.folder / f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}_{name}"
        path.write_bytes(data)
        for old in sorted(self.folder.glob("*-*_*.*"))[:-KEEP]:  # the names sort by time
            old.unlink(missing_ok=True)
        return str(path)

    def picture(self, choice: str, upload) -> np.ndarray:
        if upload:
            return read_upload(upload, self.uploads, lessons.read_upload)
        return lessons.photo(choice, self.data_dir)

    def kernel(self, choice: str, upload, text: str, row: float, col: float, bias: float):
        """(the picture, the summed feature map, the per-channel maps, the cell's arithmetic,
        the numbers as .npz: per_channel (C, H, W) and summed (H, W), float64)."""
        image = self.picture(choice, upload)
        k = lessons.parse_kernel(text)
        x = kernels.to_unit(image)
        per_channel, summed = kernels.convolve(x, k)
        r, c = _whole(row, "row"), _whole(col, "column")
        cell = kernels.cell(x, k, r, c, float(bias or 0))
        channels = [drawing.diverging(m.numpy(), 200) for m in per_channel]
        captions = [f"channel {i}: k * im^{i}" for i in range(len(channels))]
        tiles = grid(channels, captions, columns=len(channels), tile=200)
        buffer = io.BytesIO()
        np.savez(buffer, per_channel=per_channel.numpy(), summed=summed.numpy(), kernel=k.numpy())
        return (
            drawing.gray(image),
            drawing.diverging(summed.numpy()),
            tiles,
            lessons.cell_markdown(cell, r, c),
            self._file("feature_map.npz", buffer.getvalue()),
        )

    def arithmetic(self, size, kernel, padding, stride, dilation, c_in, c_out, animate=True):
        values = [_whole(v, n) for v, n in ((size, "W"), (kernel, "F"), (padding, "P"),
                                            (stride, "S"), (dilation, "dilation"),
                                            (c_in, "C_in"), (c_out, "C_out"))]  # fmt: skip
        text, numbers = lessons.arithmetic(*values)
        size, kernel, padding, stride, dilation = values[:5]
        frames = None
        if animate and size + 2 * padding <= drawing.MAX_GRID:
            cells = kernels.windows(size, kernel, padding, stride, dilation)
            gif = drawing.windows_gif(size + 2 * padding, padding, numbers["output"], cells)
            frames = self._file("windows.gif", gif)
        elif animate:
            text += (f"\n\nThe windows are drawn for a padded input of at most "
                     f"{drawing.MAX_GRID}×{drawing.MAX_GRID}.")  # fmt: skip
        return text, frames, lessons.pooled(size), numbers

    def receptive(self, stack: str):
        return lessons.receptive_table(stack)

    # Inside a trained network (ckpt_path=): the filters, an image's stages, top crops, CAM.
    def filters(self):
        model = self._model()
        weights = inside.first_conv(model.net).weight.detach().cpu()
        buffer = io.BytesIO()
        np.save(buffer, weights.numpy())
        picture = (inside.filter_grid(model.net).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        return drawing.gray(picture, 480), self._file("first_conv.npy", buffer.getvalue())

    def stages(self, upload):
        model = self._model()
        images = self._images(upload)
        x = model.preprocess(images).to(model.device)
        tiles, captions = [], []
        for stage in inside.stage_maps(model.net, x):
            for channel, m in zip(stage.channels, inside.scaled(stage.maps), strict=True):
                tiles.append((m.cpu().numpy() * 255).astype(np.uint8))
                captions.append(f"{stage.layer}\nchannel {channel}")
        overlay = self.classifier.classify(images)[1]
        return grid(tiles, captions, columns=8, tile=72), overlay

    def top(self, layer: str, channel: float):
        model = self._model()
        picked = inside.stages(model.net, _input_shape(model))
        if layer not in picked:
            raise UserError(f"layer {layer!r}; valid: {', '.join(picked)}")
        if self.test_images is None:
            raise UserError("the run's test split is not on this machine: no crops to rank")
        images = self.test_images
        x = model.preprocess(images).to(model.device)
        count = inside.outputs(model.net, x[:1], [layer])[layer].shape[1]
        c = _whole(channel, "channel")
        if not 0 <= c < count:
            raise UserError(f"channel={c}; valid: 0–{count - 1} for {layer}")
        pictures = (model.preprocessing.to_unit(images) * 255).round().to(torch.uint8)
        found = inside.top_crops(model.net, layer, c, x, pictures, picked[layer])
        tiles = [crop.permute(1, 2, 0).numpy() for _, _, crop in found]
        captions = [f"test image {i}\nresponse {v:.2f}" for i, v, _ in found]
        return grid(tiles, captions, columns=4, tile=96)

    def _model(self):
        if self.classifier is None:
            raise UserError("no checkpoint: start the playground with ckpt_path=…/best.ckpt")
        return self.classifier.model

    def _images(self, upload) -> torch.Tensor:
        model = self._model()
        return read_upload(upload, self.uploads, lambda path: model.read([path]))


def _input_shape(model) -> tuple[int, int, int]:
    side = int(model.preprocessing.input_size)
    return model.in_channels, side, side


def _whole(value, name: str) -> int:
    """A number box's value as a whole number, or one line naming the box."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name}={value!r}; valid: a whole number") from None
    if not number.is_integer():
        raise UserError(f"{name}={value!r}; valid: a whole number")
    return int(number)
