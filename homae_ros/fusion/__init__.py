"""homae_fusion: fuses the HandObjectResults of several homae_node cameras in a fixed frame."""
