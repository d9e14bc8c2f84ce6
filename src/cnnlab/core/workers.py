"""Worker processes that end with the command that started them. A `kill -9` of the command
leaves a process pool's idle workers behind otherwise (reparented to pid 1, each holding what it
imported, torch included), since nothing tells them their parent is gone."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal this process gets when its parent dies


def die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    """A pool's `initializer` (with the parent's pid), or a child's `preexec_fn`: on Linux the
    kernel sends this process `signum` when its parent ends, however it ends (SIGTERM lets a
    training run save and report); elsewhere, or if the parent is already gone, it ends now."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum))
    if os.getppid() != parent:  # the parent died before the call above took effect
        os._exit(1)
