"""Imbalanced data and k-fold: long-tailed subsets, balancing by sampler or loss weights, and
stratified folds that are disjoint and cover the pool."""

from __future__ import annotations

import pytest
import torch

from cnnlab.cli.schema import validate
from cnnlab.core.errors import UserError
from cnnlab.data import splits
from cnnlab.training import build


def test_stratified_folds_are_disjoint_cover_the_pool_and_keep_class_shares():
    targets = torch.arange(10).repeat_interleave(torch.arange(10, 110, 10))  # 10, 20, … 100
    folds = splits.stratified_folds(targets, 5, seed=0)
    joined = torch.cat(folds)
    assert len(joined) == len(targets) and set(joined.tolist()) == set(range(len(targets)))
    assert max(len(f) for f in folds) - min(len(f) for f in folds) <= 1
    for fold in folds:
        counts = splits.class_counts(targets[fold], 10)
        expected = splits.class_counts(targets, 10) / 5
        assert (counts - expected).abs().max() <= 1  # within one image of its share
    assert [f.tolist() for f in folds] == [
        f.tolist() for f in splits.stratified_folds(targets, 5, 0)
    ]


def test_long_tail_keeps_the_ratio_between_largest_and_smallest_class():
    targets = torch.arange(10).repeat_interleave(360)
    kept = splits.long_tail(targets, 0.05, seed=0)
    counts = splits.class_counts(targets[kept], 10)
    assert counts[0] == 360 and counts[-1] == 18 and (counts[:-1] >= counts[1:]).all()


def test_balanced_weights_are_inverse_frequencies():
    weights = splits.balanced_weights(torch.tensor([0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([4 / 6, 2.0, 0.0])


def _datamodule(compose, *overrides):
    _, dm, _ = build.data_and_network(compose("debug=test", *overrides))
    dm.setup("fit")
    return dm


def test_the_sampler_draws_classes_near_uniformly_from_a_long_tail(compose):
    dm = _datamodule(compose, "data.imbalance=0.05", "data.balance=sampler")
    on_disk = splits.class_counts(dm.train_set.targets, 10)
    assert on_disk.max() / on_disk.min() >= 15  # the training split is long-tailed …
    torch.manual_seed(0)
    drawn = torch.zeros(10, dtype=torch.long)
    for _ in range(4):  # … and four epochs of batches see every class about as often
        for _, targets in dm.train_dataloader():
            drawn += splits.class_counts(targets, 10)
    shares = drawn.float() / drawn.sum()
    assert (shares - 0.1).abs().max() < 0.03, shares
    assert dm.class_weights() is None


def test_loss_balancing_weighs_rare_classes_up(compose):
    dm = _datamodule(compose, "data.imbalance=0.05", "data.balance=loss")
    weights = dm.class_weights()
    assert weights[-1] / weights[0] == pytest.approx(20, rel=0.1)


def test_a_fold_validates_and_the_others_train_with_the_test_split_untouched(compose):
    whole = _datamodule(compose)
    dms = [_datamodule(compose, "data.folds=4", f"data.fold={i}") for i in range(4)]

    def hashes(images) -> set[str]:
        return {images.content_hash(i) for i in range(len(images))}

    vals = [hashes(dm.val_set) for dm in dms]
    pool = hashes(whole.train_set) | hashes(whole.val_set)
    assert set().union(*vals) == pool and sum(len(v) for v in vals) == len(pool)
    for dm, val in zip(dms, vals, strict=True):
        assert not val & hashes(dm.train_set)
        assert hashes(dm.test_set) == hashes(whole.test_set)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.balance=oversample"], "data.balance='oversample' is not valid; choose one of"),
        (["data.folds=5", "data.fold=5"], "data.fold=5 is out of range; valid: 0 to 4 "),
    ],
)
def test_bad_balance_and_fold_values_are_one_line(compose, overrides, message):
    with pytest.raises(UserError, match=message):
        validate(compose(*overrides))
