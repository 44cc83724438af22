"""Test-suite settings: never touch the network, and import the project from the repo root."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Downloads fail at once instead of trying the network; stand-ins are used where data is absent.
os.environ["DL_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")


import pytest  # noqa: E402


@pytest.fixture
def single_torch_thread():
    """One torch thread for tests that alternate tiny torch and NumPy ops: the two libraries'
    worker pools fight over the cores otherwise (each torch call slows to ~10 ms). Restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
