"""Temporal handling of per-frame estimates (no ROS imports).

- `association`: box overlap (IoU) and greedy matching of observations to tracks.
- `tracks`: `Tracker` keeps stable integer identities across frames, with a memory for short
  misses and a vote over the track for its label (`LabelVote`).
- `smoothing`: One-Euro filters for point sets (joints, vertices) and rotations.
- `frame`: `FrameTracker` turns one frame's `PairEstimate`s into `TrackedPair`s (track ids,
  voted object name, TF child-frame names, optionally smoothed joints and poses), resetting on
  a time jump.
- `metrics`: identity switches and jitter of a tracked sequence (the demo's summary).
"""
