"""A DDP rank that dies ends the run with one `error:` line and exit 1, whoever notices first.

Lightning's `ddp` launcher watches the ranks it started from a thread of rank 0; when one ends
with a non-zero code it SIGKILLs every process, rank 0 included (`_ChildProcessObserver`), since
a collective that waits for the lost rank would otherwise hang until gloo's or NCCL's timeout
(30 minutes). Rank 0 usually learns of the loss by itself within seconds ("Connection reset by
peer") and ends as `cli.runner` ends any run: the error line, exit 1, the lock released. When the
watcher's poll (every 5 s) came first, the run died with -9 and no line (seen once in CI). Here
the watcher gives rank 0 `grace_s` to end on its own, and only then ends it: the other ranks
killed, the same line, exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from lightning.pytorch.strategies.launchers import subprocess_script as ddp_launcher

from cnnlab.core.errors import LOST_RANK

GRACE_S = 30.0  # rank 0's own exception path takes seconds; a hung collective takes 30 minutes
POLL_S = 0.5  # how often the grace period checks the clock


class RankWatch(_ChildProcessObserver):
    def __init__(
        self, child_processes: list[subprocess.Popen], poll_s: float = 5, grace_s: float = GRACE_S
    ):
        super().__init__(main_pid=os.getpid(), child_processes=child_processes, sleep_period=poll_s)
        self.grace_s = grace_s

    def _terminate_all(self) -> None:
        # A daemon thread: rank 0 ending by itself during the grace period ends this wait too.
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
        for proc in self._child_processes:
            proc.send_signal(self._termination_signal)  # SIGKILL: a hung rank ignores SIGTERM
        print(f"error: {LOST_RANK}", file=sys.stderr, flush=True)
        os._exit(1)  # the main thread is stuck in the collective: it cannot be asked to exit


def _launch(child_processes: list[subprocess.Popen]) -> None:
    RankWatch(child_processes).start()


def install() -> None:
    """Lightning's `ddp` launcher starts `RankWatch` instead of its own watcher."""
    ddp_launcher._launch_process_observer = _launch
