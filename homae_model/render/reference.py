"""A small numpy z-buffer rasteriser: the test oracle for the GL renderer (not for bulk data).

Same conventions as `homae_model.render.gl`: camera-frame meshes (x right, y down, z forward),
pinhole K, pixel centres at integer coordinates; a pixel is covered by a triangle when its
centre lies inside the projected triangle (edges inclusive), and the depth is the
perspective-correct camera-frame z at the pixel centre (1/z is linear in the image).
About 20-60 ms per small frame; use it on tiny images only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from homae_model.render.gl import RenderMesh


def rasterize(
    meshes: Sequence[RenderMesh], K: np.ndarray, width: int, height: int, near: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Depth and instance ids of camera-frame meshes.

    Args:
        meshes: meshes in the camera frame; triangles with a vertex at z <= near are skipped.
        K: (3, 3) pinhole intrinsics.
        width: image width W.
        height: image height H.
        near: near distance, metres.

    Returns:
        depth (H, W) float64 camera-frame z in metres (0 on background), ids (H, W) int32.
    """
    K = np.asarray(K, dtype=np.float64)
    depth = np.full((height, width), np.inf)
    ids = np.zeros((height, width), dtype=np.int32)
    for mesh in meshes:
        verts = np.asarray(mesh.vertices, dtype=np.float64)
        z = verts[:, 2]
        uv = (verts @ K.T)[:, :2] / np.where(z > near, z, 1.0)[:, None]
        for tri in np.asarray(mesh.faces):
            if np.any(z[tri] <= near):
                continue
            p = uv[tri]
            x0, y0 = np.maximum(np.ceil(p.min(axis=0)), 0).astype(int)
            x1, y1 = np.minimum(np.floor(p.max(axis=0)), [width - 1, height - 1]).astype(int)
            if x1 < x0 or y1 < y0:
                continue
            area = (p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[1, 1] - p[0, 1]) * (
                p[2, 0] - p[0, 0]
            )
            if abs(area) < 1e-12:
                continue
            xs, ys = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
            # Barycentric weights from the edge functions (screen space).
            w0 = (
                (p[2, 0] - p[1, 0]) * (ys - p[1, 1]) - (p[2, 1] - p[1, 1]) * (xs - p[1, 0])
            ) / area
            w1 = (
                (p[0, 0] - p[2, 0]) * (ys - p[2, 1]) - (p[0, 1] - p[2, 1]) * (xs - p[2, 0])
            ) / area
            w2 = 1.0 - w0 - w1
            inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
            if not inside.any():
                continue
            inv_z = w0 / z[tri[0]] + w1 / z[tri[1]] + w2 / z[tri[2]]
            zz = 1.0 / np.where(inside, inv_z, 1e-12)
            region = depth[y0 : y1 + 1, x0 : x1 + 1]
            closer = inside & (zz < region)
            region[closer] = zz[closer]
            ids[y0 : y1 + 1, x0 : x1 + 1][closer] = mesh.instance_id
    depth[~np.isfinite(depth)] = 0.0
    return depth, ids
