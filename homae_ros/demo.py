"""`make demo`: the main job on the bundled default.

Not wired yet: the demo needs the bundled demo weights (issue "The main job on an embedded
default"). Until then this says what the demo will run, and exits 0.
"""

from __future__ import annotations

PLAN = """\
make demo will run, with no download and no camera:
  1. a synthetic camera that plays a generated hand-object clip (homae-synth --sequence) with
     camera_info over loopback;
  2. the real homae_node (rclpy) with the bundled synthetic-trained HOMAE and detector weights
     and the project's own MANO-format hand;
  3. a recorder of everything the node publishes, writing to demo_out/:
     summary.json (frames, latency, MJE and ADD-S against the clip's ground truth),
     an overlay contact sheet and a 3D plot, and a rosbag2 (MCAP) of inputs and outputs.
Status: not available yet - the demo weights are still to be trained (see the README).
"""


def main() -> int:
    """Print what the demo will run."""
    print(PLAN, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
