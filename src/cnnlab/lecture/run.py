"""`make lecture [ONLY=claim,…] [ARGS="overrides"]`: every claim of the lecture as a small sweep
on this machine, then outputs/lecture/<id>/report.md with the lecture's words, the statement
tested, the measured table, a figure, a verdict computed from that table, and each claim's wall
time; the same report and figures in TensorBoard (<id>/tb). ARGS are Hydra overrides given to
every sweep (e.g. a smaller budget: "trainer.max_epochs=1"; a plain override of a swept key, like
seed or optimizer.lr, replaces the sweep's values: Hydra's sweeper puts the command line last, so
"seed=1" leaves one seed and nothing judged)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from cnnlab.cli.machine import cpu_cores, cpu_model
from cnnlab.core import checkpoint
from cnnlab.core.files import write_atomic
from cnnlab.core.tables import markdown_table
from cnnlab.core.targets import named_in_overrides
from cnnlab.core.workers import die_with_parent
from cnnlab.lecture import claims, layer_claims, results, stats, verdicts

SHIFT_PX = 3  # the connectivity claim's shifted test digits: 3 pixels, one of 4 directions each


def shifted(images, pixels: int = SHIFT_PX):
    """Each image moved by `pixels` right, left, down or up (by index), zero-filled."""
    import torch.nn.functional as F

    p = pixels
    padded = F.pad(images, (p, p, p, p))
    h, w = images.shape[-2:]
    out = images.clone()
    for k, (dy, dx) in enumerate(((0, -p), (0, p), (-p, 0), (p, 0))):  # crop offsets
        out[k::4] = padded[k::4, :, p + dy : p + dy + h, p + dx : p + dx + w]
    return out


class Stopped(Exception):
    """SIGTERM (or Ctrl-C) stopped the lecture while a sweep ran: the sweep saved and reported
    what it had (the signal was passed on to it); `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


def _train(args: list[str], log: Path) -> int:
    """One `cnnlab-train` process for a sweep. A SIGTERM to the lecture is passed on to it (it
    saves a checkpoint and writes its report) and the lecture stops (Stopped); killed outright,
    the lecture takes its sweep with it (the kernel sends the sweep SIGTERM)."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    parent = os.getpid()
    with open(log, "a") as fh:
        cmd = [sys.executable, "-m", "cnnlab.commands.train", *args]
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=lambda: die_with_parent(parent, signal.SIGTERM),
        )
        received: list[int] = []

        def forward(signum, frame):
            received.append(signum)
            if signum == signal.SIGTERM:  # Ctrl-C reaches the sweep by itself (one group)
                proc.send_signal(signum)

        before = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            rc = proc.wait()
        finally:
            for s, handler in before.items():
                signal.signal(s, handler)
    if received:
        raise Stopped(received[0])
    return rc


def single_run(overrides: list[str]) -> list[str]:
    """ARGS for a run that is not a sweep: the sweeper's settings have nothing to apply to there
    (Hydra would fail on them: `Unexpected type for root: NoneType`)."""
    return [o for o in overrides if not o.lstrip("+~").startswith("hydra.sweeper.")]


PRETRAINED = ("transfer", "probe_finetune")  # sweeps that start from the digits 0–4 network


def _sweep(experiment: str, out: Path, overrides: list[str]) -> tuple[list[results.Job], str]:
    """Run one sweep; returns its jobs and an error line ("" when it finished)."""
    log = out / f"{experiment}.log"
    extra = []
    if experiment in PRETRAINED:  # the pretrained network first (once): digits 0–4
        pre = out / "transfer_pretrain"
        last = checkpoint.in_run(pre, checkpoint.LAST)
        if not last.is_file():
            rc = _train(["experiment=digits_pretrain", f"hydra.run.dir={pre}",
                         "eval_report=false", *single_run(overrides)], log)  # fmt: skip
            if rc != 0:
                return [], f"pretraining on digits 0–4 failed (exit {rc}); see {log}"
        extra = [f"pretrained={last}"]
    sweep_dir = out / experiment
    rc = _train([f"experiment=lecture/{experiment}", f"hydra.sweep.dir={sweep_dir}", *extra,
                 *overrides], log)  # fmt: skip
    jobs = results.jobs(sweep_dir) if sweep_dir.is_dir() else []
    return jobs, "" if rc == 0 else f"the sweep failed (exit {rc}); see {log}"


# Test digits moved by these many pixels, per claim, and the metric each measure is kept as.
SHIFTED = {
    "connectivity": {SHIFT_PX: "test/acc_shifted"},
    "pooling": {p: layer_claims.shift_metric(p) for p in layer_claims.SHIFTS_PX},
}


def measure_shifted(
    jobs: list[results.Job],
    shifts: dict[int, str],
    data_dir: str | Path | None = None,
    overrides: list[str] = (),
) -> None:
    """Each finished job's tested checkpoint on shifted test digits, per shift (`SHIFTED`),
    kept as the job's metric. The digits come from `data_dir` (default: the first job's own
    data folder); the builders the lecture's own overrides named (`+callbacks.x._target_=…`)
    are trusted in those checkpoints."""
    from cnnlab.data.sources import mnist_sample
    from cnnlab.inference.loading import load

    finished = [job for job in jobs if job.ok]
    if not finished:
        return
    folder = data_dir or results.setting(finished[0], "paths.data_dir")
    test = mnist_sample(str(folder)).test
    moved = {metric: shifted(test.images, pixels) for pixels, metric in shifts.items()}
    for job in finished:
        model = load(
            checkpoint.in_run(job.folder, job.metrics.get("tested_ckpt") or checkpoint.LAST),
            trusted=named_in_overrides(list(overrides)),
        )
        for metric, images in moved.items():
            preds = model.predict(images).argmax(1)
            job.extra[metric] = float((preds == test.targets).float().mean())


def quoted(claim: claims.Claim) -> list[str]:
    """The lecture's words, verbatim, one quoted line each."""
    return [f"> “{q}”" + ("  " if i < len(claim.quotes) - 1 else "")
            for i, q in enumerate(claim.quotes)]  # fmt: skip


def _section(claim: claims.Claim, finding: claims.Finding | None, error: str, wall: float,
             figures: list[str]) -> str:  # fmt: skip
    lines = [f"## {claim.name}", "", *quoted(claim), "",
             f"Tested ({claims.READINGS[claim.reading]}): {claim.tested}", "",
             f"Condition: {claim.condition}", ""]  # fmt: skip
    if finding is not None:
        lines += [finding.table, ""]
        lines += [f"![{name}]({name}.png)\n" for name in figures]
    verdict = finding.verdict if finding else "no verdict"
    lines += [f"**Verdict**: {verdict}" + (f" ({error})" if error else ""), ""]
    folders = ", ".join(f"`{e}/`" for e in claim.experiments)
    jobs = f"Jobs: {folders} (report.md, one folder per job)." if folders else "No jobs."
    lines += [f"Wall time: {wall:.0f} s. {jobs}", ""]
    return "\n".join(lines)


def _to_tensorboard(out: Path, text: str, figures: dict[str, bytes]) -> None:
    import io

    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    for old in (out / "tb").glob("events.out.tfevents.*"):  # one report, not one per rewrite
        old.unlink()
    writer = SummaryWriter(str(out / "tb"))
    writer.add_text("lecture/report", text)
    for name, data in figures.items():
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        writer.add_image(f"lecture/{name}", image, 0, dataformats="HWC")
    writer.close()


def _swept(
    experiment: str, out: Path, overrides: list[str], again: bool
) -> tuple[list, str, float]:
    """Run one sweep (or, `again`, read the one already in `out`; a sweep that finished in an
    earlier, stopped run of the same --out is kept); its jobs, error line and wall time, which
    `<experiment>.json` keeps for a later --report-only or re-run."""
    record = out / f"{experiment}.json"
    saved = json.loads(record.read_text()) if record.is_file() else None
    if again and saved is None:  # a lecture stopped before this sweep
        return [], f"not run: the lecture stopped before the {experiment!r} sweep", 0.0
    if again or (saved is not None and not saved["error"]):  # reported, or finished: kept
        return results.jobs(out / experiment), saved["error"], saved["wall_s"]
    t0 = time.perf_counter()
    try:
        jobs, error = _sweep(experiment, out, overrides)
    except Stopped as stop:
        error = f"stopped by {stop}; run the same command again to resume"
        write_atomic(record, json.dumps({"wall_s": time.perf_counter() - t0, "error": error}))
        raise
    wall = time.perf_counter() - t0
    write_atomic(record, json.dumps({"wall_s": wall, "error": error}))
    return jobs, error, wall


def _claim_jobs(claim, out: Path, overrides: list[str], again: bool, done: dict):
    """The jobs of every sweep the claim reads, each sweep run once per lecture (`done` keeps
    them); the wall time is that of the sweeps this claim ran itself."""
    jobs, errors, wall = [], [], 0.0
    for experiment in claim.experiments:
        if experiment not in done:
            done[experiment] = _swept(experiment, out, overrides, again)
            wall += done[experiment][2]
        jobs += done[experiment][0]
        errors += [done[experiment][1]] if done[experiment][1] else []
    return jobs, "; ".join(errors), wall


def run(
    only: list[str], overrides: list[str], out: Path, data_dir: Path, again: bool = False
) -> bool:
    """Every claim in `only`; True when each sweep finished and got a verdict. `again`: no
    training, the verdicts recomputed from the sweeps already in `out`."""
    from cnnlab.lecture import cam_grid, figures

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sections, summary, pictures, complete, done = [], [], {}, True, {}
    for claim in (claims.BY_NAME[n] for n in only):
        print(f"lecture: {claim.name} …", flush=True)
        jobs, error, wall = _claim_jobs(claim, out, overrides, again, done)
        if claim.name in SHIFTED:
            measure_shifted(jobs, SHIFTED[claim.name], data_dir, overrides)
        judged = any(j.ok for j in jobs) or not claim.experiments
        finding = claim.judge(jobs) if judged else None
        drawn = {claim.name: figures.png(claim.name, finding.plot) if finding else None}
        if claim.name == "gradcam":
            drawn["gradcam_maps"] = cam_grid.png(jobs)
        drawn = {name: data for name, data in drawn.items() if data}
        for name, data in drawn.items():
            write_atomic(out / f"{name}.png", data)
        pictures.update(drawn)
        sections.append(_section(claim, finding, error, wall, list(drawn)))
        verdict = finding.verdict if finding else "no verdict"
        summary.append((claim.name, verdict + (f" ({error})" if error else ""), wall))
        complete = complete and finding is not None and not error
        print(f"lecture: {claim.name}: {verdict} [{wall:.0f} s]", flush=True)
    total = sum(w for _, _, w in summary) if again else time.perf_counter() - started
    stamp = _stamp(out, again, total, overrides, only)
    text = _report(summary, sections, stamp)
    write_atomic(out / "report.md", text)
    _to_tensorboard(out, text, pictures)
    return complete


def command(only: list[str], overrides: list[str]) -> str:
    """The `make lecture …` that runs these claims with these overrides again."""
    some = f" ONLY={','.join(only)}" if list(only) != list(claims.ORDER) else ""
    args = f' ARGS="{shlex.join(overrides)}"' if overrides else ""
    return f"make lecture{some}{args}"


def _stamp(out: Path, again: bool, total: float, overrides: list[str], only: list[str]) -> dict:
    """When and how the sweeps ran, kept in lecture.json: --report-only reports the run it reads,
    not itself (same date, total time and command)."""
    record = out / "lecture.json"
    if again and record.is_file():
        return json.loads(record.read_text())
    stamp = {"date": f"{datetime.now():%Y-%m-%d %H:%M}", "total_s": total,
             "command": command(only, overrides)}  # fmt: skip
    write_atomic(out / record.name, json.dumps(stamp).encode())
    return stamp


def _report(summary, sections, stamp: dict) -> str:
    import torch

    machine = f"{cpu_model()}, {cpu_cores()} cores, torch {torch.__version__}"
    head = ["# The lecture, measured", "",
            f"`{stamp['command']}` on {machine}, {stamp['date']}; "
            f"{stamp['total_s'] / 60:.1f} min in all.",
            "", markdown_table(["claim", "verdict", "wall s"],
                               [(n, v, f"{w:.0f}") for n, v, w in summary])]  # fmt: skip
    return "\n".join([*head, "", RECOMPUTE, "", *sections])


RECOMPUTE = (
    "How to recompute a verdict from its section: each part names what it compares; every seed's "
    "numbers are in `<sweep>/<job>/metrics.json` (a gap or a drop is computed per job first). "
    "The difference is between the two groups' means; its interval is Welch's: difference ± "
    "t × √(s₁²/n₁ + s₂²/n₂), with s each group's standard deviation over its n seeds (the ± in "
    "the table) and t Student's quantile at the Welch–Satterthwaite degrees of freedom (a "
    "difference of two differences adds four such terms). A part holds when its interval lies "
    'above zero and the difference reaches its minimum; a "no worse" part when the interval\'s '
    "upper end stays below it. Nothing is judged with fewer than "
    f"{stats.MIN_SEEDS} seeds per configuration, or when a premise fails (a network trained when "
    f"its mean test accuracy is at least chance + {verdicts.TRAINED_SHARE:g} × (1 − chance)). "
    "`--report-only` rebuilds this report from the job folders."
)
