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
EXPORT_FORMATS = ("onnx", "torchscript", "exported_program", "onnx_int8")  # inference/exporters/
TEST_CKPTS = ("best", "last")  # the checkpoint train tests after fit
NONFINITE_POLICIES = ("stop", "skip")  # a NaN/Inf loss or gradient: stop the run, or skip the batch
CAM_METHODS = ("gradcam", "gradcam++", "xgradcam", "eigencam", "layercam", "scorecam", "hirescam")
NORMALIZE = ("auto", "dataset")  # data.normalize: the weights' statistics when they have them
BALANCE = ("none", "sampler", "loss")  # data.balance: imbalanced classes
CONVNET_NORMS = ("batch", "group", "layer", "none")  # model.net.norm (ConvNet)
CONVNET_POOLS = ("max", "avg", "stride")  # model.net.pool (ConvNet; stride: no pooling)
LENET_ACTIVATIONS = ("tanh", "relu")  # model.net.activation (LeNet-5; tanh: the paper's)
LENET_POOLS = ("avg", "max")  # model.net.pool (LeNet-5; avg: the paper's subsampling)
ZOO_SORTS = ("model", "top1", "top5", "params", "gmacs", "size_mb", "crop")  # make zoo --sort
CLASSIFIERS = ("linear", "logistic", "knn")  # classifier.kind: a head on kept frozen features
FEATURE_DTYPES = ("float32", "float16")  # embed dtype: how kept features are stored
