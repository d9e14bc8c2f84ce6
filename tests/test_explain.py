"""`explain`: overlays and a contact sheet for a checkpoint, with its stored class names."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cnnlab.cli.schema import validate
from cnnlab.commands.explain import explain
from cnnlab.commands.train import train
from cnnlab.core.errors import UserError


@pytest.fixture
def shapes_checkpoint(quick) -> Path:
    cfg = quick("data=shapes", "data.source.num_samples=200", "data.source.num_test=20")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"


def _images(root: Path) -> Path:
    for i, cls in enumerate(["circle", "square", "circle"]):
        (root / cls).mkdir(parents=True, exist_ok=True)
        Image.new("L", (48, 48), 30 + i).save(root / cls / f"{i}.png")
    return root


def test_explain_writes_overlays_next_to_the_run(compose, shapes_checkpoint, tmp_path):
    images = _images(tmp_path / "imgs")
    cfg = compose(
        f"ckpt_path={shapes_checkpoint}", f"images={images}", "target=true", config_name="explain"
    )
    out = explain(cfg)
    assert out == shapes_checkpoint.parent.parent / "explain" / "gradcam-true"
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 4 and "contact_sheet.png" in pngs
    with Image.open(out / pngs[0]) as img:
        assert img.size == (48, 48) and img.mode == "RGB"


def test_explain_rejects_unknown_class_and_method(compose, shapes_checkpoint, tmp_path):
    images = _images(tmp_path / "imgs")
    with pytest.raises(UserError, match="target='hexagon' is not valid"):
        explain(
            compose(
                f"ckpt_path={shapes_checkpoint}",
                f"images={images}",
                "target=hexagon",
                config_name="explain",
            )
        )
    with pytest.raises(UserError, match="method='magic' is not valid; choose one of: gradcam"):
        validate(  # the config check every command runs first, before torch loads
            compose(
                f"ckpt_path={shapes_checkpoint}",
                f"images={images}",
                "method=magic",
                config_name="explain",
            )
        )


def test_explain_takes_any_number_of_images_by_glob_and_sizes_its_sheet_to_them(
    compose, digits_run, tmp_path
):
    from cnnlab.commands.explain import SHEET_TILE
    from cnnlab.data.mnist_sample import write_pngs

    digits = write_pngs(tmp_path / "digits")
    ckpt = digits_run / "checkpoints" / "best.ckpt"
    pattern = f"{digits}/[01]*/*.png"  # 200 images: more than the old cap of 64
    out = explain(compose(f"ckpt_path={ckpt}", f'images="{pattern}"', f"out_dir={tmp_path / 'x'}",
                          config_name="explain"))  # fmt: skip
    assert len(list(out.glob("0*.png"))) == 200
    two = explain(compose(f"ckpt_path={ckpt}", f"images={digits}/0 - zero", "limit=2",
                          f"out_dir={tmp_path / 'y'}", config_name="explain"))  # fmt: skip
    with Image.open(two / "contact_sheet.png") as sheet:  # two images: a sheet for two
        width, height = sheet.size
        row = height - 4  # one row: the picture under its three caption lines, and padding
        assert width == 2 * (SHEET_TILE + 4) + 4 and row >= SHEET_TILE + 3 * 11 + 4
    with Image.open(out / "contact_sheet.png") as sheet:  # the first 100: six columns, 17 rows
        assert sheet.size == (6 * (SHEET_TILE + 4) + 4, 17 * row + 4)
