"""Coarse surface-depth maps of a crop (pure numpy): the dense relative-depth targets.

For each cell of a G x G grid over the crop, the depth (camera z, metres) of the nearest
surface point of one mesh that projects into the cell, minus a reference depth (the hand
root's). Cells the mesh does not cover are NaN. Surface points are dense area-weighted samples,
so the map is amodal: an object in front of the hand does not hide the hand's surface.

These are what the voxel search needs the image features to say and what the sparse SDF
samples teach only slowly: at each pixel, how deep the hand's (object's) surface lies relative
to the root (weights/demo/README.md, "Why the selected points are off").
"""

from __future__ import annotations

import numpy as np


def surface_depth_map(
    points: np.ndarray, K: np.ndarray, image_size: int, cells: int, ref_depth: float
) -> np.ndarray:
    """Per-cell nearest surface depth minus `ref_depth` (NaN where no point projects).

    Args:
        points: (N, 3) surface points, crop camera frame, metres.
        K: (3, 3) crop intrinsics (pixels).
        image_size: crop side S (pixels); cell (i, j) covers pixels
            [j*S/G, (j+1)*S/G) x [i*S/G, (i+1)*S/G) (row i, column j).
        cells: G, cells per side.
        ref_depth: depth subtracted from every cell (m), e.g. the hand root's z.

    Returns:
        (G, G) float32 relative depths (m), NaN where the surface does not cover the cell.
    """
    pts = np.asarray(points, dtype=np.float64)
    out = np.full(cells * cells, np.inf)
    z = pts[:, 2]
    front = z > 1e-6
    pts, z = pts[front], z[front]
    if len(pts):
        uvw = pts @ np.asarray(K, dtype=np.float64).T
        uv = uvw[:, :2] / uvw[:, 2:3]
        ij = np.floor(uv * (cells / float(image_size))).astype(np.int64)
        inside = (ij >= 0).all(axis=1) & (ij < cells).all(axis=1)
        flat = ij[inside, 1] * cells + ij[inside, 0]
        np.minimum.at(out, flat, z[inside])
    out = out - ref_depth
    out[~np.isfinite(out)] = np.nan
    return out.reshape(cells, cells).astype(np.float32)
