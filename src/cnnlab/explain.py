"""Explain a checkpoint's predictions with Grad-CAM:
`python -m cnnlab.explain ckpt_path=.../best.ckpt images=photos/ method=gradcam target=pred`.

One overlay PNG per image and a contact sheet, in `<run folder>/explain/<method>-<target>/`, with
the class names stored in the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import torch
from omegaconf import DictConfig
from PIL import Image
from torchvision.transforms import v2

from cnnlab.analysis.cam import cam_maps, overlay, resolve_layer
from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.data.folder import load_rgb
from cnnlab.errors import UserError
from cnnlab.training import build, checkpoint

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def find_images(where: Path, limit: int) -> list[Path]:
    if where.is_file():
        return [where]
    if not where.is_dir():
        raise UserError(f"images={where} is neither an image file nor a folder")
    found = sorted(p for p in where.rglob("*") if p.suffix.lower() in SUFFIXES)
    if not found:
        raise UserError(f"images={where} holds no images ({', '.join(sorted(SUFFIXES))})")
    return found[:limit]


def load_image(path: Path, channels: int, size: int) -> torch.Tensor:
    img = load_rgb(str(path))
    if channels == 1:
        img = img.convert("L")
    tensor = v2.PILToTensor()(img)
    return v2.CenterCrop(size)(v2.Resize(size, antialias=True)(tensor))


def target_classes(target: str, paths: list[Path], preds: list[int], names: list[str]) -> list[int]:
    if target == "pred":
        return preds
    if target == "true":
        missing = [p.parent.name for p in paths if p.parent.name not in names]
        if missing:
            raise UserError(
                f"target=true needs each image in a folder named after its class; "
                f"{missing[0]!r} is not one of: {', '.join(names[:10])}"
            )
        return [names.index(p.parent.name) for p in paths]
    if str(target).isdigit() and int(target) < len(names):
        return [int(target)] * len(paths)
    if str(target) in names:
        return [names.index(str(target))] * len(paths)
    raise UserError(
        f"target={target!r} is not valid; use pred, true, 0..{len(names) - 1} or a class name"
    )


def explain(cfg: DictConfig) -> Path:
    ckpt_path = Path(cfg.ckpt_path)
    ckpt = checkpoint.load(ckpt_path)
    stored, _, dm, net = build.restore(checkpoint.run_config(ckpt, ckpt_path))
    checkpoint.load_state(net, checkpoint.network_state(ckpt), ckpt_path)
    net.eval()
    names = ckpt.get("class_names") or [str(i) for i in range(stored.data.num_classes)]
    paths = find_images(Path(cfg.images), cfg.limit)
    raw = torch.stack([load_image(p, dm.in_channels, dm.image_size) for p in paths])
    x = dm.preprocess(raw)
    with torch.no_grad():
        probs = torch.softmax(net(x), dim=1)
    preds = probs.argmax(1).tolist()
    target = str(cfg.target).lower() if isinstance(cfg.target, bool) else str(cfg.target)
    classes = target_classes(target, paths, preds, names)
    layer = resolve_layer(net, cfg.layer or stored.model.get("cam_layer"), x[:1])
    maps = cam_maps(net, layer, x, classes, cfg.method)
    out = (
        Path(cfg.out_dir)
        if cfg.out_dir
        else ckpt_path.resolve().parent.parent / "explain" / f"{cfg.method}-{target}"
    )
    out.mkdir(parents=True, exist_ok=True)
    unit = dm.to_unit(raw).permute(0, 2, 3, 1).numpy()
    captions = []
    for i, path in enumerate(paths):
        shown = overlay(unit[i], maps[i])
        Image.fromarray(shown).save(out / f"{i:03d}_{path.stem}.png")
        captions.append(
            f"{path.name[:18]}\npred {names[preds[i]][:14]} {probs[i, preds[i]]:.2f}\n"
            f"CAM: {names[classes[i]][:16]}"
        )
    contact_sheet(unit, maps, captions).savefig(out / "contact_sheet.png", dpi=100)
    return out


def contact_sheet(images, maps, captions, columns: int = 6):
    rows = (len(images) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, cam, caption in zip(axes.flat, images, maps, captions, strict=False):
        ax.imshow(overlay(img, cam))
        ax.set_title(caption, fontsize=7)
    fig.tight_layout()
    return fig


@command("explain")
def _main(cfg: DictConfig) -> None:
    print(f"wrote overlays and contact_sheet.png to {explain(cfg)}")


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()
