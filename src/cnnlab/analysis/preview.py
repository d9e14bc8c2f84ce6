"""A grid of augmented training images with their labels (mixed pairs: both, with weights)."""

from __future__ import annotations

import torch

from cnnlab.analysis.render import grid


def augmented_batch(dm, count: int = 16, seed: int = 0):
    """The first `count` training images after the whole training pipeline, seeded."""
    dm.setup("fit")
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        dm.train_set,
        batch_size=count,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=dm.train_dataloader().collate_fn,
    )
    images, targets = next(iter(loader))
    x, y = dm.train_batch(images, targets)
    return x, y


def label_of(target: torch.Tensor, names: list[str]) -> str:
    if target.ndim == 0:
        return names[int(target)]
    top = torch.topk(target, k=min(2, len(target)))  # soft targets: the mixed pair
    pairs = zip(top.values, top.indices, strict=True)
    parts = [f"{names[int(i)]} {float(p):.2f}" for p, i in pairs if p > 0.01]
    return " + ".join(parts)


def picture(dm, images: torch.Tensor, targets: torch.Tensor, columns: int = 8):
    """(H, W, 3) uint8 grid of the images, back in [0, 1], captioned with their (mixed) labels."""
    x = (images * dm.std + dm.mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    captions = [label_of(t, dm.class_names).replace(" + ", "\n+ ")[:40] for t in targets]
    captions = [c if "\n" in c else c + "\n" for c in captions]
    return grid(list(x), [c[:40] for c in captions], columns=columns)
