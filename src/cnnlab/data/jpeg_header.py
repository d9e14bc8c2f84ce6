"""A JPEG's size, colour components and EXIF orientation from its markers, without PIL: the
decoder needs them to pick the crop before decoding, and this scan is much cheaper than PIL's
Image.open."""

from __future__ import annotations

import struct
from typing import NamedTuple

ORIENTATION_TAG = 0x0112
# Start-of-frame markers (C0–CF) except DHT (C4), JPG (C8) and DAC (CC).
SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class Header(NamedTuple):
    width: int
    height: int
    components: int  # 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK
    orientation: int  # EXIF 1–8 (1: as stored)


def scan(data: bytes) -> Header | None:
    """None when the markers are not what a baseline/progressive JPEG has (the caller then asks
    PIL, which also names what is wrong)."""
    if data[:2] != b"\xff\xd8":
        return None
    pos, orientation, n = 2, 1, len(data)
    try:
        while pos + 4 <= n:
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            if marker in SOF:
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return Header(width, height, data[pos + 9], orientation)
            if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
                orientation = _orientation(data[pos + 10 : pos + 2 + length])
            if marker == 0xDA:  # start of scan before any frame header: malformed
                return None
            pos += 2 + length
    except (struct.error, IndexError):
        return None
    return None


def _orientation(tiff: bytes) -> int:
    """The orientation entry of IFD0 of an EXIF block (a TIFF structure), else 1."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack(order + "HH", tiff[entry : entry + 4])
        if tag == ORIENTATION_TAG and kind == 3:  # SHORT
            (value,) = struct.unpack(order + "H", tiff[entry + 8 : entry + 10])
            return value if 1 <= value <= 8 else 1
    return 1
