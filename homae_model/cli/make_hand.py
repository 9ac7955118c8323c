"""`homae-make-hand`: write the project's synthetic MANO-format hand and a preview image.

    homae-make-hand --out DIR [--seed 0]

writes ``DIR/MANO_RIGHT.pkl`` (plain numpy + scipy.sparse pickle, protocol 4) and
``DIR/preview.png``: the rest pose and a fist, each from three views (back of the hand, palm,
thumb side), rendered with matplotlib (Agg) through `ManoLayer`, i.e. the same smplx path the
project uses. The bundled copy is ``homae_model/assets/hand/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from homae_model.hand.mano import ManoLayer, close_wrist, flexion_axes
from homae_model.hand.synthetic_hand import build_synthetic_hand, save_mano_pickle

_SKIN = np.array([0.87, 0.68, 0.56])
_VIEWS = {  # camera rotation (rows: screen x, screen y, towards the viewer) in MANO axes
    "back of hand": np.array([[-1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]]),
    "palm": np.array([[-1.0, 0, 0], [0, 0, -1.0], [0, -1.0, 0]]),
    "thumb side": np.array([[-1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]),
}


def fist_pose(layer: ManoLayer, amount: float = 1.0) -> torch.Tensor:
    """(1, 48) pose curling every digit about its flexion axis (a loose fist at 1.0)."""
    rest = layer(torch.zeros(1, 48)).joints[0]  # project order
    from homae_model.hand.constants import MANO_TO_PROJECT

    inv = {m: p for p, m in enumerate(MANO_TO_PROJECT) if m < 16}
    j16 = rest[[inv[i] for i in range(16)]].double().numpy()
    axes = flexion_axes(j16, layer.side)
    angles = np.tile([1.25, 1.5, 0.9], 5) * amount
    angles[12:] = np.array([0.2, 0.45, 0.6]) * amount  # thumb: CMC, MCP, IP
    pose = np.zeros(48)
    pose[3:] = (axes * angles[:, None]).reshape(-1)
    # Thumb opposition: the CMC also turns about the hand's long axis (toward the palm).
    forward = j16[4] - j16[0]
    palm_side = 1.0 if layer.side == "right" else -1.0
    pose[39:42] += -palm_side * 0.7 * amount * forward / np.linalg.norm(forward)
    return torch.as_tensor(pose, dtype=torch.float32)[None]


def _draw(ax, vertices: np.ndarray, faces: np.ndarray, view: np.ndarray, title: str) -> None:
    from matplotlib.collections import PolyCollection

    p = vertices @ view.T
    tri = p[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
    front = n[:, 2] > 0
    light = np.array([0.3, 0.5, 0.81])
    shade = 0.35 + 0.65 * np.clip(n @ light, 0, 1)
    order = np.argsort(tri[:, :, 2].mean(1))
    order = order[front[order]]
    colors = np.clip(shade[order, None] * _SKIN, 0, 1)
    pc = PolyCollection(tri[order][:, :, :2], facecolors=colors, edgecolors=(0, 0, 0, 0.15),
                        linewidths=0.2)  # fmt: skip
    ax.add_collection(pc)
    lo, hi = p[:, :2].min(0), p[:, :2].max(0)
    c, r = (lo + hi) / 2, (hi - lo).max() / 2 + 0.01
    ax.set_xlim(c[0] - r, c[0] + r)
    ax.set_ylim(c[1] - r, c[1] + r)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def render_preview(model_file: str | Path, out_png: str | Path) -> Path:
    """Render the rest pose and a fist from three views into a PNG.

    Args:
        model_file: MANO-format pickle.
        out_png: image to write.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layer = ManoLayer(model_file)
    faces = layer.faces.numpy()
    poses = {"rest": torch.zeros(1, 48), "fist": fist_pose(layer)}
    fig, axes = plt.subplots(2, 3, figsize=(12, 8), dpi=100)
    for row, (name, pose) in enumerate(poses.items()):
        out = layer(pose)
        v, f = close_wrist(out.vertices[0].double().numpy(), faces)
        joints = out.joints[0].double().numpy()
        for col, (view_name, view) in enumerate(_VIEWS.items()):
            ax = axes[row, col]
            _draw(ax, v, f, view, f"{name}: {view_name}")
            j = joints @ view.T
            ax.plot(j[:, 0], j[:, 1], "o", ms=2, color=(0.1, 0.2, 0.8))
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``homae-make-hand``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="0: nominal hand; else jittered")
    parser.add_argument("--no-preview", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)
    path = save_mano_pickle(build_synthetic_hand(args.seed), args.out / "MANO_RIGHT.pkl")
    print(f"wrote {path}")
    if not args.no_preview:
        print(f"wrote {render_preview(path, args.out / 'preview.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
