"""The README and the documentation site (docs/, MkDocs) against the code: what can drift is
checked mechanically. The options table names every config group and option file; the console
scripts listed are pyproject.toml's; the README stays a front page whose links resolve; no page
speaks of issue numbers. `make docs` (mkdocs build --strict) checks the site's own links, anchors
and included files; the command blocks users copy are run by test_export and test_package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

from tests.conftest import GROUPS, REPO, options

README = (REPO / "README.md").read_text()
OWN_PROJECT = (REPO / "docs" / "own-project.md").read_text()
NOT_IN_TABLE = {"hydra", "paths"}  # one file each, the run folders' layout (docs/loggers.md)
PAGES = sorted((REPO / "docs").glob("*.md"))


def section(text: str, heading: str) -> str:
    """A page's section under `heading` (any level), up to the next heading of that level."""
    level = re.search(rf"^(#+) {re.escape(heading)}$", text, flags=re.M)
    assert level, f"no heading {heading!r}"
    body = text[level.end() :]
    stop = re.search(rf"^{level.group(1)} ", body, flags=re.M)
    return body[: stop.start()] if stop else body


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


def options_table(text: str) -> dict[str, set[str]]:
    start = text.index("| group | options |")
    rows = text[start:].split("\n\n", 1)[0].splitlines()[2:]
    table = {}
    for row in rows:
        if not row.startswith("|"):
            break
        group, cell = [c.strip() for c in row.strip("|").split("|")][:2]
        table[group.strip("`")] = _expand(cell) | {t.split("/")[0] for t in _expand(cell)}
    return table


def table_mismatch(text: str) -> list[str]:
    """What the options table in `text` lacks or names wrongly; empty when it matches conf/."""
    table = options_table(text)
    differ = sorted(set(table) ^ (set(GROUPS) - NOT_IN_TABLE))
    wrong = [f"groups {differ}"] if differ else []
    for group in set(table) & set(GROUPS):
        missing = [o for o in options(group) if o.split("/")[0] not in table[group]]
        if missing:
            wrong.append(f"row {group} lacks {missing}")
    return wrong


def listed_scripts(text: str) -> set[str]:
    """The console scripts the own-project page lists (its first paragraph)."""
    first = section(text, "Your own project").strip().split("\n\n")[0]
    return set(re.findall(r"`(cnnlab-[a-z-]+)`", first))


SCRIPTS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def test_the_options_table_names_every_group_and_option():
    assert table_mismatch(README) == []


def test_the_options_table_check_fails_on_a_deliberate_mismatch():
    dropped = README.replace("`rmsprop`", "`rmsprop_gone`")
    assert table_mismatch(dropped) == ["row optimizer lacks ['rmsprop']"]
    no_row = "\n".join(x for x in README.splitlines() if not x.startswith("| `launcher` |"))
    assert table_mismatch(no_row) == ["groups ['launcher']"]


def test_the_site_includes_the_readmes_table_rather_than_a_copy():
    training = (REPO / "docs" / "training.md").read_text()
    assert '--8<-- "README.md:options"' in training and "| group | options |" not in training
    assert README.count("--8<-- [start:options]") == README.count("--8<-- [end:options]") == 1


def test_the_console_scripts_listed_are_pyprojects():
    assert listed_scripts(OWN_PROJECT) == SCRIPTS


def test_the_console_scripts_check_fails_on_a_deliberate_mismatch():
    assert listed_scripts(OWN_PROJECT.replace("`cnnlab-corpus`", "corpus")) == SCRIPTS - {
        "cnnlab-corpus"
    }


def test_the_readme_is_a_front_page_whose_links_resolve():
    assert len(README.splitlines()) <= 300
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert {"docs/index.md", "docs/troubleshooting.md", "CHANGELOG.md"} <= set(local)
    assert [t for t in local if not (REPO / t).exists()] == []
    nav = (REPO / "mkdocs.yml").read_text()
    assert [p.name for p in PAGES if p.name not in nav] == []  # every page is in the menu


@pytest.mark.parametrize("path", [REPO / "README.md", REPO / "CHANGELOG.md", *PAGES],
                         ids=lambda p: Path(p).name)  # fmt: skip
def test_no_page_speaks_of_issue_numbers(path):
    text = Path(path).read_text()
    assert re.findall(r"(?i)\bissues? \d+|#\d{1,3}\b", text) == []
