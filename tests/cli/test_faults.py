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
TASKS = ["3.1", "4.3", "3.6"]


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


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_then_resume_leaves_no_mixed_folder(trial, tmp_path):
    results = tmp_path / "results"
    proc = _main([], results)
    try:
        time.sleep(random.Random(trial).uniform(3.0, 12.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_states = {p.name: json.loads((p / "metrics.json").read_text()).get("status")
                     for p in results.glob("*_*") if (p / "metrics.json").exists()}
    assert all(s in ("running", "done") for s in killed_states.values()), killed_states
    resumed = _main(["--resume"], results)
    assert resumed.wait(timeout=600) == 0
    folders = sorted(p for p in results.glob("*_*") if p.is_dir())
    assert len(folders) == len(TASKS)
    for folder in folders:
        assert _consistent(folder), folder.name
        assert not list(folder.glob(f"{TEMP_PREFIX}*")), "temporaries of the killed run remain"
