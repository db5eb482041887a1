"""PNG snapshots: valid files that decode to the pixels written."""

import struct
import zlib

import numpy as np
import pytest

from gandiag.store.png import PNG_SIGNATURE, encode_png, samples_png


def decode(png: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, colour type, raw pixel rows) of a PNG written by encode_png."""
    assert png[:8] == PNG_SIGNATURE
    position, chunks = 8, {}
    while position < len(png):
        (length,) = struct.unpack(">I", png[position:position + 4])
        kind = png[position + 4:position + 8]
        data = png[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", png[position + 8 + length:position + 12 + length])
        assert crc == zlib.crc32(kind + data)
        chunks[kind] = data
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and b"IEND" in chunks
    return width, height, colour, zlib.decompress(chunks[b"IDAT"])


def test_grey_and_rgb_pixels_round_trip():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    width, height, colour, raw = decode(encode_png(grey))
    assert (width, height, colour) == (4, 3, 0)
    rows = np.frombuffer(raw, np.uint8).reshape(3, 5)
    assert (rows[:, 0] == 0).all()
    np.testing.assert_array_equal(rows[:, 1:], grey)
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 1] = (255, 0, 0)
    width, height, colour, raw = decode(encode_png(rgb))
    assert colour == 2 and np.frombuffer(raw, np.uint8).reshape(2, 7)[0, 4:7].tolist() == [255, 0, 0]


def test_points_and_images_become_pictures():
    points = np.array([[1.0, 0.0]] * 50 + [[-1.0, 0.0]] * 50 + [[np.nan, 0.0]])
    width, height, _, raw = decode(samples_png(points, size=64, extent=2.0))
    pixels = np.frombuffer(raw, np.uint8).reshape(64, 65)[:, 1:]
    dark = np.argwhere(pixels < 128)
    # x = -1 and x = +1 in [-2, 2] on 32 bins drawn 2 x 2: columns 16-17 and 48-49, row 32-33
    assert sorted({int(c) for c in dark[:, 1]}) == [16, 17, 48, 49]
    assert sorted({int(r) for r in dark[:, 0]}) == [30, 31]
    images = np.linspace(-1, 1, 5 * 3 * 8 * 8).reshape(5, 3, 8, 8)
    width, height, colour, _ = decode(samples_png(images))
    assert colour == 2 and (width, height) == (3 * 9 + 1, 2 * 9 + 1)  # a 3 x 2 grid


def test_anything_else_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected 2-D points \(N, 2\) or images"):
        samples_png(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="expected uint8 pixels"):
        encode_png(np.zeros((2, 2)))
