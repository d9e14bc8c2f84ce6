"""The options table of the *Training and configs* page, generated from conf/ when the site is
built (a MkDocs hook, mkdocs.yml `hooks:`): every group, each option file, the default marked,
and the short note an option file gives in a `# option: …` comment. Adding a model, dataset or
callback is then its code and its YAML file; the table follows."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parents[2] / "conf"
MARKER = "<!-- options table: generated from conf/ -->"
# The table's rows, in order, and what each says about the group as a whole.
GROUPS = {
    "data": "sizes and class counts flow into the model (`${data.num_classes}`; folders, shards "
    "and Hugging Face ClassLabels count their own classes)",
    "model": "see *Model zoo*",
    "optimizer": "`optimizer.lr=…`, `optimizer.weight_decay=…`",
    "scheduler": "",
    "augment": "training only; see *Augmentation*",
    "trainer": "any `trainer.<Lightning arg>=…`",
    "module": "`module.label_smoothing=…`, `module.channels_last=…`, `module.compile=true`",
    "callbacks": "`'callbacks=[default,ema]'` adds one; `callbacks.progress_bar=null` drops one",
    "logger": "any set as a list: `'logger=[tensorboard,wandb]'`",
    "freeze": "which parameters train; see *Transfer learning*",
    "transfer": "one arm of a transfer study; swept by `experiment=digits_transfer`",
    "classifier": "a head on kept frozen features; see *Frozen features*",
    "debug": "",
    "experiment": "complete recipes",
    "hparams_search": "see *Sweeps*",
    "launcher": "run sweep jobs through submitit; see *Sweeps*",
}
NOTE = re.compile(r"^# option: (.+)$", re.M)


def defaults(conf: Path) -> dict[str, str]:
    """group → the option train.yaml picks."""
    picked = {}
    for entry in yaml.safe_load((conf / "train.yaml").read_text())["defaults"]:
        if isinstance(entry, dict):
            ((group, option),) = entry.items()
            if isinstance(option, str):
                picked[group] = option
    return picked


def _options(conf: Path, group: str) -> list[tuple[str, str]]:
    """(name, note) per option file; a folder of them (experiment/lecture/) is one entry."""
    found = []
    for path in sorted((conf / group).iterdir()):
        if path.is_dir():
            found.append((f"{path.name}/<name>", _note(path / "_common.yaml")))
        elif path.suffix == ".yaml" and not path.name.startswith("_"):
            found.append((path.stem, _note(path)))
    return found


def _note(path: Path) -> str:
    match = NOTE.search(path.read_text()) if path.is_file() else None
    return match.group(1) if match else ""


def _in_default_callbacks(conf: Path) -> set[str]:
    listed = yaml.safe_load((conf / "callbacks" / "default.yaml").read_text())["defaults"]
    return {entry for entry in listed if isinstance(entry, str) and entry != "_self_"}


def render(conf: Path = CONF) -> str:
    picked = defaults(conf)
    on = _in_default_callbacks(conf)
    rows = ["| group | options | |", "|---|---|---|"]
    for group, about in GROUPS.items():
        cells = []
        for name, note in _options(conf, group):
            marks = (
                "default" if picked.get(group) == name else "",
                "in `default`" if group == "callbacks" and name in on else "",
                note,
            )
            said = ", ".join(x for x in marks if x)
            cells.append(f"`{name}`" + (f" ({said})" if said else ""))
        rows.append(f"| `{group}` | {', '.join(cells)} | {about} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_) -> str:
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
