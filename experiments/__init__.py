"""Experiments, one module per catalogue section; each registers its tasks on import."""
from __future__ import annotations

import importlib

# One module per section. Importing them is cheap: heavy libraries load inside each task.
SECTION_MODULES = (
    "experiments.sec1_foundations",
    "experiments.sec2_optimization",
    "experiments.sec3_regularization",
    "experiments.sec4_cnn",
    "experiments.sec4_projects",
    "experiments.sec6_recurrent",
)

_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in SECTION_MODULES:
        importlib.import_module(name)
