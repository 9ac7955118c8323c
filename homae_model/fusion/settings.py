"""Fusion settings (defaults and their meaning), shared by the maths and the ROS node."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FusionSettings:
    """How views are weighted, associated, rejected and fused.

    Attributes:
        depth_ratio: expected error along a camera's viewing ray divided by the error across
            it (a monocular estimate places a target well in the image but poorly in depth;
            on the synthetic split the GT-free anchor errs 27 / 25 mm in x / y and 64 mm in
            depth, hence 2.5). Fusion weights the along-ray component of view k by
            1 / depth_ratio², and disagreement tests shrink it by 1 / depth_ratio.
        reference_depth_m: depth at which the distance term of a view's weight is 1; the term
            is (reference_depth_m / z)², z the target's depth along the camera's optical axis
            (image-plane errors grow linearly with z, so their variance with z²).
        min_box_px: box diagonal (pixels) under which a view is down-weighted by
            diagonal / min_box_px (few pixels on the target: a far or mostly hidden one).
        min_score: views scoring below this are ignored.
        hand_gate_m: association gate for hands: largest ray-discounted distance (m) between
            a view's joint centroid and a group's centroid.
        object_gate_m: the same for object positions.
        hand_outlier_m: a hand view whose mean ray-discounted joint distance (m) to the fused
            estimate of the other views exceeds this is dropped (see `robust.reject_outliers`).
        object_outlier_m: the same for object positions.
        object_outlier_deg: an object view whose rotation is farther than this (degrees) from
            the other views' mean rotation is dropped.
        huber_m: Huber scale (m) of the per-joint reweighting after outlier rejection.
        irls_iterations: reweighting iterations of the robust joint mean.
    """

    depth_ratio: float = 2.5
    reference_depth_m: float = 0.5
    min_box_px: float = 40.0
    min_score: float = 0.05
    hand_gate_m: float = 0.25
    object_gate_m: float = 0.25
    hand_outlier_m: float = 0.12
    object_outlier_m: float = 0.12
    object_outlier_deg: float = 60.0
    huber_m: float = 0.03
    irls_iterations: int = 3

    def __post_init__(self) -> None:
        """Reject settings the maths cannot use (names the field)."""
        positive = (
            "depth_ratio", "reference_depth_m", "min_box_px", "hand_gate_m", "object_gate_m",
            "hand_outlier_m", "object_outlier_m", "object_outlier_deg", "huber_m",
        )  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"fusion setting {name} must be > 0, got {value}")
        if self.depth_ratio < 1.0:
            raise ValueError(f"fusion setting depth_ratio must be >= 1, got {self.depth_ratio}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"fusion setting min_score must be in [0, 1], got {self.min_score}")
        if self.irls_iterations < 0:
            raise ValueError(
                f"fusion setting irls_iterations must be >= 0, got {self.irls_iterations}"
            )
