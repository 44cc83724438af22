"""Experiments: one package per catalogue section, one module per task.

``experiments.registry`` holds the catalogue's contract; each section package declares its tasks
there on import (cheap), and a task's own module is imported only when that task runs.
"""
