"""``--jobs N``: independent tasks in N worker processes, the cores split between them.

Each worker runs whole tasks with ``utils.runner.run_task`` (same seeds, same code as a serial
run), its torch and BLAS pools limited to cores ÷ N threads, its console output going to the
task's ``run.log``. A task that reuses another's results (``Task.uses``) starts only after that
task has finished, so what it finds is what a serial run would find. The parent shows one
combined progress display and writes summary.md and index.html once, at the end. Ctrl-C reaches
every worker (they share the terminal's process group): each marks its task interrupted, and
tasks not yet started are skipped.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.markup import escape

from utils.console import console, progress_bar


@dataclass
class WorkResult:
    """What a worker sends back (plain data: tasks may hold callables that do not pickle)."""
    task_id: str
    status: str
    seconds: float
    headline: str
    message: str


# The variables that size torch's, the BLAS libraries' and our own thread pools (utils.provenance).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "DL_THREADS")


def _init_worker(threads: int) -> None:
    # Before torch or NumPy start their pools in this process.
    for var in THREAD_VARS:
        os.environ[var] = str(threads)


def _work(task_id: str, settings, task_dirs: dict[str, str], lookup: Callable) -> WorkResult:
    from utils import console as console_mod
    from utils.runner import run_task

    task = lookup(task_id)
    log = Path(settings.results_dir) / task.dirname / "run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as fh:
        console_mod.console.file = fh  # this worker's lines go to the task's log, not the shared terminal
        outcome = run_task(task, settings, task_dirs)
    return WorkResult(task_id, outcome.status, outcome.seconds, outcome.headline, outcome.message)


def run_parallel(tasks, settings, catalogue, jobs: int, lookup: Callable) -> list:
    """Run ``tasks`` in ``jobs`` processes; returns utils.runner.Outcome per task, in the given order."""
    from utils.runner import Outcome

    cores = os.cpu_count() or 1
    threads = max(1, cores // jobs)
    task_dirs = {t.id: t.dirname for t in catalogue}
    ids = [t.id for t in tasks]
    waiting = {t.id: {u for u in getattr(t, "uses", ()) if u in ids} for t in tasks}
    by_id = {t.id: t for t in tasks}
    results: dict[str, WorkResult] = {}
    console.print(f"running {len(tasks)} task(s) in {jobs} processes, {threads} thread(s) each; "
                  f"each task's output is in its folder's run.log")
    started = time.perf_counter()
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(threads,))
    running: dict = {}
    interrupted = False

    def state() -> str:
        return f"{len(results)}/{len(tasks)} finished, running: {', '.join(sorted(running.values())) or '-'}"

    try:
        with progress_bar(len(tasks), "tasks") as bar:
            while len(results) < len(tasks):
                ready = [i for i in ids if i not in results and i not in running.values()
                         and not (waiting[i] - set(results))]
                for task_id in ready[: max(0, jobs - len(running))]:
                    running[pool.submit(_work, task_id, settings, task_dirs, lookup)] = task_id
                bar.set_info(state())
                if not running:  # only tasks whose dependencies failed to run are left
                    for i in ids:
                        results.setdefault(i, WorkResult(i, "skipped", 0.0, "", "a task it uses did not run"))
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task_id = running.pop(future)
                    try:
                        results[task_id] = future.result()
                    except Exception as exc:  # a worker that died (killed, out of memory)
                        results[task_id] = WorkResult(task_id, "failed", 0.0, "", f"worker died: {exc}")
                    r = results[task_id]
                    console.print(f"  {task_id} {escape(by_id[task_id].title)}: {r.status} in {r.seconds:.1f}s"
                                  + (f" · {escape(r.headline)}" if r.headline else "")
                                  + (f" · {escape(r.message)}" if r.message and r.status != "done" else ""))
                    bar.advance(1, info=state())
                    if r.status == "interrupted":
                        interrupted = True
                if interrupted:
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if interrupted:  # the workers got the same Ctrl-C; collect what they report, start nothing new
            for future, task_id in list(running.items()):
                try:
                    results[task_id] = future.result(timeout=120)
                except Exception:
                    results[task_id] = WorkResult(task_id, "interrupted", 0.0, "", "stopped by Ctrl-C")
        pool.shutdown(wait=True, cancel_futures=True)
    console.print(f"{len(results)} task(s) finished in {time.perf_counter() - started:.1f}s wall time")
    out = []
    for t in tasks:
        r = results.get(t.id) or WorkResult(t.id, "skipped", 0.0, "", "batch stopped by Ctrl-C")
        out.append(Outcome(t, r.status, r.seconds, r.headline, r.message))
    return out
