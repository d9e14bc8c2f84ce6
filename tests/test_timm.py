"""timm models (`model=timm model.name=…`): a convnet, a ViT and a hybrid train on the digits and
go through summary, export, explain and cnnlab.load; pretrained weights load through timm's own
path from a Hugging Face cache written here (offline), and their preprocessing comes from timm's
`pretrained_cfg`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")

from cnnlab.core.preprocessing import decide  # noqa: E402
from cnnlab.models.anatomy import find_cam_layer  # noqa: E402
from cnnlab.training import build  # noqa: E402

CKPT = "checkpoints/last.ckpt"
# A convnet, a ViT and a hybrid (MobileViT: convolutions and transformer blocks), with the
# Grad-CAM target `cam_layer: auto` finds in each.
MODELS = [("resnet18d", "layer4"), ("vit_tiny_patch16_224", "blocks.11.norm1"),
          ("mobilevit_xxs", "final_conv")]  # fmt: skip


@pytest.mark.parametrize(("name", "cam_layer"), MODELS, ids=[m[0] for m in MODELS])
def test_a_timm_model_is_built_for_the_data_with_its_cam_layer(compose, name, cam_layer):
    cfg = compose("model=timm", f"model.name={name}", "data.input_size=64")
    prep = decide(cfg.data, cfg.model)
    net = build.network(cfg.model, prep)
    logits = net(torch.zeros(2, 1, 64, 64))  # the digits' one channel, the run's input size
    assert logits.shape == (2, 10)
    assert find_cam_layer(net.eval(), torch.zeros(1, 1, 64, 64)) == cam_layer


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18d", "vit_tiny_patch16_224"])
def test_a_timm_model_trains_then_exports_explains_and_loads(command, tmp_path, name):
    run = tmp_path / "outputs" / "train" / "runs" / name
    trained = command("train", "model=timm", f"model.name={name}", "data.input_size=32",
                      "debug=test", "trainer.max_epochs=2", "data.train_limit=1000",
                      f"run_id={name}")  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train/acc"] > 0.3, metrics  # it learned (chance: 0.1)

    export = command("export", f"ckpt_path={run / CKPT}", "format=onnx", f"run_id=x{name}")
    assert export.returncode == 0, export.stderr[-3000:]
    assert "max |Δ logit|" in export.stdout  # the command itself fails above 1e-4

    images = tmp_path / "digits"
    images.mkdir()
    import cnnlab

    model = cnnlab.load(run / CKPT)
    from PIL import Image

    for i in range(3):
        Image.new("L", (28, 28), 40 * i).save(images / f"{i}.png")
    explained = command("explain", f"ckpt_path={run / CKPT}", f"images={images}", "limit=3")
    assert explained.returncode == 0, explained.stderr[-3000:]
    overlays = sorted((run / "explain" / "gradcam-pred").glob("*.png"))
    assert len(overlays) >= 3  # three overlays and the contact sheet
    assert model.predict_files([images / "0.png"]).shape == (1, 10)


def test_summary_counts_a_timm_model(command):
    proc = command("summary", "model=timm", "model.name=resnet18d", "data.input_size=64")
    assert proc.returncode == 0, proc.stderr[-2000:]
    params = sum(p.numel() for p in timm.create_model("resnet18d", num_classes=10, in_chans=1)
                 .parameters())  # fmt: skip
    assert f"{params:,}" in proc.stdout


def _hf_cache(home: Path, repo: str, state: dict[str, torch.Tensor]) -> None:
    """The Hugging Face Hub cache layout hf_hub_download reads offline: refs/main names a
    snapshot holding model.safetensors."""
    folder = home / "hub" / ("models--" + repo.replace("/", "--"))
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    safetensors_torch.save_file({k: v.contiguous() for k, v in state.items()},
                                str(snapshot / "model.safetensors"))  # fmt: skip


def test_pretrained_weights_load_through_timm_from_the_hub_cache_offline(compose, tmp_path,
                                                                          monkeypatch):  # fmt: skip
    repo = timm.models.get_pretrained_cfg("resnet18d").hf_hub_id  # timm/resnet18d.ra2_in1k
    published = timm.create_model("resnet18d").state_dict()  # 1,000 classes, RGB
    _hf_cache(tmp_path / "hf", repo, published)
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    cfg = compose("model=timm", "model.name=resnet18d", "model.weights=DEFAULT",
                  "data=fake", "data.in_channels=3")  # fmt: skip
    prep = decide(cfg.data, cfg.model)
    pretrained = timm.models.get_pretrained_cfg("resnet18d")
    assert prep.mean == pytest.approx(pretrained.mean) and prep.std == pytest.approx(pretrained.std)
    assert prep.input_size == pretrained.input_size[1] and prep.interpolation == "bicubic"
    net = build.network(cfg.model, prep)
    assert torch.equal(
        net.state_dict()["layer4.1.conv2.weight"], published["layer4.1.conv2.weight"]
    )
    assert net.fc.out_features == cfg.data.num_classes  # the head is new


def test_timm_mistakes_are_one_line(command, monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    cases = {
        "model.name=resnet18x": "is not a timm model; close names: resnet18,",
        "model.weights=foo": "model.weights='foo' is not a pretrained tag of resnet18d; valid: "
        "DEFAULT, ra2_in1k",
        "model.weights=DEFAULT": "hf download timm/resnet18d.ra2_in1k",
    }
    for override, expected in cases.items():
        proc = command("train", "model=timm", override, "debug=test", f"run_id={len(override)}")
        errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
        assert proc.returncode == 1 and len(errors) == 1 and expected in errors[0], proc.stderr


@pytest.mark.parametrize(
    ("name", "head"),
    [("vit_tiny_patch16_224", "head"), ("deit_tiny_distilled_patch16_224", "head,head_dist")],
)
def test_the_linear_probe_trains_only_the_heads_a_model_declares(compose, name, head):
    """A ViT's class token and position embedding are backbone; a distilled DeiT's two heads
    (timm's pretrained_cfg names both) are the head, not just the last nn.Linear."""
    from types import SimpleNamespace

    from cnnlab.models.build import head_name
    from cnnlab.training.finetune import LinearProbe

    cfg = compose("model=timm", f"model.name={name}", "data.input_size=32")
    net = build.network(cfg.model, decide(cfg.data, cfg.model))
    assert head_name(cfg.model, net) == head
    LinearProbe(head=head).setup(None, SimpleNamespace(net=net), "fit")
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    expected = {f"{h}.{w}" for h in head.split(",") for w in ("weight", "bias")}
    assert trainable == expected, sorted(trainable)
    assert not net.cls_token.requires_grad and not net.pos_embed.requires_grad
