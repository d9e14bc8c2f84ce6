"""Index arithmetic on a split's targets: stratified k-fold, a long-tailed subset for imbalance
studies, and the per-class counts that balancing reads. Seeded: the same indices on every run
and every DDP rank."""

from __future__ import annotations

import torch


def stratified_folds(targets: torch.Tensor, k: int, seed: int) -> list[torch.Tensor]:
    """k disjoint folds covering every index, each with (within one image) the same share of
    every class: each class is shuffled, then dealt round-robin."""
    g = torch.Generator().manual_seed(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    dealt = 0  # where the next class starts dealing: fold sizes differ by at most one
    for c in targets.unique().tolist():
        members = torch.nonzero(targets == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        for j, i in enumerate(members.tolist()):
            folds[(dealt + j) % k].append(i)
        dealt += len(members)
    return [torch.tensor(sorted(f), dtype=torch.long) for f in folds]


def long_tail(targets: torch.Tensor, ratio: float, seed: int) -> torch.Tensor:
    """Indices of a long-tailed subset: class c (by index) keeps n_max · ratio^(c / (C−1)) of its
    images (the exponential profile of CIFAR-10-LT, Cui et al. 2019), so the largest class has
    1/ratio times the images of the smallest."""
    g = torch.Generator().manual_seed(seed)
    classes = targets.unique().tolist()
    counts = {c: int((targets == c).sum()) for c in classes}
    top = max(counts.values())
    kept = []
    for rank, c in enumerate(classes):
        keep = max(1, min(counts[c], round(top * ratio ** (rank / max(1, len(classes) - 1)))))
        members = torch.nonzero(targets == c).flatten()
        kept.append(members[torch.randperm(len(members), generator=g)[:keep]])
    return torch.cat(kept).sort().values


def class_counts(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(targets.long(), minlength=num_classes)


def balanced_weights(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class loss weights N / (C · n_c) (scikit-learn's "balanced"): a class with half the
    images weighs twice; classes without images weigh 0."""
    counts = class_counts(targets, num_classes).float()
    present = counts > 0
    weights = torch.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights
