"""`make demo`: a synthetic clip played to homae_node over loopback, and its report."""
