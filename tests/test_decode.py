"""Decoding (`cnnlab.data.decode`): EXIF-rotated photos load upright on every path, reduced-size
decoding gives the picture full decoding gives, `data.decode=gpu` without CUDA falls back in one
line, and on a GPU nvJPEG gives the CPU's crops."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torchvision.transforms import v2

from cnnlab.cli.schema import validate
from cnnlab.core.errors import UserError
from cnnlab.data import decode, jpeg_header
from cnnlab.data.folder import open_split
from cnnlab.data.pixels import load_rgb
from cnnlab.inference.images import ImageFiles
from cnnlab.training import build

UPRIGHT = (40, 60)  # w, h: a portrait picture, red on top, blue below


def _upright(size=UPRIGHT) -> Image.Image:
    img = Image.new("RGB", size, (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, size[0], size[1] // 2))
    return img


def _sideways_jpeg(path, size=UPRIGHT) -> None:
    """Stored turned 90° with EXIF orientation 6, as a phone writes a portrait photo."""
    exif = Image.Exif()
    exif[jpeg_header.ORIENTATION_TAG] = 6  # viewers turn it 90° clockwise (PIL: ROTATE_270)
    rotated = _upright(size).transpose(Image.Transpose.ROTATE_90)
    rotated.save(path, exif=exif.tobytes(), quality=95)


def _red_on_top(img: torch.Tensor) -> bool:
    """(3, H, W) uint8: the top quarter red, the bottom quarter blue."""
    h = img.shape[1]
    top, bottom = img[:, : h // 4].float().mean((1, 2)), img[:, -(h // 4) :].float().mean((1, 2))
    return bool(top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60)


@pytest.mark.parametrize("decoder", ["auto", "pil", "torchvision"])
@pytest.mark.parametrize("scale", [1, 10])  # 400×600 → 32 px: reduced-size decoding in auto
def test_exif_rotated_jpegs_load_upright_on_every_path(tmp_path, decoder, scale):
    size = (UPRIGHT[0] * scale, UPRIGHT[1] * scale)
    for cls in ("a", "b"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        _sideways_jpeg(tmp_path / "train" / cls / "phone.jpg", size)
    raw = Image.open(tmp_path / "train" / "a" / "phone.jpg")
    assert raw.size == size[::-1]  # stored landscape: the bug this guards against
    assert load_rgb(str(tmp_path / "train" / "a" / "phone.jpg")).size == size
    whole = v2.RandomResizedCrop(32, scale=(1.0, 1.0), ratio=(2 / 3, 2 / 3))  # the whole picture
    folder = open_split(tmp_path / "train", 32)
    trained = folder.for_training(None, whole, decoder)
    assert _red_on_top(trained[0][0])  # the training crop
    photo = ImageFiles([tmp_path / "train" / "a" / "phone.jpg"], 3, 32)[0][0]  # predict/explain
    assert photo.shape == (3, 32, 32)
    rgb = load_rgb(str(tmp_path / "train" / "a" / "phone.jpg"))
    assert np.asarray(rgb)[: size[1] // 4, :, 0].mean() > 200  # red on top, upright


def test_the_header_scan_agrees_with_pil(tmp_path):
    """Size, components and orientation from the markers, as PIL reads them, for baseline,
    progressive, grey, CMYK and EXIF-tagged (both byte orders) JPEGs; None for non-JPEGs."""
    from cnnlab.data import photo_corpus

    photo = photo_corpus.photo("flower").resize((333, 222))
    cases = {}
    for name, img, kwargs in (
        ("baseline", photo, {}),
        ("progressive", photo, {"progressive": True}),
        ("grey", photo.convert("L"), {}),
        ("cmyk", photo.convert("CMYK"), {}),
    ):
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90, **kwargs)
        cases[name] = out.getvalue()
    _sideways_jpeg(tmp_path / "six.jpg")
    cases["exif 6, little-endian"] = (tmp_path / "six.jpg").read_bytes()
    big_endian = bytearray(cases["baseline"])  # an APP1 written by hand in Motorola order
    # TIFF header, IFD0 at 8 with one entry (orientation, SHORT, 1 value: 8), no next IFD
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01"
    tiff += b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x08\x00\x00" + b"\x00\x00\x00\x00"
    app1 = b"\xff\xe1" + (2 + 6 + len(tiff)).to_bytes(2, "big") + b"Exif\x00\x00" + tiff
    cases["exif 8, big-endian"] = bytes(big_endian[:2]) + app1 + bytes(big_endian[2:])
    for name, data in cases.items():
        head = jpeg_header.scan(data)
        with Image.open(io.BytesIO(data)) as img:
            orientation = img.getexif().get(jpeg_header.ORIENTATION_TAG, 1)
            assert head == (img.width, img.height, len(img.getbands()), orientation), name
    assert jpeg_header.scan(cases["exif 8, big-endian"]).orientation == 8
    png = io.BytesIO()
    photo.save(png, "PNG")
    assert jpeg_header.scan(png.getvalue()) is None and jpeg_header.scan(b"\xff\xd8\x00") is None


def test_reduced_size_decoding_gives_the_full_decodes_picture():
    from cnnlab.data import photo_corpus

    big = photo_corpus.photo("china").resize((2016, 1344), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=90)
    data = out.getvalue()

    class Fixed(v2.RandomResizedCrop):  # one box, so both decoders cut the same pixels
        def make_params(self, flat_inputs):
            return dict(top=100, left=300, height=1000, width=1200)

    box = decode.CropBox(112, Fixed(112))
    drafted = decode.decode(data, box, "auto").float()  # 1000 px → 112: decoded at 1/8 scale
    full = decode.decode(data, box, "pil").float()
    assert drafted.shape == full.shape == (3, 112, 112)
    assert (drafted - full).abs().mean() < 3  # grey levels of 255


def test_a_bad_decoder_or_crop_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"data.decode='nvidia' is not valid; choose one of: auto"):
        validate(OmegaConf.create({"data": {"decode": "nvidia"}}))
    with pytest.raises(UserError, match="augment.train_crop=RandomCrop is not supported"):
        decode.CropBox.from_transform(32, v2.RandomCrop(32))
    with pytest.raises(UserError, match=r"cannot read image x.jpg: "):
        decode.decode(b"\xff\xd8" + b"\x00" * 64, decode.CropBox(32, v2.RandomResizedCrop(32)),
                      "auto", "x.jpg")  # fmt: skip


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback is for machines without CUDA")
def test_decode_gpu_without_cuda_says_one_line_and_falls_back(compose, tmp_path, caplog):
    for cls in ("a", "b"):
        for split in ("train", "val"):
            (tmp_path / split / cls).mkdir(parents=True, exist_ok=True)
            _upright().save(tmp_path / split / cls / "x.jpg", quality=90)
    cfg = compose("data=image_folder", f"data.source.root={tmp_path}", "data.num_classes=2",
                  "data.image_size=24", "data.num_workers=0", "augment=imagenet",
                  "data.decode=gpu")  # fmt: skip
    dm = build.datamodule(cfg.data, build.preprocessing(cfg))
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    lines = [r.getMessage() for r in caplog.records if "data.decode=gpu" in r.getMessage()]
    assert lines == ["data.decode=gpu: no CUDA device here; decoding on the CPU (auto)"]
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape == (2, 3, 24, 24) and images.dtype == torch.uint8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_decode_gives_the_cpu_crops():
    from cnnlab.data import photo_corpus

    blobs = []
    for name in photo_corpus.PHOTOS:
        out = io.BytesIO()
        photo_corpus.photo(name).save(out, "JPEG", quality=90)
        blobs.append(out.getvalue())
    box = decode.CropBox(64, v2.RandomResizedCrop(64))
    torch.manual_seed(0)
    deferred = [decode.defer(b, box) for b in blobs]
    on_gpu = decode.gpu_batch(deferred, 64, None, torch.device("cuda")).cpu().float()
    on_cpu = torch.stack(
        [decode.crop_resize(decode._torchvision_full(b), tuple(d.box.tolist()), 64)
         for b, d in zip(blobs, deferred, strict=True)]
    ).float()  # fmt: skip
    assert (on_gpu - on_cpu).abs().mean() < 3
