"""What the "What happens when…" page promises, row by row, and how each row is checked:
`RUN` (run here as the row says), `ELSEWHERE` (a test of its own sets up the fault) and
`BEHAVIOUR` (rows quoting no line: the test that runs them). Read by test_documented_lines."""

from __future__ import annotations

from pathlib import Path

from tests.checkpoint_edits import inject, nan_weight, setting

# No request leaves the machine: a download goes to a closed local port and fails at once.
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
              "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}  # fmt: skip


EVIL = inject("model.net.dropout", Path("/nonexistent/ran"))  # never runs: refused first
COLD = setting("calibration", {"temperature": 0.0})

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
    "`make playground` without Gradio": dict(entry="playground", args=["port={port}"],
                                             hide=["gradio"]),  # fmt: skip
    '`make playground ARGS="tab=maps"`': dict(entry="playground", args=["tab=maps"]),
    '`make playground ARGS="tab=inside"`': dict(entry="playground",
                                                args=["tab=inside", "port={port}"]),
    "a checkpoint whose stored config": dict(entry="predict", edit=EVIL,
                                             args=["ckpt_path={edited}", "images={image}"]),
    "a checkpoint with a calibration": dict(entry="predict", edit=COLD,
                                            args=["ckpt_path={edited}", "images={image}"]),
    "a checkpoint with NaN weights": dict(entry="predict", edit=nan_weight,
                                          args=["ckpt_path={edited}", "images={image}"]),
    '`make lr-find ARGS="ckpt_path=…"`': dict(entry="lr_find", args=["ckpt_path={ckpt}"]),
    "`model=timm model.name=resnet18x`": dict(entry="train",
                                              args=["model=timm", "model.name=resnet18x"]),
    "`model=timm model.weights=foo`": dict(entry="train", args=["model=timm", "model.weights=foo"]),
    "`model=timm model.weights=DEFAULT` offline": dict(
        entry="train", args=["model=timm", "model.weights=DEFAULT", "debug=test"],
        env={**NO_NETWORK, "HF_HOME": "{tmp}/hf"}, fresh=True),
    "`model=timm` or `data=hf` without": dict(entry="train", args=["model=timm"], hide=["timm"]),
    "`make corpus": dict(entry="corpus", args=["--train", "0"]),
    '`make embed ARGS="model=timm': dict(entry="embed", args=["model=timm",
                                                           "model.name=resnet18x"]),
    "`make embed` on data": dict(entry="embed", args=["data=fake", "data.source.num_test=0"]),
    "`classifier=linear augment": dict(entry="train", args=["classifier=linear", "augment=mnist"]),
    "`data=shards` on a folder without": dict(entry="train",
                                              args=["data=shards", "data.source.root={tmp}"]),
    "`data=shards` without LitData": dict(entry="train", args=["data=shards",
                                                               "data.source.root={tmp}"],
                                          hide=["litdata"]),
    "`data=image_folder` (or `data=shards`) without": dict(entry="train",
                                                            args=["data=image_folder"]),
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
    "a key that moved": dict(entry="train", args=["decay_norm_and_bias=true"]),
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
    "`data=image_folder data.in_channels=1`": "tests/test_data.py",
    "`make embed` (or `classifier=…`) onto a full disk": "tests/test_features.py",
    "`classifier.features=` a folder embedded": "tests/test_features.py",
    "`data=hf` with a column": "tests/test_hf_data.py",
    "`data=hf` with a split": "tests/test_hf_data.py",
    "`data=hf data.source.name=beans`": "tests/test_hf_data.py",
    "`data=hf` with rows whose label is missing": "tests/test_hf_data.py",
    "`data=hf` with a ClassLabel of -1": "tests/test_hf_data.py",
    "`data=hf data.source.image_column=` naming": "tests/test_hf_data.py",
    "`make export` (any format) onto a disk": "tests/test_inference_failures.py",
    "an image file Pillow answers with": "tests/test_byte_flips.py",
    "SIGTERM to `make lecture` while": "tests/test_lecture_command.py",
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
    '`make lecture ARGS="--out DIR"`': "tests/test_lecture_command.py",
    "`make eval` a 5-class checkpoint": "tests/test_cli.py",
    "one DDP process is killed": "tests/test_ddp.py",
    "`--config-dir DIR` names a missing": "tests/test_package.py",
    "use `hparams_search=…` or `launcher=…`": "tests/test_package.py",
    "`make predict` on a folder with a truncated": "tests/test_predict.py",
    "`make export` a network with an op": "tests/test_export.py",
    "an exported file whose logits differ": "tests/test_export.py",
    "`optimizer.lr=auto` when the range test": "tests/test_lr_search.py",
}


# Rows that quote no error line: the behaviour each promises, and the test that runs it.
BEHAVIOUR: dict[str, tuple[str, str]] = {
    "`make embed` killed": (
        "test_features.py",
        "test_a_killed_embed_continues_after_its_finished_parts",
    ),
    "`logger=none` with the default callbacks": (
        "test_loggers.py",
        "test_no_logger_with_the_default_callbacks_trains_without_a_rate_curve",
    ),
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
        "test_lecture_command.py",
        "test_a_lecture_stopped_by_sigterm_reports_and_resumes",
    ),
    '`cnnlab.train("trainer.max_epochs=-5")`': (
        "test_api.py",
        "test_a_mistake_is_the_command_lines_line_as_a_user_error",
    ),
    "a notebook in `notebooks/` edited without": (
        "test_notebooks.py",
        "test_the_site_shows_the_notebook_executed_from_its_current_source",
    ),
    "in the playground: a kernel cell": (
        "test_playground.py",
        "test_a_bad_kernel_is_one_message",
    ),
    "`cnnlab.train(…, quiet=True)`": ("test_api.py", "test_the_api_in_a_real_jupyter_kernel"),
    '`make lecture ARGS="seed=1"`': (
        "test_lecture.py",
        "test_one_seed_or_two_is_never_judged",
    ),
    "a claim's sweep fails in `make lecture`": (
        "test_lecture_command.py",
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
