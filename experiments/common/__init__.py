"""Helpers that tasks of more than one section use (never import one section's task module from another)."""
