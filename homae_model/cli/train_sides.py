"""homae-train-sides: train the hand-side (left/right) network that reads the detector's hand boxes.

Example:
    homae-synth --out data/train_lr --num 12000 --left-fraction 0.5 --workers 2
    homae-train-sides --data data/train_lr --eval-data data/test_lr \
        --out weights/demo/side_net_synthetic.safetensors \
        --detector weights/demo/detector_synthetic.safetensors
    ros2 run homae_ros homae_node --ros-args \
        -p detector.side_net:=weights/demo/side_net_synthetic.safetensors
    homae-train-sides --data D --out S.safetensors epochs=5 rotation=0
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from homae_model.cli.overrides import add_overrides_argument
from homae_model.detector.side_train import SideTrainConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="homae-train-sides", description=__doc__.split("\n")[0])
    p.add_argument(
        "--data",
        action="append",
        required=True,
        type=Path,
        help="synthetic data folder (homae-synth output, best with --left-fraction 0.5); repeat",
    )
    p.add_argument("--out", required=True, type=Path, help="weights file (.safetensors)")
    p.add_argument(
        "--eval-data",
        action="append",
        type=Path,
        default=None,
        help="held-out data folder scored after every epoch (side accuracy on the labelled boxes)",
    )
    p.add_argument("--eval-count", type=int, default=500, help="held-out samples scored")
    p.add_argument(
        "--detector",
        type=Path,
        default=None,
        help="with --eval-data, also score the sides of the hands this detector finds (its "
        "boxes, not the labelled ones: what the node sees)",
    )
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this side network file (fine-tune; its width must match, its input "
        "size may differ: e.g. input_size=96 fine-tunes a 64 px network at 96 px)",
    )
    p.add_argument("--epochs", type=int, default=SideTrainConfig.epochs)
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", type=Path, default=None, help="write the scores as JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overrides_argument(
        p,
        "the options",
        "homae-train-sides --data D --out S.safetensors input_size=96 side_weight=2",
        keys="the fields of SideTrainConfig (homae_model/detector/side_train.py), e.g. "
        "input_size, width, rotation, keypoint_weight",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, train, save, score; returns the exit status."""
    args = _parser().parse_intermixed_args(argv)
    from homae_model.config import apply_overrides
    from homae_model.data.synthetic import SyntheticSource
    from homae_model.detector.infer import Detector, format_side_accuracy
    from homae_model.detector.model import read_spec
    from homae_model.detector.side_train import train_side_net
    from homae_model.detector.train import evaluate_on_sources

    config = SideTrainConfig(
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        num_workers=args.workers,
        seed=args.seed,
        device=args.device,
    )
    try:
        config = apply_overrides(config, args.overrides)
        config.spec  # noqa: B018 - validates the network shape before any data is read
        if args.detector is not None:
            read_spec(args.detector)
    except (ValueError, FileNotFoundError) as exc:
        print(f"homae-train-sides: error: {exc}", file=sys.stderr)
        return 2
    sources = [SyntheticSource(d) for d in args.data]
    held_out = [SyntheticSource(d) for d in args.eval_data or []]
    result = train_side_net(
        sources,
        args.out,
        config,
        eval_sources=held_out,
        eval_hands=args.eval_count,
        progress=not args.no_progress,
        init=args.init,
    )
    print(
        f"saved {result.path} after {result.steps} steps ({result.seconds / 60:.1f} min); "
        f"loss {result.first_loss:.3f} -> {result.last_loss:.3f}"
    )
    report: dict = {
        "config": asdict(config),
        "init": None if args.init is None else str(args.init),
        "data": [str(d) for d in args.data],
        "eval_data": [str(d) for d in args.eval_data or []],
        "steps": result.steps,
        "minutes": round(result.seconds / 60, 2),
        "history": [{"epoch": e, **asdict(ev)} for e, ev in result.history],
    }
    if args.detector is not None and held_out:
        detector = Detector(
            args.detector, device=args.device, max_detections=20, side_net=result.path
        )
        ev = evaluate_on_sources(detector, held_out, max_images=args.eval_count)
        report["detector_boxes"] = {"detector": str(args.detector), **ev.side}
        if ev.side:
            found = format_side_accuracy(ev.side)
            print(f"held-out, the detector's hand boxes: left/right {found}")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
