"""`homae-convert-mano`: official MANO pickle (Python 2, chumpy) -> plain numpy pickle.

    homae-convert-mano SRC DST

SRC is the official ``MANO_RIGHT.pkl`` or ``MANO_LEFT.pkl``; DST (a file, or a folder that
receives a file of SRC's name) is what `ManoLayer` / `smplx` read. chumpy is not needed: the
file is read with a restricted unpickler that refuses anything but numpy, scipy.sparse and
chumpy data (see `homae_model.hand.convert`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from homae_model.hand.convert import MissingKeyError, UnsafePickleError, convert_mano


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``homae-convert-mano``; returns the exit status (0 ok, 1 error)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="official MANO_RIGHT.pkl / MANO_LEFT.pkl")
    parser.add_argument("dst", type=Path, help="output file, or a folder to write SRC's name in")
    args = parser.parse_args(argv)
    dst = args.dst / args.src.name if args.dst.is_dir() else args.dst
    try:
        out = convert_mano(args.src, dst)
    except (FileNotFoundError, MissingKeyError, UnsafePickleError, ValueError) as exc:
        print(f"homae-convert-mano: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
