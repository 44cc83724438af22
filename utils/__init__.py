"""Shared mechanics: data, the training loop, figures, progress and results."""
