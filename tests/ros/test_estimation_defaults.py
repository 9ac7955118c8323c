"""One set of estimation defaults: the node, homae-bag, homae-infer and homae-eval agree.

Each entry point is asked what it would actually run with when given no options (the node's
parameter defaults, the tools' parsed command lines as handed to `FrameEstimator.load`,
homae-eval's thresholds and --device), and all of them must equal `DEFAULT_SETTINGS`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import pytest

from homae_model.estimation import cli_args as estimator_cli
from homae_model.estimation.detection import DetectionConfig
from homae_model.estimation.settings import DEFAULT_SETTINGS, EstimationSettings

FIELDS = ("device", "detector_backend", "score_threshold", "max_detections", "max_pairs",
          "min_hand_score", "runtime", "runtime_provider")  # fmt: skip


def _settings(**values: Any) -> dict[str, Any]:
    return {name: values[name] for name in FIELDS}


def _node() -> dict[str, Any]:
    from homae_ros.node.params import params_from_values

    p = params_from_values({})
    det = DetectionConfig.from_params(p, device=p.device)
    return _settings(
        device=p.device,
        detector_backend=p.detector_backend,
        score_threshold=det.score_threshold,
        max_detections=det.max_detections,
        max_pairs=min(det.max_pairs, p.max_batch_pairs),
        min_hand_score=p.min_hand_score,
        runtime=p.runtime,
        runtime_provider=p.runtime_provider,
    )


@dataclass
class _Loaded:
    objects: tuple[str, ...] = ()


def _tool(parser: argparse.ArgumentParser, argv: list[str], monkeypatch) -> dict[str, Any]:
    """What `load_estimator` hands to FrameEstimator.load for the tool's default options."""
    seen: dict[str, Any] = {}

    def fake_load(**kwargs: Any) -> _Loaded:
        seen.update(kwargs)
        return _Loaded()

    monkeypatch.setattr(estimator_cli.FrameEstimator, "load", staticmethod(fake_load))
    monkeypatch.setattr(estimator_cli, "resolve_device", lambda requested, what: requested)
    args = parser.parse_args(argv)
    estimator_cli.load_estimator(args)
    det: DetectionConfig = seen["detection"]
    return _settings(
        device=seen["device"],
        detector_backend=seen["backend"],
        score_threshold=det.score_threshold,
        max_detections=det.max_detections,
        max_pairs=min(det.max_pairs, seen["max_pairs"]),
        min_hand_score=seen["min_hand_score"],
        runtime=seen["runtime"],
        runtime_provider=seen["runtime_provider"],
    )


def _eval() -> dict[str, Any]:
    from homae_model.cli.evaluate import build_parser
    from homae_model.evaluation import evaluate as ev

    args = build_parser().parse_args(["--checkpoint", "c", "--data", "d"])
    return {
        "device": args.device,
        "score_threshold": ev.DETECTOR_MIN_SCORE,
        "min_hand_score": ev.MIN_HAND_SCORE,
    }


def test_node_bag_infer_and_eval_share_the_estimation_defaults(monkeypatch) -> None:
    from homae_ros.tools.bag import build_parser as bag_parser
    from homae_ros.tools.infer import build_parser as infer_parser

    expected = _settings(**{f: getattr(DEFAULT_SETTINGS, f) for f in FIELDS})
    node = _node()
    bag = _tool(bag_parser(), ["--in", "in.mcap", "--out", "out.mcap"], monkeypatch)
    infer = _tool(infer_parser(), ["img.png", "--intrinsics", "K.yaml", "--out", "o"], monkeypatch)
    evaluation = _eval()
    assert node == expected, "node parameter defaults drifted from DEFAULT_SETTINGS"
    assert bag == expected, "homae-bag defaults drifted from DEFAULT_SETTINGS"
    assert infer == expected, "homae-infer defaults drifted from DEFAULT_SETTINGS"
    assert evaluation == {k: expected[k] for k in evaluation}, "homae-eval drifted"


def test_settings_reject_values_no_entry_point_accepts() -> None:
    with pytest.raises(ValueError, match="detector_backend"):
        EstimationSettings(detector_backend="yolo")
    with pytest.raises(ValueError, match="min_hand_score"):
        EstimationSettings(min_hand_score=1.5)
    with pytest.raises(ValueError, match="max_pairs"):
        EstimationSettings(max_pairs=0)
