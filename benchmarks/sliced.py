"""Run two processes in alternating time slices and charge each only its own slices.

Why: on this shared VM the same workload's speed drifts up to 2× over seconds (3 identical conv
steps took 256–515 ms within one minute, in regimes lasting seconds), so two runs one after
the other measure the neighbours as much as the code. Here both processes exist at once but
never run at the same time: the bench lets one run for `slice_s` seconds (SIGCONT), stops it
(SIGSTOP), lets the other run, and so on until both exit. Both see the same machine, each gets
all cores while it runs, and each is charged only its own slices. Children report moments as
`bench_mark <name> <time.time()>` lines; `Child.own` turns them into that child's own seconds.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

POLL_S = 0.005  # how often a running slice checks whether its process has exited


@dataclass
class Child:
    cmd: list[str]
    proc: subprocess.Popen | None = None
    slices: list[tuple[float, float]] = field(default_factory=list)  # (start, end), time.time()
    output: str = ""
    rss_mb: float = 0.0  # this process's own peak RSS (os.wait4)
    returncode: int | None = None

    @property
    def seconds(self) -> float:
        """Own wall seconds from its first slice to its exit: start-up and imports included."""
        return sum(end - start for start, end in self.slices)

    def own(self, moment: float) -> float:
        """A time.time() moment inside this child, as seconds of its own running time."""
        total = 0.0
        for start, end in self.slices:
            if moment <= start:
                break
            total += min(moment, end) - start
        return total

    def marks(self, name: str) -> list[float]:
        """Every `bench_mark <name> <t>` the child printed, as own seconds."""
        found = re.findall(rf"^bench_mark {re.escape(name)} ([\d.]+)$", self.output, re.M)
        return [self.own(float(t)) for t in found]

    def windows(self, start: str, end: str) -> float:
        """Own seconds summed over the child's (start, end) mark pairs."""
        return sum(b - a for a, b in zip(self.marks(start), self.marks(end), strict=True))


def _launch(child: Child, env: dict, cwd, out) -> None:
    # The shell stops itself before exec'ing the command, so not one instruction of it runs
    # before its first slice (Popen returns once the shell has started).
    line = "kill -STOP $$; exec " + shlex.join(child.cmd)
    child.proc = subprocess.Popen(
        ["sh", "-c", line], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
    )
    _, status, _ = os.wait4(child.proc.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        raise RuntimeError(f"{child.cmd[0]} did not start: status {status}")


def _run_slice(child: Child, slice_s: float) -> bool:
    """Let the child run for slice_s; True when it has exited."""
    pid = child.proc.pid
    start = time.time()
    os.kill(pid, signal.SIGCONT)
    while time.time() - start < slice_s:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            child.slices.append((start, time.time()))
            child.returncode = child.proc.returncode = os.waitstatus_to_exitcode(status)
            child.rss_mb = usage.ru_maxrss / 1024  # KiB → MiB on Linux
            return True
        time.sleep(POLL_S)
    os.kill(pid, signal.SIGSTOP)
    _, status, usage = os.wait4(pid, os.WUNTRACED)  # returns once it has really stopped
    child.slices.append((start, time.time()))
    if os.WIFSTOPPED(status):
        return False
    child.returncode = child.proc.returncode = os.waitstatus_to_exitcode(status)
    child.rss_mb = usage.ru_maxrss / 1024
    return True


def run_pair(cmd_a: list[str], cmd_b: list[str], env: dict, cwd, slice_s: float = 0.5):
    """Run both commands to the end in alternating slices (a first); returns two Childs.
    Call it while the calling process is small: Linux starts a child's RSS high-water mark at
    its parent's."""
    a, b = Child(cmd_a), Child(cmd_b)
    with tempfile.TemporaryFile("w+") as out_a, tempfile.TemporaryFile("w+") as out_b:
        try:
            _launch(a, env, cwd, out_a)
            _launch(b, env, cwd, out_b)
            running = [a, b]
            while running:
                for child in list(running):
                    if _run_slice(child, slice_s):
                        running.remove(child)
        finally:
            for child in (a, b):
                if child.proc is not None and child.returncode is None:
                    child.proc.kill()
                    os.kill(child.proc.pid, signal.SIGCONT)
                    child.proc.wait()
        for child, out in ((a, out_a), (b, out_b)):
            out.seek(0)
            child.output = out.read()
            if child.returncode != 0:
                tail = "\n".join(child.output.splitlines()[-15:])
                raise RuntimeError(f"{shlex.join(child.cmd)} exited {child.returncode}:\n{tail}")
    return a, b


def run_pair_taking_turns(rep: int, cmd_a: list[str], cmd_b: list[str], env: dict, cwd):
    """run_pair, with the first slice going to a on even repetitions and to b on odd ones (so
    neither always meets the cold file cache first); returns (a, b) in that order."""
    if rep % 2 == 0:
        return run_pair(cmd_a, cmd_b, env, cwd)
    b, a = run_pair(cmd_b, cmd_a, env, cwd)
    return a, b
