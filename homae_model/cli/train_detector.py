"""homae-train-detector: train the hand/object box detector on synthetic (RawSample) data.

Example:
    homae-train-detector --data /tmp/detdata --out weights/demo/detector_synthetic.safetensors \
        --epochs 10 --eval-data /tmp/detdata_val
    homae-train-detector --data /tmp/detdata --out /tmp/det.safetensors weight_decay=0 augment=false
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from homae_model.cli.overrides import add_overrides_argument
from homae_model.detector.model import ARCHS, DEFAULT_ARCH, DEFAULT_INPUT_SIZE
from homae_model.detector.train import DetectorTrainConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="homae-train-detector", description=__doc__.split("\n")[0])
    p.add_argument(
        "--data",
        action="append",
        required=True,
        type=Path,
        help="synthetic data folder (homae-synth output); repeat for several",
    )
    p.add_argument("--out", required=True, type=Path, help="weights file (.safetensors)")
    p.add_argument("--arch", default=DEFAULT_ARCH, choices=ARCHS)
    p.add_argument("--input-size", type=int, default=DEFAULT_INPUT_SIZE)
    p.add_argument("--epochs", type=int, default=DetectorTrainConfig.epochs)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--batch-size", type=int, default=DetectorTrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=DetectorTrainConfig.lr)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, default=None, help="start from these weights")
    p.add_argument(
        "--object-library",
        type=Path,
        default=None,
        help="YCB models folder for the class names; default: procedural objects",
    )
    p.add_argument(
        "--eval-data",
        action="append",
        type=Path,
        default=None,
        help="held-out data folder scored (mAP@0.5, recall) after training",
    )
    p.add_argument(
        "--single-hand-class",
        action="store_true",
        help="one 'hand' class (the older detectors) instead of right_hand / left_hand",
    )
    p.add_argument("--eval-count", type=int, default=200, help="held-out images scored")
    add_overrides_argument(
        p,
        "the options",
        "homae-train-detector --data D --out W.safetensors weight_decay=0 warmup_fraction=0.1",
        keys="the fields of DetectorTrainConfig (homae_model/detector/train.py), e.g. "
        "weight_decay, warmup_fraction, grad_clip, augment",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, train, save, optionally evaluate; returns the exit status."""
    args = _parser().parse_intermixed_args(argv)
    from homae_model.config import apply_overrides
    from homae_model.data.synthetic import SyntheticSource
    from homae_model.detector.infer import Detector, format_side_accuracy
    from homae_model.detector.model import detector_class_names
    from homae_model.detector.train import evaluate_on_sources, train_detector
    from homae_model.objects.library import ObjectLibrary

    library = (
        ObjectLibrary.from_ycb(args.object_library)
        if args.object_library
        else ObjectLibrary.procedural()
    )
    classes = detector_class_names(library.names, sides=not args.single_hand_class)
    config = DetectorTrainConfig(
        arch=args.arch,
        input_size=args.input_size,
        epochs=args.epochs,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes,
        batch_size=args.batch_size,
        lr=args.lr,
        num_workers=args.workers,
        seed=args.seed,
        device=args.device,
    )
    try:
        config = apply_overrides(config, args.overrides)
    except ValueError as exc:
        print(f"homae-train-detector: error: {exc}", file=sys.stderr)
        return 2
    sources = [SyntheticSource(d) for d in args.data]
    result = train_detector(sources, classes, args.out, config, init_path=args.init)
    print(
        f"saved {result.path} after {result.steps} steps ({result.seconds / 60:.1f} min); "
        f"loss {result.first_loss:.3f} -> {result.last_loss:.3f}"
    )
    if args.eval_data:
        detector = Detector(result.path, device=args.device, max_detections=20)
        ev = evaluate_on_sources(
            detector, [SyntheticSource(d) for d in args.eval_data], max_images=args.eval_count
        )
        print(
            f"eval on {ev.num_images} images ({ev.num_gt} boxes): "
            f"mAP@0.5 {ev.map50:.3f}, recall@0.5 {ev.recall:.3f}"
        )
        for name, ap in ev.ap.items():
            print(f"  AP {name}: {ap:.3f}")
        if ev.side:
            print(f"  left/right accuracy: {format_side_accuracy(ev.side)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
