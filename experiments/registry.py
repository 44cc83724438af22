"""The task registry: every numbered experiment of the catalogue registers itself here.

A task is a plain function ``fn(ctx)`` decorated with ``@task(id, title, ...)``. Modules in
this package must stay cheap to import (no torch, matplotlib or sklearn at module level) so
that the menu appears at once; heavy imports go inside the task functions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

SECTIONS: dict[str, str] = {
    "1": "Foundations: networks from scratch",
    "2": "Optimization and training",
    "3": "Regularization and generalization",
    "4": "Convolutional networks",
    "5": "Modern architectures (CIFAR-10)",
    "6": "Recurrent networks",
    "7": "Attention and Transformers",
    "8": "Generative and similarity models",
}


@dataclass(frozen=True)
class Task:
    id: str                       # "4.3"
    title: str                    # "PyTorch CNN on MNIST"
    fn: Callable = field(repr=False, compare=False)
    datasets: tuple[str, ...] = ()  # default datasets, shown in --list
    headline: str | None = None     # metrics.json key shown in menus and summaries
    image_dataset: bool = False     # honours --dataset (an alternative image dataset)
    threads: int | None = None      # cap on compute threads (1 for small networks; None: all cores)

    @property
    def section(self) -> str:
        return self.id.split(".")[0]

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.title.lower()).strip("_")[:48].rstrip("_")

    @property
    def dirname(self) -> str:
        return f"{self.id}_{self.slug}"

    @property
    def sort_key(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.id.split("."))


_REGISTRY: dict[str, Task] = {}


def task(task_id: str, title: str, *, datasets: tuple[str, ...] = (), headline: str | None = None,
         image_dataset: bool = False, threads: int | None = None) -> Callable:
    """Register ``fn`` as catalogue task ``task_id``."""
    if not re.fullmatch(r"\d+\.\d+", task_id):
        raise ValueError(f"task id must look like '4.3', got {task_id!r}")
    if task_id.split(".")[0] not in SECTIONS:
        raise ValueError(f"task {task_id} is in no known section")

    def register(fn: Callable) -> Callable:
        if task_id in _REGISTRY:
            raise ValueError(f"task {task_id} registered twice")
        _REGISTRY[task_id] = Task(task_id, title, fn, tuple(datasets), headline, image_dataset, threads)
        return fn

    return register


def all_tasks() -> list[Task]:
    from experiments import load_all
    load_all()
    return sorted(_REGISTRY.values(), key=lambda t: t.sort_key)


def get_task(task_id: str) -> Task | None:
    from experiments import load_all
    load_all()
    return _REGISTRY.get(task_id)


def sections_present() -> list[str]:
    return sorted({t.section for t in all_tasks()}, key=int)


class SelectionError(ValueError):
    """A task id or section that does not exist."""


def resolve(selectors: list[str]) -> list[Task]:
    """Turn ``["3", "4.3"]`` into tasks, in the order given, without duplicates."""
    tasks = all_tasks()
    chosen: list[Task] = []
    for sel in selectors:
        sel = sel.strip().rstrip(".")
        if re.fullmatch(r"\d+", sel):
            found = [t for t in tasks if t.section == sel]
            if not found:
                have = ", ".join(sections_present())
                raise SelectionError(f"no section {sel!r}; sections with tasks: {have}")
        else:
            t = _REGISTRY.get(sel)
            if t is None:
                raise SelectionError(f"unknown task id {sel!r}; see `python main.py --list`")
            found = [t]
        chosen.extend(t for t in found if t not in chosen)
    return chosen
