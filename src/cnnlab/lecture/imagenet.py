"""The lecture's ResNet-50 vs VGG-16 numbers, reconciled with what this machine can count and what
torchvision publishes (no training, no download: the weights' metadata ships with torchvision and
the networks are counted on the meta device)."""

from __future__ import annotations

from cnnlab.lecture.results import Job, table
from cnnlab.lecture.verdicts import Finding, Part, judge

# He et al. 2015, "Deep Residual Learning", as the lecture quotes them: top-5 error (%) from the
# paper's Table 4 (single models, fully-convolutional testing averaged over several scales),
# parameters, and multiply-adds per 224×224 image (the paper calls them FLOPs).
LECTURE = {"resnet50": (5.25, 25e6, 3.8e9), "vgg16": (7.1, 138e6, 15.3e9)}
WEIGHTS = {"resnet50": "ResNet50_Weights.IMAGENET1K_V1", "vgg16": "VGG16_Weights.IMAGENET1K_V1"}


def resnet50_v1(net):
    """torchvision's ResNet-50 is "v1.5": each downsampling bottleneck strides in its 3×3
    convolution; the paper's v1 strides in the first 1×1, so the 3×3 runs on 4× fewer positions."""
    for layer in (net.layer2, net.layer3, net.layer4):
        first = layer[0]
        first.conv1.stride, first.conv2.stride = (2, 2), (1, 1)
    return net


def counted() -> dict[str, dict]:
    """Parameters and multiply-adds by cnnlab's counter, top-5 error from torchvision's meta."""
    from torchvision import models

    from cnnlab.analysis.arithmetic import analyze, on_meta

    shape = (3, 224, 224)  # one image
    out = {}
    for name, weights in WEIGHTS.items():
        meta = models.get_weight(weights).meta
        report = analyze(on_meta(getattr(models, name)), shape)
        convs = sum(row.flops for row in report.rows if row.kind == "Conv2d") // 2
        out[name] = {"top5_err": 100 - meta["_metrics"]["ImageNet-1K"]["acc@5"],
                     "params": report.params, "macs": report.macs, "conv_macs": convs}  # fmt: skip
    out["resnet50_v1"] = {"macs": analyze(on_meta(lambda: resnet50_v1(models.resnet50())),
                                          shape).macs}  # fmt: skip
    return out


def imagenet(jobs: list[Job], numbers: dict | None = None) -> Finding:
    """Each of the lecture's three comparisons in torchvision's numbers, beside the lecture's."""
    n = numbers or counted()
    r, v, v1 = n["resnet50"], n["vgg16"], n["resnet50_v1"]
    (l_err_r, l_par_r, l_ops_r), (l_err_v, l_par_v, l_ops_v) = LECTURE["resnet50"], LECTURE["vgg16"]
    rows = [
        ["top-5 error, ResNet-50 vs VGG-16", f"{l_err_r} % vs {l_err_v} %",
         f"{r['top5_err']:.2f} % vs {v['top5_err']:.2f} %",
         "the paper tests at several scales, fully convolutionally; torchvision's figure is one "
         "224×224 centre crop of its IMAGENET1K_V1 weights (both networks lose ~2 points)"],
        ["parameters", f"{l_par_r / 1e6:.0f} M vs {l_par_v / 1e6:.0f} M",
         f"{r['params']:,} vs {v['params']:,}", "rounding only"],
        ["multiply-adds per image", f"{l_ops_r / 1e9:.1f} B vs {l_ops_v / 1e9:.1f} B",
         f"{r['macs'] / 1e9:.2f} G vs {v['macs'] / 1e9:.2f} G",
         f"torchvision's ResNet-50 is v1.5 (stride in the 3×3 convolution); the paper's v1 "
         f"counts {v1['macs'] / 1e9:.2f} G here; VGG-16's 15.3 B are its convolutions alone "
         f"({v['conv_macs'] / 1e9:.2f} G here), the three FC layers add "
         f"{(v['macs'] - v['conv_macs']) / 1e9:.2f} G"],
    ]  # fmt: skip
    verdict = judge(
        [Part(r["top5_err"] < v["top5_err"], f"ResNet-50 errs less ({r['top5_err']:.2f} % vs "
                                         f"{v['top5_err']:.2f} % top-5)"),
         Part(r["params"] < v["params"], f"with {v['params'] / r['params']:.1f}× fewer parameters"),
         Part(r["macs"] < v["macs"], f"and {v['macs'] / r['macs']:.1f}× fewer multiply-adds "
                                 f"(torchvision's weights and cnnlab's counter)")],
    )  # fmt: skip
    header = ["the lecture says", "lecture (He et al. 2015)", "torchvision / cnnlab", "why"]
    return Finding(table(header, rows), verdict, {})
