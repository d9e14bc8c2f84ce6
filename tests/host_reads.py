"""A counter of host reads of tensor values per training step (the tests and `make bench` use it).

On a GPU each such read (`.item()`, `bool()`, `float()`, `.tolist()`, `.cpu()`, `.numpy()`,
`nonzero`, boolean-mask indexing …) waits until the device has run everything queued before it,
so the host can no longer work ahead. Counted here on the CPU, per training step, from the
step's first hook to the next one's, each with the source line that made it. Reads of tensors
that live on the host even on a GPU (the optimizer's step counter, the sampler's permutation)
are listed but do not stall: they are told apart by where they happen.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch

from cnnlab.callbacks.nonfinite import host_reads_anyway

READ_METHODS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy",
                "nonzero", "__format__")  # fmt: skip
# (file suffix, function) of reads of host-resident tensors: they never wait for a device.
HOST_RESIDENT = (
    ("torch/optim/optimizer.py", "_get_value"),  # a non-capturable optimizer's step count
    ("torch/utils/data/sampler.py", ""),  # the sampler's permutation, made on the host
    ("torch/utils/data/_utils/collate.py", ""),
    ("torch/utils/data/dataloader.py", ""),  # a new iterator's base seed, from a host generator
    # MixUp/CutMix draw their random parameters (λ, the box, which of the two) from the host's
    # generator, as does cnnlab's "mix this batch?" draw: host tensors on any machine.
    ("torchvision/transforms/v2/_augment.py", "make_params"),
    ("torchvision/transforms/v2/_container.py", "forward"),
    ("cnnlab/data/mix.py", "__call__"),
)
_HERE = str(Path(__file__).resolve())


@dataclass
class Read:
    what: str
    where: str  # the first frame outside torch's tensor wrappers: file:line function
    stalls: bool


@dataclass
class Step:
    step: int
    logs: bool = False  # the loggers or the epoch's end read values at this step anyway
    reads: list[Read] = field(default_factory=list)

    @property
    def stalling(self) -> list[Read]:
        return [r for r in self.reads if r.stalls]


def _origin() -> tuple[str, bool]:
    frames = traceback.extract_stack()[:-3]  # without this function and the wrapper
    stalls = not any(
        f.filename.endswith(path) and (not func or f.name == func)
        for f in frames
        for path, func in HOST_RESIDENT
    )
    outside = [f for f in frames if f.filename != _HERE and "torch/_tensor.py" not in f.filename]
    last = outside[-1] if outside else frames[-1]
    return f"{last.filename}:{last.lineno} {last.name}", stalls


class HostReads(L.Callback):
    """Patches Tensor's reading methods while training runs; `steps` holds what each step read."""

    def __init__(self, out: str | None = None) -> None:
        self.out = out  # a JSON file for what each step read (a child process's, for make bench)
        self.steps: list[Step] = []
        self._current: Step | None = None
        self._saved: dict[str, object] = {}

    def _record(self, what: str) -> None:
        if self._current is not None:
            where, stalls = _origin()
            self._current.reads.append(Read(what, where, stalls))

    def _patch(self) -> None:
        for name in READ_METHODS:
            original = getattr(torch.Tensor, name)
            self._saved[name] = original

            def wrapper(tensor, *args, _original=original, _name=name, **kwargs):
                self._record(_name)
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, wrapper)
        getitem = torch.Tensor.__getitem__
        self._saved["__getitem__"] = getitem

        def masked(tensor, index):
            parts = index if isinstance(index, tuple) else (index,)
            if any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts):
                self._record("boolean mask")
            return getitem(tensor, index)

        torch.Tensor.__getitem__ = masked

    def _unpatch(self) -> None:
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)
        self._saved.clear()

    def on_train_start(self, trainer, pl_module) -> None:
        self._patch()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._current = Step(trainer.global_step)
        self.steps.append(self._current)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._current is not None:
            self._current.logs = host_reads_anyway(trainer, batch_idx)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._current = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._current = None

    def on_train_end(self, trainer, pl_module) -> None:
        self._current = None
        self._unpatch()
        if self.out is not None and trainer.global_rank == 0:
            import json
            from dataclasses import asdict

            Path(self.out).write_text(json.dumps([asdict(s) for s in self.steps]))

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._unpatch()

    def table(self) -> str:
        """Each step that read anything: its reads and their source lines."""
        lines = []
        for s in self.steps:
            for r in s.reads:
                flag = "STALLS" if r.stalls else "host"
                lines.append(f"step {s.step} ({'logs' if s.logs else 'quiet'}) {flag} {r.what} "
                             f"at {r.where}")  # fmt: skip
        return "\n".join(lines)
