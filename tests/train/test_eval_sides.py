"""homae-eval covers left hands: per-side metrics and the detector's left/right accuracy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.train import REPO


@pytest.mark.slow
def test_eval_reports_left_hands_per_side(tmp_path, monkeypatch) -> None:
    import homae_model.evaluation.evaluate as evaluate_module
    from homae_model.bundled import bundled_weights_dir, demo_checkpoint

    if not demo_checkpoint().is_file():
        pytest.skip("no bundled demo weights")
    data = tmp_path / "mixed"
    argv = [sys.executable, "-m", "homae_model.cli.synth", "--out", str(data), "--num", "6"]
    argv += ["--seed", "4", "--size", "256x256", "--left-fraction", "0.5"]
    subprocess.run([*argv, "--no-contact-sheet", "--quiet"], check=True, cwd=REPO, timeout=300)
    from homae_model.data.synthetic import SyntheticSource

    source = SyntheticSource(data)
    sides = [source[i].side for i in range(len(source))]
    assert "left" in sides and "right" in sides

    # A stand-in left/right detector: the labelled boxes, the side right except on frame 0.
    def found(det, image, hand_box):
        i = next(k for k in range(len(source)) if np.allclose(source[k].hand_box, hand_box))
        side = source[i].side if i else {"left": "right", "right": "left"}[source[i].side]
        return np.asarray(hand_box, np.float64), np.asarray(source[i].obj_box), side

    stand_in = evaluate_module._Detector(object(), None, tmp_path / "stand_in", "test detector")
    monkeypatch.setattr(evaluate_module, "_load_detector", lambda *args: stand_in)
    monkeypatch.setattr(evaluate_module, "_detected_pair", found)
    out = tmp_path / "report"
    report = evaluate_module.evaluate(
        bundled_weights_dir(), data, "both", out_dir=out, progress=False
    )
    meta = report["meta"]
    n_left = sides.count("left")
    assert meta["counts"]["left_hands"] == n_left and meta["counts"]["evaluated"] == 6
    for protocol in ("gt-anchored", "gt-free"):
        per = meta["per_side"][protocol]
        assert per["left"]["samples"] == n_left and per["right"]["samples"] == 6 - n_left
        assert per["left"]["MJE"] > 0 and per["right"]["MJE"] > 0
        rows = report["per_sample"][protocol]
        assert len(rows) == 6
    assert [r["side"] for r in report["per_sample"]["gt-anchored"]] == sides
    acc = meta["gt_free"]["side_accuracy"]
    assert acc["checked"] == 6 and acc["accuracy"] == pytest.approx(5 / 6)
    text = (out / "report.md").read_text()
    assert "Per hand side" in text and "left/right accuracy" in text
    # the left hands' error is that of a hand estimated as left: well below a wrong-side fit
    assert per["left"]["MJE"] < 200
