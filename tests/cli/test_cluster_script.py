"""The job-array script's element command, run locally as two array elements would run it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_array_elements_then_report(tmp_path):
    ids = subprocess.run([sys.executable, "main.py", "--ids"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ids[0] == "1.1" and len(ids) == len(set(ids)) >= 38
    results = tmp_path / "shared-results"
    for index in (ids.index("3.1"), ids.index("1.5")):
        env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(index), MODE="tiny", RESULTS=str(results), DL_OFFLINE="1")
        r = subprocess.run(["bash", "scripts/slurm_array.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    done = {json.loads(p.read_text())["task"] for p in results.glob("*/metrics.json")}
    assert done == {"3.1", "1.5"}
    r = subprocess.run([sys.executable, "main.py", "--report", "--results", str(results)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and (results / "index.html").exists()
    assert (results / "summary.md").read_text().count("| done |") == 2
    bad = subprocess.run(["bash", "scripts/slurm_array.sh"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, SLURM_ARRAY_TASK_ID="999", MODE="tiny", RESULTS=str(results)))
    assert bad.returncode == 2 and "no task at index 999" in bad.stderr
