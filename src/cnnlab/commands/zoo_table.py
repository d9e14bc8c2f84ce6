"""The lecture's "ImageNet-1k benchmarks" table for every torchvision classification weight,
from the metadata torchvision ships (nothing downloaded): `make zoo ARGS="--sort top1"`.

Each weights version is a row: top-1, top-5, parameters, GMACs (what torchvision calls GFLOPS),
file size and crop size; `DEFAULT` marks the version `model.weights=DEFAULT` loads. Any of them
trains with `make train ARGS="model=torchvision model.name=<model> model.weights=<version>"`.
Below the table, each of the lecture's rows is matched to the version it quotes.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import astuple, dataclass, fields

from cnnlab.core import choices
from cnnlab.core.errors import UserError
from cnnlab.core.tables import markdown_table

# The lecture's table: torchvision name → (the lecture's name, parameters, top-1 %).
LECTURE = {
    "resnet50": ("ResNet-50", "25 M", 76.1),
    "efficientnet_b0": ("EfficientNet-B0", "5.3 M", 77.7),
    "convnext_tiny": ("ConvNeXt-T", "29 M", 82.1),
    "vit_b_16": ("ViT-B/16", "86 M", 81.1),
}
NOT_IN_TORCHVISION = (
    "ViT-L/16 + DINOv2 (300 M, 86.7 %): DINOv2's weights come from Meta's own hub "
    "(torch.hub.load('facebookresearch/dinov2', …)), not torchvision; torchvision's vit_l_16 "
    "versions are supervised (IMAGENET1K_V1) and SWAG weakly supervised"
)


@dataclass
class Entry:
    model: str
    weights: str  # the version, e.g. IMAGENET1K_V2
    default: bool  # what weights=DEFAULT loads
    top1: float  # % on ImageNet-1k val
    top5: float
    params: int
    gmacs: float  # multiply-adds at the crop size (torchvision's "GFLOPS")
    size_mb: float  # the weights file
    crop: int  # pixels per side the weights were evaluated at


COLUMNS = [f.name for f in fields(Entry)]


def entries() -> list[Entry]:
    import torchvision

    out = []
    for model in torchvision.models.list_models(module=torchvision.models):
        enum = torchvision.models.get_model_weights(model)
        for w in enum:
            scores = w.meta["_metrics"]["ImageNet-1K"]
            out.append(
                Entry(
                    model,
                    w.name,
                    w is enum.DEFAULT,
                    scores["acc@1"],
                    scores["acc@5"],
                    w.meta["num_params"],
                    w.meta["_ops"],
                    w.meta["_file_size"],
                    w.transforms().crop_size[0],
                )  # fmt: skip
            )
    return out


def lecture_notes(rows: list[Entry]) -> list[str]:
    """Which version each of the lecture's figures is, or that none is."""
    notes = []
    for model, (name, params, top1) in LECTURE.items():
        versions = [e for e in rows if e.model == model]
        same = [e for e in versions if round(e.top1, 1) == top1]
        default = next(e for e in versions if e.default)
        if same:
            quoted = same[0]
            tail = (
                "" if quoted.default else
                f"; DEFAULT is {default.weights} at {default.top1:.3f} %"
            )  # fmt: skip
            notes.append(f"{name} ({params}, {top1} %): {model} {quoted.weights} "
                         f"({quoted.top1:.3f} %){tail}")  # fmt: skip
        else:
            best = ", ".join(f"{e.weights} {e.top1:.3f} %" for e in versions)
            notes.append(f"{name} ({params}, {top1} %): no torchvision version has it ({model}: "
                         f"{best}); the lecture's figure is the paper's")  # fmt: skip
    return [*notes, NOT_IN_TORCHVISION]


def cells(e: Entry) -> list[str]:
    version = e.weights + (" (DEFAULT)" if e.default else "")
    figures = [f"{e.top1:.3f}", f"{e.top5:.3f}", f"{e.params:,}", f"{e.gmacs:.3f}"]
    return [e.model, version, *figures, f"{e.size_mb:.1f}", str(e.crop)]


HEADER = ["model", "weights", "top-1 %", "top-5 %", "params", "GMACs", "file MB", "crop"]


def render(rows: list[Entry], form: str) -> str:
    notes = lecture_notes(entries())
    if form == "csv":
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow(COLUMNS)
        out.writerows(astuple(e) for e in rows)
        return buf.getvalue()
    table = markdown_table(HEADER, [cells(e) for e in rows])
    lines = [f"{len(rows)} torchvision weights (ImageNet-1k val, from weights.meta)", "", table]
    return "\n".join([*lines, "", "The lecture's table:", *(f"- {n}" for n in notes)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cnnlab-zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sort", default="model", help=f"one of: {', '.join(choices.ZOO_SORTS)}")
    parser.add_argument("--format", default="markdown", help="markdown | csv")
    parser.add_argument(
        "--models", default="", help="comma-separated names, e.g. resnet50,vit_b_16"
    )
    args = parser.parse_args(argv)
    try:
        if args.sort not in choices.ZOO_SORTS:
            raise UserError(
                f"--sort {args.sort!r} is not valid; choose one of: {', '.join(choices.ZOO_SORTS)}"
            )
        if args.format not in ("markdown", "csv"):
            raise UserError(f"--format {args.format!r} is not valid; choose one of: markdown, csv")
        rows = entries()
        wanted = [m for m in args.models.split(",") if m]
        unknown = sorted(set(wanted) - {e.model for e in rows})
        if unknown:
            raise UserError(f"--models: {', '.join(unknown)} not a torchvision classification "
                            f"model with weights")  # fmt: skip
        rows = [e for e in rows if not wanted or e.model in wanted]
        rows.sort(key=lambda e: getattr(e, args.sort), reverse=args.sort not in ("model", "crop"))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print(render(rows, args.format))


if __name__ == "__main__":
    main()
