"""Every `error:` line the "What happens when…" page (docs/troubleshooting.md) quotes is a promise:
each row that can run offline is run here as the row says, and the line printed is compared with
the quoted one (`…` and the page's placeholders such as FILE or <folder> match anything; every
other character must be the same). A row answered by a fault that needs its own set-up (a full
disk, a killed rank, a hung process) names the test that runs it; a row nobody classified fails
the coverage test, so a new row cannot be added without its check."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import REPO, free_port

PAGE = REPO / "docs" / "troubleshooting.md"
README = REPO / "README.md"  # its first rows of the same table
CKPT = Path("checkpoints") / "best.ckpt"
# No request leaves the machine: a download goes to a closed local port and fails at once.
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
              "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}  # fmt: skip
PLACEHOLDERS = r"FILE|PATH|OUT|ROOT|DIR|SPLIT|<[^<>]+>"


def rows(page: Path = PAGE) -> list[tuple[str, str]]:
    """(you do this, cnnlab does this) for every row of a page's "What happens when…" table."""
    table = page.read_text().split("| you do this | cnnlab does this |", 1)[1].split("\n\n", 1)[0]
    found = []
    for line in table.strip().splitlines()[1:]:
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        found.append((cells[0].strip(), "|".join(cells[1:]).strip()))
    return found


def quoted_errors(answer: str) -> list[str]:
    return re.findall(r"`(error: [^`]+)`", answer)


def pattern(quoted: str) -> re.Pattern:
    """The quoted line as a pattern: `…` and placeholders match anything, nothing else does."""
    parts = re.split(rf"(…|{PLACEHOLDERS})", quoted)
    body = "".join(".*?" if i % 2 else re.escape(p) for i, p in enumerate(parts))
    return re.compile(rf"^{body}$")


def test_the_pattern_fails_on_a_changed_word():
    line = "error: port=70000 is out of range; valid: a port number from 1 to 65535"
    assert pattern("error: port=70000 is out of range; valid: …").match(line)
    assert pattern("error: FILE is out of range; valid: a port number from 1 to 65535").match(line)
    assert not pattern("error: port=70000 is out of bounds; valid: …").match(line)
    assert not pattern("error: port=70000 is out of range; valid: a port from 1 to 65535").match(
        line
    )


def _evil(ckpt: dict) -> None:
    ckpt["hyper_parameters"]["config"]["model"]["net"]["dropout"] = {
        "_target_": "os.system", "command": "true"}  # fmt: skip


def _cold(ckpt: dict) -> None:
    ckpt["calibration"] = {"temperature": 0.0, "fitted_on": "val"}


def _nan(ckpt: dict) -> None:
    ckpt["state_dict"]["net.features.0.weight"].fill_(float("nan"))


# The "you do this" cell's start → how the row is run: the command, its arguments ({ckpt}: the
# shared digits checkpoint, {edited}: it after `edit`, {tmp}: this test's folder, {port}: a free
# port, {busy}: a port in use), the environment, packages hidden, the exit code and any
# machine-dependent text of the quote replaced by this machine's.
RUN: dict[str, dict] = {
    "`make demo` without Gradio": dict(entry="demo", args=["ckpt_path={ckpt}", "port={port}"],
                                       hide=["gradio"]),  # fmt: skip
    '`make demo ARGS="ckpt_path=missing.ckpt"`': dict(entry="demo",
                                                      args=["ckpt_path=missing.ckpt"]),
    '`make demo ARGS="… port=70000"`': dict(entry="demo", args=["ckpt_path={ckpt}", "port=70000"]),
    "`make demo` on a port another": dict(entry="demo", args=["ckpt_path={ckpt}", "port={busy}"],
                                          subs={"7860": "{busy}", "7861": "{busy+1}"}),
    '`make demo ARGS="… host=no.such.host"`': dict(entry="demo",
                                                   args=["ckpt_path={ckpt}", "host=no.such.host"]),
    "a checkpoint whose stored config": dict(entry="predict", edit=_evil,
                                             args=["ckpt_path={edited}", "images={image}"]),
    "a checkpoint with a calibration": dict(entry="predict", edit=_cold,
                                            args=["ckpt_path={edited}", "images={image}"]),
    "a checkpoint with NaN weights": dict(entry="predict", edit=_nan,
                                          args=["ckpt_path={edited}", "images={image}"]),
    '`make lr-find ARGS="ckpt_path=…"`': dict(entry="lr_find", args=["ckpt_path={ckpt}"]),
    "`model=timm model.name=resnet18x`": dict(entry="train",
                                              args=["model=timm", "model.name=resnet18x"]),
    "`model=timm model.weights=foo`": dict(entry="train", args=["model=timm", "model.weights=foo"]),
    "`model=timm model.weights=DEFAULT` offline": dict(
        entry="train", args=["model=timm", "model.weights=DEFAULT", "debug=test"],
        env={**NO_NETWORK, "HF_HOME": "{tmp}/hf"}),
    "`model=timm` or `data=hf` without": dict(entry="train", args=["model=timm"], hide=["timm"]),
    "`make corpus": dict(entry="corpus", args=["--train", "0"]),
    "`data=shards` on a folder without": dict(entry="train",
                                              args=["data=shards", "data.source.root={tmp}"]),
    "`data=shards` without LitData": dict(entry="train", args=["data=shards"], hide=["litdata"]),
    "`data.decode=nvidia`": dict(entry="train", args=["data=image_folder", "data.decode=nvidia"]),
    "pass a truncated checkpoint": dict(entry="predict", truncate=True,
                                        args=["ckpt_path={edited}", "images={image}"]),
    "`logger=mlflow` (or `wandb`) without": dict(entry="train", args=["logger=mlflow"],
                                                 hide=["mlflow"]),
    "`model=convnet model.net.norm=weight`": dict(entry="train",
                                                  args=["model=convnet", "model.net.norm=weight"]),
    "`make lecture ONLY=dropout`": dict(entry="lecture", args=["--only", "dropout"], code=2),
    '`make lecture ARGS="--report-only"`': dict(entry="lecture", args=["--report-only"], code=2),
    "`test_ckpt=middle`": dict(entry="train", args=["test_ckpt=middle"]),
    "`run_id=../x`": dict(entry="train", args=["run_id=../x"]),
    "`run_id=../x`, a sweep": dict(entry="train", args=["-m", "run_id=../x"], row="`run_id=../x`"),
    "a value out of range": dict(entry="train", args=["data.batch_size=0"]),
    "`model.weights=DEFAULT` offline": dict(
        entry="train", args=["model=resnet18", "model.weights=DEFAULT", "debug=test"],
        env={**NO_NETWORK, "TORCH_HOME": "{tmp}/torch"}),
    "`launcher=slurm` on a machine": dict(entry="train", args=["-m", "launcher=slurm"]),
    '`make train ARGS="launcher=slurm"`': dict(entry="train", args=["launcher=slurm"]),
    "`make predict` / `explain` with `images=`": dict(entry="predict",
                                                      args=["ckpt_path={ckpt}", "images={tmp}/x"]),
    "`make predict` / `export` / `explain` with a file": dict(
        entry="predict", args=["ckpt_path={tmp}/notes.txt", "images={image}"]),
    '`make export ARGS="… format=tflite"`': dict(entry="export",
                                                 args=["ckpt_path={ckpt}", "format=tflite"]),
    "`format=onnx` without": dict(entry="export", args=["ckpt_path={ckpt}"], hide=["onnxscript"]),
    '`make zoo ARGS="--sort speed"`': dict(entry="zoo_table", args=["--sort", "speed"]),
    "`callbacks.model_checkpoint.monitor=val/typo`": dict(
        entry="train", args=["callbacks.model_checkpoint.monitor=val/typo"]),
    "`optimizer.lr=inf`": dict(entry="train", args=["optimizer.lr=inf"]),
    "`data.image_size=3`": dict(entry="train", args=["data.image_size=3"]),
    "`trainer.devices=99`": dict(entry="train", args=["trainer.devices=99"],
                                 subs={"has 2;": "has {cores};", "1 to 2,": "1 to {cores},"}),
}  # fmt: skip

# Rows whose answer needs a fault set up by a test of its own (named here, so the row is found
# there), or hardware this machine does not have.
ELSEWHERE: dict[str, str] = {
    "`data=hf` with a column": "tests/test_hf_data.py",
    "`data=hf` with a split": "tests/test_hf_data.py",
    "`data=hf data.source.name=beans`": "tests/test_hf_data.py",
    "`data=hf` with rows whose label is missing": "tests/test_hf_data.py",
    "`data=hf` with a ClassLabel of -1": "tests/test_hf_data.py",
    "`data=hf data.source.image_column=` naming": "tests/test_hf_data.py",
    "`make export` (any format) onto a disk": "tests/test_inference_failures.py",
    "an image file Pillow answers with": "tests/test_byte_flips.py",
    "SIGTERM to `make lecture` while": "tests/test_lecture.py",
    "`make shards` into an `out=`": "tests/test_shards.py",
    "`make shards` meets an unreadable": "tests/test_shards.py",
    "a JPEG libjpeg-turbo refuses": "tests/test_decode.py",
    "`bash benchmarks/gpu_check.sh` without CUDA": "tests/test_gpu_check.py",
    "start the same run twice": "tests/test_run_owner.py",
    "`paths.log_dir` (or `CNNLAB_DATA`)": "tests/test_machine.py",
    '`make export ARGS="… out_dir=': "tests/test_inference_failures.py",
    "`make predict` on a disk that fills": "tests/test_inference_failures.py",
    "`data=shards` whose `index.json`": "tests/test_inference_failures.py",
    "the disk fills while a checkpoint": "tests/test_machine.py",
    "torch and torchvision do not match": "tests/test_cli.py",
    '`make lecture ARGS="--out DIR"`': "tests/test_lecture.py",
    "`make eval` a 5-class checkpoint": "tests/test_cli.py",
    "one DDP process is killed": "tests/test_ddp.py",
    "`--config-dir DIR` names a missing": "tests/test_package.py",
    "use `hparams_search=…` or `launcher=…`": "tests/test_package.py",
    "`make predict` on a folder with a truncated": "tests/test_predict.py",
    "`make export` a network with an op": "tests/test_export.py",
    "an exported file whose logits differ": "tests/test_export.py",
    "`optimizer.lr=auto` when the range test": "tests/test_lr_search.py",
}


def _row_key(key: str) -> str:
    """The start of the row a check runs (a row may be run more than one way)."""
    return RUN.get(key, {}).get("row", key)


def _classified(you_do: str) -> str | None:
    for key in (*RUN, *ELSEWHERE):
        if you_do.startswith(_row_key(key)):
            return key
    return None


ERROR_ROWS = [(you, answer) for you, answer in rows() if quoted_errors(answer)]


def test_the_readmes_quoted_lines_are_the_pages():
    """A line the README quotes is one the page quotes (and so is checked below): the README's
    table is the page's first rows, shortened."""
    on_page = {q for _, answer in rows() for q in quoted_errors(answer)}
    quoted = [q for _, answer in rows(README) for q in quoted_errors(answer)]
    assert quoted and all(any(pattern(q).match(p) for p in on_page) for q in quoted), quoted


# `$ make <target> ARGS="…"` followed by the `error:` line it prints, in the pages' code blocks.
SESSIONS = sorted(
    {
        (page.name, target, args, line)
        for page in (README, *sorted((REPO / "docs").glob("*.md")))
        for target, args, line in re.findall(
            r'^\$ make ([\w-]+) ARGS="([^"]*)"\n(error: [^\n]+)$', page.read_text(), re.M
        )
    }
)


def test_the_pages_show_command_sessions():
    assert len(SESSIONS) >= 3, SESSIONS  # README's and the training page's, at least


@pytest.mark.parametrize("page, target, args, line", SESSIONS)
def test_a_shown_session_prints_what_the_page_shows(command, page, target, args, line):
    proc = command(target.replace("-", "_"), *args.split())
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and errors, proc.stderr[-2000:]
    assert pattern(line).match(errors[0]), f"{page} shows\n  {line}\ncnnlab says\n  {errors[0]}"


def test_every_quoted_error_line_is_run_here_or_by_a_named_test():
    unclassified = [you for you, _ in ERROR_ROWS if _classified(you) is None]
    assert not unclassified, f"rows with an error line but no check: {unclassified}"
    stale = [
        k
        for k in (*RUN, *ELSEWHERE)
        if not any(you.startswith(_row_key(k)) for you, _ in ERROR_ROWS)
    ]
    assert not stale, f"checks for rows the page no longer has: {stale}"
    for key, test_file in ELSEWHERE.items():
        (you, answer) = next(row for row in ERROR_ROWS if row[0].startswith(key))
        words = quoted_errors(answer)[0].removeprefix("error: ")
        checked = (REPO / test_file).read_text() + _source_of(test_file)
        checked = re.sub(r"[\"']\s*\n\s*[rf]?[\"']", "", checked)  # "a" "b" split over lines
        literals = re.findall(r"[\"']([^\"'\n]{15,})[\"']", checked)
        fragments = [f for lit in literals for f in re.split(r"\{[^}]*\}", lit) if len(f) >= 15]
        pieces = [p.strip(" ;:,()") for p in re.split(rf"…|{PLACEHOLDERS}", words)]
        # The test compares a part of the quoted line, or the line's fixed words are in the test.
        found = [f for f in fragments if f in f"error: {words}"]
        found += [p for p in pieces if len(p) >= 15 and p in checked]
        assert found, f"{test_file} checks no part of {words!r} ({you})"


def _source_of(test_file: str) -> str:
    """A test may compare the line through the constant that prints it: the source it imports."""
    text = (REPO / test_file).read_text()
    modules = re.findall(r"^from (cnnlab[\w.]*) import", text, flags=re.M)
    return "".join(
        (REPO / "src" / (m.replace(".", "/") + ".py")).read_text()
        for m in modules
        if (REPO / "src" / (m.replace(".", "/") + ".py")).is_file()
    )


def _without(hidden: list[str], entry: str, args: list[str], env: dict, root, data_dir):
    """`cnnlab-<entry> args…` in a new interpreter where `import <hidden>` fails, as on a machine
    without those packages."""
    boot = (f"import sys; sys.modules.update(dict.fromkeys({hidden!r})); "
            f"sys.argv = ['cnnlab-{entry}', *sys.argv[1:]]; "
            f"from cnnlab.commands.{entry} import main; main()")  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", boot, *args], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "CNNLAB_ROOT": str(root), "CNNLAB_DATA": str(data_dir), **env},
        timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize("key", list(RUN), ids=[re.sub(r"\W+", "_", k)[:40] for k in RUN])
def test_a_documented_error_line_is_what_cnnlab_prints(key, command, digits_run, tmp_path,
                                                       data_dir):  # fmt: skip
    how = RUN[key]
    you, answer = next(row for row in ERROR_ROWS if row[0].startswith(_row_key(key)))
    quoted = quoted_errors(answer)[0]
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(image)
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    edited = tmp_path / "edited.ckpt"
    if "edit" in how:
        ckpt = torch.load(digits_run / CKPT, weights_only=True)
        how["edit"](ckpt)
        torch.save(ckpt, edited)
    if how.get("truncate"):
        edited.write_bytes((digits_run / CKPT).read_bytes()[:5000])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        from cnnlab.cli import machine

        values = {"ckpt": digits_run / CKPT, "edited": edited, "tmp": tmp_path, "image": image,
                  "port": free_port(), "busy": busy, "busy+1": busy + 1,
                  "cores": machine.cpu_cores()}  # fmt: skip
        fill = lambda text: re.sub(r"\{([\w+]+)\}", lambda m: str(values[m.group(1)]), text)  # noqa: E731
        env = {k: fill(v) for k, v in how.get("env", {}).items()}
        args = list(map(fill, how["args"]))
        if how.get("hide"):  # a process of its own: libraries cache what they found importable
            proc = _without(how["hide"], how["entry"], args, env, tmp_path, data_dir)
        else:
            proc = command(how["entry"], *args, env=env)
    for old, new in how.get("subs", {}).items():
        quoted = quoted.replace(old, fill(new))
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == how.get("code", 1), proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert pattern(quoted).match(errors[0]), (
        f"the page says\n  {quoted}\ncnnlab says\n  {errors[0]}"
    )
    if re.search(r"no run folder|before any (sweep )?folder", answer):  # promised: nothing left
        assert not list((tmp_path / "outputs").rglob(".hydra")), answer


# Rows that quote no error line: the behaviour each promises, and the test that runs it.
BEHAVIOUR: dict[str, tuple[str, str]] = {
    "drop an unreadable file on the demo page": (
        "test_security.py",
        "test_the_demo_reads_uploads_only",
    ),
    '`make demo ARGS="… host=0.0.0.0"`': (
        "test_security.py",
        "test_the_page_binds_where_it_is_told_and_warns_for_the_network",
    ),
    "`data=hf` with an empty split": ("test_hf_data.py", "test_an_empty_split_is_named"),
    "a dataset with more than 200 classes": (
        "test_eval_report.py",
        "test_past_200_classes_the_matrix_is_in_the_csv_not_drawn",
    ),
    "`kill -9` during the end-of-training test": (
        "test_resume.py",
        "test_a_kill_during_the_end_of_training_test_is_finished_by_the_next_start",
    ),
    "SIGTERM to a sweep while a job is starting": (
        "test_sweeps.py",
        "test_a_sweep_stopped_while_a_job_starts_writes_its_report",
    ),
    "`kill -9` of `make shards`": (
        "test_workers.py",
        "test_a_pool_worker_ends_with_its_killed_parent",
    ),
    "kill a run, then start it again": (
        "test_reliability.py",
        "test_kill_9_leaves_a_loadable_last_checkpoint_and_resume_finishes",
    ),
    "resume at an epoch boundary": (
        "test_resume.py",
        "test_resume_is_exact_with_shuffle_dropout_and_augmentation",
    ),
    "`kill -9` a `data=shards` run": (
        "test_shards.py",
        "test_kill_9_mid_epoch_then_resume_is_bit_identical",
    ),
    "`make shards` with `src=` not a folder": (
        "test_shards.py",
        "test_conversion_refuses_bad_input_and_leaves_nothing",
    ),
    "`make shards` stopped half-way": (
        "test_files.py",
        "test_what_a_killed_writer_left_is_removed_by_the_next_write",
    ),
    "`data=shards` with `data.train_limit`": (
        "test_shards.py",
        "test_what_shards_cannot_do_is_one_line",
    ),
    "`data.decode=gpu` on a machine without CUDA": (
        "test_decode.py",
        "test_decode_gpu_without_cuda_says_one_line_and_falls_back",
    ),
    "a phone photo stored sideways": (
        "test_decode.py",
        "test_exif_rotated_jpegs_load_upright_on_every_path",
    ),
    "2-rank DDP with a validation split": (
        "test_shards.py",
        "test_two_rank_ddp_sees_each_sample_once_per_epoch",
    ),
    "`kill -9` in the middle of an epoch": (
        "test_reliability.py",
        "test_kill_9_leaves_a_loadable_last_checkpoint_and_resume_finishes",
    ),
    "send SIGTERM (SLURM, `kill`)": (
        "test_reliability.py",
        "test_sigterm_saves_and_exits_143_then_resumes",
    ),
    "SLURM sends SIGUSR1": (
        "test_reliability.py",
        "test_slurm_sigusr1_saves_requeues_and_the_requeued_job_resumes",
    ),
    "an unexpected exception in the middle": (
        "test_reliability.py",
        "test_exception_mid_epoch_saves_a_checkpoint_and_resume_warns",
    ),
    "the loss becomes NaN/Inf": (
        "test_reliability.py",
        "test_nonfinite_loss_stops_naming_the_step_and_writes_no_checkpoint",
    ),
    "pass a checkpoint that is a malicious pickle": (
        "test_reliability.py",
        "test_malicious_pickle_never_runs",
    ),
    "evaluate or resume from a checkpoint of another": (
        "test_finetune.py",
        "test_weights_file_of_another_architecture_is_refused_in_one_line",
    ),
    "give a wrong type, unknown key or unknown option": (
        "test_config.py",
        "test_wrong_type_names_the_key",
    ),
    "ask for a dataset that is not on disk": (
        "test_data.py",
        "test_offline_download_names_the_folder",
    ),
    "feed an image folder with RGBA": ("test_images.py", "test_rgba_is_composited_on_white"),
    "point an image folder at a missing folder": (
        "test_images.py",
        "test_bad_folder_setups_are_one_line",
    ),
    "`kill -9` a `logger=mlflow`": (
        "test_tracking_resume.py",
        "test_mlflow_after_kill_9_and_resume_is_one_finished_run_with_every_epoch_once",
    ),
    "resume a run (same `run_id`) after some epochs": (
        "test_resume.py",
        "test_resume_is_exact_with_shuffle_dropout_and_augmentation",
    ),
    "start a finished run again": (
        "test_resume.py",
        "test_a_finished_run_stays_finished_and_a_larger_max_epochs_extends_it",
    ),
    "resume with other settings": (
        "test_resume.py",
        "test_resuming_with_other_settings_is_refused_naming_them",
    ),
    "`make predict` on files whose names are not UTF-8": (
        "test_inference_failures.py",
        "test_any_file_name_is_written_and_read_back_and_dead_links_are_listed",
    ),
    "`logger=csv` (or `none`) with Grad-CAM": (
        "test_loggers.py",
        "test_csv_logger_with_gradcam_says_once_that_images_are_not_logged",
    ),
    "a `--config-dir` folder holds a file": (
        "test_user_configs.py",
        "test_a_command_without_job_logging_still_announces_it",
    ),
    "`model.predict_files(paths)`": (
        "test_predict.py",
        "test_predict_files_reads_as_predict_and_names_an_unreadable_file",
    ),
    '`make lecture ARGS="--out DIR"` again': (
        "test_lecture.py",
        "test_a_lecture_stopped_by_sigterm_reports_and_resumes",
    ),
    "a claim's sweep fails in `make lecture`": (
        "test_lecture.py",
        "test_a_failed_sweep_gives_no_verdict_and_exit_1",
    ),
    "a sweep job fails, or SIGTERM stops a sweep": (
        "test_sweeps.py",
        "test_a_sweep_stopped_by_sigterm_reports_every_job",
    ),
    "the checkpoint folder is deleted during training": (
        "test_resume.py",
        "test_a_checkpoint_folder_deleted_during_training_is_recreated",
    ),
    "a download fails": ("test_data.py", "test_offline_download_names_the_folder"),
    "run a `cnnlab-*` command from any folder": (
        "test_package.py",
        "test_wheel_installs_and_trains_from_an_unrelated_folder",
    ),
    "`make predict` on a folder with text files": (
        "test_predict.py",
        "test_folders_are_read_recursively_and_bad_images_fail_or_are_skipped",
    ),
    '`make predict ARGS="… tta=mirror"`': (
        "test_predict.py",
        "test_bad_input_is_one_line_and_leaves_no_run_folder",
    ),
    "the disk fills while `eval` writes": (
        "test_eval_report.py",
        "test_a_failed_report_leaves_the_previous_one_whole",
    ),
    "`make summary` for a huge model": (
        "test_torchvision_table.py",
        "test_parameters_and_multiply_adds_match_torchvision_meta",
    ),
    "`data.balance=oversample`": (
        "test_recipes_data.py",
        "test_bad_balance_and_fold_values_are_one_line",
    ),
    "`callbacks=[default,ema]` (or `swa`)": (
        "test_recipes_training.py",
        "test_the_printed_test_is_what_eval_of_the_tested_checkpoint_gives",
    ),
    "run the same `-m … run_id=NAME` sweep again": (
        "test_sweeps.py",
        "test_the_same_sweep_command_skips_finished_jobs_and_resumes_the_interrupted_one",
    ),
    "`cnnlab.load(path)` a missing, truncated": (
        "test_security.py",
        "test_a_hand_edited_checkpoint_is_one_line",
    ),
    "`ClassifierModule.load_from_checkpoint(path)`": (
        "test_package.py",
        "test_load_from_checkpoint_points_to_cnnlab_load",
    ),
}


def test_every_other_row_names_the_test_that_runs_it():
    """Every row without a quoted line names a test that exists, so no promise is untested."""
    plain = [you for you, answer in rows() if not quoted_errors(answer)]
    missing = [you for you in plain if not any(you.startswith(k) for k in BEHAVIOUR)]
    assert not missing, f"rows that name no test: {missing}"
    stale = [k for k in BEHAVIOUR if not any(you.startswith(k) for you in plain)]
    assert not stale, f"tests named for rows the page no longer has: {stale}"
    for key, (file, name) in BEHAVIOUR.items():
        assert re.search(rf"^def {name}\(", (REPO / "tests" / file).read_text(), re.M), (key, name)
