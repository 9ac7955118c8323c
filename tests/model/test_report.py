"""MetricAccumulator, report writer and HO3D submission layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from homae_model.evaluation import (
    HO3D_TO_PROJECT,
    METRIC_NAMES,
    PROJECT_TO_HO3D,
    MetricAccumulator,
    write_ho3d_submission,
    write_report,
)

EXPECTED_NAMES = [
    "MJE", "PA-MJE", "ST-MJE", "OCE", "MCE", "ADD-S", "OME", "V-PE", "PA-V-PE", "J-AUC",
    "PA-J-AUC", "V-AUC", "PA-V-AUC", "F@5", "F@15", "PA-F@5", "PA-F@15",
]  # fmt: skip


def _sample(rng: np.random.Generator) -> dict[str, np.ndarray]:
    joints = rng.normal(scale=0.04, size=(21, 3)) + np.array([0.0, 0.0, 0.6])
    verts = rng.normal(scale=0.04, size=(778, 3)) + np.array([0.0, 0.0, 0.6])
    points = rng.uniform(-0.05, 0.05, size=(60, 3))
    return {"joints": joints, "verts": verts, "points": points}


def _add(acc: MetricAccumulator, s: dict, name: str, shift: float, occluded: bool) -> None:
    """Prediction = GT shifted by `shift` metres along x (hand and object)."""
    d = np.array([shift, 0.0, 0.0])
    acc.add(
        pred_joints=s["joints"] + d, gt_joints=s["joints"],
        pred_verts=s["verts"] + d, gt_verts=s["verts"],
        pred_obj_rot=np.eye(3), pred_obj_trans=np.array([0.0, 0.0, 0.7]) + d,
        gt_obj_rot=np.zeros(3), gt_obj_trans=np.array([0.0, 0.0, 0.7]),
        obj_points=s["points"], obj_name=name, occluded=occluded,
    )  # fmt: skip


@pytest.fixture
def result():
    rng = np.random.default_rng(0)
    acc = MetricAccumulator()
    _add(acc, _sample(rng), "006_mustard_bottle", 0.010, occluded=True)
    _add(acc, _sample(rng), "006_mustard_bottle", 0.030, occluded=False)
    _add(acc, _sample(rng), "025_mug", 0.002, occluded=False)
    _add(acc, _sample(rng), "010_potted_meat_can", 0.006, occluded=False)
    return acc.compute()


def test_metric_names_exact() -> None:
    assert list(METRIC_NAMES) == EXPECTED_NAMES


def test_accumulator_values(result) -> None:
    m = result.metrics
    assert list(m) == EXPECTED_NAMES
    # Translations: root-relative and aligned errors vanish, object errors equal the shift.
    for name in ("MJE", "PA-MJE", "ST-MJE", "V-PE", "PA-V-PE"):
        assert m[name] == pytest.approx(0.0, abs=1e-6)
    for name in ("F@5", "F@15", "PA-F@5", "PA-F@15"):
        assert m[name] == pytest.approx(100.0)
    # Zero errors count at the 0 mm threshold only when exactly 0 (``<=``); float round-off
    # (~1e-15 mm) can miss it, which costs at most half of the first trapezoid: 0.5 / 99.
    for name in ("J-AUC", "PA-J-AUC", "V-AUC", "PA-V-AUC"):
        assert 100.0 * (1.0 - 0.5 / 99.0) - 1e-9 <= m[name] <= 100.0
    assert m["OCE"] == pytest.approx(12.0)  # mean of 10, 30, 2, 6 mm
    assert m["MCE"] == pytest.approx(12.0)
    assert m["OME"] == pytest.approx(12.0)
    assert result.extras["abs-MJE"] == pytest.approx(12.0)
    assert result.occluded["OCE"] == pytest.approx(10.0)
    assert result.per_object["006_mustard_bottle"]["OME"] == pytest.approx(20.0)
    assert result.per_object["025_mug"]["OME"] == pytest.approx(2.0)
    # Table IV "Mean": mean over objects of the per-object means (20, 2, 6).
    assert result.object_mean["OME"] == pytest.approx(28.0 / 3.0)
    assert result.counts == {
        "all": 4,
        "occluded": 1,
        "per_object": {"006_mustard_bottle": 2, "010_potted_meat_can": 1, "025_mug": 1},
    }


def test_accumulator_hand_errors_and_auc() -> None:
    rng = np.random.default_rng(1)
    s = _sample(rng)
    acc = MetricAccumulator()
    pred = s["joints"].copy()
    pred[1:] += [0.0, 0.025, 0.0]  # every non-root joint 25 mm off after root alignment
    row = acc.add(pred_joints=pred, gt_joints=s["joints"])
    assert row["MJE"] == pytest.approx(25.0 * 20 / 21)
    res = acc.compute()
    # PCK: 1/21 of the joints at 0 mm, 20/21 at 25 mm (AUC 0.5) -> (1 + 20 * 0.5) / 21.
    assert res.metrics["J-AUC"] == pytest.approx(100.0 * (1 + 10) / 21)
    assert res.metrics["V-PE"] is None and res.metrics["OCE"] is None
    assert res.occluded["MJE"] is None


def test_write_report(tmp_path: Path, result) -> None:
    files = write_report(
        tmp_path / "out",
        {"gt-anchored": result, "gt-free": {"MJE": 12.5, "ADD-S": 20.0}},
        {"dataset": "synthetic", "checkpoint": tmp_path / "model.safetensors"},
    )
    report = json.loads(files.json_path.read_text())
    assert set(report["metrics"]) == {"gt-anchored", "gt-free"}
    for protocol in ("gt-anchored", "gt-free"):
        assert list(report["metrics"][protocol]) == EXPECTED_NAMES
    assert report["metrics"]["gt-free"]["MJE"] == 12.5
    assert report["metrics"]["gt-free"]["OCE"] is None
    assert report["metrics"]["gt-anchored"]["OCE"] == pytest.approx(12.0)
    assert report["units"]["J-AUC"] == "%" and report["units"]["MJE"] == "mm"
    assert report["per_object"]["gt-anchored"]["025_mug"]["ADD-S"] >= 0.0
    assert report["paper"]["table1"]["HOMAE (paper)"]["PA-MJE"] == 5.08
    md = files.markdown_path.read_text()
    for text in (
        "10.6",
        "5.08",
        "25.2",
        "89.8",
        "20.5",
        "39.3",
        "42.3",
        "HOISDF",
        "006_mustard_bottle",
    ):
        assert text in md
    assert "| **This run: all (4)** | 0.00 | 0.00 | 12.00 | 12.00 |" in md
    assert files.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_report_errors(tmp_path: Path, result) -> None:
    with pytest.raises(ValueError, match="valid: gt-anchored, gt-free"):
        write_report(tmp_path, {"anchored": result}, {})
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['MPJPE'\]"):
        write_report(tmp_path, {"gt-free": {"MPJPE": 1.0}}, {})
    with pytest.raises(ValueError, match="no samples"):
        MetricAccumulator().compute()
    with pytest.raises(ValueError, match="valid: object_box, camera_aabb"):
        MetricAccumulator(mce_mode="corners")  # type: ignore[arg-type]


def test_reflection_setting_reaches_mesh_metrics() -> None:
    rng = np.random.default_rng(4)
    s = _sample(rng)
    mirror = np.array([1.0, 1.0, -1.0])
    rows = [
        MetricAccumulator(allow_reflection=flag).add(
            s["joints"] * mirror, s["joints"], s["verts"] * mirror, s["verts"]
        )
        for flag in (True, False)
    ]
    for name in ("PA-MJE", "PA-V-PE"):
        assert rows[0][name] < 1e-6 < 1.0 < rows[1][name]
    assert rows[0]["PA-F@5"] == pytest.approx(100.0)
    assert rows[1]["PA-F@5"] < 100.0


def test_add_shape_errors() -> None:
    rng = np.random.default_rng(2)
    s = _sample(rng)
    acc = MetricAccumulator()
    with pytest.raises(ValueError, match=r"pred_verts must have 778 points, got shape \(700, 3\)"):
        acc.add(s["joints"], s["joints"], pred_verts=s["verts"][:700], gt_verts=s["verts"])
    with pytest.raises(ValueError, match=r"gt_joints must have 21 points"):
        acc.add(s["joints"], s["joints"][:20])
    with pytest.raises(ValueError, match="together"):
        acc.add(s["joints"], s["joints"], pred_obj_rot=np.eye(3))
    assert len(acc) == 0


def test_ho3d_order_is_mano_order_with_tips() -> None:
    """HO3D keeps MANO's 16 joints + tips (thumb..pinky): the hand module's MANO gather."""
    from homae_model.hand.constants import MANO_TO_PROJECT

    assert tuple(HO3D_TO_PROJECT) == tuple(MANO_TO_PROJECT)


def test_ho3d_joint_maps_are_inverse() -> None:
    p2h, h2p = np.array(PROJECT_TO_HO3D), np.array(HO3D_TO_PROJECT)
    np.testing.assert_array_equal(p2h[h2p], np.arange(21))
    np.testing.assert_array_equal(np.sort(p2h), np.arange(21))
    # HO3D's align_sc_tr scale bone uses its joint 4 = project joint 9 (middle MCP).
    assert PROJECT_TO_HO3D[4] == 9
    assert PROJECT_TO_HO3D[16] == 4  # HO3D tips: thumb tip first (project 4)


def test_ho3d_submission(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = [_sample(rng) for _ in range(2)]
    path = write_ho3d_submission(
        tmp_path / "sub" / "pred.json",
        [s["joints"] for s in samples],
        [s["verts"] for s in samples],
    )
    xyz, verts = json.loads(path.read_text())
    assert len(xyz) == 2 and len(verts) == 2
    j = np.asarray(xyz[1])
    assert j.shape == (21, 3) and np.all(j[:, 2] < 0)
    flip = np.array([1.0, -1.0, -1.0])
    np.testing.assert_allclose(j[4], samples[1]["joints"][9] * flip)
    np.testing.assert_allclose(j[13], samples[1]["joints"][1] * flip)  # thumb1
    np.testing.assert_allclose(np.asarray(verts[0]), samples[0]["verts"] * flip)
    with pytest.raises(ValueError, match="joints_list has 2 entries but verts_list has 1"):
        write_ho3d_submission(
            tmp_path / "x.json", [s["joints"] for s in samples], [samples[0]["verts"]]
        )
    with pytest.raises(ValueError, match="OpenCV"):
        write_ho3d_submission(
            tmp_path / "x.json", [samples[0]["joints"] * flip], [samples[0]["verts"]]
        )


def test_hoisdf_convention_extras(result) -> None:
    # Pure translations: both box kinds move by the shift (ADD-S's directions differ).
    assert result.extras["MCE (HOISDF)"] == pytest.approx(12.0)
    assert 0.0 < result.extras["ADD-S (HOISDF)"] <= 12.0
    assert result.occluded_extras["MCE (HOISDF)"] == pytest.approx(10.0)
    assert result.per_object_extras["025_mug"]["MCE (HOISDF)"] == pytest.approx(2.0)
    # A rotation: the extras are HOISDF's definitions, the metrics the project's.
    from scipy.spatial.transform import Rotation

    from homae_model.metrics import ObjectPose, add_s, mean_corner_error

    s = _sample(np.random.default_rng(5))
    rot = Rotation.from_rotvec([0.4, -0.2, 0.7]).as_matrix()
    t = np.array([0.0, 0.0, 0.7])
    row = MetricAccumulator().add(
        s["joints"], s["joints"], pred_obj_rot=rot, pred_obj_trans=t + 0.01,
        gt_obj_rot=np.eye(3), gt_obj_trans=t, obj_points=s["points"],
    )  # fmt: skip
    pred, gt = ObjectPose.create(rot, t + 0.01), ObjectPose.create(np.eye(3), t)
    assert row["ADD-S"] == pytest.approx(add_s(pred, gt, s["points"]))
    assert row["ADD-S (HOISDF)"] == pytest.approx(add_s(pred, gt, s["points"], over="pred"))
    assert row["MCE"] == pytest.approx(mean_corner_error(pred, gt, None, s["points"]))
    camera_box = mean_corner_error(pred, gt, None, s["points"], "camera_aabb")
    assert row["MCE (HOISDF)"] == pytest.approx(camera_box)
    assert row["MCE"] != pytest.approx(camera_box)


def test_report_shows_conventions_baselines_and_files(tmp_path: Path, result) -> None:
    base = dict.fromkeys(EXPECTED_NAMES)
    base.update({"MJE": 40.0, "PA-MJE": 15.0, "OCE": 50.0, "MCE": 60.0, "ADD-S": 30.0})
    baselines = {
        "description": "constant hand, mean object pose",
        "metrics": {"gt-anchored": base},
        "extras": {"gt-anchored": {"ADD-S (HOISDF)": 33.0, "MCE (HOISDF)": 66.0}},
        "counts": {"gt-anchored": 4},
    }
    files = write_report(
        tmp_path / "out",
        {"gt-anchored": result},
        {
            "procrustes_allows_reflection": True,
            "gt_free": {"misses": [{"frame": f"s/{i}"} for i in range(12)]},
        },
        baselines=baselines,
        files={"ho3d_submission_gt-free": tmp_path / "out" / "pred.json"},
    )
    report = json.loads(files.json_path.read_text())
    assert report["baselines"]["metrics"]["gt-anchored"]["MJE"] == 40.0
    assert report["files"] == {
        "ho3d_submission_gt-free": str(tmp_path / "out" / "pred.json"),
        "report_json": str(files.json_path),
        "report_md": str(files.markdown_path),
        "pck_plot": str(files.plot_path),
    }
    assert report["extras_per_object"]["gt-anchored"]["025_mug"]["ADD-S (HOISDF)"] >= 0.0
    assert "BOP adi" in report["conventions"]["ADD-S"]
    md = files.markdown_path.read_text()
    adds_h = result.extras["ADD-S (HOISDF)"]
    # Table I: the HOISDF-convention row beside the paper rows, then the project's.
    assert (
        f"| This run: all (4), HOISDF conventions | 0.00 | 0.00 | 12.00 | 12.00 | {adds_h:.2f} |"
        in md
    )
    assert "| **This run: all (4)** | 0.00 | 0.00 | 12.00 | 12.00 |" in md
    row = (
        "| Baseline: constant hand, mean object pose (4) | 40.00 | 15.00 | 50.00 | 60.00 | 30.00 |"
    )
    assert row in md
    row_h = "| Baseline: constant hand, mean object pose (4), HOISDF conventions | 40.00 | 15.00 | "
    assert row_h + "50.00 | 66.00 | 33.00 |" in md
    assert "Metric conventions" in md and "with reflections (toolkits)" in md
    assert "This run ADD-S (HOISDF)" in md  # Table IV column
    assert "s/9" in md and "s/10" not in md and "12 in all, see report.json" in md
    assert len(report["meta"]["gt_free"]["misses"]) == 12
