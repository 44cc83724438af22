"""The command line and the menu, driven as a user would: subprocesses, pipes, Ctrl-C."""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args, stdin: str | None = None, timeout=180, env_extra=None):
    env = dict(os.environ, DL_OFFLINE="1", COLUMNS="120")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("args, needle", [
    (["9.9"], "unknown task id '9.9'"),
    (["12"], "no section '12'"),
    (["--mode", "turbo"], "invalid choice: 'turbo'"),
    (["--seed", "abc"], "must be a whole number"),
    (["--seed", "-1"], "must be between 0 and"),
    (["--seed", "4294967296"], "must be between 0 and"),
    (["--results", ""], "needs a folder name"),
    (["--set", "val_fraction=nan", "3.1"], "must be a finite number"),
    (["--set", "val_fraction=1.5", "3.1"], "between 0 and 1"),
    (["--set", "val_fraction=-0.2", "3.1"], "between 0 and 1"),
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


@pytest.mark.slow
def test_device_choice_is_honoured_or_refused(tmp_path):
    """Without CUDA, --device cuda is a usage error; with CUDA, a task really runs there."""
    import torch

    r = run(["3.1", "--device", "cuda", "--mode", "tiny", "--results", str(tmp_path)])
    if torch.cuda.is_available():
        assert r.returncode == 0, r.stdout[-2000:]
        assert json.loads(next(tmp_path.glob("3.1_*/metrics.json")).read_text())["device"].startswith("cuda")
    else:
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
    code = ("import sys, time; t = time.perf_counter(); import main; from experiments.registry import all_tasks; "
            "n = len(all_tasks()); dt = time.perf_counter() - t; "
            "heavy = [m for m in ('torch', 'matplotlib', 'sklearn', 'scipy', 'numpy') if m in sys.modules]; "
            "print(heavy, n)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    heavy, n = r.stdout.strip().rsplit(" ", 1)
    assert heavy == "[]", r.stdout + r.stderr
    assert int(n) >= 38


@pytest.mark.parametrize("args, stdin", [(["--list"], None), (["9.9"], None), ([], ""),
                                         (["--set", "epoch=3", "4.9", "3.1"], None)])
def test_whole_process_never_loads_torch_for_the_menu_list_or_a_bad_id(tmp_path, args, stdin):
    # -X importtime lists every module the process imported, at exit too (a clean-up once imported
    # torch.distributed after the work was done, costing 3 s per command)
    r = subprocess.run([sys.executable, "-X", "importtime", "main.py", *args, "--results", str(tmp_path)], cwd=ROOT,
                       input=stdin, capture_output=True, text=True, timeout=60)
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert imported and not {"torch", "matplotlib", "sklearn"} & imported, sorted(imported)[:20]


def test_menu_eof_exits_zero(tmp_path):
    r = run(["--results", str(tmp_path)], stdin="")
    assert r.returncode == 0 and "bye" in r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_menu_bad_keys_reprompt_then_run_a_task_from_a_section(tmp_path):
    # wrong key, wrong id, open section 3, bad task number, run 3.1, back, quit
    r = run(["--mode", "tiny", "--results", str(tmp_path)], stdin="zz\n7.7\n3\n99\n1\nb\nq\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("unknown task id") >= 2
    after = r.stdout.split("done in", 1)[1]              # the section table redrawn after the run
    assert re.search(r"3\.1 .*done .*tiny", after) and "bye" in r.stdout
    metrics = json.loads((tmp_path / "3.1_polynomial_regression_under_and_over_fitting" / "metrics.json").read_text())
    assert metrics["status"] == "done" and metrics["mode"] == "tiny"


def test_menu_mode_change_is_applied(tmp_path):
    r = run(["--results", str(tmp_path)], stdin="m\nwarp\nhybrid\nq\n")
    assert r.returncode == 0
    assert "unknown mode 'warp'" in r.stdout and "mode hybrid" in r.stdout


@pytest.mark.slow
def test_no_fallback_fails_cleanly(tmp_path):
    r = run(["4.3", "--mode", "tiny", "--no-fallback", "--results", str(tmp_path), "--data", str(tmp_path / "d")])
    assert r.returncode == 1
    assert "mnist not available" in r.stdout and "--no-fallback" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    m = json.loads(next(tmp_path.glob("4.3_*/metrics.json")).read_text())
    assert m["status"] == "failed" and "mnist not available" in m["error"]


class Proc:
    """A main.py subprocess whose output is read by a thread, so waits have real deadlines."""

    def __init__(self, args, tmp_path, stdin=False):
        env = dict(os.environ, DL_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen([sys.executable, "main.py", *args, "--results", str(tmp_path)], cwd=ROOT,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, needle, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if needle in line:
                return
        raise AssertionError(f"{needle!r} never appeared:\n{''.join(self.seen)}")

    def send(self, text):
        self.p.stdin.write(text)
        self.p.stdin.flush()

    def finish(self, timeout=60):
        self.p.wait(timeout=timeout)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return "".join(self.seen), self.p.stderr.read()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=30)


@pytest.fixture
def proc_factory():
    started = []

    def start(*args, **kwargs):
        started.append(Proc(*args, **kwargs))
        return started[-1]

    yield start
    for p in started:  # never leave training running, whatever the test did
        p.kill()


@pytest.mark.slow
def test_ctrl_c_during_batch_task_marks_it_interrupted(tmp_path, proc_factory):
    proc = proc_factory(["3.5", "3.1", "--mode", "quick"], tmp_path)
    proc.wait_for("epoch 2/")
    proc.p.send_signal(signal.SIGINT)
    out, err = proc.finish()
    assert proc.p.returncode == 130
    assert "Traceback" not in out + err and "interrupted" in out
    m = json.loads(next(tmp_path.glob("3.5_*/metrics.json")).read_text())
    assert m["status"] == "interrupted"
    assert not list(tmp_path.glob("3.1_*"))  # the batch stopped


@pytest.mark.slow
def test_sigterm_is_handled_like_ctrl_c(tmp_path, proc_factory):
    proc = proc_factory(["3.5", "3.1", "--mode", "quick"], tmp_path)
    proc.wait_for("epoch 2/")
    proc.p.send_signal(signal.SIGTERM)
    out, err = proc.finish()
    assert proc.p.returncode == 143 and "Traceback" not in out + err
    m = json.loads(next(tmp_path.glob("3.5_*/metrics.json")).read_text())
    assert m["status"] == "interrupted" and "SIGTERM" in m["error"]


@pytest.mark.slow
def test_ctrl_c_in_menu_returns_to_menu(tmp_path, proc_factory):
    proc = proc_factory(["--mode", "quick"], tmp_path, stdin=True)
    proc.send("3.5\n")
    proc.wait_for("epoch 2/")
    proc.p.send_signal(signal.SIGINT)
    proc.wait_for("interrupted")
    proc.send("q\n")
    out, err = proc.finish()
    assert proc.p.returncode == 0 and "bye" in out and "Traceback" not in out + err
