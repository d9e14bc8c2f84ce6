"""`make lecture`: each claim's verdict follows from its numbers, and one small claim runs end to
end (its report's verdict is recomputed from the table it wrote)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.lecture import claims, figures
from cnnlab.lecture.results import Job
from cnnlab.lecture.run import shifted

REPO = Path(__file__).resolve().parents[1]
LECTURE = "cnnlab.commands.lecture"


def job(metrics: dict, curves: dict | None = None, **overrides) -> Job:
    return Job(Path("."), {k.replace("__", "."): str(v) for k, v in overrides.items()},
               {"params": 1000, **metrics}, curves=curves or {})  # fmt: skip


def seeds(metrics: dict, **overrides) -> list[Job]:
    return [job(metrics, seed=s, **overrides) for s in (1, 2, 3)]


def seeds_of(values: list[dict], **overrides) -> list[Job]:
    return [job(m, seed=s, **overrides) for s, m in enumerate(values, start=1)]


def test_connectivity_holds_only_when_the_convnet_wins_and_degrades_less():
    mlp = seeds({"test/acc": 0.95, "test/acc_shifted": 0.60}, model="mlp")
    conv = seeds({"test/acc": 0.98, "test/acc_shifted": 0.90}, model="convnet")
    verdict = claims.connectivity(mlp + conv).verdict
    assert verdict.startswith("holds: the ConvNet beats the MLP (3.0 points, margin 0.5)")
    worse = seeds({"test/acc": 0.98, "test/acc_shifted": 0.30}, model="convnet")
    verdict = claims.connectivity(mlp + worse).verdict
    assert verdict.startswith("partly holds: the ConvNet beats the MLP"), verdict
    assert "but shifted digits do not cost the ConvNet less than the MLP (68.0 vs 35.0" in verdict


def test_connectivity_within_the_seed_spread_does_not_hold():
    mlp = seeds_of([{"test/acc": a, "test/acc_shifted": 0.6} for a in (0.90, 0.95, 1.00)],
                   model="mlp")  # fmt: skip
    conv = seeds_of([{"test/acc": a, "test/acc_shifted": 0.9} for a in (0.93, 0.96, 0.99)],
                    model="convnet")  # fmt: skip
    verdict = claims.connectivity(mlp + conv).verdict  # +1 point, spread 5 points
    assert verdict.startswith("partly holds") and "does not beat the MLP (1.0 points" in verdict


def test_batchnorm_judges_higher_rates_and_acceleration():
    curves = {"fast": {"val/acc": [(1, 0.5), (2, 0.98)]}, "slow": {"val/acc": [(1, 0.5)] * 4}}
    rows = []
    for lr, plain, bn in ((0.01, 0.97, 0.96), (0.5, 0.11, 0.70)):
        rows += [job({"test/acc": plain}, curves["slow"], model="convnet", optimizer__lr=lr)]
        rows += [job({"test/acc": bn}, curves["fast"], model="convnet_bn", optimizer__lr=lr)]
    verdict = claims.batchnorm(rows).verdict
    assert verdict.startswith("holds: at lr 0.5 the plain ConvNet diverges to chance"), verdict
    assert "BatchNorm accelerates training (at lr 0.01, the plain network's best" in verdict
    assert verdict.endswith("best over the grid 96.0 % with BatchNorm, 97.0 % without")
    plot = claims.batchnorm(rows).plot  # error bars: one per rate and series
    assert {k: len(v) for k, v in plot["errors"].items()} == {"convnet": 2, "convnet_bn": 2}
    assert figures.png("batchnorm", plot)[:4] == b"\x89PNG"
    both = [j for j in rows if j.set["optimizer.lr"] == "0.01"]
    assert claims.batchnorm(both).verdict.startswith("partly holds: BatchNorm accelerates")


def test_batchnorm_counts_epochs_to_the_level_from_the_curves():
    fast = job({"test/acc": 0.98}, {"val/acc": [(10, 0.5), (20, 0.975)]})
    never = job({"test/acc": 0.5}, {"val/acc": [(10, 0.5), (20, 0.6)]})
    assert claims._epochs_to(fast, 0.97) == 2
    assert claims._epochs_to(never, 0.97) == float("inf")


def residual_sweep(accs: dict, losses: dict) -> list[Job]:
    rows = []
    for name, acc in accs.items():
        kind, depth = name.split("-")
        # Hydra's sweeper writes the booleans back as True / False.
        rows += seeds({"test/acc": acc, "train/loss": losses[name]},
                      model__net__residual=kind == "residual", model__net__depth=depth)  # fmt: skip
    return rows


def test_residual_holds_only_when_every_part_of_the_sentence_does():
    accs = {"residual-20": 0.97, "residual-56": 0.975, "plain-20": 0.96, "plain-56": 0.90}
    losses = {"residual-20": 0.2, "residual-56": 0.18, "plain-20": 0.25, "plain-56": 0.5}
    verdict = claims.residual(residual_sweep(accs, losses)).verdict
    assert verdict.startswith("holds: plain-56 trains worse than plain-20"), verdict
    assert "residual-56 trains no worse than residual-20" in verdict


def test_residual_deeper_residual_training_worse_is_never_holds():
    """A real earlier run: residual-56 below residual-20 (training loss 1.240 vs 1.113)."""
    accs = {"residual-20": 0.706, "residual-56": 0.611, "plain-20": 0.65, "plain-56": 0.35}
    losses = {"residual-20": 1.113, "residual-56": 1.240, "plain-20": 1.2, "plain-56": 1.9}
    verdict = claims.residual(residual_sweep(accs, losses)).verdict
    assert verdict.startswith("partly holds") and "but residual-56 trains worse than" in verdict


def test_residual_with_an_untrained_network_is_never_holds():
    accs = {"residual-20": 0.97, "residual-56": 0.975, "plain-20": 0.96, "plain-56": 0.12}
    losses = {"residual-20": 0.2, "residual-56": 0.18, "plain-20": 0.25, "plain-56": 2.25}
    verdict = claims.residual(residual_sweep(accs, losses)).verdict
    assert verdict == ("does not hold at this budget: plain-56 did not train (test accuracy "
                       "12.0 % < 30.0 %)")  # fmt: skip


def test_augmentation_gain_must_shrink_with_more_data():
    rows = []
    for size, none, aug in ((300, 0.85, 0.90), (3600, 0.97, 0.98)):
        rows += seeds({"test/acc": none, "train_images": size}, augment="none",
                      data__train_limit=size)  # fmt: skip
        rows += seeds({"test/acc": aug, "train_images": size}, augment="mnist",
                      data__train_limit=size)  # fmt: skip
    assert claims.augmentation(rows).verdict.startswith(
        "holds: augmentation helps with little data (+5.0 points with 300 training images"
    )
    flat = [j for j in rows if j.set["data.train_limit"] == "300"] + [
        job({"test/acc": a, "train_images": 3600}, augment=k, data__train_limit=3600)
        for k, a in (("none", 0.80), ("mnist", 0.85))]  # fmt: skip
    assert "but not more so with less data" in claims.augmentation(flat).verdict


def test_transfer_picks_each_strategys_rate_by_validation_not_test():
    rows = seeds({"val/acc_best": 0.6, "test/acc": 0.6}, transfer="scratch", optimizer__lr=0.01)
    rows += seeds({"val/acc_best": 0.9, "test/acc": 0.85}, transfer="finetune", optimizer__lr=0.01)
    # Higher test accuracy but lower validation: never chosen.
    rows += seeds({"val/acc_best": 0.5, "test/acc": 0.99}, transfer="finetune", optimizer__lr=0.1)
    finding = claims.transfer(rows)
    assert "| finetune | 0.01 |" in finding.table
    assert finding.verdict == (
        "holds: finetune beats training from scratch (25.0 points, margin 0.5)"
    )


def test_gradcam_holds_when_the_shortcut_network_points_outside_the_digit():
    rows = seeds({"val/pointing_game": 0.8, "test/acc": 0.95}, data__source__correlation=0.0)
    rows += seeds({"val/pointing_game": 0.2, "test/acc": 0.105, "train/acc": 0.99},
                  data__source__correlation=1.0)  # fmt: skip
    assert claims.gradcam(rows).verdict.startswith("holds: Grad-CAM shows the shortcut")


@pytest.mark.parametrize(
    ("shortcut", "honest", "expect"),
    [  # untrained networks (2 batches, seed 3: 10.2 % and 18.2 %): never "holds"
        ({"val/pointing_game": 0.05, "test/acc": 0.102, "train/acc": 0.15},
         {"val/pointing_game": 0.5, "test/acc": 0.182},
         "does not hold at this budget: the network without a shortcut did not train"),
        ({"val/pointing_game": 0.05, "test/acc": 0.102, "train/acc": 0.25},
         {"val/pointing_game": 0.9, "test/acc": 0.95},
         "does not hold at this budget: the shortcut network did not learn the shortcut"),
        # a gap smaller than the margin
        ({"val/pointing_game": 0.75, "test/acc": 0.12, "train/acc": 0.99},
         {"val/pointing_game": 0.8, "test/acc": 0.95},
         "does not hold at this budget: Grad-CAM does not show the shortcut"),
    ],
)  # fmt: skip
def test_gradcam_never_holds_without_its_premise_or_margin(shortcut, honest, expect):
    rows = [job(shortcut, seed=1, data__source__correlation=1.0),
            job(honest, seed=1, data__source__correlation=0.0)]  # fmt: skip
    assert claims.gradcam(rows).verdict.startswith(expect)


def test_shifted_moves_each_image_three_pixels_in_its_direction():
    images = torch.zeros(4, 1, 10, 10, dtype=torch.uint8)
    images[:, 0, 5, 5] = 255
    out = shifted(images, 3)
    where = [tuple(torch.nonzero(o[0])[0].tolist()) for o in out]
    assert where == [(5, 8), (5, 2), (8, 5), (2, 5)]  # right, left, down, up


def test_unknown_claim_is_one_line_and_exit_2(tmp_path):
    run = subprocess.run([sys.executable, "-m", LECTURE, "--only", "dropout"],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: unknown claim 'dropout'; valid: connectivity, sharing, pooling, batchnorm, "
        "normalization, residual, imagenet, augmentation, transfer, probe_finetune, gradcam"
    ]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--report-only"], "error: --report-only needs --out: the lecture folder to report on"),
        (
            ["--out", "{used}"],
            "error: {used} already holds files but no lecture run to resume "
            "(no claims.json); choose another --out",
        ),
        (["--out", "{empty}", "--report-only"], "error: {empty} holds no lecture run"),
    ],
)
def test_lecture_folder_mistakes_are_one_line_and_touch_nothing(tmp_path, args, expect):
    used, empty = tmp_path / "used", tmp_path / "empty"
    used.mkdir()
    (used / "report.md").write_text("kept")
    fill = {"used": used, "empty": empty}
    run = subprocess.run([sys.executable, "-m", LECTURE, "--only", "connectivity",
                          *(a.format(**fill) for a in args)],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[0].startswith(expect.format(**fill)), run.stderr
    assert (used / "report.md").read_text() == "kept" and not empty.exists()


def test_the_single_pretraining_run_gets_every_override_but_the_sweepers():
    from cnnlab.lecture.run import single_run

    args = ["trainer.max_epochs=1", "hydra.sweeper.params.seed=1", "seed=1",
            "+hydra.sweeper.max_batch_size=2", "optimizer.lr=0.1"]  # fmt: skip
    assert single_run(args) == ["trainer.max_epochs=1", "seed=1", "optimizer.lr=0.1"]


def test_a_failed_sweep_gives_no_verdict_and_exit_1(tmp_path):
    """Also: without --out the lecture folder goes under CNNLAB_ROOT, as every command's runs do,
    not under the folder it was started from."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run([sys.executable, "-m", LECTURE, "--only", "connectivity",
                          "trainer.max_epochs=abc"], capture_output=True, text=True, cwd=elsewhere,
                         env={**os.environ, "CNNLAB_ROOT": str(root),
                              "PYTHONPATH": f"{REPO / 'src'}:{REPO}"})  # fmt: skip
    assert run.returncode == 1, run.stderr[-2000:]
    (out,) = (root / "outputs" / "lecture").iterdir()
    assert list(elsewhere.iterdir()) == []
    text = (out / "report.md").read_text()
    assert "| connectivity | no verdict (the sweep failed (exit 1); see " in text
    assert "trainer.max_epochs" in (out / "connectivity.log").read_text()


def _cells(table_row: str) -> list[str]:
    return [c.strip() for c in table_row.strip().strip("|").split("|")]


@pytest.mark.slow
def test_one_small_claim_end_to_end_its_verdict_follows_from_its_table(tmp_path):
    out = tmp_path / "lecture"
    run = subprocess.run(
        [sys.executable, "-m", LECTURE, "--only", "connectivity", "--out", str(out),
         "--data-dir", str(REPO / "data"), "trainer.max_epochs=1", "data.train_limit=300",
         "hydra.sweeper.params.seed=1", "callbacks.progress_bar=null"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    text = (out / "report.md").read_text()
    rows = {c[0]: c for c in map(_cells, re.findall(r"^\| (?:mlp|convnet) \|.*$", text, re.M))}
    acc = {m: float(rows[m][3].split(" ± ")[0]) for m in ("mlp", "convnet")}
    moved = {m: float(rows[m][4].split(" ± ")[0]) for m in ("mlp", "convnet")}
    # One seed: each part's margin is the least one, 0.5 points; both networks must have trained.
    parts = [acc["convnet"] - acc["mlp"] > 0.5,
             (acc["mlp"] - moved["mlp"]) - (acc["convnet"] - moved["convnet"]) > 0.5]  # fmt: skip
    trained = min(acc.values()) >= 30
    expect = "holds" if all(parts) else "partly holds" if any(parts) else "does not hold"
    verdict = re.search(r"^\*\*Verdict\*\*: (.*)$", text, re.M).group(1)
    assert verdict.startswith(expect if trained else "does not hold at this budget"), text
    assert re.search(r"^\| connectivity \| (holds|partly holds|does not hold).* \| \d+ \|$", text,
                     re.M)  # fmt: skip
    assert (out / "connectivity.png").stat().st_size > 1000
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert len([p for p in (out / "connectivity").iterdir() if p.name.isdigit()]) == 2
    # --report-only trains nothing and recomputes the same verdict from the folders, of the
    # claims the folder was made with (no --only repeated).
    assert json.loads((out / "claims.json").read_text()) == ["connectivity"]
    again = subprocess.run(
        [sys.executable, "-m", LECTURE, "--out", str(out),
         "--data-dir", str(REPO / "data"), "--report-only"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "report.md").read_text() == text  # its date and total time included
    assert len(list((out / "tb").glob("events.out.tfevents.*"))) == 1
    assert len([p for p in (out / "connectivity").iterdir() if p.name.isdigit()]) == 2


@pytest.mark.slow
def test_a_lecture_stopped_by_sigterm_reports_and_resumes(tmp_path):
    """SIGTERM to make lecture while its sweep trains: the sweep saves and reports, the lecture
    says how to go on (exit 143); --report-only reports what is there, and the same command
    resumes and finishes."""
    out = tmp_path / "lecture"
    command = [sys.executable, "-m", LECTURE, "--only", "connectivity", "--out", str(out),
               "--data-dir", str(REPO / "data"), "trainer.max_epochs=1", "data.train_limit=300",
               "hydra.sweeper.params.seed=1", "callbacks.progress_bar=null",
               "+callbacks.fault._target_=tests.faults.SignalAt", "+callbacks.fault.step=2",
               "+callbacks.fault.signal_name=SIGTERM", "+callbacks.fault.to_parent=true",
               f"+callbacks.fault.once={tmp_path / 'sent'}"]  # fmt: skip
    stopped = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"error: the lecture was stopped (SIGTERM); {out} keeps every sweep that finished and "
        f"the stopped one's checkpoints: run the same command to resume, or add --report-only "
        f"to report what is there"
    )
    record = json.loads((out / "connectivity.json").read_text())
    assert record["error"].startswith("stopped by SIGTERM")
    assert (out / "connectivity" / "report.md").is_file()  # the sweep's own, on its SIGTERM
    report_only = subprocess.run([*command[:3], *command[5:9], "--report-only"],
                                 capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert report_only.returncode == 1, report_only.stderr[-2000:]  # no verdict yet: says so
    assert "stopped by SIGTERM" in (out / "report.md").read_text()
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert re.search(r"^\| connectivity \| (holds|partly holds|does not hold)", (
        out / "report.md").read_text(), re.M)  # fmt: skip
