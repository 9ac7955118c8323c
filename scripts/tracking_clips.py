#!/usr/bin/env python3
"""Tracking and smoothing on synthetic clips without ROS: raw, smoothed, no continuity choice.

    python scripts/tracking_clips.py CLIP [CLIP ...] [--checkpoint weights/demo]

Each CLIP is a `homae-synth --sequence` folder (the `make demo` clip is demo_out/clip; more:
`homae-synth --out DIR --sequence --frames 60 --fps 10 --size 320x240 --seed S --uniform-skin`).
Every frame goes through the node's own per-frame path (`FrameEstimator`: the bundled detector
and Predictor) and the node's tracker (`FrameTracker`), at the clip's frame rate and in
lockstep (no dropped frames), three times: smoothing off (what the node publishes by default),
smoothing on, and smoothing on with `nearest_fit` (the choice among the keypoint fit's near
orientations of the one closest to the track's previous one) replaced by the Predictor's own
choice. Per clip and on average: root-relative MJE of the first hand against the clip's labels
(mm, frames with a hand) and its jitter (`homae_model.tracking.metrics.jitter_mm`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from homae_model.estimation.estimator import FrameEstimator, PairEstimate  # noqa: E402
from homae_model.inference import PairPrediction  # noqa: E402
from homae_model.metrics.hand import mje  # noqa: E402
from homae_model.tracking import frame as tracking_frame  # noqa: E402
from homae_model.tracking.metrics import jitter_mm  # noqa: E402

VARIANTS = ("raw", "smoothed", "smoothed, no continuity choice")


def _own_choice(pred: PairPrediction, previous_r: np.ndarray | None) -> PairPrediction:
    """`nearest_fit`'s stand-in that keeps the Predictor's own choice."""
    return pred


def track(
    estimates: list[list[PairEstimate]], stamps: list[float], variant: str
) -> list[np.ndarray | None]:
    """The first hand's joints (21,3) per frame after `FrameTracker`, for one variant."""
    original = tracking_frame.nearest_fit
    if variant == VARIANTS[2]:
        tracking_frame.nearest_fit = _own_choice
    try:
        settings = tracking_frame.TrackingSettings(smoothing=variant != VARIANTS[0])
        tracker = tracking_frame.FrameTracker(settings)
        out = []
        for est, t in zip(estimates, stamps, strict=True):
            pairs = tracker.update(est, t).pairs
            out.append(pairs[0].joints if pairs else None)
        return out
    finally:
        tracking_frame.nearest_fit = original


def main(argv: list[str] | None = None) -> int:
    """Print the per-clip and mean MJE / jitter of the three variants."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clips", nargs="+", type=Path, help="homae-synth --sequence folders")
    ap.add_argument("--checkpoint", default="", help="HOMAE weights (default: the bundled)")
    args = ap.parse_args(argv)
    estimator = FrameEstimator.load(checkpoint=args.checkpoint)
    rows = []
    for clip in args.clips:
        anns = sorted((clip / "ann").glob("*.npz"))
        if not anns:
            raise FileNotFoundError(f"{clip}: no ann/*.npz (not a homae-synth --sequence folder)")
        labels = [np.load(a) for a in anns]
        stamps = [float(lab["stamp"]) for lab in labels]
        estimator.reset()
        estimates = []
        frames = list(zip(anns, labels, stamps, strict=True))
        for ann, lab, t in tqdm(frames, desc=clip.name, unit="frame"):
            rgb = np.asarray(Image.open(clip / "rgb" / f"{ann.stem}.png").convert("RGB"))
            estimates.append(estimator.process(rgb, lab["K"], t))
        row = {}
        for variant in VARIANTS:
            joints = track(estimates, stamps, variant)
            pairs = zip(joints, labels, strict=True)
            errs = [mje(j, lab["hand_joints"]) for j, lab in pairs if j is not None]
            row[variant] = (float(np.mean(errs)), jitter_mm(joints, stamps), len(errs))
        rows.append((clip.name, row))
    print("| clip | " + " | ".join(f"{v}: MJE / jitter (mm)" for v in VARIANTS) + " |")
    print("|---" * (len(VARIANTS) + 1) + "|")
    for name, row in rows:
        cells = [f"{row[v][0]:.1f} / {row[v][1]:.1f}" for v in VARIANTS]
        print(f"| {name} ({row[VARIANTS[0]][2]} frames) | " + " | ".join(cells) + " |")
    means = [
        f"{np.mean([r[v][0] for _, r in rows]):.1f} / {np.mean([r[v][1] for _, r in rows]):.1f}"
        for v in VARIANTS
    ]
    print(f"| mean of {len(rows)} clips | " + " | ".join(means) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
