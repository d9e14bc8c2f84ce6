"""One exception type for mistakes a user can fix. Library code raises it; only the command-line
wrapper (`cnnlab.cli.runner`) turns it into `error: <one line>` and an exit code."""

from __future__ import annotations


class UserError(Exception):
    """A bad value, file or setup that the user can fix; reported as one line, exit 1."""

    trained = False  # set when training had taken a step: the run folder is then kept


class RunFolderBusy(BaseException):
    """Another process holds the run folder. A BaseException because Hydra turns an Exception
    raised by its callbacks (where the lock is taken) into a warning and carries on; the command
    line reports it as one line, exit 1."""


class RefusedAtStart(BaseException):
    """A bad value found where Hydra's callbacks run, before the job (an unsafe `run_id` in the
    run folder's name): a BaseException for the same reason as RunFolderBusy, so Hydra does not
    print it as a warning first; one line, exit 1."""


class CannotWrite(BaseException):
    """The machine refused a write where Hydra's callbacks run (a read-only or full disk): a
    BaseException for the same reason as RunFolderBusy; `error` is the OSError."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def could_not_build(what: str, cause: BaseException) -> UserError:
    """The one line for an object a config could not build: a UserError raised while building
    it, as it is; anything else named with `what` and its type."""
    if isinstance(cause, UserError):
        return cause
    return UserError(f"could not build {what}: {type(cause).__name__}: {cause}")


def message(err: BaseException) -> str:
    """The error's own line, also when a DataLoader worker raised it: PyTorch re-raises it in the
    main process as "Caught UserError in DataLoader worker process 0. Original Traceback …"."""
    text = str(err)
    if text.startswith("Caught ") and "Original Traceback" in text:
        return text.strip().splitlines()[-1].split(": ", 1)[-1]
    return text


SIGTERM_SAVED = "SIGTERM: checkpoint saved; exiting 143"
SIGTERM_EARLY = "SIGTERM before this job trained: nothing to save; exiting 143"
NO_SLURM = (
    "launcher=slurm needs SLURM (srun/sbatch), which this machine does not have; run on the "
    "cluster's login node, or use launcher=submitit_local to run the jobs here"
)
CTRL_C = "interrupted (Ctrl-C): exiting 130; resume with ckpt_path=last"
# Said by rank 0 however it learns of the loss: gloo's reset connection or the rank watch.
LOST_RANK = (
    "a DDP process ended unexpectedly and the others lost it (killed, out of memory or "
    "crashed: see its output above); resume with ckpt_path=last and the same run_id"
)


class RunInterrupted(BaseException):
    """SIGTERM or Ctrl-C stopped training after its checkpoint was written. A BaseException, like
    KeyboardInterrupt: it ends a whole sweep, not just one job; the command line exits with
    `exit_code` (128 + the signal number), so schedulers and shells see the run did not finish."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
