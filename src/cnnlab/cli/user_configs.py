"""`cnnlab-train --config-dir DIR`: a user project's configs first.

Hydra's own `--config-dir` puts DIR *after* the application's configs, so a user's new groups
sit beside cnnlab's but a same-named file (say `optimizer/adamw.yaml`) would be ignored. This
search-path plugin, registered by cnnlab's commands only (`cnnlab.cli.configs`), also puts DIR
first, so the user's file wins, and says so at start-up (`announce`): a replaced built-in is
otherwise invisible until its numbers differ.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

from cnnlab.core.targets import user_config_dir


class UserConfigsFirst(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        user = user_config_dir()
        if user is not None and os.path.isdir(user):  # a missing one: Hydra says so in one line
            search_path.prepend("cnnlab-user", f"file://{os.path.abspath(user)}")


def register() -> None:
    Plugins.instance().register(UserConfigsFirst)


def replaced(user: str | Path, builtin: str | Path) -> list[str]:
    """The user's config files that have the same path as one of cnnlab's (group/name.yaml)."""
    root = Path(user)
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.yaml")
        if (Path(builtin) / p.relative_to(root)).is_file()
    )


def announce(builtin: str | Path) -> None:
    """One line at start-up naming every built-in config the --config-dir folder replaces."""
    user = user_config_dir()
    if user is None or not os.path.isdir(user):
        return
    names = replaced(user, builtin)
    if not names:
        return
    line = f"--config-dir {user} replaces cnnlab's own {', '.join(names)}"
    log = logging.getLogger("cnnlab")
    if log.disabled or not log.hasHandlers():  # a command with Hydra's job logging off
        print(f"note: {line}", file=sys.stderr)
    else:
        log.info(line)  # the console and the run's log file
