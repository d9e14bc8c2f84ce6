"""Where cnnlab's own configs live, wherever cnnlab is installed, and the decorator every entry
point uses to compose them.

A wheel ships the top-level `conf/` as the package data folder `cnnlab/conf/`; a source checkout
(editable install) reads the repository's `conf/` directly. A user project adds its own groups
with Hydra's `--config-dir <folder>`: a user's `model/mynet.yaml` sits beside cnnlab's, and a
same-named file replaces cnnlab's (`cnnlab.cli.user_configs`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import hydra

from cnnlab.cli import schema, user_configs
from cnnlab.cli.runner import in_job
from cnnlab.core.targets import config_dir

CONFIG_DIR = str(config_dir())


def checked(task: Callable) -> Callable:
    """`task` as every command runs it: the project's replaced configs announced, the config
    checked by `schema.validate` before anything runs."""

    @functools.wraps(task)
    def run(cfg, *args, **kwargs):
        user_configs.announce(CONFIG_DIR)  # in the job: its log file gets the line too
        schema.validate(cfg)  # every command's config, before anything runs
        return task(cfg, *args, **kwargs)

    return run


def command(config_name: str) -> Callable[[Callable], Callable]:
    """`@command("train")`: `@hydra.main` over cnnlab's conf/, the config checked by
    `schema.validate`, errors logged to the job's files."""

    def wrap(task: Callable) -> Callable:
        user_configs.register()
        return hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(
            in_job(checked(task))
        )

    return wrap
