"""Sample snapshots as PNG bytes, with numpy and zlib only (no imaging library needed).

`samples_png` turns a batch of samples into a picture: images (B, C, H, W) in [-1, 1]
become a grid; 2-D points become a density picture of the plane (the toy mixtures).

    >>> import numpy as np
    >>> png = samples_png(np.random.default_rng(0).normal(size=(500, 2)))
    >>> png[:8] == PNG_SIGNATURE
    True
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 pixels (H, W) grey or (H, W, 3) RGB -> PNG bytes."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(
            f"encode_png: expected uint8 pixels of shape (H, W) or (H, W, 3), got {pixels.dtype} "
            f"{pixels.shape}; scale to 0..255 and convert with .astype(np.uint8)"
        )
    height, width = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = pixels.reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def samples_png(samples: np.ndarray, *, size: int = 256, extent: float | None = None) -> bytes:
    """A picture of a batch of samples: an image grid, or a density picture of 2-D points."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 2 and samples.shape[1] == 2:
        return encode_png(_points(samples, size, extent))
    if samples.ndim == 4 and samples.shape[1] in (1, 3):
        return encode_png(_grid(samples))
    raise ValueError(
        f"samples_png: expected 2-D points (N, 2) or images (N, 1 or 3, H, W), got shape "
        f"{samples.shape}"
    )


def _points(points: np.ndarray, size: int, extent: float | None) -> np.ndarray:
    finite = points[np.all(np.isfinite(points), axis=1)]
    if extent is None:  # a symmetric square around the origin that holds 99 % of the points
        extent = float(np.quantile(np.abs(finite), 0.99)) * 1.15 if len(finite) else 1.0
        extent = max(extent, 1e-6)
    counts, _, _ = np.histogram2d(finite[:, 1], finite[:, 0], bins=size // 2,
                                  range=[[-extent, extent], [-extent, extent]])
    shade = np.log1p(counts) / max(np.log1p(counts).max(), 1e-12)
    pixels = (255 * (1.0 - shade[::-1])).astype(np.uint8)  # dark = dense; y grows upwards
    return pixels.repeat(2, axis=0).repeat(2, axis=1)  # 2x2 dots: visible at a glance


def _grid(images: np.ndarray) -> np.ndarray:
    n, channels, height, width = images.shape
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (height + 1) + 1, columns * (width + 1) + 1, channels))
    scaled = np.clip((np.nan_to_num(images) + 1.0) / 2.0, 0.0, 1.0)  # [-1, 1] -> [0, 1]
    for i in range(n):
        r, c = divmod(i, columns)
        top, left = 1 + r * (height + 1), 1 + c * (width + 1)
        grid[top:top + height, left:left + width] = scaled[i].transpose(1, 2, 0)
    pixels = (255 * grid).round().astype(np.uint8)
    return pixels[:, :, 0] if channels == 1 else pixels
