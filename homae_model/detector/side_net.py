"""Hand side (left/right) from a hand box: a small crop network, saved safely.

A hand's side is its chirality, and one image cue alone does not carry it: a left hand seen
from the palm has the outline of a right hand seen from the back. The network therefore reads two
cues that are each visible, and their combination gives the side:

- `palm`: whether the palm (rather than the back of the hand) faces the camera, a global
  appearance cue (palm colour, nails, how the fingers curl);
- the image-plane turn of wrist -> index base -> little-finger base: the sign of the 2D cross
  product of the predicted keypoints, read from 21 keypoint heatmaps (soft-argmax).

For the project's camera frame (x right, y down, z forward): with the palm facing the camera, the
turn is positive (clockwise on screen) for a left hand and negative for a right one, and the
back view reverses it, so `P(left) = P(palm) P(turn > 0) + (1 - P(palm)) (1 - P(turn > 0))`.
A mirror image swaps the side and keeps the palm cue, so `left_probability` also averages the
network on the crop and its mirror (`p = (p(x) + 1 - p(flip x)) / 2`), which makes the
answer exactly antisymmetric under mirroring. This is the MediaPipe arrangement (the box
detector finds hands, a crop network says which hand), with the side factored into cues a
small network can learn from synthetic scenes.

On disk: `<name>.safetensors` (float16 weights) and `<name>.json` (format, input size, crop
margin, width). Loading reads only these two files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from homae_model.detector.model import _atomic_write
from homae_model.hand.orientation_fit import INDEX_BASE, LITTLE_BASE, WRIST, palm_faces_camera

__all__ = [
    "SIDE_NET_FORMAT",
    "CropJitter",
    "SideNet",
    "SideNetSpec",
    "crop_frames",
    "crop_hands",
    "left_from_cues",
    "left_probability",
    "load_side_net",
    "palm_facing",
    "save_side_net",
    "turn_sign",
]

SIDE_NET_FORMAT = "homae-side-net/1"
"""`format` field of a side network's sidecar."""

TURN_SHARPNESS = 40.0
"""Scale of the (normalised) cross product inside the turn's sigmoid: a turn of 0.05 (a hand
seen almost edge-on) gives P = 0.88."""

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SideNetSpec:
    """Shape of a side network.

    Attributes:
        input_size: crop side in pixels.
        margin: crop side / the hand box's larger side (the crop is square, box-centred).
        width: channels of the first stage (the next stages have 2x and 4x).
    """

    input_size: int = 64
    margin: float = 1.3
    width: int = 32

    def __post_init__(self) -> None:
        if not 32 <= int(self.input_size) <= 256 or int(self.input_size) % 16:
            raise ValueError(
                f"side net input_size must be a multiple of 16 in [32, 256], got {self.input_size}"
            )
        if not 1.0 <= float(self.margin) <= 3.0:
            raise ValueError(f"side net margin must be in [1, 3], got {self.margin}")
        if not 8 <= int(self.width) <= 256:
            raise ValueError(f"side net width must be in [8, 256], got {self.width}")


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class SideNet(nn.Module):
    """(B,3,S,S) crops in [0,1] -> keypoints (B,21,2) in crop units [-1,1] and the palm logit (B,).

    Keypoints: soft-argmax of 21 heatmaps at 1/4 of the crop (x right, y down; -1 and 1 are
    the crop's edges). Palm logit: > 0 when the palm faces the camera.
    """

    def __init__(self, spec: SideNetSpec | None = None) -> None:
        """Layers for `spec` (default `SideNetSpec()`)."""
        super().__init__()
        self.spec = spec or SideNetSpec()
        w = self.spec.width
        self.fine = nn.Sequential(
            _block(3, w, 2), _block(w, w, 1), _block(w, 2 * w, 2), _block(2 * w, 2 * w, 1)
        )
        self.coarse = nn.Sequential(
            _block(2 * w, 4 * w, 2),
            _block(4 * w, 4 * w, 1),
            _block(4 * w, 4 * w, 2),
            _block(4 * w, 4 * w, 1),
        )
        self.heatmaps = nn.Sequential(_block(6 * w, 2 * w, 1), nn.Conv2d(2 * w, 21, 1))
        self.palm = nn.Linear(4 * w, 1)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """See the class docstring."""
        fine = self.fine((x - self.mean) / self.std)
        coarse = self.coarse(fine)
        up = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        hm = self.heatmaps(torch.cat([fine, up], 1))
        b, j, h, w = hm.shape
        prob = hm.flatten(2).softmax(-1).reshape(b, j, h, w)
        xs = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w * 2 - 1
        ys = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h * 2 - 1
        kp = torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], -1)
        return kp, self.palm(coarse.mean((2, 3))).squeeze(-1)


def turn_sign(keypoints: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """2D cross product (index base - wrist) x (little base - wrist), image axes (y down).

    Args:
        keypoints: (..., 21, 2) image-plane joints (any consistent units).

    Returns:
        (...,) positive when wrist -> index base -> little base turns clockwise on screen.
    """
    a = keypoints[..., INDEX_BASE, :] - keypoints[..., WRIST, :]
    b = keypoints[..., LITTLE_BASE, :] - keypoints[..., WRIST, :]
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def palm_facing(joints: np.ndarray, side: str) -> bool:
    """Whether a hand's palm faces the camera, from its camera-frame joints (training label).

    The palm's outward normal against the direction to the camera centre
    (`homae_model.hand.orientation_fit.palm_faces_camera`).

    Args:
        joints: (21,3) camera-frame joints, metres (project order).
        side: "right" or "left".
    """
    return palm_faces_camera(joints, side)


def left_from_cues(turn: torch.Tensor, palm_logit: torch.Tensor) -> torch.Tensor:
    """P(left) from the turn (2D cross product, crop units) and the palm logit (module doc)."""
    p_turn = torch.sigmoid(TURN_SHARPNESS * turn)
    p_palm = torch.sigmoid(palm_logit)
    return p_palm * p_turn + (1 - p_palm) * (1 - p_turn)


@dataclass(frozen=True)
class CropJitter:
    """Per-box changes of the plain crop (training augmentation); None leaves a part alone.

    Attributes:
        angle: (N,) in-plane rotation, radians (a proper rotation: the side is kept).
        scale: (N,) crop size factor.
        shift: (N,2) centre offset, in units of half the crop.
        flip: (N,) bool, mirror the crop left-right (the side is swapped).
    """

    angle: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    shift: torch.Tensor | None = None
    flip: torch.Tensor | None = None


def crop_hands(
    image: torch.Tensor,
    boxes: torch.Tensor,
    spec: SideNetSpec,
    jitter: CropJitter | None = None,
) -> torch.Tensor:
    """Square, box-centred crops of the hand boxes, resampled to the network's input.

    Crop coordinates n in [-1,1]^2 (x right, y down, pixel centres at (i + 0.5) / S * 2 - 1)
    map to image pixels u = centre + half * R(angle) diag(flip, 1) n, half = the box's larger
    side * margin / 2 * scale, centre = the box centre + shift * half. Without `jitter` the crop
    is the plain box-centred square.

    Args:
        image: (3,H,W) float [0,1].
        boxes: (N,4) xyxy full-image pixels (pixel centres at integers).
        spec: crop size and margin.
        jitter: per-box angle, scale, shift and mirror (training).

    Returns:
        (N,3,S,S) crops; outside the image reads as the nearest border pixel.
    """
    centre, m = crop_frames(boxes.to(image.dtype), spec, jitter)
    size = spec.input_size
    t = (torch.arange(size, dtype=image.dtype, device=image.device) + 0.5) / size * 2 - 1
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    grid_n = torch.stack([gx, gy], -1).reshape(1, -1, 2)  # (1,S*S,2)
    pix = centre[:, None, :] + grid_n @ m.transpose(1, 2)  # (N,S*S,2) image pixels
    hw = torch.tensor([image.shape[-1], image.shape[-2]], dtype=image.dtype, device=image.device)
    grid = ((pix + 0.5) / hw * 2 - 1).reshape(len(m), size, size, 2)
    return F.grid_sample(
        image[None].expand(len(m), -1, -1, -1),
        grid,
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )


def crop_frames(
    boxes: torch.Tensor, spec: SideNetSpec, jitter: CropJitter | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The crops' frames: image pixels u = centre + m n for crop coordinates n (`crop_hands`).

    Returns:
        centre (N,2) pixels and m (N,2,2) pixels per crop unit.
    """
    boxes = boxes.reshape(-1, 4)
    n = len(boxes)
    j = jitter or CropJitter()
    angle, scale, shift, flip = j.angle, j.scale, j.shift, j.flip
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(1).clamp(min=1.0) * spec.margin / 2
    if scale is not None:
        half = half * scale
    if shift is not None:
        centre = centre + shift * half[:, None]
    a = angle if angle is not None else boxes.new_zeros(n)
    c, s = torch.cos(a), torch.sin(a)
    m = torch.stack([torch.stack([c, -s], 1), torch.stack([s, c], 1)], 1) * half[:, None, None]
    if flip is not None:
        f = torch.where(flip.to(m.device), -1.0, 1.0).to(m)
        m = torch.stack([m[:, :, 0] * f[:, None], m[:, :, 1]], 2)
    return centre, m


@torch.no_grad()
def left_probability(net: SideNet, crops: torch.Tensor) -> torch.Tensor:
    """P(left hand) for each crop, averaged with the mirrored crop's P(right).

    Args:
        net: a side network (eval mode is set here).
        crops: (N,3,S,S) from `crop_hands`.

    Returns:
        (N,) in [0,1]; exactly 1 - the value of the mirrored crops.
    """
    if len(crops) == 0:
        return crops.new_zeros(0)
    net.eval()
    both = torch.cat([crops, crops.flip(-1)])
    kp, palm = net(both)
    p = left_from_cues(turn_sign(kp), palm)
    n = len(crops)
    return (p[:n] + 1 - p[n:]) / 2


def save_side_net(net: SideNet, path: str | Path) -> Path:
    """Write `<path>` (float16 safetensors) and its `.json` sidecar, each atomically."""
    path = Path(path)
    tensors = {}
    for k, v in net.state_dict().items():
        v = v.detach().cpu()
        tensors[k] = (v.half() if v.is_floating_point() else v).contiguous()
    meta = {"format": SIDE_NET_FORMAT, **asdict(net.spec)}
    _atomic_write(
        path, lambda tmp: save_file(tensors, tmp, metadata={"homae_side_net": json.dumps(meta)})
    )
    text = json.dumps(meta, indent=2) + "\n"
    _atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return path


def load_side_net(path: str | Path, device: str | torch.device = "cpu") -> SideNet:
    """Rebuild a side network from its sidecar and weights (float32, eval mode).

    Raises:
        FileNotFoundError: the weights or the sidecar is missing (both named).
        ValueError: the sidecar is not a side network's, or the weights do not fit it; the
            message names the file.
    """
    path = Path(path)
    side = path.with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"side network weights not found: {path}")
    if not side.is_file():
        raise FileNotFoundError(f"side network sidecar {side} missing for {path}")
    try:
        meta = json.loads(side.read_text())
        if meta.get("format") != SIDE_NET_FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, expected {SIDE_NET_FORMAT!r}")
        spec = SideNetSpec(int(meta["input_size"]), float(meta["margin"]), int(meta["width"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"side network sidecar {side} is invalid: {exc}") from exc
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"side network {path}: not a readable safetensors file: {exc}") from exc
    net = SideNet(spec)
    try:
        net.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
        )
    except RuntimeError as exc:
        raise ValueError(f"side network {path}: weights do not fit {side}: {exc}") from exc
    return net.to(device).eval()
