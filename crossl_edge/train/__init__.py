"""Training: self-supervised pretraining, downstream modes, checkpoints, and DDP."""
