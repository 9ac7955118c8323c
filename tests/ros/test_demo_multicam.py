"""The multi-camera demo's summary maths and overlay (no nodes: fed with known errors)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from homae_ros.demo.multicam import node_commands
from homae_ros.demo.multicam_eval import fusion_summary, occluded_frames


def test_fusion_summary_blocks_and_comparison() -> None:
    errors = {
        "cam0": {0: {"MJE": 10.0, "abs": 20.0, "ADD-S": 5.0}, 1: {"MJE": 30.0, "abs": 40.0}},
        "cam1": {1: {"MJE": 50.0, "abs": 60.0, "ADD-S": 7.0}},
        "fused": {0: {"MJE": 8.0, "abs": 9.0}, 1: {"MJE": 20.0, "abs": 30.0, "ADD-S": 6.0}},
    }
    s = fusion_summary(errors, frames_sent=3, frames_fused=2, occluded=[1], threshold=0.5)
    assert s["frames_fused"] == 2 and s["frames"] == {"cam0": 2, "cam1": 1, "fused": 2}
    assert s["mje_mm"] == {"cam0": 20.0, "cam1": 50.0, "fused": 14.0}
    assert s["adds_mm"] == {"cam0": 5.0, "cam1": 7.0, "fused": 6.0}
    assert s["fused_mje_below_best_camera"] is True
    assert s["common_frames"]["count"] == 1 and s["common_frames"]["mje_mm"]["fused"] == 20.0
    occ = s["occluded"]
    assert occ["count"] == 1 and occ["mje_mm"] == {"cam0": 30.0, "cam1": 50.0, "fused": 20.0}
    assert occ["abs_mje_mm"]["cam1"] == 60.0
    assert s["paired"]["cam0"]["mje_mm"] == {"cam0": 20.0, "fused": 14.0}
    assert s["best_camera"] == "cam0" and s["fused_mje_below_every_camera"] is True


def test_fusion_summary_compares_on_the_same_frames() -> None:
    # the fused result also answers frame 2, which only the weak cam1 saw: its plain mean is
    # above the best camera's, but on the best camera's own frames it is below
    errors = {
        "cam0": {0: {"MJE": 20.0, "abs": 20.0}, 1: {"MJE": 20.0, "abs": 20.0}},
        "cam1": {1: {"MJE": 60.0, "abs": 60.0}, 2: {"MJE": 90.0, "abs": 90.0}},
        "fused": {i: {"MJE": m, "abs": m} for i, m in ((0, 19.0), (1, 18.0), (2, 90.0))},
    }
    s = fusion_summary(errors, frames_sent=3, frames_fused=3, occluded=[], threshold=0.5)
    assert s["mje_mm"]["fused"] > s["mje_mm"]["cam0"]
    assert s["paired"]["cam0"]["mje_mm"] == {"cam0": 20.0, "fused": 18.5}
    assert s["paired"]["cam1"]["mje_mm"] == {"cam1": 75.0, "fused": 54.0}
    assert s["fused_mje_below_best_camera"] is True and s["fused_mje_below_every_camera"] is True
    errors["fused"][0]["MJE"] = 30.0
    s = fusion_summary(errors, frames_sent=3, frames_fused=3, occluded=[], threshold=0.5)
    assert s["fused_mje_below_best_camera"] is False and s["best_camera"] == "cam0"


def test_occluded_frames_rule() -> None:
    vis = {"cam0": [1.0, 0.9, 0.3, 0.2], "cam1": [0.9, 0.1, 0.8, 0.1]}
    sources = {c: [SimpleNamespace(hand_visible=v) for v in vs] for c, vs in vis.items()}
    mc = SimpleNamespace(cameras=["cam0", "cam1"])
    assert occluded_frames(mc, sources, 0.5) == [1, 2]  # frame 3: hidden from both


def test_node_commands_use_namespaces_and_the_calibration(monkeypatch, tmp_path: Path) -> None:
    lib = tmp_path / "lib" / "homae_ros"
    lib.mkdir(parents=True)
    for exe in ("homae_node", "homae_fusion"):
        (lib / exe).write_text("")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    cmds = node_commands(tmp_path / "clip", "cpu")
    assert "__ns:=/cam1" in cmds["cam1"] and "image:=/cam1/image_raw" in cmds["cam1"]
    fusion = " ".join(cmds["fusion"])
    assert "'/cam0/homae_node/hand_object', '/cam1/homae_node/hand_object'" in fusion
    assert f"calibration_file:={tmp_path / 'clip' / 'extrinsics.yaml'}" in fusion
    assert np.isfinite(float(fusion.split("max_wait_s:=")[1].split()[0]))
