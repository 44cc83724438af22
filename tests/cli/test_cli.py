"""The command line and the menu, driven as a user would: subprocesses, pipes, Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(args, stdin: str | None = None, timeout=120, env_extra=None):
    env = dict(os.environ, DL_OFFLINE="1", COLUMNS="120")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("args, needle", [
    (["9.9"], "unknown task id '9.9'"),
    (["12"], "no section '12'"),
    (["--mode", "turbo"], "invalid choice: 'turbo'"),
    (["--seed", "abc"], "invalid int value"),
    (["--device", "tpu"], "invalid choice"),
    (["--dataset", "imagenet"], "invalid choice"),
    (["--set", "epoch=3", "3.1"], "unknown config key(s) epoch"),
    (["--set", "epochs", "3.1"], "--set expects KEY=VALUE"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    r = run(args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


def test_missing_gpu_is_a_usage_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so --device cuda is valid")
    r = run(["3.1", "--device", "cuda"])
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr and "Traceback" not in r.stderr


def test_unwritable_results_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run(["3.1", "--results", str(blocker / "sub")])
    assert r.returncode == 2 and "cannot write to results folder" in r.stderr and "Traceback" not in r.stderr


def test_list_shows_ids_titles_datasets(tmp_path):
    r = run(["--list", "--results", str(tmp_path)])
    assert r.returncode == 0
    for needle in ("3.1", "3.5", "4.3", "PyTorch CNN on MNIST", "mnist", "not run"):
        assert needle in r.stdout


def test_menu_import_is_light():
    code = ("import sys, main, experiments; experiments.load_all(); "
            "heavy = [m for m in ('torch', 'matplotlib', 'sklearn', 'scipy') if m in sys.modules]; print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_menu_eof_exits_zero(tmp_path):
    r = run(["--results", str(tmp_path)], stdin="")
    assert r.returncode == 0 and "bye" in r.stdout
    assert "Traceback" not in r.stderr


def test_menu_bad_keys_reprompt_then_run_a_task_from_a_section(tmp_path):
    # wrong key, wrong id, open section 3, bad task number, run 3.1, back, quit
    r = run(["--mode", "tiny", "--results", str(tmp_path)], stdin="zz\n7.7\n3\n99\n1\nb\nq\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("unknown task id") >= 2
    assert "done" in r.stdout and "bye" in r.stdout
    metrics = json.loads((tmp_path / "3.1_polynomial_regression_under_and_over_fitting" / "metrics.json").read_text())
    assert metrics["status"] == "done" and metrics["mode"] == "tiny"


def test_menu_mode_change_is_applied(tmp_path):
    r = run(["--results", str(tmp_path)], stdin="m\nwarp\nhybrid\nq\n")
    assert r.returncode == 0
    assert "unknown mode 'warp'" in r.stdout and "mode hybrid" in r.stdout


def test_batch_run_summary_and_metrics_provenance(tmp_path):
    r = run(["3.1", "4.3", "--mode", "tiny", "--results", str(tmp_path), "--seed", "7"], timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert "Summary" in r.stdout and "2 done" in r.stdout
    m = json.loads(next(tmp_path.glob("4.3_*/metrics.json")).read_text())
    for key in ("mode", "seed", "device", "dataset", "standin", "versions", "seconds", "status", "hardware"):
        assert key in m
    assert m["seed"] == 7 and m["mode"] == "tiny" and 0 <= m["test_accuracy"] <= 1
    assert (tmp_path / "summary.md").read_text().count("| done |") == 2
    # --resume skips what is already done in this mode
    first = json.loads(next(tmp_path.glob("3.1_*/metrics.json")).read_text())
    r2 = run(["3.1", "--mode", "tiny", "--results", str(tmp_path), "--seed", "7", "--resume"])
    assert r2.returncode == 0 and "skipped" in r2.stdout
    again = json.loads(next(tmp_path.glob("3.1_*/metrics.json")).read_text())
    assert again["started_at"] == first["started_at"]


def test_no_fallback_fails_cleanly(tmp_path):
    r = run(["4.3", "--mode", "tiny", "--no-fallback", "--results", str(tmp_path), "--data", str(tmp_path / "d")])
    assert r.returncode == 1
    assert "mnist not available" in r.stdout and "--no-fallback" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    m = json.loads(next(tmp_path.glob("4.3_*/metrics.json")).read_text())
    assert m["status"] == "failed" and "mnist not available" in m["error"]


def _start(args, tmp_path, stdin=None):
    env = dict(os.environ, DL_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "main.py", *args, "--results", str(tmp_path)], cwd=ROOT,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(proc, needle, timeout=120):
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared:\n{''.join(seen)}")


def test_ctrl_c_during_batch_task_marks_it_interrupted(tmp_path):
    proc = _start(["3.5", "3.1", "--mode", "quick"], tmp_path)
    _wait_for(proc, "epoch 2/")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in out + err and "interrupted" in out
    m = json.loads(next(tmp_path.glob("3.5_*/metrics.json")).read_text())
    assert m["status"] == "interrupted"
    assert not list(tmp_path.glob("3.1_*"))  # the batch stopped


def test_ctrl_c_in_menu_returns_to_menu(tmp_path):
    proc = _start(["--mode", "quick"], tmp_path, stdin="")
    proc.stdin.write("3.5\n")
    proc.stdin.flush()
    _wait_for(proc, "epoch 2/")
    proc.send_signal(signal.SIGINT)
    _wait_for(proc, "interrupted")
    proc.stdin.write("q\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "bye" in out and "Traceback" not in out + err
