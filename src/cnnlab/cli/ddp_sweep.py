"""DDP's subprocess launcher (`strategy: ddp`) inside a Hydra multirun.

Lightning starts ranks > 0 by re-running the command line (`sys.argv`); in a multirun that is the
whole sweep, so every child would start a sweep of its own. It also leaves LOCAL_RANK, WORLD_SIZE
and MASTER_* set in the launching process, so the sweep's next job would wait for ranks that never
come. Here each job hands its own command line to its children through the environment, and the
process is left as it was found when the job ends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

JOB_ARGV = "CNNLAB_DDP_JOB_ARGV"
LAUNCHER_VARS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", JOB_ARGV)


def child_argv() -> list[str] | None:
    """In a rank > 0 process started by one job of a sweep: that job's overrides, else None."""
    local_rank = os.environ.get("LOCAL_RANK", "0")
    if local_rank == "0" or JOB_ARGV not in os.environ:
        return None
    return [*json.loads(os.environ[JOB_ARGV]), f"hydra.job.name=train_ddp_process_{local_rank}"]


@contextmanager
def job_scope() -> Iterator[None]:
    """Around one job: under a multirun, pass the job's overrides on (a single run's own command
    line is already right) and afterwards end its process group and the launcher's variables."""
    if not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
        yield
        return
    hc = HydraConfig.get()
    before = {k: os.environ.get(k) for k in LAUNCHER_VARS}
    os.environ[JOB_ARGV] = json.dumps(
        [
            *hc.overrides.task,
            f"hydra.run.dir='{hc.runtime.output_dir}'",
            "hydra.output_subdir=null",  # the job's .hydra/ is rank 0's
            "hydra.mode=RUN",  # experiment files that set MULTIRUN must not sweep again
        ]
    )
    try:
        yield
    finally:
        import torch.distributed as dist  # imported by then: the job trained

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
