"""--jobs N gives the same metrics as a serial run with the same seeds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from utils.parallel import THREAD_VARS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
VARYING = {"seconds", "started_at", "peak_rss_mb", "hardware", "epoch_seconds", "train_seconds", "seconds_per_epoch",
           "figures"}


def _run(results, jobs):
    # Without the test workers' thread caps: the serial run must use every core, as a user's does.
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS} | {"DL_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "main.py", "3.1", "4.3", "--mode", "tiny", "--seed", "5", "--jobs",
                        str(jobs), "--results", str(results)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out = {}
    for path in results.glob("*/metrics.json"):
        m = json.loads(path.read_text())
        out[m["task"]] = {k: v for k, v in m.items() if k not in VARYING and "time" not in k and "latency" not in k}
    return out


def test_two_jobs_match_one(tmp_path):
    serial = _run(tmp_path / "serial", 1)
    parallel = _run(tmp_path / "parallel", 2)
    # 3.1 and 4.3 take all the cores in a serial run and one each under --jobs 2: the tasks whose
    # results could depend on the thread count (the one-thread tasks run alike either way).
    assert serial.keys() == parallel.keys() == {"3.1", "4.3"}
    for task_id in serial:
        assert serial[task_id] == parallel[task_id], task_id
    assert (tmp_path / "parallel" / "summary.md").exists() and (tmp_path / "parallel" / "index.html").exists()
