"""utils.fanout: a task's independent runs give the same results in forked workers as in this process."""
from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest
import torch

from utils import fanout
from utils.fanout import map_runs
from utils.provenance import _own_peak_rss, peak_rss, reset_peak_window

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


def noisy_run(scale: float) -> tuple[float, float, int]:
    """Uses the global random state (as a careless run would) and reports the process it ran in."""
    return float(torch.rand(1)) * scale, float(np.random.rand()), os.getpid()


def test_workers_give_the_same_results_in_order_and_leave_the_same_random_state():
    items = [1.0, 10.0, 100.0, 1000.0, 1e4]
    inline = map_runs(noisy_run, items, seed=3, workers=1)
    after_inline = torch.rand(1), np.random.rand()
    seen = []
    forked = map_runs(noisy_run, items, seed=3, workers=2, on_done=lambda i, r: seen.append(i))
    after_forked = torch.rand(1), np.random.rand()
    assert [r[:2] for r in forked] == [r[:2] for r in inline]       # same numbers, items' order
    assert len({r[2] for r in inline}) == 1 and inline[0][2] == os.getpid()
    assert os.getpid() not in {r[2] for r in forked}                 # they really ran elsewhere
    assert sorted(seen) == list(range(len(items)))
    assert torch.equal(after_inline[0], after_forked[0]) and after_inline[1] == after_forked[1]
    assert map_runs(noisy_run, items, seed=4, workers=1)[0][:2] != inline[0][:2]   # the seed matters


def test_closures_over_unpicklable_state_run_in_workers():
    data = torch.arange(12.0).reshape(3, 4)
    lock = multiprocessing.Lock()  # does not pickle; the closure is inherited through fork, not sent
    assert map_runs(lambda i: (lock is not None, float(data[i].sum())), range(3), seed=0, workers=2) == \
        [(True, 6.0), (True, 22.0), (True, 38.0)]


def test_gpu_devices_and_a_single_core_run_here(monkeypatch):
    assert {r[2] for r in map_runs(noisy_run, [1.0, 2.0], seed=0, device=torch.device("meta"), workers=2)} \
        == {os.getpid()}
    monkeypatch.setenv("DL_THREADS", "1")
    assert fanout.available_cores() == 1
    assert {r[2] for r in map_runs(noisy_run, [1.0, 2.0], seed=0)} == {os.getpid()}


def _fail_on_two(i: int) -> int:
    if i == 2:
        raise ValueError("run 2 failed")
    return i


def test_a_failed_run_or_ctrl_c_stops_every_worker():
    with pytest.raises(ValueError, match="run 2 failed"):
        map_runs(_fail_on_two, range(6), seed=0, workers=2)
    assert multiprocessing.active_children() == []

    def interrupt(i, _result):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        map_runs(_fail_on_two, [0, 1, 3, 4], seed=0, workers=2, on_done=interrupt)
    assert multiprocessing.active_children() == []


def test_the_largest_worker_counts_in_the_peak_memory():
    reset_peak_window()
    big = max(_own_peak_rss() + (512 << 20), 1 << 30)   # more than this process holds, by half a gigabyte
    map_runs(lambda n: float(torch.ones(n // 4, dtype=torch.float32).sum()), [big, 1], seed=0, workers=2)
    assert _own_peak_rss() < big <= peak_rss()
    reset_peak_window()
    assert peak_rss() < big   # a new window forgets the workers of the last one


def test_a_map_inside_a_run_stays_in_that_worker():
    def outer(_):
        inner = map_runs(lambda _i: os.getpid(), range(2), seed=1)
        return os.getpid(), inner

    for pid, inner in map_runs(outer, range(2), seed=0, workers=2):
        assert pid != os.getpid() and inner == [pid, pid]


def test_under_torchrun_runs_stay_with_their_rank(monkeypatch):
    import utils.distributed

    monkeypatch.setattr(utils.distributed, "world_size", lambda: 2)
    assert fanout.worker_count(4, "cpu", workers=2) == 1
    assert {r[2] for r in map_runs(noisy_run, [1.0, 2.0], seed=0, workers=2)} == {os.getpid()}


def test_a_returned_model_comes_back_without_its_hooks_and_without_a_warning():
    import warnings

    def trained(_):
        layer = torch.nn.Linear(2, 2)
        layer.weight.register_hook(lambda g: g * 2)
        # pytest records warnings instead of printing them, so ask the worker's filters directly
        quiet = any(action == "ignore" and message is not None
                    and message.match("backward hook f will not be serialized")
                    for action, message, *_ in warnings.filters)
        return layer, quiet

    for layer, quiet in map_runs(trained, range(2), seed=0, workers=2):
        assert isinstance(layer, torch.nn.Linear) and not layer.weight._backward_hooks and quiet


def _chatty_run(i: int) -> int:
    from utils.console import console

    for epoch in (1, 2):
        console.print(f"epoch {epoch} of item {i}")
    return i


def test_worker_lines_reach_a_log_marked_with_their_run(capsys):
    from utils.console import console

    assert not console.is_terminal   # pytest captures the output, as a log file or a pipe would
    assert map_runs(_chatty_run, range(3), seed=0, workers=2) == [0, 1, 2]
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted(f"  [run {i + 1}/3] epoch {e} of item {i}" for i in range(3) for e in (1, 2))
    # each run's lines in their order, whole, though two workers wrote at once
    for i in range(3):
        assert [ln for ln in lines if f"item {i}" in ln] == [f"  [run {i + 1}/3] epoch {e} of item {i}" for e in (1, 2)]


def test_quiet_console_relays_nothing(capsys, monkeypatch):
    from utils.console import console

    monkeypatch.setattr(console, "quiet", True)
    assert map_runs(_chatty_run, range(2), seed=0, workers=2) == [0, 1]
    assert capsys.readouterr().out == ""
