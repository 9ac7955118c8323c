"""`homae-synth`: write a synthetic hand-object data set (or a short clip) and a contact sheet.

Examples::

    homae-synth --out data/synth_train --num 10000 --seed 0 --size 256x256 --workers 2
    homae-synth --out data/synth_clip --seed 3 --size 640x480 --sequence
    homae-synth --out data/multicam_clip --seed 3 --size 320x240 --cameras 2 --occlude
    homae-synth --out data/synth_mixed --num 1000 --left-fraction 0.5

The format is described in `homae_model.data.synthetic` and docs/data_format.md; a clip from
several calibrated cameras (`--cameras N`) in `homae_model.data.synth_multicam`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CONTACT_SHEET_SAMPLES = 12
"""Samples shown in DIR/contact_sheet.png."""


def parse_size(text: str) -> tuple[int, int]:
    """Parse "WxH" into (W, H) positive ints."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--size must look like 256x256, got {text!r}") from err
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"--size must be at least 16x16, got {text!r}")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(prog="homae-synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--num", type=int, default=100, help="number of samples (default 100)")
    p.add_argument("--seed", type=int, default=0, help="data set seed (default 0)")
    p.add_argument("--split", choices=("train", "val", "test"), default="train")
    p.add_argument("--size", type=parse_size, default=(256, 256), help="WxH (default 256x256)")
    p.add_argument("--sequence", action="store_true", help="write an approach-grasp-lift clip")
    p.add_argument("--frames", type=int, default=60, help="clip length (with --sequence)")
    p.add_argument("--fps", type=float, default=15.0, help="clip frame rate (with --sequence)")
    p.add_argument(
        "--cameras", type=int, default=0,
        help="write one clip seen by N calibrated cameras (camK/ folders + extrinsics.yaml)",
    )  # fmt: skip
    p.add_argument(
        "--occlude", action="store_true",
        help="with --cameras >= 2: camera 1 stands behind the object (it hides the hand)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=1, help="generator processes (default 1)")
    p.add_argument("--ycb", type=Path, default=None, help="YCB models folder (default: procedural)")
    p.add_argument("--mano", type=Path, default=None, help="MANO-format model file")
    p.add_argument("--depth", action="store_true", help="store depth maps in the npz files")
    p.add_argument("--distractor-prob", type=float, default=None, help="occluder probability")
    p.add_argument(
        "--left-fraction",
        type=float,
        default=0.0,
        help="fraction of left-hand samples, 0-1 (default 0: right hands only; 1: all left)",
    )
    p.add_argument(
        "--uniform-skin",
        action="store_true",
        help="one skin colour for the whole hand (the older look; default: lighter palm, nails)",
    )
    p.add_argument("--no-contact-sheet", action="store_true", help="skip contact_sheet.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the generator; returns the process exit code."""
    args = build_parser().parse_args(argv)
    from homae_model.data.contact_sheet import write_contact_sheet
    from homae_model.data.synth_scene import SynthConfig
    from homae_model.data.synth_writer import write_dataset, write_sequence
    from homae_model.data.synthetic import SyntheticSource
    from homae_model.objects.library import ObjectLibrary

    config = SynthConfig(width=args.size[0], height=args.size[1], save_depth=args.depth)
    if not 0.0 <= args.left_fraction <= 1.0:
        print(
            f"homae-synth: error: --left-fraction must be in [0, 1], got {args.left_fraction}",
            file=sys.stderr,
        )
        return 2
    config.left_fraction = args.left_fraction
    config.uniform_skin = args.uniform_skin
    if args.distractor_prob is not None:
        config.distractor_prob = args.distractor_prob
    try:
        library = ObjectLibrary.from_ycb(args.ycb) if args.ycb else ObjectLibrary.procedural()
        if args.cameras:
            from homae_model.data.synth_multicam import write_multicam_sequence

            root = write_multicam_sequence(
                args.out, args.seed, args.cameras, args.frames, args.fps, config, library,
                args.mano, occlude=args.occlude,
            )  # fmt: skip
        elif args.occlude:
            raise ValueError("--occlude needs --cameras 2 or more")
        elif args.sequence:
            root = write_sequence(
                args.out, args.seed, args.frames, args.fps, config, library, args.mano
            )
        else:
            root = write_dataset(
                args.out, args.num, args.seed, args.split, config, library, args.workers,
                args.mano, progress=not args.quiet,
            )  # fmt: skip
        if not args.no_contact_sheet:
            folders = [root / f"cam{k}" for k in range(args.cameras)] if args.cameras else [root]
            for folder in folders:
                source = SyntheticSource(folder)
                step = max(1, len(source) // CONTACT_SHEET_SAMPLES)
                samples = [source[i] for i in range(0, len(source), step)]
                write_contact_sheet(
                    folder / "contact_sheet.png", samples[:CONTACT_SHEET_SAMPLES], library
                )
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"homae-synth: error: {err}", file=sys.stderr)
        return 1
    print(f"homae-synth: wrote {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
