"""Offline tools: `homae-bag` (rosbag2 in, results out) and `homae-infer` (images in)."""
