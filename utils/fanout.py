"""A task's independent runs (seeds, models, settings) spread over the cores this process may use.

Most tasks train small networks on one thread each, because a second thread only adds spin-waiting
(``utils.provenance.limit_threads``); a serial run therefore leaves the other cores idle. ``map_runs``
forks one worker per core and hands the runs out one at a time. Each run starts from the same
seeded state wherever it runs, and the results come back in the items' order, so a task's numbers
are the same on one core or many. Workers are quiet (no console lines, no progress bars); the parent
advances its one bar as runs finish.

Runs stay in this process on a GPU (a CUDA context does not survive ``fork``), where ``fork`` does
not exist, under torchrun (each run is data-parallel across the ranks), and when only one core is
ours: ``--jobs`` workers and test workers get cores ÷ N threads through ``DL_THREADS``.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import warnings
from typing import Any, Callable, Sequence

# What the forked workers inherit instead of receiving it pickled (closures over a task's data
# and its RunContext do not pickle; with fork they need not).
_job: dict[str, Any] = {}


def available_cores() -> int:
    """Cores this process may use: $DL_THREADS when set (a --jobs or test worker), else its CPU affinity."""
    from utils.provenance import thread_budget

    budget = thread_budget()
    if budget:
        return budget
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def worker_count(runs: int, device: Any = "cpu", workers: int | None = None) -> int:
    """How many processes ``map_runs`` uses for ``runs`` runs (1: all in this process)."""
    from utils.distributed import world_size

    if getattr(device, "type", str(device)) != "cpu" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if world_size() > 1:  # under torchrun every run trains data-parallel with the other ranks: keep it here
        return 1
    return max(1, min(runs, workers or available_cores()))


def run_seed(base: int, index: int) -> int:
    """The seed every run starts from: the same in a worker and in this process."""
    return base * 1000 + index


def _start_worker(threads: int) -> None:
    import gc

    import torch

    # The collector would walk every object inherited from the parent, copying each page it touches
    # (copy-on-write): about 0.3 s a worker. What the worker inherited lives as long as it does.
    gc.freeze()

    from utils.console import console
    from utils.provenance import reset_peak_window

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler (inherited) would keep a worker alive
    console.quiet = True
    # A returned model comes back without its backward hooks (3.4's weight penalties): results are
    # read, not trained further, so torch's warning about not pickling them is noise here.
    warnings.filterwarnings("ignore", message="backward hook .* will not be serialized")
    torch.set_num_threads(threads)
    os.environ["DL_THREADS"] = str(threads)  # a map inside a run stays in its worker
    reset_peak_window()


def _run_in_worker(index: int) -> tuple[int, Any, int]:
    from utils.provenance import peak_rss, set_seed

    set_seed(run_seed(_job["seed"], index))
    return index, _job["fn"](_job["items"][index]), peak_rss()


def map_runs(fn: Callable[[Any], Any], items: Sequence, *, seed: int, device: Any = "cpu",
             on_done: Callable[[int, Any], None] | None = None, workers: int | None = None) -> list:
    """``[fn(item) for item in items]``, run in forked workers when more than one core is ours.

    ``fn`` must not depend on earlier runs: each starts from ``set_seed(run_seed(seed, i))``, and the
    global random state afterwards is ``set_seed(run_seed(seed, len(items)))`` either way.
    ``on_done(i, result)`` is called in this process as each run finishes (for a progress bar).
    Returns the results in the order of ``items``, and the largest worker's peak memory is folded
    into ``utils.provenance.peak_rss`` through ``record_child_peak``.
    """
    from utils.provenance import record_child_peak, set_seed

    items = list(items)
    n = worker_count(len(items), device, workers)
    results: list = [None] * len(items)
    if n <= 1:
        for i, item in enumerate(items):
            set_seed(run_seed(seed, i))
            results[i] = fn(item)
            if on_done:
                on_done(i, results[i])
    else:
        import torch
        import torch._dynamo  # noqa: F401  (the first optimizer imports it: 3 s, once here instead of in each worker)

        threads = max(1, torch.get_num_threads() // n)
        _job.update(fn=fn, items=items, seed=seed)
        with warnings.catch_warnings():
            # Python ≥ 3.12 warns that fork in a threaded process may deadlock; the workers touch
            # neither the console's lock (quiet) nor a thread pool of more than one thread.
            warnings.simplefilter("ignore", DeprecationWarning)
            pool = multiprocessing.get_context("fork").Pool(n, initializer=_start_worker, initargs=(threads,))
        try:
            for i, result, peak in pool.imap_unordered(_run_in_worker, range(len(items))):
                results[i] = result
                record_child_peak(peak)
                if on_done:
                    on_done(i, result)
            pool.close()
        except BaseException:  # Ctrl-C, SIGTERM or a failed run: stop every worker now
            pool.terminate()
            raise
        finally:
            pool.join()
            _job.clear()
    set_seed(run_seed(seed, len(items)))
    return results
