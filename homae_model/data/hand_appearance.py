"""Procedural skin appearance of the synthetic hand: a lighter palm and nails on the back.

A hand painted with one uniform skin colour shows no difference between its palm and its back,
so a left hand seen from the palm side has the silhouette and shading of a right hand seen from
the back: handedness is nearly unobservable. Real hands are not like that, and these cues are
what a detector uses to tell the sides apart:

- the palm (and the palmar side of the fingers) is lighter and less saturated than the back of
  the hand (`palm_color`);
- the back of each finger tip carries a nail, lighter and pinker than the skin around it.

`hand_regions` finds both regions once per hand model from its rest-pose (flat hand) geometry,
so it works for any MANO-format model (the bundled synthetic hand or the official MANO files):

- the palm normal is ``cross(index MCP - wrist, pinky MCP - wrist)`` (project joint order),
  negated for a left hand (a mirrored hand reverses the cross product), which points out of the
  palm for both sides;
- a vertex's palm weight is a smooth step of its rest-pose normal against that palm normal
  (1 on the palm, 0 on the back, a blend along the sides of the fingers);
- a vertex is nail when it is near a fingertip (within `NAIL_REACH` of the last bone's length
  from the tip) and faces away from the palm side of its finger.

Nothing here is random; the per-sample variation (skin tone, contrast) is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "NAIL_REACH",
    "HandRegions",
    "hand_regions",
    "hand_vertex_colors",
    "layer_regions",
    "palm_color",
    "vertex_normals",
]

_WRIST, _INDEX_MCP, _PINKY_MCP = 0, 5, 17
"""Project joint order (homae_model.hand.constants): wrist, index MCP, pinky MCP."""
_TIPS = (4, 8, 12, 16, 20)
"""Fingertip joints (thumb, index, middle, ring, pinky), project order."""
_DIPS = (3, 7, 11, 15, 19)
"""The joint before each tip (thumb IP, finger DIPs), project order."""

NAIL_REACH = 0.55
"""Nail length as a fraction of the last bone (DIP -> tip) of each digit."""
_NAIL_COLOR = np.array([0.96, 0.84, 0.82])
"""RGB the nail blends toward (pale pink)."""
_PALM_TINT = np.array([0.93, 0.74, 0.66])
"""RGB a palm blends toward: a light, pinkish, unsaturated skin."""


@dataclass(frozen=True)
class HandRegions:
    """Per-vertex region weights of one hand model.

    Attributes:
        palm: (V,) weights in [0, 1]: 1 on the palm side, 0 on the back of the hand.
        nail: (V,) weights in [0, 1]: 1 on the nails (back of the finger tips), else 0.
    """

    palm: np.ndarray
    nail: np.ndarray


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) vertex ids, outward (counter-clockwise seen from outside) winding.

    Returns:
        (V, 3) unit normals pointing out of the surface.
    """
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-12)


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def hand_regions(
    vertices: np.ndarray, faces: np.ndarray, joints: np.ndarray, side: str
) -> HandRegions:
    """Palm and nail weights of a hand model from its rest pose.

    Args:
        vertices: (V, 3) rest-pose (flat hand) vertices, any frame, metres.
        faces: (F, 3) vertex ids, outward winding.
        joints: (21, 3) rest-pose joints in the project order (wrist, thumb 1-3 + tip, index,
            middle, ring, pinky), same frame.
        side: "right" or "left" (the mirrored hand's cross product is reversed).

    Returns:
        the regions.

    Raises:
        ValueError: unknown side, or a joints array that is not (21, 3).
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (21, 3):
        raise ValueError(f"joints: expected shape (21, 3), got {joints.shape}")
    vertices = np.asarray(vertices, dtype=np.float64)
    normals = vertex_normals(vertices, np.asarray(faces, dtype=np.int64))
    palm_n = np.cross(joints[_INDEX_MCP] - joints[_WRIST], joints[_PINKY_MCP] - joints[_WRIST])
    palm_n = palm_n / np.linalg.norm(palm_n) * (1.0 if side == "right" else -1.0)
    facing = normals @ palm_n
    palm = _smoothstep(-0.25, 0.35, facing)

    nail = np.zeros(len(vertices))
    for tip, dip in zip(_TIPS, _DIPS, strict=True):
        bone = joints[tip] - joints[dip]
        length = float(np.linalg.norm(bone))
        axis = bone / max(length, 1e-9)
        # the finger's own back direction: the palm normal's opposite, orthogonal to the bone
        back = -(palm_n - (palm_n @ axis) * axis)
        back /= max(float(np.linalg.norm(back)), 1e-9)
        along = (vertices - joints[tip]) @ axis  # <= 0 behind the tip
        near = _smoothstep(-NAIL_REACH * length, -NAIL_REACH * length * 0.7, along)
        near *= along < 0.25 * length
        radial = np.linalg.norm(vertices - joints[tip], axis=1) < 1.2 * length
        up = _smoothstep(0.35, 0.6, normals @ back)
        nail = np.maximum(nail, near * up * radial)
    return HandRegions(palm=palm, nail=nail)


def layer_regions(layer: Any) -> HandRegions:
    """`hand_regions` of a `homae_model.hand.mano.ManoLayer` (its flat-hand mean shape).

    Args:
        layer: the MANO layer (its `side` says which hand it is).

    Returns:
        the regions of its 778 vertices.
    """
    import torch

    with torch.no_grad():
        ref = layer.mano.shapedirs
        out = layer(torch.zeros(1, 48, dtype=ref.dtype, device=ref.device))
    vertices = out.vertices[0].detach().cpu().numpy()
    joints = out.joints[0].detach().cpu().numpy()
    faces = layer.faces.detach().cpu().numpy()
    return hand_regions(vertices, faces, joints, layer.side)


def palm_color(skin: np.ndarray) -> np.ndarray:
    """The palm colour of a skin colour: lighter and less saturated.

    Args:
        skin: (3,) RGB in [0, 1], the back-of-hand colour.

    Returns:
        (3,) RGB in [0, 1].
    """
    skin = np.asarray(skin, dtype=np.float64)
    grey = float(skin.mean())
    desaturated = grey + 0.6 * (skin - grey)
    lightness = float(np.clip(grey / 0.6, 0.6, 1.0))  # darker skins: a darker (still lighter) palm
    return np.clip(0.45 * desaturated + 0.55 * _PALM_TINT * lightness, 0.0, 1.0)


def hand_vertex_colors(
    skin: np.ndarray, regions: HandRegions, noise: np.ndarray, contrast: float = 1.0
) -> np.ndarray:
    """Per-vertex RGB of a hand: back of hand `skin`, lighter palm, pale nails.

    Args:
        skin: (3,) RGB in [0, 1] of the back of the hand.
        regions: the model's `hand_regions`.
        noise: (V, 1) multiplicative per-vertex noise (about 1).
        contrast: 0 paints the whole hand `skin` (the old uniform look), 1 the full palm/nail
            difference.

    Returns:
        (V, 3) RGB in [0, 1].
    """
    skin = np.asarray(skin, dtype=np.float64)
    palm_w = contrast * regions.palm[:, None]
    nail_w = contrast * regions.nail[:, None]
    color = (1.0 - palm_w) * skin + palm_w * palm_color(skin)
    nail_rgb = np.clip(0.3 * skin + 0.7 * _NAIL_COLOR, 0.0, 1.0)
    color = (1.0 - 0.85 * nail_w) * color + 0.85 * nail_w * nail_rgb
    return np.clip(color * noise, 0.0, 1.0)
