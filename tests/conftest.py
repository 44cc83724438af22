"""Test-suite settings and shared fixtures: never touch the network; results go to temporary folders."""
from __future__ import annotations

import http.server
import json
import os
import threading

os.environ["DL_OFFLINE"] = "1"  # downloads fail at once; stand-ins are used where data is absent
os.environ.setdefault("MPLBACKEND", "Agg")

# Under pytest-xdist the cores are shared between the workers, as `main.py --jobs` shares them:
# set before torch or NumPy start their thread pools (their defaults, one thread per core in
# every worker, oversubscribed the machine; the tiny end-to-end tests took 6% longer).
from utils.parallel import THREAD_VARS  # noqa: E402

CORES = os.cpu_count() or 1  # counted as utils.parallel and utils.provenance count them
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if _workers > 1:
    for _var in THREAD_VARS:
        os.environ.setdefault(_var, str(max(1, CORES // _workers)))

import signal  # noqa: E402

import pytest  # noqa: E402

# The Ctrl-C tests send SIGINT to main.py subprocesses. A suite started as a shell's background
# job (`(pytest &)`) runs with SIGINT ignored, and children inherit an ignored signal, so the
# run under test never saw the Ctrl-C and the tests failed for a reason that is not the code's.
# A handled signal is reset to the default in children, and Python then installs its own.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session):
    """What collection imported (torch, matplotlib, every test module) lives until the end: keep it
    out of the garbage collector's scans, as main.py does between tasks. pytest's own collections at
    exit (five full passes) took 1.6 s per worker over these objects, and each automatic collection
    during the tests scanned them again."""
    import gc

    gc.collect()
    gc.freeze()


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core, at most 8 (each worker holds torch and a tiny task's data,
    up to about 1 GB, so a many-core machine with little memory is not swamped)."""
    return min(CORES, 8)


@pytest.fixture
def single_torch_thread():
    """One torch thread for tests that alternate tiny torch and NumPy ops: the two libraries'
    worker pools fight over the cores otherwise (each torch call slows to ~10 ms). Restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_results(tmp_path_factory):
    """A session-wide results folder for tiny-mode task runs (tasks that reuse another's weights find them)."""
    return tmp_path_factory.mktemp("results")


@pytest.fixture
def run_tiny(tiny_results):
    """run_tiny("4.3", dataset=None, seed=0) -> (outcome, metrics dict, task folder): one task, tiny preset."""
    from experiments.registry import all_tasks, get_task
    from utils.runner import Settings, run_tasks

    def run(task_id: str, *, dataset: str | None = None, seed: int = 0, results=None):
        task = get_task(task_id)
        assert task is not None, f"no task {task_id}"
        folder = results or tiny_results
        settings = Settings(mode="tiny", results_dir=folder, seed=seed, dataset=dataset)
        (outcome,) = run_tasks([task], settings, all_tasks())
        out = folder / task.dirname
        return outcome, json.loads((out / "metrics.json").read_text()), out

    return run


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local HTTP server for download tests: (folder it serves, base URL, paths requested)."""
    monkeypatch.delenv("DL_OFFLINE", raising=False)
    root = tmp_path / "served"
    root.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *args):
            hits.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)  # shutdown() waits one poll
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
