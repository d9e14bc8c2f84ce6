"""A grid of augmented training images with their labels, as a matplotlib figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def augmented_batch(dm, count: int = 16, seed: int = 0):
    """The first `count` training images after the whole training pipeline, seeded."""
    dm.setup("fit")
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(dm.train_set, batch_size=count, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed),
                                         collate_fn=dm.train_dataloader().collate_fn)
    images, targets = next(iter(loader))
    x, y = dm.train_batch(images, targets)
    return x, y


def label_of(target: torch.Tensor, names: list[str]) -> str:
    if target.ndim == 0:
        return names[int(target)]
    top = torch.topk(target, k=min(2, len(target)))  # soft targets: the mixed pair
    parts = [f"{names[int(i)]} {float(p):.2f}" for p, i in zip(top.values, top.indices) if p > 0.01]
    return " + ".join(parts)


def figure(dm, images: torch.Tensor, targets: torch.Tensor, columns: int = 8):
    x = (images * dm.std + dm.mean).clamp(0, 1)  # back to [0, 1] for display
    rows = (len(x) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, target in zip(axes.flat, x, targets):
        shown = img.permute(1, 2, 0).numpy()
        ax.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=1)
        ax.set_title(label_of(target, dm.class_names)[:28], fontsize=7)
    fig.tight_layout()
    return fig
