"""Start a left/right hand detector from a single-"hand" one (fine-tuning the sides).

Older detectors (the bundled one among them) have one "hand" class. A sided detector has
"right_hand" and "left_hand" in its place, with the same object classes. `init_sided_from_single`
builds the sided network and copies every weight; in the classification head's last layer each
hand side starts as a copy of the "hand" class, so the new detector finds hands (and objects) as
well as the old one from the first step and training only has to tell the sides apart.

SSDlite's classification head (`head.classification_head.module_list.<i>.1`) is a 1x1
convolution whose output channels are anchor-major: channel = anchor * K + class, K the number of
classes with background at 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from homae_model.detector.model import build_detector, has_side_classes, read_spec
from homae_model.detector.pairing import HAND_LABEL, HAND_SIDE_CLASSES

__all__ = ["class_index_map", "init_sided_from_single", "is_single_to_sided"]

_CLS_LAST = re.compile(r"^head\.classification_head\.module_list\.\d+\.1\.(weight|bias)$")
"""The last (class-scoring) layer of each SSDlite classification head level."""


def is_single_to_sided(old: tuple[str, ...], new: tuple[str, ...]) -> bool:
    """True when `new` is `old` with its "hand" class replaced by the two side classes."""
    if HAND_LABEL not in old or not has_side_classes(new):
        return False
    old_objects = [n for n in old if n != HAND_LABEL]
    new_objects = [n for n in new if n not in HAND_SIDE_CLASSES]
    return old_objects == new_objects


def class_index_map(old: tuple[str, ...], new: tuple[str, ...]) -> list[int]:
    """For each class index of the new detector (0 = background), the old index to copy.

    Args:
        old: the single-hand detector's foreground classes.
        new: the sided detector's foreground classes.

    Returns:
        list of len(new) + 1 old indices (both side classes map to the old "hand").
    """
    out = [0]
    for name in new:
        src = HAND_LABEL if name in HAND_SIDE_CLASSES else name
        out.append(1 + old.index(src))
    return out


def init_sided_from_single(path: str | Path, class_names: tuple[str, ...]) -> nn.Module:
    """A sided SSDlite detector whose weights come from the single-hand detector at `path`.

    Args:
        path: `.safetensors` of a detector with a "hand" class (and its sidecar).
        class_names: the sided detector's classes: `path`'s with "hand" replaced by
            "right_hand", "left_hand" (`detector_class_names(objects, sides=True)`).

    Returns:
        The new detector (train mode, CPU).

    Raises:
        ValueError: `class_names` is not `path`'s classes with sides, or the arch is not SSDlite
            (its head layout is the one this mapping knows); the message names the file.
    """
    path = Path(path)
    spec = read_spec(path)
    new = tuple(class_names)
    if not is_single_to_sided(spec.class_names, new):
        raise ValueError(
            f"detector {path}: classes {list(spec.class_names)} cannot start a detector with "
            f"{list(new)} (its 'hand' class must become {list(HAND_SIDE_CLASSES)}, the objects "
            "staying the same)"
        )
    if not spec.arch.startswith("ssdlite"):
        raise ValueError(f"detector {path}: side classes from 'hand' need an SSDlite arch")
    old_k, new_k = len(spec.class_names) + 1, len(new) + 1
    index = torch.tensor(class_index_map(spec.class_names, new))
    tensors = load_file(str(path), device="cpu")
    model = build_detector(spec.arch, new, spec.input_size)
    state = model.state_dict()
    for key, value in tensors.items():
        value = value.float()
        if _CLS_LAST.match(key):
            anchors = value.shape[0] // old_k
            per_anchor = value.reshape(anchors, old_k, *value.shape[1:])
            value = per_anchor[:, index].reshape(anchors * new_k, *value.shape[1:])
        if key not in state or state[key].shape != value.shape:
            raise ValueError(f"detector {path}: weight {key} does not fit the sided network")
        state[key] = value.to(state[key].dtype)
    model.load_state_dict(state)
    return model.train()
