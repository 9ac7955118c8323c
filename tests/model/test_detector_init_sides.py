"""A left/right detector starts from a single-"hand" one: weights copied, hand -> both sides."""

from __future__ import annotations

import pytest
import torch

from homae_model.detector.model import build_detector, save_detector
from homae_model.detector.sides import class_index_map, init_sided_from_single


def test_sided_detector_copies_the_hand_class_into_both_sides(tmp_path) -> None:
    old_names = ("hand", "025_mug", "011_banana")
    old = build_detector("ssdlite320_mobilenet_v3_large", old_names, 128)
    path = save_detector(old, tmp_path / "det.safetensors", half=False)
    new_names = ("right_hand", "left_hand", "025_mug", "011_banana")
    assert class_index_map(old_names, new_names) == [0, 1, 1, 2, 3]
    new = init_sided_from_single(path, new_names)
    old_state, new_state = old.state_dict(), new.state_dict()
    key = "head.classification_head.module_list.0.1.weight"
    a_old, a_new = old_state[key].shape[0] // 4, new_state[key].shape[0] // 5
    assert a_old == a_new  # same anchors, one more class
    w_old = old_state[key].reshape(a_old, 4, -1)
    w_new = new_state[key].reshape(a_new, 5, -1)
    torch.testing.assert_close(w_new[:, 1], w_old[:, 1])  # right <- hand
    torch.testing.assert_close(w_new[:, 2], w_old[:, 1])  # left <- hand
    torch.testing.assert_close(w_new[:, 3:], w_old[:, 2:])  # objects unchanged
    torch.testing.assert_close(w_new[:, 0], w_old[:, 0])  # background
    body = "backbone.features.0.0.0.weight"
    torch.testing.assert_close(new_state[body], old_state[body])


def test_other_classes_are_refused_by_name(tmp_path) -> None:
    old = build_detector("ssdlite320_mobilenet_v3_large", ("hand", "025_mug"), 128)
    path = save_detector(old, tmp_path / "det.safetensors", half=False)
    with pytest.raises(ValueError, match=r"det\.safetensors"):
        init_sided_from_single(path, ("right_hand", "left_hand", "011_banana"))
