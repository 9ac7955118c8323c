"""Evaluation metrics matching the DexYCB / HO3D / FreiHAND toolkits (pure numpy, float64).

Inputs in metres (camera frame, project joint order), outputs in millimetres or fractions.
"""

from homae_model.metrics.alignment import (
    MIDDLE_MCP_JOINT,
    ROOT_JOINT,
    SimilarityTransform,
    align_root,
    align_scale_translation,
    fit_similarity,
    procrustes_similarity,
)
from homae_model.metrics.hand import (
    absolute_mje,
    align_joints,
    mje,
    pa_mje,
    per_joint_errors,
    st_mje,
)
from homae_model.metrics.mesh import (
    F_THRESHOLDS_MM,
    FScore,
    f_score,
    f_scores,
    pa_v_pe,
    v_pe,
    vertex_errors,
)
from homae_model.metrics.objects import (
    ObjectErrors,
    ObjectPose,
    add_s,
    box_corners,
    mean_corner_error,
    object_centre_error,
    object_errors,
    object_mesh_error,
)
from homae_model.metrics.pck import (
    AUC_MAX_MM,
    AUC_MIN_MM,
    AUC_STEPS,
    PCKCurve,
    pck_curve,
    pck_fractions,
    pck_thresholds,
)

__all__ = [
    "AUC_MAX_MM",
    "AUC_MIN_MM",
    "AUC_STEPS",
    "F_THRESHOLDS_MM",
    "MIDDLE_MCP_JOINT",
    "ROOT_JOINT",
    "FScore",
    "ObjectErrors",
    "ObjectPose",
    "PCKCurve",
    "SimilarityTransform",
    "absolute_mje",
    "add_s",
    "align_joints",
    "align_root",
    "align_scale_translation",
    "box_corners",
    "f_score",
    "f_scores",
    "fit_similarity",
    "mean_corner_error",
    "mje",
    "object_centre_error",
    "object_errors",
    "object_mesh_error",
    "pa_mje",
    "pa_v_pe",
    "pck_curve",
    "pck_fractions",
    "pck_thresholds",
    "per_joint_errors",
    "procrustes_similarity",
    "st_mje",
    "v_pe",
    "vertex_errors",
]
