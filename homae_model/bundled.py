"""Where the bundled demo weights live (one definition for the node, the tools and homae-eval).

`weights/demo/` holds the synthetic-trained HOMAE (`homae_small_synthetic.safetensors` with its
`config.yaml`), box detector (`detector_synthetic.safetensors` + `.json`), hand-side network
(`side_net_synthetic.safetensors` + `.json`, used only when asked for) and keypoint networks
(`keypoints_synthetic.safetensors` and `keypoints96_synthetic.safetensors`, each with a `.json`,
named by the HOMAE config's `model.inference.keypoint_net` and `keypoint_ensemble`). In a ROS
install they are under share/homae_ros/weights/demo; in a source checkout, beside the packages.
"""

from __future__ import annotations

from pathlib import Path

DEMO_CHECKPOINT_NAME = "homae_small_synthetic.safetensors"
"""File name of the bundled HOMAE demo weights (config.yaml beside it)."""
DEMO_DETECTOR_NAME = "detector_synthetic.safetensors"
"""File name of the bundled demo detector weights (a .json sidecar beside it)."""
DEMO_SIDE_NET_NAME = "side_net_synthetic.safetensors"
"""File name of the bundled hand-side network (a .json sidecar beside it)."""
SOURCE_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights" / "demo"


def bundled_weights_dir() -> Path:
    """The bundled demo weights folder: the ROS install's share/ when found, else the source's."""
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("homae_ros")) / "weights" / "demo"
        if share.is_dir():
            return share
    except (ImportError, LookupError, ValueError, OSError):  # no ROS environment
        pass
    return SOURCE_WEIGHTS_DIR


def demo_checkpoint() -> Path:
    """Path of the bundled HOMAE weights file (may not exist in a fresh checkout)."""
    return bundled_weights_dir() / DEMO_CHECKPOINT_NAME


def demo_detector() -> Path:
    """Path of the bundled detector weights file."""
    return bundled_weights_dir() / DEMO_DETECTOR_NAME


def demo_side_net() -> Path:
    """Path of the bundled hand-side network file (`detector.side_net` to use it)."""
    return bundled_weights_dir() / DEMO_SIDE_NET_NAME
