"""Estimates <-> ROS messages: images and CameraInfo in, results, markers and TF out.

Used by the node and the offline tools alike; message classes are imported at call time, so the
tools run on stand-in message types where ROS is absent (`homae_ros.tools.bag_types`).
"""
