"""Training: the loop (`trainer`), checkpoints and resume (`state`), DDP helpers, schedules."""
