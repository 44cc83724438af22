"""The one rich console, and progress that stays readable when output is not a terminal."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console

console = Console(highlight=False)
# In logs and pipes, keep each message on one line instead of wrapping at 80 columns.
console.soft_wrap = not console.is_terminal


class _LineProgress:
    """Progress for pipes and log files: a plain line at each quarter, nothing else."""

    def __init__(self, total: int, description: str):
        self.total, self.description = max(int(total), 1), description
        self.done, self.info, self.next_mark = 0, "", 0.25
        self.start = time.perf_counter()

    def advance(self, n: int = 1, info: str | None = None) -> None:
        self.done += n
        if info is not None:
            self.info = info
        frac = self.done / self.total
        if frac >= self.next_mark or self.done >= self.total:
            while self.next_mark <= frac:
                self.next_mark += 0.25
            elapsed = time.perf_counter() - self.start
            console.print(f"  {self.description}: {min(frac, 1.0):4.0%} ({self.done}/{self.total}, "
                          f"{elapsed:.1f}s) {self.info}".rstrip())

    def set_info(self, info: str) -> None:
        self.info = info


class _RichProgress:
    def __init__(self, progress, task_id):
        self.progress, self.task_id = progress, task_id

    def advance(self, n: int = 1, info: str | None = None) -> None:
        if info is not None:
            self.progress.update(self.task_id, info=info)
        self.progress.advance(self.task_id, n)

    def set_info(self, info: str) -> None:
        self.progress.update(self.task_id, info=info)


@contextmanager
def progress_bar(total: int, description: str) -> Iterator[_LineProgress | _RichProgress]:
    """A progress handle with ``advance(n, info=...)``: a rich bar on a terminal, lines otherwise."""
    if not console.is_terminal or console.quiet:  # quiet: a utils.fanout worker, whose parent shows the bar
        yield _LineProgress(total, description)
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  TextColumn("{task.fields[info]}"), console=console, transient=False) as progress:
        task_id = progress.add_task(description, total=total, info="")
        yield _RichProgress(progress, task_id)
