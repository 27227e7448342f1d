"""In-situ fine-tuning against the optics: back end on captured frames, masks by physics-aware training."""
