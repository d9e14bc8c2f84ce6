"""Every enumerated config value, in one place: the config check (`cli.schema`) refuses a value
outside these before anything runs, and the code that acts on them reads the same tuples.
Nothing is imported here, so the check answers a typo before torch loads."""

from __future__ import annotations

TTA = ("none", "hflip", "five_crop")  # predict's test-time augmentation
BAD_IMAGE_MODES = ("fail", "skip")  # an unreadable image file: stop, or leave it out and say so
DECODERS = ("auto", "pil", "torchvision", "gpu")  # data.decode: who decodes training crops
SPLITS = ("test", "val")  # what eval evaluates
DEVICES = ("auto", "cpu", "cuda")  # predict / explain
SUMMARY_FORMATS = ("table", "markdown", "csv")
PLAYGROUND_TABS = ("kernels", "arithmetic", "inside")  # the tab the playground opens on
EXPORT_FORMATS = ("onnx", "torchscript", "exported_program")
TEST_CKPTS = ("best", "last")  # the checkpoint train tests after fit
