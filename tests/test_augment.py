"""Augmentation presets: shapes, dtypes and ranges; eval determinism; MixUp/CutMix targets."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from cnnlab.training import build
from cnnlab.training.module import ClassifierModule
from tests.conftest import options

POLICIES = [o for o in options("augment")]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("augment", POLICIES)
def test_policy_keeps_shape_dtype_and_range(compose, augment, channels):
    cfg = compose(
        "data=fake", f"data.in_channels={channels}", "data.image_size=32", f"augment={augment}"
    )
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    dm.setup("fit")
    images, targets = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape[1:] == (channels, 32, 32)
    x, y = dm.train_batch(images, targets)
    assert x.dtype == torch.float32 and x.shape == (len(images), channels, 32, 32)
    unit = x * dm.std + dm.mean
    assert unit.min() >= -1e-4 and unit.max() <= 1 + 1e-4
    if augment == "mixup_cutmix":
        assert y.shape == (len(images), 10) and torch.allclose(y.sum(1), torch.ones(len(images)))
    else:
        assert torch.equal(y, targets)


def test_augmentation_changes_training_images_only(compose):
    cfg = compose("data=fake", "augment=randaugment")
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    dm.setup("fit")
    raw = dm.train_set.images[:16]
    torch.manual_seed(0)
    augmented, _ = dm.train_set.__getitems__(list(range(16)))
    assert not torch.equal(augmented, raw)
    val_a, _ = next(iter(dm.val_dataloader()))
    val_b, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(dm.preprocess(val_a), dm.preprocess(val_b))  # eval is deterministic


def test_eval_transform_of_an_image_folder_is_deterministic(compose, tmp_path):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 30), (i * 100, 50, 200)).save(
                    tmp_path / split / cls / f"{i}.png"
                )
    cfg = compose(
        "data=image_folder",
        f"data.source.root={tmp_path}",
        "data.num_classes=2",
        "data.image_size=24",
        "data.num_workers=0",
        "augment=imagenet",
    )
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    dm.setup("fit")
    first, second = dm.val_set[0][0], dm.val_set[0][0]
    assert first.shape == (3, 24, 24) and first.dtype == torch.uint8 and torch.equal(first, second)
    train_img = dm.train_set[0][0]
    assert train_img.shape == (3, 24, 24) and train_img.dtype == torch.uint8


# The steps are called here without a Trainer on purpose; Lightning warns that self.log has none.
@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_soft_targets_work_in_loss_and_accuracy(compose):
    cfg = compose("data=fake", "augment=mixup_cutmix", "model=mlp")
    _, dm, net = build.data_and_network(cfg)
    dm.setup("fit")
    module = build.classifier(cfg, net)
    images, targets = next(iter(dm.train_dataloader()))
    x, soft = dm.train_batch(images, targets)
    assert isinstance(module, ClassifierModule)
    loss = module.training_step((x, soft), 0)
    module._fold_train_steps()  # what the epoch's end does before reading the totals
    loss_sum, top1, top5, n = module._train_totals.tolist()
    assert torch.isfinite(loss) and n == len(x) and 0 <= top1 <= top5 <= n
    assert loss_sum / n == pytest.approx(float(loss.detach()))
    logits = module.validation_step((x, soft), 0)  # returned for callbacks (diagnostics)
    assert logits.shape == (len(x), cfg.data.num_classes) and not logits.requires_grad
    assert 0 <= module.metrics["val"]["scores"]["acc"].compute() <= 1


def test_preview_png_is_a_real_image(compose, tmp_path):
    from cnnlab.commands.augment_preview import preview

    out = preview(compose("augment=mnist"), tmp_path / "grid.png", count=16)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 400 and img.size[1] > 100
        assert len(set(img.convert("L").getdata())) > 50  # digits, not a blank canvas
