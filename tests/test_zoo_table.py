"""`make zoo`: every torchvision classification weight with its published figures, and the
lecture's table matched to the versions it quotes."""

from __future__ import annotations

import torchvision

from cnnlab.commands import zoo_table


def test_every_weight_is_listed_with_its_published_figures(capsys):
    zoo_table.main(["--format", "markdown"])
    text = capsys.readouterr().out
    total = sum(
        len(torchvision.models.get_model_weights(m))
        for m in torchvision.models.list_models(module=torchvision.models)
    )
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == total + 1 and f"{total} torchvision weights" in text  # + the header
    assert (
        "| resnet50 | IMAGENET1K_V1 | 76.130 | 92.862 | 25,557,032 | 4.089 | 97.8 | 224 |" in text
    )
    assert "| vit_h_14 | IMAGENET1K_SWAG_E2E_V1 (DEFAULT) | 88.552 |" in text


def test_sorting_filtering_and_the_lecture_notes(capsys):
    zoo_table.main(["--models", "resnet50,convnext_tiny", "--sort", "top1"])
    text = capsys.readouterr().out
    rows = [line.split(" | ")[1] for line in text.splitlines() if line.startswith("| ")][1:]
    assert rows == ["IMAGENET1K_V1 (DEFAULT)", "IMAGENET1K_V2 (DEFAULT)", "IMAGENET1K_V1"]
    assert (
        "ResNet-50 (25 M, 76.1 %): resnet50 IMAGENET1K_V1 (76.130 %); DEFAULT is IMAGENET1K_V2"
        in text
    )
    assert "ConvNeXt-T (29 M, 82.1 %): no torchvision version has it" in text


def test_bad_options_are_one_line(capsys):
    import pytest

    cases = (
        (["--sort", "speed"], "--sort 'speed' is not valid"),
        (["--models", "resnet5"], "--models: resnet5 not a torchvision"),
    )
    for args, message in cases:
        with pytest.raises(SystemExit) as stop:
            zoo_table.main(args)
        assert stop.value.code == 1 and message in capsys.readouterr().err
