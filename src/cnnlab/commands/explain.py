"""Explain a checkpoint's predictions with Grad-CAM:
`cnnlab-explain ckpt_path=.../best.ckpt images=photos/ method=gradcam target=pred`.

`images=` takes what `predict` takes (a file, a folder read recursively, or a glob), any number:
images stream through a DataLoader in batches and each overlay PNG is written as its batch is
done, in `<run folder>/explain/<method>-<target>/`, with the class names stored in the
checkpoint. `contact_sheet.png` shows the first SHEET_MAX of them, each under its caption.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from PIL import Image

from cnnlab.analysis.cam import cam_maps, overlay, resolve_layer
from cnnlab.analysis.render import grid
from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.core.errors import UserError
from cnnlab.inference import images
from cnnlab.inference.loading import load

SHEET_MAX = 100  # images on the contact sheet; every overlay is written as its own PNG
SHEET_TILE = 128  # pixels per side of each sheet image


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
    model = load(ckpt_path)  # network in eval mode, class names, preprocessing, temperature
    net, names, prep = model.net, model.class_names, model.preprocessing
    default_layer = model.config["model"].get("cam_layer")
    found = images.find(cfg.images).images
    dataset = images.ImageFiles.for_model(found[: cfg.limit] if cfg.limit else found, model)
    target = str(cfg.target).lower() if isinstance(cfg.target, bool) else str(cfg.target)
    out = (
        Path(cfg.out_dir)
        if cfg.out_dir
        else ckpt_path.resolve().parent.parent / "explain" / f"{cfg.method}-{target}"
    )
    layer, tiles, captions, skipped = None, [], [], []
    for batch, indices, bad in images.loader(dataset, cfg.batch_size, cfg.num_workers, False):
        for _, reason in bad:
            if cfg.on_bad_image == "fail":
                raise UserError(f"{reason} (on_bad_image=skip leaves such files out)")
            skipped.append(reason)
        if batch is None:
            continue
        paths = [dataset.paths[i] for i in indices]
        x = prep(batch)
        probs = model.predict(batch)  # calibrated, as predict
        preds = probs.argmax(1).tolist()
        classes = target_classes(target, paths, preds, names)
        layer = layer or resolve_layer(net, cfg.layer or default_layer, x[:1])
        maps = cam_maps(net, layer, x, classes, cfg.method)
        unit = prep.to_unit(batch).permute(0, 2, 3, 1).numpy()
        out.mkdir(parents=True, exist_ok=True)
        for k, (i, path) in enumerate(zip(indices, paths, strict=True)):
            shown = overlay(unit[k], maps[k])
            Image.fromarray(shown).save(out / f"{i:05d}_{path.stem}.png")
            if len(tiles) < SHEET_MAX:
                tiles.append(shown)
                captions.append(
                    f"{path.name[:20]}\npred {names[preds[k]][:13]} {probs[k, preds[k]]:.2f}\n"
                    f"CAM: {names[classes[k]][:15]}"
                )
    if not tiles:
        raise UserError(f"images={cfg.images}: no readable image ({len(skipped)} skipped)")
    sheet = grid(tiles, captions, columns=min(6, len(tiles)), tile=SHEET_TILE)
    Image.fromarray(sheet).save(out / "contact_sheet.png")
    return out


@command("explain")
def _main(cfg: DictConfig) -> None:
    print(f"wrote overlays and contact_sheet.png to {explain(cfg)}")


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()
