"""Fourier-plane masks: from a trained student to the gray levels the Fourier SLM shows."""
