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
