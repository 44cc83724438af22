"""A task's independent runs (seeds, models, settings) spread over the cores this process may use.

Most tasks train small networks on one thread each, because a second thread only adds spin-waiting
(``utils.provenance.limit_threads``); a serial run therefore leaves the other cores idle. ``map_runs``
forks one worker per core and hands the runs out one at a time. Each run starts from the same
seeded state wherever it runs, and the results come back in the items' order, so a task's numbers
are the same on one core or many. On a terminal, workers are quiet and the parent advances its one bar
as runs finish; in a log or pipe, where no bar moves, each worker's lines (epochs, progress) are passed to
the parent's output as they come, marked with the run they belong to.

Runs stay in this process on a GPU (a CUDA context does not survive ``fork``), where ``fork`` does
not exist, under torchrun (each run is data-parallel across the ranks), and when only one core is
ours: ``--jobs`` workers and test workers get cores ÷ N threads through ``DL_THREADS``.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import warnings
from typing import Any, Callable, Sequence

# What the forked workers inherit instead of receiving it pickled (closures over a task's data
# and its RunContext do not pickle; with fork they need not).
_job: dict[str, Any] = {}
# A line longer than this is cut: writes up to PIPE_BUF (4096 bytes) to one pipe are atomic, so the
# workers' lines never interleave mid-line.
_RELAYED_LINE_BYTES = 4000


class _RelayedLines:
    """A worker console's file: each whole line goes down the pipe to the parent, marked with the run."""

    def __init__(self, fd: int):
        self.fd, self.pending, self.mark = fd, "", ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in filter(str.strip, lines):
            data = f"  [{self.mark}] {line.strip()}".encode("utf-8", "replace")[:_RELAYED_LINE_BYTES]
            try:
                os.write(self.fd, data + b"\n")
            except OSError:  # the parent stopped reading (a pool's replacement worker): drop the line
                pass
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _print_relayed(fd: int) -> None:
    """Parent side: print each worker line as it arrives, until every write end is closed."""
    from utils.console import console

    buffer = b""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                console.out(line.decode("utf-8", "replace"), highlight=False)


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


def _start_worker(threads: int, relay_fd: int | None) -> None:
    import gc

    import torch

    # The collector would walk every object inherited from the parent, copying each page it touches
    # (copy-on-write): about 0.3 s a worker. What the worker inherited lives as long as it does.
    gc.freeze()

    from utils.console import console
    from utils.provenance import reset_peak_window

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler (inherited) would keep a worker alive
    if relay_fd is None:
        console.quiet = True   # the parent's bar shows the progress
    else:
        console.file = _job["relay"] = _RelayedLines(relay_fd)
    # A returned model comes back without its backward hooks (3.4's weight penalties): results are
    # read, not trained further, so torch's warning about not pickling them is noise here.
    warnings.filterwarnings("ignore", message="backward hook .* will not be serialized")
    torch.set_num_threads(threads)
    os.environ["DL_THREADS"] = str(threads)  # a map inside a run stays in its worker
    reset_peak_window()


def _run_in_worker(index: int) -> tuple[int, Any, int]:
    from utils.provenance import peak_rss, set_seed

    set_seed(run_seed(_job["seed"], index))
    if "relay" in _job:
        _job["relay"].mark = f"run {index + 1}/{len(_job['items'])}"
    return index, _job["fn"](_job["items"][index]), peak_rss()


def map_runs(fn: Callable[[Any], Any], items: Sequence, *, seed: int, device: Any = "cpu",
             on_done: Callable[[int, Any], None] | None = None, workers: int | None = None,
             torch_runs: bool = True) -> list:
    """``[fn(item) for item in items]``, run in forked workers when more than one core is ours.

    ``fn`` must not depend on earlier runs: each starts from ``set_seed(run_seed(seed, i))``, and the
    global random state afterwards is ``set_seed(run_seed(seed, len(items)))`` either way.
    ``on_done(i, result)`` is called in this process as each run finishes (for a progress bar).
    ``torch_runs``: the runs build torch optimizers, whose first one imports ``torch._dynamo`` (2.6 s);
    it is imported here once, before the fork, instead of in every worker. False for NumPy and
    scikit-learn runs, which never need it.
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

        if torch_runs:
            import torch._dynamo  # noqa: F401

        from utils.console import console

        threads = max(1, torch.get_num_threads() // n)
        _job.update(fn=fn, items=items, seed=seed)
        relay_read = relay_write = printer = None
        if not console.is_terminal and not console.quiet:
            relay_read, relay_write = os.pipe()
            printer = threading.Thread(target=_print_relayed, args=(relay_read,), daemon=True)
        with warnings.catch_warnings():
            # Python ≥ 3.12 warns that fork in a threaded process may deadlock; no other thread of this
            # process holds the console's lock while the workers are forked (the printer starts after),
            # and the workers use no thread pool of more than one thread.
            warnings.simplefilter("ignore", DeprecationWarning)
            pool = multiprocessing.get_context("fork").Pool(n, initializer=_start_worker,
                                                            initargs=(threads, relay_write))
        if printer is not None:
            os.close(relay_write)  # the workers hold the write ends now; the printer stops when they exit
            printer.start()
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
            if printer is not None:
                printer.join(timeout=5)
    set_seed(run_seed(seed, len(items)))
    return results
