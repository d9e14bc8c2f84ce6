"""What the README lists that can drift from the code, checked against the code: the options
table names every config group and every option file in it, and the console scripts it lists are
exactly pyproject.toml's."""

from __future__ import annotations

import re

import tomllib

from tests.conftest import GROUPS, REPO, options

README = (REPO / "README.md").read_text()
NOT_IN_TABLE = {"hydra", "paths"}  # one file each, the run folders' layout: README "Outputs"


def _expand(cell: str) -> set[str]:
    """`vgg11/13/16/19` → vgg11, vgg13, …; `mobilenet_v3_small/large` → …_small, …_large."""
    names = set()
    for token in re.findall(r"`([\w/<>]+)`", cell):
        first, *rest = token.split("/")
        names.add(first)
        for part in rest:
            swap = r"\d+$" if part.isdigit() else r"[^_]+$"
            names.add(re.sub(swap, part, first) if re.search(swap, first) else part)
    return names


def _options_table() -> dict[str, set[str]]:
    start = README.index("| group | options |")
    rows = README[start:].split("\n\n", 1)[0].splitlines()[2:]
    table = {}
    for row in rows:
        group, cell = [c.strip() for c in row.strip("|").split("|")][:2]
        table[group.strip("`")] = _expand(cell) | {t.split("/")[0] for t in _expand(cell)}
    return table


def test_the_options_table_names_every_group_and_option():
    table = _options_table()
    assert set(table) == set(GROUPS) - NOT_IN_TABLE
    for group in table:
        missing = [o for o in options(group) if o.split("/")[0] not in table[group]]
        assert not missing, f"README's options table, row {group}, lacks {missing}"


def test_the_console_scripts_listed_are_pyprojects():
    scripts = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
    section = README[README.index("## Use cnnlab in your own project") :].split("\n\n")[1]
    assert set(re.findall(r"`(cnnlab-[a-z-]+)`", section)) == scripts
