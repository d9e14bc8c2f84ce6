"""The lecture's two interactive demos as plain torch: image kernels (a kernel slid over a
photo, per channel and summed, and one output cell's arithmetic) and convolution arithmetic
(the output size, the kernel's windows over the padded input, parameters against a dense
layer, pooling). `cnnlab.demo.playground` draws them; every number comes from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.core.errors import UserError

# Preset kernels (the names setosa.io's image-kernel demo uses, and the lecture's edge detectors).
PRESETS: dict[str, list[list[float]]] = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "Gaussian blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
}
KERNEL_SIDES = (3, 5)  # the editable grids
LIMIT = 10_000  # |value| allowed in a kernel cell: beyond it the picture says nothing


def kernel(cells) -> torch.Tensor:
    """A square kernel from rows of cells (numbers or text), checked: 3×3 or 5×5, every cell a
    finite number of at most LIMIT in size. One `UserError` line naming the bad cell."""
    rows = [list(r) for r in cells]
    side = len(rows)
    if side not in KERNEL_SIDES or any(len(r) != side for r in rows):
        shape = f"{side}×{max((len(r) for r in rows), default=0)}"
        raise UserError(
            f"a {shape} kernel; valid: " + " or ".join(f"{s}×{s}" for s in KERNEL_SIDES)
        )
    values = []
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            try:
                value = float(str(cell).strip())
            except ValueError:
                raise UserError(
                    f"kernel cell ({i + 1}, {j + 1}) is {cell!r}, not a number"
                ) from None
            if not math.isfinite(value) or abs(value) > LIMIT:
                raise UserError(f"kernel cell ({i + 1}, {j + 1}) is {cell!r}; valid: a finite "
                                f"number between -{LIMIT:,} and {LIMIT:,}")  # fmt: skip
            values.append(value)
    return torch.tensor(values, dtype=torch.float64).reshape(side, side)


def to_unit(image) -> torch.Tensor:
    """(C, H, W) float64 in [0, 1] from an (H, W) or (H, W, C) uint8 array."""
    x = torch.as_tensor(image)
    x = x[..., None] if x.ndim == 2 else x
    return x.permute(2, 0, 1).to(torch.float64) / 255


def convolve(image: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The lecture's (k ⋆ im) = Σ_c k^c ⋆ im^c with the same kernel on every channel and zero
    padding that keeps the size: (per channel (C, H, W), their sum (H, W))."""
    channels = image.shape[0]
    weight = k.to(image.dtype).expand(channels, 1, *k.shape)
    per_channel = F.conv2d(image[None], weight, padding=k.shape[-1] // 2, groups=channels)[0]
    return per_channel, per_channel.sum(0)


@dataclass(frozen=True)
class Cell:
    """One output cell worked out: z = relu(wᵀx + b) over the window at (row, col)."""

    kernel: torch.Tensor  # (F, F) the weights w, the same on every channel
    window: torch.Tensor  # (C, F, F) input values x (zero where the window leaves the image)
    products: torch.Tensor  # (C, F, F) w × x
    per_channel: torch.Tensor  # (C,) wᵀx per channel
    bias: float

    @property
    def total(self) -> float:
        return float(self.per_channel.sum()) + self.bias

    @property
    def relu(self) -> float:
        return max(self.total, 0.0)


def cell(image: torch.Tensor, k: torch.Tensor, row: int, col: int, bias: float = 0.0) -> Cell:
    """The window under output cell (row, col) of `convolve(image, k)` and its arithmetic."""
    _, height, width = image.shape
    if not (0 <= row < height and 0 <= col < width):
        raise UserError(f"cell ({row}, {col}) is outside the {height}×{width} feature map; "
                        f"valid: row 0–{height - 1}, column 0–{width - 1}")  # fmt: skip
    half = k.shape[-1] // 2
    padded = F.pad(image, (half, half, half, half))
    window = padded[:, row : row + 2 * half + 1, col : col + 2 * half + 1]
    products = window * k.to(image.dtype)
    return Cell(k.to(image.dtype), window, products, products.sum((1, 2)), float(bias))


def effective_size(kernel: int, dilation: int = 1) -> int:
    """E = D·(F − 1) + 1: the input span a dilated kernel covers."""
    return dilation * (kernel - 1) + 1


def output_size(size: int, kernel: int, padding: int = 0, stride: int = 1, dilation: int = 1,
                pool: bool = False) -> int:  # fmt: skip
    """W_o = ⌊(W − E + 2P)/S⌋ + 1, E = D·(F − 1) + 1 the kernel's effective size, as
    `nn.Conv2d` (or, `pool`, `nn.MaxPool2d`) computes it; a combination neither accepts raises
    one `UserError` line saying why."""
    for name, value, least in (("W", size, 1), ("F", kernel, 1), ("S", stride, 1),
                               ("dilation", dilation, 1), ("P", padding, 0)):  # fmt: skip
        if value < least:
            raise UserError(f"{name}={value}; valid: a whole number ≥ {least}")
    effective = effective_size(kernel, dilation)
    if pool and padding > kernel // 2:
        raise UserError(
            f"P={padding} with a {kernel}×{kernel} pool: a pool's padding is at most "
            f"half its kernel (P ≤ {kernel // 2}), or a window would see only padding"
        )
    if size + 2 * padding < effective:
        raise UserError(f"the kernel does not fit: its effective size E = D·(F − 1) + 1 = "
                        f"{effective} is larger than the padded input W + 2P = "
                        f"{size + 2 * padding}")  # fmt: skip
    return (size + 2 * padding - effective) // stride + 1


def windows(size: int, kernel: int, padding: int = 0, stride: int = 1,
            dilation: int = 1) -> list[list[tuple[int, int]]]:  # fmt: skip
    """For each output position (row-major), the padded-input cells (row, col) its window
    covers: Dumoulin's animation frames."""
    out = output_size(size, kernel, padding, stride, dilation)
    taps = [i * dilation for i in range(kernel)]
    return [[(r * stride + a, c * stride + b) for a in taps for b in taps]
            for r in range(out) for c in range(out)]  # fmt: skip


def pool(grid: torch.Tensor, kind: str, kernel: int = 2, stride: int = 2) -> torch.Tensor:
    """2×2 max or average pooling of a (H, W) grid, as `nn.MaxPool2d` / `nn.AvgPool2d`."""
    op = {"max": F.max_pool2d, "average": F.avg_pool2d}[kind]
    return op(grid[None, None].to(torch.float64), kernel, stride)[0, 0]
