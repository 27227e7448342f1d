"""Training teachers and students: KD losses, the training loop, metrics and curves."""
