"""Every `error:` line the "What happens when…" page (docs/troubleshooting.md) quotes is a promise:
each row that can run offline is run here as the row says, and the line printed is compared with
the quoted one (`…` and the page's placeholders such as FILE or <folder> match anything; every
other character must be the same). A row answered by a fault that needs its own set-up (a full
disk, a killed rank, a hung process) names the test that runs it; a row nobody classified fails
the coverage test, so a new row cannot be added without its check."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.checkpoint_edits import CKPT
from tests.checkpoint_edits import edited as edit
from tests.conftest import REPO, free_port
from tests.documented_rows import BEHAVIOUR, ELSEWHERE, RUN

PAGE = REPO / "docs" / "troubleshooting.md"
README = REPO / "README.md"  # its first rows of the same table
PLACEHOLDERS = r"FILE|PATH|OUT|ROOT|DIR|SPLIT|<[^<>]+>"


def rows(page: Path = PAGE) -> list[tuple[str, str]]:
    """(you do this, cnnlab does this) for every row of a page's "What happens when…" table."""
    table = page.read_text().split("| you do this | cnnlab does this |", 1)[1].split("\n\n", 1)[0]
    found = []
    for line in table.strip().splitlines()[1:]:
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        found.append((cells[0].strip(), "|".join(cells[1:]).strip()))
    return found


def quoted_errors(answer: str) -> list[str]:
    return re.findall(r"`(error: [^`]+)`", answer)


def pattern(quoted: str) -> re.Pattern:
    """The quoted line as a pattern: `…` and placeholders match anything, nothing else does."""
    parts = re.split(rf"(…|{PLACEHOLDERS})", quoted)
    body = "".join(".*?" if i % 2 else re.escape(p) for i, p in enumerate(parts))
    return re.compile(rf"^{body}$")


def test_the_pattern_fails_on_a_changed_word():
    line = "error: port=70000 is out of range; valid: a port number from 1 to 65535"
    assert pattern("error: port=70000 is out of range; valid: …").match(line)
    assert pattern("error: FILE is out of range; valid: a port number from 1 to 65535").match(line)
    assert not pattern("error: port=70000 is out of bounds; valid: …").match(line)
    assert not pattern("error: port=70000 is out of range; valid: a port from 1 to 65535").match(
        line
    )


def _row_key(key: str) -> str:
    """The start of the row a check runs (a row may be run more than one way)."""
    return RUN.get(key, {}).get("row", key)


def _classified(you_do: str) -> str | None:
    for key in (*RUN, *ELSEWHERE):
        if you_do.startswith(_row_key(key)):
            return key
    return None


ERROR_ROWS = [(you, answer) for you, answer in rows() if quoted_errors(answer)]


def test_the_readmes_quoted_lines_are_the_pages():
    """A line the README quotes is one the page quotes (and so is checked below): the README's
    table is the page's first rows, shortened."""
    on_page = {q for _, answer in rows() for q in quoted_errors(answer)}
    quoted = [q for _, answer in rows(README) for q in quoted_errors(answer)]
    assert quoted and all(any(pattern(q).match(p) for p in on_page) for q in quoted), quoted


# `$ make <target> ARGS="…"` followed by the `error:` line it prints, in the pages' code blocks.
SESSIONS = sorted(
    {
        (page.name, target, args, line)
        for page in (README, *sorted((REPO / "docs").glob("*.md")))
        for target, args, line in re.findall(
            r'^\$ make ([\w-]+) ARGS="([^"]*)"\n(error: [^\n]+)$', page.read_text(), re.M
        )
    }
)


def test_the_pages_show_command_sessions():
    assert len(SESSIONS) >= 3, SESSIONS  # README's and the training page's, at least


@pytest.mark.parametrize("page, target, args, line", SESSIONS)
def test_a_shown_session_prints_what_the_page_shows(command, page, target, args, line):
    proc = command(target.replace("-", "_"), *args.split())
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and errors, proc.stderr[-2000:]
    assert pattern(line).match(errors[0]), f"{page} shows\n  {line}\ncnnlab says\n  {errors[0]}"


def test_every_quoted_error_line_is_run_here_or_by_a_named_test():
    unclassified = [you for you, _ in ERROR_ROWS if _classified(you) is None]
    assert not unclassified, f"rows with an error line but no check: {unclassified}"
    stale = [
        k
        for k in (*RUN, *ELSEWHERE)
        if not any(you.startswith(_row_key(k)) for you, _ in ERROR_ROWS)
    ]
    assert not stale, f"checks for rows the page no longer has: {stale}"
    for key, test_file in ELSEWHERE.items():
        (you, answer) = next(row for row in ERROR_ROWS if row[0].startswith(key))
        words = quoted_errors(answer)[0].removeprefix("error: ")
        checked = (REPO / test_file).read_text() + _source_of(test_file)
        checked = re.sub(r"[\"']\s*\n\s*[rf]?[\"']", "", checked)  # "a" "b" split over lines
        literals = re.findall(r"[\"']([^\"'\n]{15,})[\"']", checked)
        fragments = [f for lit in literals for f in re.split(r"\{[^}]*\}", lit) if len(f) >= 15]
        pieces = [p.strip(" ;:,()") for p in re.split(rf"…|{PLACEHOLDERS}", words)]
        # The test compares a part of the quoted line, or the line's fixed words are in the test.
        found = [f for f in fragments if f in f"error: {words}"]
        found += [p for p in pieces if len(p) >= 15 and p in checked]
        assert found, f"{test_file} checks no part of {words!r} ({you})"


def _source_of(test_file: str) -> str:
    """A test may compare the line through the constant that prints it: the source it imports."""
    text = (REPO / test_file).read_text()
    modules = re.findall(r"^from (cnnlab[\w.]*) import", text, flags=re.M)
    return "".join(
        (REPO / "src" / (m.replace(".", "/") + ".py")).read_text()
        for m in modules
        if (REPO / "src" / (m.replace(".", "/") + ".py")).is_file()
    )


TORCH = "torch loaded at exit:"


def _without(hidden: list[str], entry: str, args: list[str], env: dict, root, data_dir):
    """`cnnlab-<entry> args…` in a new interpreter where `import <hidden>` fails, as on a machine
    without those packages."""
    boot = (f"import atexit, sys; sys.modules.update(dict.fromkeys({hidden!r})); "
            f"sys.argv = ['cnnlab-{entry}', *sys.argv[1:]]; "
            f"atexit.register(lambda: print({TORCH!r}, 'torch' in sys.modules, file=sys.stderr)); "
            f"from cnnlab.commands.{entry} import main; main()")  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", boot, *args], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "CNNLAB_ROOT": str(root), "CNNLAB_DATA": str(data_dir), **env},
        timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize("key", list(RUN), ids=[re.sub(r"\W+", "_", k)[:40] for k in RUN])
def test_a_documented_error_line_is_what_cnnlab_prints(key, command, digits_run, tmp_path,
                                                       data_dir):  # fmt: skip
    how = RUN[key]
    you, answer = next(row for row in ERROR_ROWS if row[0].startswith(_row_key(key)))
    quoted = quoted_errors(answer)[0]
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(image)
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    edited = tmp_path / "edited.ckpt"
    if "edit" in how:
        edit(digits_run, edited, how["edit"])
    if how.get("truncate"):
        edited.write_bytes((digits_run / CKPT).read_bytes()[:5000])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        from cnnlab.cli import machine

        values = {"ckpt": digits_run / CKPT, "edited": edited, "tmp": tmp_path, "image": image,
                  "port": free_port(), "busy": busy, "busy+1": busy + 1,
                  "cores": machine.cpu_cores()}  # fmt: skip
        fill = lambda text: re.sub(r"\{([\w+]+)\}", lambda m: str(values[m.group(1)]), text)  # noqa: E731
        env = {k: fill(v) for k, v in how.get("env", {}).items()}
        args = list(map(fill, how["args"]))
        # A process of its own: libraries cache what they found importable, and
        # huggingface_hub reads HF_HUB_OFFLINE once, when imported.
        if how.get("hide") or how.get("fresh"):
            proc = _without(how.get("hide", []), how["entry"], args, env, tmp_path, data_dir)
        else:
            proc = command(how["entry"], *args, env=env)
    for old, new in how.get("subs", {}).items():
        quoted = quoted.replace(old, fill(new))
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == how.get("code", 1), proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert pattern(quoted).match(errors[0]), (
        f"the page says\n  {quoted}\ncnnlab says\n  {errors[0]}"
    )
    if "before torch loads" in answer and (how.get("hide") or how.get("fresh")):
        assert f"{TORCH} False" in proc.stderr, answer  # a process of its own tells
    if re.search(r"no run folder|before any (sweep )?folder", answer):  # promised: nothing left
        assert not list((tmp_path / "outputs").rglob(".hydra")), answer


def test_every_other_row_names_the_test_that_runs_it():
    """Every row without a quoted line names a test that exists, so no promise is untested."""
    plain = [you for you, answer in rows() if not quoted_errors(answer)]
    missing = [you for you in plain if not any(you.startswith(k) for k in BEHAVIOUR)]
    assert not missing, f"rows that name no test: {missing}"
    stale = [k for k in BEHAVIOUR if not any(you.startswith(k) for you in plain)]
    assert not stale, f"tests named for rows the page no longer has: {stale}"
    for key, (file, name) in BEHAVIOUR.items():
        assert re.search(rf"^def {name}\(", (REPO / "tests" / file).read_text(), re.M), (key, name)
