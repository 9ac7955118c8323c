"""homae_node: the ROS 2 node (`homae_node`), its parameters and its TF output."""
