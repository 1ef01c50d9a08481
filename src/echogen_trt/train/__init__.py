"""Training: the reference recipe in one readable loop, with resumable checkpoints."""
