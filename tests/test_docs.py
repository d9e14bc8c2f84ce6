"""The README and the documentation site (docs/, MkDocs) against the code: what can drift is
checked mechanically. The options table, generated from conf/, names every group and option; the
console scripts listed are pyproject.toml's; the README stays a front page whose links resolve;
no page speaks of issue numbers. `make docs` (mkdocs build --strict) checks the site's own links,
anchors and included files; the command blocks users copy are run by test_export and
test_package."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import tomllib

from tests.conftest import CONFIG_DIR, GROUPS, REPO, options

README = (REPO / "README.md").read_text()
OWN_PROJECT = (REPO / "docs" / "own-project.md").read_text()
NOT_IN_TABLE = {"hydra", "paths"}  # one file each, the run folders' layout (docs/loggers.md)
PAGES = sorted((REPO / "docs").glob("*.md"))
HOOK = REPO / "docs" / "hooks" / "options_table.py"


def section(text: str, heading: str) -> str:
    """A page's section under `heading` (any level), up to the next heading of that level."""
    level = re.search(rf"^(#+) {re.escape(heading)}$", text, flags=re.M)
    assert level, f"no heading {heading!r}"
    body = text[level.end() :]
    stop = re.search(rf"^{level.group(1)} ", body, flags=re.M)
    return body[: stop.start()] if stop else body


def _hook():
    spec = importlib.util.spec_from_file_location("options_table", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_groups(table: str) -> dict[str, str]:
    return {row.split("|")[1].strip(" `"): row.split("|")[2] for row in table.splitlines()[2:]}


def listed_scripts(text: str) -> set[str]:
    """The console scripts the own-project page lists (its first paragraph)."""
    first = section(text, "Your own project").strip().split("\n\n")[0]
    return set(re.findall(r"`(cnnlab-[a-z-]+)`", first))


SCRIPTS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def test_the_options_table_names_every_group_option_and_default():
    rows = table_groups(_hook().render())
    assert set(rows) == set(GROUPS) - NOT_IN_TABLE
    for group, cell in rows.items():
        assert all(f"`{o.split('/')[0]}" in cell for o in options(group)), group
    assert "`convnet` (default)" in rows["model"] and "`mnist_sample` (default, offline)" in rows[
        "data"]  # fmt: skip
    assert "`ema` (off by default)" in rows["callbacks"]
    assert "`gradcam` (in `default`)" in rows["callbacks"]


def test_a_new_option_file_is_in_the_table_without_touching_another_file(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    (conf / "model" / "mynet.yaml").write_text("# option: my own network\nnet: {}\n")
    assert "`mynet` (my own network)" in table_groups(_hook().render(conf))["model"]
    assert "`mynet`" not in _hook().render()


def test_the_site_generates_the_table_where_the_page_asks_and_the_readme_points_there():
    training = (REPO / "docs" / "training.md").read_text()
    assert _hook().MARKER in training and "| group | options |" not in training
    assert "| group | options |" not in README
    assert "(docs/training.md#every-group-and-option)" in README
    mkdocs = (REPO / "mkdocs.yml").read_text()
    assert "docs/hooks/options_table.py" in mkdocs
    page = _hook().on_page_markdown(training)
    assert "| `launcher` | `slurm`, `submitit_local` |" in page


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
