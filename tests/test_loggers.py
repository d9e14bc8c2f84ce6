"""Every logger a first-class destination: the same scalars in TensorBoard and MLflow, cnnlab's
pictures in each logger's own form, W&B offline, sweeps grouped, and the first screen of
TensorBoard (one learning-rate curve, no `epoch` chart, the compared keys first in HPARAMS)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.commands.train import train
from cnnlab.core.errors import UserError
from cnnlab.training import build
from cnnlab.training.loggers import missing_package

SMALL = ["data.train_limit=256", "data.eval_batch_size=500", "callbacks.gradcam.every_n_epochs=1"]


def _events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _mlflow(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


@pytest.mark.slow
def test_tensorboard_and_mlflow_hold_the_same_scalars_images_and_params(quick, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = quick("logger=many", f"logger.mlflow.tracking_uri={uri}", "test=true", *SMALL,
                f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}")  # fmt: skip
    metrics, _ = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    client = _mlflow(uri)
    experiment = client.get_experiment_by_name("train")
    # MLflow 3's UI lists it among model-training experiments, not GenAI evaluation runs.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == run_dir.name and run.data.tags["run_dir"] == str(run_dir)
    board = _events(run_dir)
    for tag in ("train/loss", "val/loss", "val/acc", "test/acc", "lr-AdamW"):
        tb_last = board.Scalars(tag)[-1].value
        history = client.get_metric_history(run.info.run_id, tag)
        assert history and history[-1].value == pytest.approx(tb_last, rel=1e-6), tag
        assert len(history) == len(board.Scalars(tag)), tag  # buffered, not thinned
    groups = {k.rpartition("/")[0] for k in run.data.metrics} - {""}
    assert groups == {"test", "train", "val", "val_per_class_acc"}, groups  # no copies (curves/)
    keys = {a.path.split("+")[0] for a in client.list_artifacts(run.info.run_id, "images")}
    for key in ("gradcam_gradcam", "diagnostics_confusion_matrix", "eval_test_confusion_matrix"):
        assert f"images/{key}" in keys, keys
    # MLflow's full-size Grad-CAM picture holds exactly TensorBoard's pixels
    first = "images/gradcam_gradcam+step+0+"
    (png,) = [a.path for a in client.list_artifacts(run.info.run_id, "images")
              if a.path.startswith(first) and a.path.endswith(".png")]  # fmt: skip
    ours = np.asarray(Image.open(client.download_artifacts(run.info.run_id, png, str(tmp_path))))
    tb = board.Images("gradcam/gradcam")[0].encoded_image_string
    assert np.array_equal(ours, np.asarray(Image.open(io.BytesIO(tb)).convert("RGB")))
    tables = {a.path for a in client.list_artifacts(run.info.run_id, "eval_test")}
    assert "eval_test/per_class_step" in " ".join(tables), tables  # a table, MLflow's own form
    params = run.data.params
    assert params["model/net/hidden"] == "256" and params["optimizer/lr"] == "0.005"
    assert not any(k.endswith("_target_") for k in params)
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])


def _wandb_history(path: Path) -> dict[str, list]:
    """Every logged value of an offline W&B run, read from its `.wandb` file (a LevelDB-style log
    of protobuf records: 32 KiB blocks, 7-byte record headers; wandb ships no reader for it)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, pending, history = path.read_bytes(), 7, b"", {}
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if length == 0 and kind == 0:  # block padding
            pos += left
            continue
        if pos + 7 + length > len(data):  # the writer is still appending this record
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record.FromString(pending)
            pending = b""
            for item in record.history.item if record.HasField("history") else []:
                key = item.key or "/".join(item.nested_key)
                history.setdefault(key, []).append(json.loads(item.value_json))
    return history


@pytest.mark.slow
def test_wandb_offline_run_holds_the_scalars_and_images(quick):
    import wandb

    cfg = quick("logger=[tensorboard,wandb]", *SMALL)
    train(cfg)
    wandb.teardown()  # waits for W&B's writer process: the .wandb file is then complete
    run_dir = Path(cfg.paths.output_dir)
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    history = _wandb_history(next(offline.glob("run-*.wandb")))
    board = _events(run_dir)
    for tag in ("train/loss", "val/acc", "lr-AdamW"):
        assert history[tag][-1] == pytest.approx(board.Scalars(tag)[-1].value, rel=1e-6), tag
    for key in ("gradcam/gradcam", "diagnostics/confusion_matrix"):
        (name,) = history[f"{key}/filenames"][-1]
        assert (offline / "files" / name).stat().st_size > 100, key


def test_csv_logger_with_gradcam_says_once_that_images_are_not_logged(quick, caplog):
    import cnnlab.core.media as media

    media._said_no_images = False
    cfg = quick("logger=csv", "data.train_limit=256", "trainer.max_epochs=2",
                "callbacks.gradcam.every_n_epochs=1")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="cnnlab.core.media"):
        train(cfg)
    said = [r for r in caplog.records if "are not logged" in r.getMessage()]
    assert len(said) == 1 and "CSVLogger cannot show them" in said[0].getMessage()
    assert (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").is_file()


def test_no_logger_with_the_default_callbacks_trains_without_a_rate_curve(quick):
    """Lightning's LearningRateMonitor refuses a run without a logger; cnnlab's steps aside."""
    cfg = quick("logger=none", "data.train_limit=128", "callbacks.gradcam=null")
    metrics, _ = train(cfg)
    assert "val/acc" in metrics and not [k for k in metrics if k.startswith("lr-")]
    assert (Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt").is_file()


class _NeedsMlflow:
    def __init__(self, **kwargs):
        raise ModuleNotFoundError("No module named 'mlflow'", name="mlflow")


def test_a_missing_logger_package_is_one_line_naming_the_install(compose):
    cfg = compose("logger=mlflow", f"logger.mlflow._target_={__name__}._NeedsMlflow")
    with pytest.raises(UserError) as err:
        build.loggers(cfg)
    assert str(err.value) == (
        "logger.mlflow needs the mlflow package, which is not installed: "
        "pip install 'cnnlab[mlflow]' (or pip install mlflow)"
    )
    assert missing_package("tensorboard", ModuleNotFoundError("x")) is None


def test_tensorboard_first_screen_one_lr_curve_no_epoch_chart_compared_keys_first(
    command, tmp_path
):
    from tensorboard.plugins.hparams import plugin_data_pb2

    proc = command("train", "debug=test", "data.train_limit=256", "trainer.max_epochs=2",
                   "run_id=first")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    board = _events(tmp_path / "outputs" / "train" / "runs" / "first")
    scalars = board.Tags()["scalars"]
    assert "epoch" not in scalars
    assert [t for t in scalars if t.startswith("lr-")] == ["lr-AdamW"]
    from tensorboard.plugins.custom_scalar import layout_pb2

    (config,) = board.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts["loss (train, val)"] == ["^train/loss$", "^val/loss$"]
    content = board.summary_metadata["_hparams_/experiment"].plugin_data.content
    names = [
        h.name
        for h in plugin_data_pb2.HParamsPluginData.FromString(content).experiment.hparam_infos
    ]
    # HPARAMS' columns: the keys runs are compared by, not the whole config (hparams.yaml).
    assert {"model", "optimizer", "optimizer/lr", "data/batch_size", "trainer/max_epochs",
            "model/params"} <= set(names) and len(names) < 15  # fmt: skip
    assert not any("_target_" in n for n in names)
    run = tmp_path / "outputs" / "train" / "runs" / "first" / "tb"
    assert [p.name for p in run.iterdir() if p.is_dir()] == []  # one events file, no extra runs


@pytest.mark.slow
def test_a_two_job_sweep_is_two_mlflow_runs_under_one_parent_with_the_report(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "cnnlab.commands.train", "-m", "debug=test", "logger=many",
         f"logger.mlflow.tracking_uri={uri}", "data.train_limit=256", "seed=1,2",
         f"hydra.sweep.dir={sweep}", f"logger.mlflow.artifact_location={tmp_path / 'art'}"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = _mlflow(uri)
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    parents = [r for r in runs if r.data.tags.get("cnnlab.kind") == "sweep"]
    jobs = [r for r in runs if r not in parents]
    assert len(parents) == 1 and len(jobs) == 2
    parent = parents[0].info.run_id
    assert {r.data.tags["sweep"] for r in jobs} == {sweep.name}
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent}
    assert {r.info.run_name for r in jobs} == {f"{sweep.name}/0", f"{sweep.name}/1"}
    assert "report.md" in {a.path for a in client.list_artifacts(parent)}


def test_mlflow_metrics_are_buffered_unless_the_user_says_otherwise(monkeypatch, tmp_path):
    """MLflow's queue merges what arrives within 10 s into one SQLite write (make bench: its
    per-batch transactions cost a 2-epoch fit ~17 % on 2 cores); a value the user set wins."""
    from cnnlab.training.loggers import BUFFER_ENV, RunMLFlowLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv(BUFFER_ENV, raising=False)
    RunMLFlowLogger(tracking_uri=uri, synchronous=False, tags=None)
    assert os.environ[BUFFER_ENV] == "10"
    monkeypatch.setenv(BUFFER_ENV, "2")
    RunMLFlowLogger(tracking_uri=uri, synchronous=False, tags=None)
    assert os.environ[BUFFER_ENV] == "2"


def test_a_picture_reaches_each_logger_kind_through_its_adapter_unchanged(tmp_path):
    """TensorBoard gets the exact pixels, tag and step; a CSV logger has no adapter (said once)."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from cnnlab.core.media import Media, TensorBoardMedia

    rng = np.random.default_rng(0)
    picture = (rng.integers(0, 8, (40, 60, 3)) * 32).astype(np.uint8)
    logger = TensorBoardLogger(str(tmp_path), name="", version="tb")
    media = Media([logger, CSVLogger(str(tmp_path / "csv"))])
    assert [type(a) for a in media.adapters] == [TensorBoardMedia]
    media.image("gradcam/gradcam", picture, step=3)
    logger.experiment.flush()
    (event,) = _events(tmp_path).Images("gradcam/gradcam")
    assert (event.step, event.width, event.height) == (3, 60, 40)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(event.encoded_image_string))), picture)
