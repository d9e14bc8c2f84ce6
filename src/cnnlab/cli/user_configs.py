"""`cnnlab-train --config-dir DIR`: a user project's configs first.

Hydra's own `--config-dir` puts DIR *after* the application's configs, so a user's new groups
sit beside cnnlab's but a same-named file (say `optimizer/adamw.yaml`) would be ignored. This
search-path plugin, registered by cnnlab's commands only (`cnnlab.cli.configs`), also puts DIR
first, so the user's file wins.
"""

from __future__ import annotations

import os
import sys

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin


def config_dir_argument(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config-dir="):
            return arg.split("=", 1)[1]
    return None


class UserConfigsFirst(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        user = config_dir_argument(sys.argv[1:])
        if user is not None and os.path.isdir(user):  # a missing one: Hydra says so in one line
            search_path.prepend("cnnlab-user", f"file://{os.path.abspath(user)}")


def register() -> None:
    Plugins.instance().register(UserConfigsFirst)
