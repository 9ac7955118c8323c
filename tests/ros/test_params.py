"""homae_ros.node.params: the table, validation, rclpy declaration, YAML and README consistency."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import pytest

from homae_ros.node import params as P

REPO = Path(__file__).resolve().parents[2]
YAML = REPO / "config" / "homae.yaml"


def load_script():
    spec = importlib.util.spec_from_file_location(
        "gen_param_table", REPO / "scripts" / "gen_param_table.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_table_matches_dataclass_and_brief() -> None:
    names = [p.name for p in P.PARAMETERS]
    assert len(names) == len(set(names))
    assert [p.field for p in P.PARAMETERS] == [f.name for f in dataclasses.fields(P.NodeParams)]
    required = {
        "qos", "sync", "sync_slop_s", "device", "checkpoint", "mano_model_path", "object_library",
        "detector.backend", "detector.weights", "detector.score_threshold",
        "detector.max_detections", "detector.roi", "objects.allowed", "min_hand_score",
        "frame_prefix", "target_frame", "tf_timeout_s", "publish_tf", "publish_markers",
        "markers.hand_mesh", "markers.skeleton", "markers.object_mesh", "debug_image",
        "diagnostics_period_s", "log_throttle_s", "max_batch_pairs",
        # issue 17: threads, tracking, smoothing, diagnostics window
        "torch_threads", "tracking.min_iou", "tracking.max_distance_m", "tracking.max_misses",
        "tracking.name_frames",
        "smoothing.enabled", "smoothing.min_cutoff_hz", "smoothing.beta", "smoothing.d_cutoff_hz",
        "smoothing.max_gap_s", "diagnostics_window_s",
        # issue 18: CompressedImage input, distortion correction, the hand-side network
        "image_transport", "undistort", "detector.side_net",
        # issue 19: the network runtime
        "runtime", "runtime_provider", "onnx_dir",
    }  # fmt: skip
    assert set(names) == required
    for p in P.PARAMETERS:
        assert p.description and p.type in P._TYPES
        # every default passes its own validation
        P.validate_value(p, p.default)


def test_defaults_give_typed_params() -> None:
    n = P.params_from_values({})
    assert n.qos == "sensor_data" and n.sync == "approximate" and n.frame_prefix == "homae"
    assert n.objects_allowed == () and n.detector_roi == (0.0, 0.0, 0.0, 0.0)
    assert isinstance(n.max_batch_pairs, int) and isinstance(n.sync_slop_s, float)
    n2 = P.params_from_values({"objects.allowed": ["006_mustard_bottle", ""], "sync_slop_s": 0})
    assert n2.objects_allowed == ("006_mustard_bottle",) and n2.sync_slop_s == 0.0


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"sync": "nearest"}, "'sync'.*exact, approximate, latest_camera_info"),
        ({"qos": "best_effort"}, "'qos'.*sensor_data, reliable"),
        ({"detector.backend": "yolo"}, "'detector.backend'.*torchvision, track, roi"),
        ({"device": "gpu"}, "'device'.*auto, cuda"),
        ({"detector.score_threshold": 1.5}, "'detector.score_threshold'.*range"),
        ({"max_batch_pairs": 0}, "'max_batch_pairs'"),
        ({"max_batch_pairs": 2.0}, "'max_batch_pairs' must be of type integer"),
        ({"publish_tf": "yes"}, "'publish_tf' must be of type bool"),
        ({"detector.roi": [1.0, 2.0, 3.0]}, "exactly 4"),
        ({"detector.roi": [10.0, 0.0, 5.0, 10.0]}, "x_min < x_max"),
        ({"frame_prefix": "/homae"}, "'frame_prefix'"),
        ({"target_frame": "/map"}, "leading slash"),
        ({"no_such": 1}, "unknown parameter.*no_such"),
    ],
)
def test_bad_values_name_the_parameter(values: dict, match: str) -> None:
    with pytest.raises(P.ParameterError, match=match):
        P.params_from_values(values)


def test_device_accepts_gpu_index() -> None:
    assert P.params_from_values({"device": "cuda:1"}).device == "cuda:1"


def test_yaml_lists_exactly_the_declared_parameters() -> None:
    gen = load_script()
    assert gen.yaml_problems(YAML) == []
    assert set(gen.load_yaml_parameters(YAML)) == {p.name for p in P.PARAMETERS}


def test_check_detects_yaml_and_readme_drift(tmp_path: Path) -> None:
    gen = load_script()
    bad = tmp_path / "bad.yaml"
    text = (
        YAML.read_text()
        .replace("sync_slop_s: 0.02", "sync_slop_s: 1")
        .replace("    publish_tf: true\n", "    publish_tf: true\n    extra_param: 3\n")
    )
    text = "\n".join(
        line for line in text.splitlines() if not line.strip().startswith("log_throttle_s")
    )
    bad.write_text(text)
    problems = "\n".join(gen.yaml_problems(bad))
    assert (
        "'sync_slop_s'" in problems
        and "extra_param" in problems
        and "'log_throttle_s' is missing" in problems
    )
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- params:begin -->\nold\n<!-- params:end -->\n\nafter\n")
    assert gen.main(["--check", "--readme", str(readme), "--yaml", str(YAML)]) == 1
    assert gen.main(["--readme", str(readme), "--yaml", str(YAML)]) == 0
    new = readme.read_text()
    assert new.startswith("# x\n") and new.endswith("\nafter\n") and "`detector.roi`" in new
    assert gen.main(["--check", "--readme", str(readme), "--yaml", str(YAML)]) == 0
    assert gen.main(["--check", "--readme", str(readme), "--yaml", str(bad)]) == 1


def test_markdown_table_has_every_parameter() -> None:
    table = P.markdown_table()
    rows = [r for r in table.splitlines() if r.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == [p.name for p in P.PARAMETERS]


# ---------------------------------------------------------------------------- with rclpy
try:
    import rclpy
except ImportError:  # pure tests above still run
    rclpy = None


@pytest.fixture
def make_node():
    if rclpy is None:
        pytest.skip("rclpy is not installed")
    os.environ.setdefault("ROS_LOG_DIR", str(Path("/tmp") / f"roslog_{os.getpid()}"))
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []

    def factory(cli_args=None, overrides=None):
        node = rclpy.create_node(
            "homae_node", context=context, cli_args=cli_args,
            parameter_overrides=overrides or [],
        )  # fmt: skip
        nodes.append(node)
        return node

    yield factory
    for n in nodes:
        n.destroy_node()
    rclpy.shutdown(context=context)


def test_declare_and_read_from_the_yaml_file(make_node) -> None:
    node = make_node(cli_args=["--ros-args", "--params-file", str(YAML), "-p", "device:=cpu"])
    got = P.declare_and_read(node)
    assert got == dataclasses.replace(P.params_from_values({}), device="cpu")
    d = node.describe_parameter("detector.score_threshold")
    assert d.floating_point_range[0].from_value == 0.0 and d.floating_point_range[0].to_value == 1.0
    assert node.describe_parameter("max_batch_pairs").integer_range[0].to_value == 64
    assert node.describe_parameter("checkpoint").read_only
    assert "one of" in node.describe_parameter("sync").additional_constraints
    assert node.describe_parameter("qos").description.startswith("QoS")


def test_declare_errors_name_the_parameter(make_node) -> None:
    from rclpy.parameter import Parameter

    with pytest.raises(P.ParameterError, match=r"'sync'.*exact, approximate, latest_camera_info"):
        P.declare_and_read(make_node(overrides=[Parameter("sync", value="fast")]))
    with pytest.raises(P.ParameterError, match=r"'sync_slop_s' must be of type double.*1\.0"):
        P.declare_and_read(make_node(overrides=[Parameter("sync_slop_s", value=1)]))
    with pytest.raises(P.ParameterError, match="'min_hand_score' is out of range"):
        P.declare_and_read(make_node(overrides=[Parameter("min_hand_score", value=3.0)]))


def test_runtime_change_validation(make_node) -> None:
    from rclpy.parameter import Parameter

    node = make_node()
    P.declare_and_read(node)
    node.add_on_set_parameters_callback(P.validate_parameter_change)
    assert node.set_parameters([Parameter("min_hand_score", value=0.6)])[0].successful
    res = node.set_parameters([Parameter("detector.roi", value=[1.0, 2.0])])[0]
    assert not res.successful and "exactly 4" in res.reason
    assert not node.set_parameters([Parameter("device", value="cuda")])[0].successful  # read-only
