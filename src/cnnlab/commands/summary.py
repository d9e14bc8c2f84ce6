"""Print the lecture's arithmetic for a model: `cnnlab-summary model=vgg16 data=imagenet`.

One row per layer (output shape, activations, parameters, FLOPs), then the totals: parameters,
activation memory, parameter memory, training memory with SGD+momentum and Adam, FLOPs and
multiply-adds per image. `format=markdown|csv` (or `--format markdown`) for documents.
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from cnnlab.analysis import summary_format as fmt
from cnnlab.analysis.arithmetic import Report, analyze, on_meta
from cnnlab.cli import resolvers  # noqa: F401 - resolvers before Hydra composes
from cnnlab.cli.configs import command
from cnnlab.cli.runner import run_cli
from cnnlab.core import choices
from cnnlab.core.errors import UserError
from cnnlab.models.zoo import aux_note
from cnnlab.training import build


def report_for(cfg: DictConfig) -> Report:
    """Counted on the meta device: shapes only, no weights downloaded or initialised."""
    prep = build.preprocessing(cfg)  # a weights name still decides the crop size
    build.count_classes(cfg, build.datamodule(cfg.data, prep))
    cfg = cfg.copy()
    cfg.model.weights = None
    net = on_meta(lambda: build.network(cfg.model, prep))
    report = analyze(net, (cfg.data.in_channels, prep.input_size, prep.input_size))
    note = aux_note(cfg.model.net.get("name", "")) if "name" in cfg.model.net else None
    report.notes += [note] if note else []
    return report


def render(report: Report, form: str, batch_size: int) -> str | None:
    if form not in choices.SUMMARY_FORMATS:
        raise UserError(
            f"format={form!r} is not valid; choose one of: {', '.join(choices.SUMMARY_FORMATS)}"
        )
    if form == "table":
        fmt.terminal(report, batch_size)
        return None
    return (
        fmt.markdown(report, batch_size) if form == "markdown" else fmt.to_csv(report, batch_size)
    )


@command("summary")
def _main(cfg: DictConfig) -> None:
    text = render(report_for(cfg), cfg.format, int(cfg.batch_size))
    if text is not None:
        print(text)


def main() -> None:
    # `--format markdown` reads like a CLI flag; Hydra wants `format=markdown`.
    argv = sys.argv
    if "--format" in argv[1:-1]:
        i = argv.index("--format")
        argv[i : i + 2] = [f"format={argv[i + 1]}"]
    run_cli(_main)


if __name__ == "__main__":
    main()
