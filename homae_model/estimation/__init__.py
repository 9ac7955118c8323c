"""Estimation on camera frames, without ROS: what homae_node, `homae-bag` and `homae-infer` share.

- `settings`: the estimation defaults (thresholds, pair limits, detector) every entry point reads;
- `detection`: hand / object box backends (GT boxes, the SSDlite detector, projected boxes);
- `estimator`: `FrameEstimator`, one RGB frame + K -> hands and objects (detect, pair, predict);
- `errors`: `FrameSkipped` and its reason codes (why a frame gave no result), input checks;
- `cli_args`: the command-line flags of the estimation settings, for the offline tools.
"""
