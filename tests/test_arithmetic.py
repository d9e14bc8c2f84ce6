"""The lecture's numbers, computed by the tool: parameters, shapes, activations, memory, FLOPs."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from cnnlab.analysis.arithmetic import analyze, conv_output_size, conv_params, dense_params
from cnnlab.commands.summary import render, report_for
from cnnlab.training import build


@pytest.fixture(scope="module")
def vgg16_report():
    from cnnlab.models.vgg import VGG

    return analyze(VGG(depth=16, in_channels=3, num_classes=1000, image_size=224), (3, 224, 224))


def test_vgg16_parameters_and_first_fc(vgg16_report):
    assert vgg16_report.params == 138_357_544
    fc1 = next(r for r in vgg16_report.rows if r.kind == "Linear")
    assert fc1.params == 102_764_544 and fc1.shape == (4096,)
    assert vgg16_report.memory()["parameter memory"] == 138_357_544 * 4  # ≈ 553 MB fp32
    assert round(vgg16_report.memory()["parameter memory"] / 1e6) == 553


def test_vgg16_activations_follow_the_lecture_table(vgg16_report):
    allocating = [r for r in vgg16_report.rows if r.activations]
    sizes = [r.activations for r in allocating]
    # The lecture's rows: 224×224×64 = 3.2M twice, pool 800K, 1.6M twice, pool 400K, ...
    assert sizes[:3] == [224 * 224 * 64, 224 * 224 * 64, 112 * 112 * 64]
    assert sizes[3:6] == [112 * 112 * 128, 112 * 112 * 128, 56 * 56 * 128]
    assert sizes[17] == 7 * 7 * 512 == 25_088  # the last pool: "25K"
    assert sizes[18:] == [4096, 4096, 1000]
    # Their true sum, input included: ≈ 15.2M (≈ 61 MB fp32), not the "~24M" the lecture states.
    assert vgg16_report.activations == 15_237_608
    assert round(vgg16_report.memory()["activations (forward)"] / 1e6) == 61


def test_vgg16_flops_both_conventions(vgg16_report):
    assert vgg16_report.macs == pytest.approx(15.47e9, rel=0.005)  # the lecture's "15.3B FLOPs"
    assert vgg16_report.flops == pytest.approx(30.94e9, rel=0.005)  # torch counts 2 per MAC


def test_lecture_alexnet_first_layer(compose):
    cfg = compose("model=alexnet", "data=fake", "data.image_size=227", "data.num_classes=1000")
    net = build.network(cfg.model, build.preprocessing(cfg))
    conv1 = net.features[0]
    assert tuple(conv1.weight.permute(2, 3, 1, 0).shape) == (11, 11, 3, 96)
    assert sum(p.numel() for p in conv1.parameters()) == 34_944 == conv_params(11, 3, 96)
    report = analyze(net, (3, 227, 227))
    assert report.rows[0].shape == (96, 55, 55)  # (55, 55, 96) channels-last in the lecture
    assert next(r for r in report.rows if r.name == "features.12").shape == (256, 6, 6)


def test_resnet50_parameters_and_macs(compose):
    cfg = compose("model=resnet50", "data=fake", "data.image_size=224", "data.num_classes=1000")
    report = analyze(build.network(cfg.model, build.preprocessing(cfg)), (3, 224, 224))
    assert report.params == 25_557_032
    assert report.macs == pytest.approx(4.1e9, rel=0.02)


def test_dense_layer_example_and_mlp():
    assert dense_params(480 * 640 * 3, 1000) == 921_601_000
    assert (
        sum(p.numel() for p in nn.Linear(480 * 640 * 3, 1000, device="meta").parameters())
        == 921_601_000
    )
    from cnnlab.models.mlp import MLP

    assert analyze(MLP(in_channels=1, num_classes=10, image_size=28), (1, 28, 28)).params == 203_530


GRID = [
    (w, f, p, s)
    for w, f, p, s in itertools.product([7, 28, 32, 227], [1, 3, 5, 11], [0, 1, 2], [1, 2, 4])
    if f <= w + 2 * p and p <= f // 2
]  # pooling allows padding up to half the kernel


@pytest.mark.parametrize(("size", "kernel", "padding", "stride"), GRID)
def test_output_size_formula_matches_real_layers(size, kernel, padding, stride):
    x = torch.zeros(1, 1, size, size)
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding)
    pool = nn.MaxPool2d(kernel, stride=stride, padding=padding)
    expected = conv_output_size(size, kernel, padding, stride)
    assert conv(x).shape[-1] == expected
    assert pool(x).shape[-1] == expected


def test_summary_renders_markdown_and_csv(compose):
    cfg = compose("model=convnet", config_name="summary")
    report = report_for(cfg)
    md = render(report, "markdown", 128)
    assert "| features.0 | Conv2d | 32×28×28 | 25,088 | 832 |" in md
    assert "| parameters | 824,970 |" in md
    csv_text = render(report, "csv", 128)
    assert csv_text.splitlines()[0] == (
        "layer,type,output (C×H×W),activations,params,MFLOPs,receptive field,jump"
    )
    assert "| features.5 | MaxPool2d | 64×7×7 | 3,136 | 0 | 0.00 | 12×12 | 4 |" in md
    import csv
    import io

    table = list(csv.reader(io.StringIO(csv_text)))
    # Numbers as numbers: no thousands separators, no units inside a cell.
    assert ["features.0", "Conv2d", "32×28×28", "25088", "832"] == table[2][:5]
    assert ["parameters", "824970", ""] in table
    assert all(float(row[1]) >= 0 for row in table[table.index(["total", "value", "unit"]) + 1 :])
    from cnnlab.core.errors import UserError

    with pytest.raises(UserError, match="format='html' is not valid"):
        render(report, "html", 1)


@pytest.mark.parametrize("terminal, width", [(True, 80), (True, 60), (False, 80)])
def test_the_terminal_table_never_cuts_a_number(compose, terminal, width):
    """An 80- or 60-column window, and a pipe or file: every figure whole, names folded."""
    import io

    from rich.console import Console

    from cnnlab.analysis import summary_format

    report = report_for(compose("model=vit_b_16", "data=imagenet", config_name="summary"))
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None)
    summary_format.terminal(report, 1, console=console)
    text = out.getvalue()
    assert "…" not in text
    for row in summary_format.rows(report):
        for figure in row[3:6]:
            assert figure in text
    conv = next(line for line in text.splitlines() if "768×14×14" in line)  # conv_proj's row
    assert conv.split("│")[-2].strip() == "16"  # its receptive field, the last column
    assert "17.56 GMACs" in text and "86,567,656" in text
    if terminal and width == 80:  # narrower: the figures alone need more, the window wraps
        assert max(len(line) for line in text.splitlines()) <= 80


def test_summary_says_what_it_leaves_out_of_inception(compose):
    report = report_for(compose("model=inception_v3", "data=imagenet", config_name="summary"))
    md = render(report, "markdown", 1)
    assert "| parameters | 23,834,568 |" in md
    assert "built without its auxiliary classifier (AuxLogits: 3,326,696 parameters" in md
