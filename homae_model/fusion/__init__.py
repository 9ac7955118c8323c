"""Multi-camera fusion of hand-object estimates (pure maths, no ROS).

Per-camera estimates (camera optical frame) are brought into one fixed world frame with each
camera's extrinsics (`frames`), grouped across cameras by stamp (`sync`) and by 3D position
(`associate`), weighted by how each view sees its target (`weights`) and fused with outlier
rejection (`robust`, `fuse`).
"""
