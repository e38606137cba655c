"""An epdi image: a square crop of a surface's ESP map, centred on a Li position.

Kept apart from the GPAW code (``esp``) so that the learning stages depend on the crop alone.
"""
from __future__ import annotations

import numpy as np


def crop(phi: np.ndarray, cell2: np.ndarray, centre, size: int, width: float) -> np.ndarray:
    """A ``size x size`` float32 image, ``width`` A wide, centred at the Cartesian ``centre``
    (x, y), sampled from the periodic map ``phi`` over the lateral cell ``cell2`` (rows a1, a2).
    Row index runs along +y, column index along +x; bilinear interpolation on the periodic map
    (``grid-wrap``)."""
    from scipy.ndimage import map_coordinates

    step = width / size
    off = (np.arange(size) - (size - 1) / 2) * step
    xx, yy = np.meshgrid(off + centre[0], off + centre[1])  # (size, size), rows along y
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    frac = np.linalg.solve(np.asarray(cell2, float).T, pts.T)  # (2, P)
    n1, n2 = phi.shape
    coords = np.stack([frac[0] * n1, frac[1] * n2])
    out = map_coordinates(phi, coords, order=1, mode="grid-wrap")
    return out.reshape(size, size).astype(np.float32)
