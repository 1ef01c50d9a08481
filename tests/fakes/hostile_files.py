"""Small files that claim to be huge: what a decoder must refuse from the header alone."""

from __future__ import annotations

import struct

import cv2
import numpy as np


def jpeg_bomb() -> bytes:
    """A 335-byte JPEG whose frame header claims 30000x30000 (libjpeg decodes it all, 1.9 GB)."""
    ok, data = cv2.imencode(".jpg", np.zeros((8, 8), np.uint8))
    assert ok
    jpeg = bytearray(data.tobytes())
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)
    return bytes(jpeg)


def npy_bomb() -> bytes:
    """A .npy header claiming 30000x30000 uint8, without the data (numpy allocates first)."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (30000, 30000), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
