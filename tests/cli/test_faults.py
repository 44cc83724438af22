"""A run killed at a random moment, then --resume: every task folder is complete and consistent or re-run."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.results import TEMP_PREFIX

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
# Three short tasks that need no optimizer (so no torch._dynamo import, 3-4 s per process): the
# states worth testing do not depend on what a task computes.
TASKS = ["3.1", "3.6", "2.8"]


def _main(args, results):
    env = dict(os.environ, DL_OFFLINE="1")
    return subprocess.Popen([sys.executable, "main.py", *TASKS, "--mode", "tiny", "--seed", "3", *args,
                             "--results", str(results)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _consistent(folder: Path) -> bool:
    m = json.loads((folder / "metrics.json").read_text())
    return (m["status"] == "done" and m["seed"] == 3 and (folder / "analysis.md").exists()
            and (folder / "result.json").exists() and all((folder / f).exists() for f in m["figures"])
            and set(m["figures"]) == {p.name for p in folder.glob("*.png")})


def _first_task_done(results: Path) -> bool:
    for metrics in results.glob("*_*/metrics.json"):
        try:
            if json.loads(metrics.read_text()).get("status") == "done":
                return True
        except (OSError, ValueError):  # being replaced at this moment
            pass
    return False


def test_sigkill_then_resume_leaves_no_mixed_folder(tmp_path):
    # Killed while the second task runs, at a random moment after the first one is written: the
    # state worth testing (a finished folder, one half written, one not started). A fixed sleep
    # often fired while Python was still importing torch, before any folder existed.
    results = tmp_path / "results"
    delay = None
    proc = _main([], results)
    try:
        deadline = time.monotonic() + 300
        while not _first_task_done(results) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        delay = random.uniform(0.0, 1.5)  # in the failure messages below, to reproduce a failure
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_states = {p.name: json.loads((p / "metrics.json").read_text()).get("status")
                     for p in results.glob("*_*") if (p / "metrics.json").exists()}
    assert all(s in ("running", "done") for s in killed_states.values()), (delay, killed_states)
    assert "done" in killed_states.values(), (delay, killed_states)
    resumed = _main(["--resume"], results)
    assert resumed.wait(timeout=600) == 0
    folders = sorted(p for p in results.glob("*_*") if p.is_dir())
    assert len(folders) == len(TASKS)
    for folder in folders:
        assert _consistent(folder), (delay, folder.name)
        assert not list(folder.glob(f"{TEMP_PREFIX}*")), (delay, "temporaries of the killed run remain")
