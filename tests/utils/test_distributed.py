"""The shared fit loop under torch.distributed (gloo on the CPU): two ranks match one process,
and a two-"node" torchrun on localhost completes a real task."""
from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch, torch.nn as nn
    sys.path.insert(0, {root!r})   # a standalone script run by torchrun, outside pytest's path set-up
    from utils.distributed import init_from_env, rank, shutdown
    from utils.train import fit
    init_from_env("cpu")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(256, 10, generator=g), torch.randint(0, 3, (256,), generator=g)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 3)).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = fit(model, (x.double(), y), (x[:64].double(), y[:64]), epochs=4, optimizer=opt, batch_size=32, seed=3)
    if rank() == 0:
        with open(sys.argv[1], "w") as f:
            json.dump({{"train": h.train_loss, "val": h.val_loss}}, f)
    shutdown()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    return dict(os.environ, DL_OFFLINE="1", OMP_NUM_THREADS="1")


def test_two_gloo_ranks_follow_the_single_process_trajectory(tmp_path, monkeypatch, single_torch_thread):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    # The single-process reference runs the same script here, in the test's process (no torchrun
    # variables, so init_from_env leaves it alone): a third process would add 6 s of start-up.
    monkeypatch.setattr(sys, "argv", [str(script), str(tmp_path / "one.json")])
    runpy.run_path(str(script), run_name="__main__")
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), str(tmp_path / "two.json")], env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    assert len(a["train"]) == len(b["train"]) == 4
    for u, v in zip(a["train"] + a["val"], b["train"] + b["val"]):
        assert abs(u - v) < 1e-9, (a, b)     # float64: gradient averaging over two halves == the whole batch


def test_two_node_torchrun_on_localhost_runs_a_task(tmp_path):
    port = _free_port()
    results = tmp_path / "results"
    procs = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                               "--node_rank", str(node), "--rdzv_backend", "static", "--master_addr", "127.0.0.1",
                               "--master_port", str(port), "main.py", "4.3", "--mode", "tiny", "--device", "cpu",
                               "--results", str(results)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    metrics = json.loads(next(results.glob("4.3_*/metrics.json")).read_text())
    assert metrics["status"] == "done" and metrics["world_size"] == 2
    assert len(list(results.glob("*/metrics.json"))) == 1          # one task folder, written by rank 0 only
