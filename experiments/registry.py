"""The task registry: the catalogue's contract for every numbered experiment, in one place.

Each section package's ``__init__.py`` declares its tasks with ``task(...)``: the id, the
title, the module that implements it, its default datasets, the headline phrase shown in menus
and summaries, and the metrics.json keys it guarantees. Declaring is cheap: the task's own
module (which may import torch at the top like ordinary code) is imported only when the task
runs, so the menu appears at once.

A task module provides::

    BUDGET = {"tiny": {...}, "quick": {...}, "hybrid": {...}, "full": {...}}   # per-mode numbers
    @dataclass
    class Result: ...                       # the numbers and histories the experiment produced
    def measure(ctx) -> Result: ...         # the experiment (records metrics with ctx.record)
    def draw(ctx, result: Result) -> None   # figures, from the result alone
    def write_up(result: Result) -> str     # analysis markdown, a pure function of the numbers
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

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

# One package per section; importing one runs only its task declarations.
SECTION_PACKAGES = (
    "experiments.s1_foundations",
    "experiments.s2_optimization",
    "experiments.s3_regularization",
    "experiments.s4_cnn",
    "experiments.s5_modern",
    "experiments.s6_recurrent",
    "experiments.s7_attention",
    "experiments.s8_generative",
)

Headline = str | Callable[[dict], str]


@dataclass(frozen=True)
class Bar:
    """One machine-checkable part of a catalogue target: ``metric op value`` in ``mode`` on ``dataset``."""
    metric: str                 # dotted metrics.json key, e.g. "test_accuracy" or "test_accuracy.attention"
    op: str                     # ">=" or "<="
    value: float
    mode: str = "full"          # the mode the bar is set for ("*": any mode)
    dataset: str = "*"          # the real dataset it is set for ("*": any; stand-ins never count)


@dataclass(frozen=True)
class Target:
    """The catalogue's target for a task: words for people, bars for the report's verdict."""
    text: str
    bars: tuple[Bar, ...] = ()

    def verdict(self, metrics: dict | None) -> tuple[str, str]:
        """("met" | "missed" | "not applicable" | "not run", why) for one run's metrics.json."""
        if not metrics or metrics.get("status") != "done":
            return "not run", "no finished run"
        mode = metrics.get("mode")
        datasets = metrics.get("dataset") or []
        applicable = [b for b in self.bars if b.mode in ("*", mode)]
        if not applicable:
            return "not applicable", f"set for {', '.join(sorted({b.mode for b in self.bars}))} mode, run in {mode}"
        if metrics.get("standin"):
            return "not applicable", f"ran on a stand-in ({', '.join(datasets)})"
        applicable = [b for b in applicable if b.dataset == "*" or b.dataset in datasets]
        if not applicable:
            return "not applicable", f"set for other data than {', '.join(datasets)}"
        misses = []
        for b in applicable:
            value: Any = metrics
            for part in b.metric.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if not isinstance(value, (int, float)):
                misses.append(f"{b.metric} not recorded")
            elif not (value >= b.value if b.op == ">=" else value <= b.value):
                misses.append(f"{b.metric} {value:.4g}, needs {b.op} {b.value:g}")
        if misses:
            return "missed", "; ".join(misses)
        return "met", "; ".join(f"{b.metric} {b.op} {b.value:g}" for b in applicable)


def _literal_budget_keys(source: str) -> set[str] | None:
    """The row keys of ``BUDGET = {...}`` in a module's source, or None if it is not literal. Rows
    may be dict literals, one dict comprehension over the modes, or spread a module-level dict
    literal (``{**_COMMON, "epochs": 2}``)."""
    literals: dict[str, ast.expr] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            literals[node.targets[0].id] = node.value
    table = literals.get("BUDGET")
    rows = [table.value] if isinstance(table, ast.DictComp) else list(table.values) if isinstance(table, ast.Dict) else []
    keys: set[str] = set()
    while rows:
        row = rows.pop()
        if not isinstance(row, ast.Dict):
            return None
        for key, value in zip(row.keys, row.values):
            if key is None:  # **spread: only of a module-level name
                if not isinstance(value, ast.Name):
                    return None
                rows.append(literals.get(value.id))
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                keys.add(key.value)
            else:
                return None
    return keys or None


@dataclass(frozen=True)
class Task:
    id: str                          # "4.3"
    title: str                       # "PyTorch CNN on MNIST"
    module: str = field(compare=False)  # "experiments.s4_cnn.t4_3_pytorch_cnn"
    datasets: tuple[str, ...] = ()   # default datasets, shown in --list
    headline: Headline | None = field(default=None, compare=False)
    metrics: tuple[str, ...] = ()    # metrics.json keys the task guarantees (dots for nesting)
    image_dataset: bool = False      # honours --dataset (an alternative image dataset)
    threads: int | None = None       # cap on compute threads (1 for small networks; None: all cores)
    target: Target | None = None     # the catalogue's target, where it sets one
    uses: tuple[str, ...] = ()       # tasks whose results this one reuses (run first under --jobs)

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

    def load(self) -> ModuleType:
        """The task's implementation module (imported on first use)."""
        return importlib.import_module(self.module)

    def budget_keys(self) -> set[str]:
        """The keys of the module's BUDGET rows, read from its source without importing it (so a
        mistyped ``--set`` key is refused at once, before torch loads); imported when the table
        is not written as literals."""
        spec = importlib.util.find_spec(self.module)
        try:
            keys = _literal_budget_keys(Path(spec.origin).read_text(encoding="utf-8")) if spec and spec.origin else None
        except (OSError, SyntaxError, ValueError):
            keys = None
        return keys if keys is not None else {k for row in getattr(self.load(), "BUDGET", {}).values() for k in row}

    def missing_metrics(self, metrics: dict) -> list[str]:
        """The guaranteed keys (dotted paths) that ``metrics`` lacks or holds as null."""
        missing = []
        for dotted in self.metrics:
            value: Any = metrics
            for part in dotted.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                missing.append(dotted)
        return missing

    def headline_text(self, metrics: dict) -> str:
        """The headline phrase for these metrics, or "" when they lack what it needs."""
        if self.headline is None:
            return ""
        try:
            if callable(self.headline):
                return str(self.headline(metrics))
            return _MetricsFormatter().format(self.headline, **metrics)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return ""


class _MetricsFormatter(string.Formatter):
    """str.format where ``{acc[100]}`` looks up the string key "100" (JSON keys are strings)."""

    def get_field(self, field_name, args, kwargs):
        first, rest = string._string.formatter_field_name_split(field_name)  # type: ignore[attr-defined]
        obj = self.get_value(first, args, kwargs)
        for _is_attr, key in rest:
            if isinstance(obj, dict) and key not in obj and str(key) in obj:
                key = str(key)
            if obj is None:
                raise KeyError(key)
            obj = obj[key]
        return obj, first


_REGISTRY: dict[str, Task] = {}


def task(task_id: str, title: str, module: str, *, datasets: tuple[str, ...] = (),
         headline: Headline | None = None, metrics: tuple[str, ...] = (), image_dataset: bool = False,
         threads: int | None = None, target: Target | None = None, uses: tuple[str, ...] = ()) -> Task:
    """Declare catalogue task ``task_id``, implemented by ``module`` (relative to its section)."""
    if not re.fullmatch(r"\d+\.\d+", task_id):
        raise ValueError(f"task id must look like '4.3', got {task_id!r}")
    section = task_id.split(".")[0]
    if section not in SECTIONS:
        raise ValueError(f"task {task_id} is in no known section")
    expected = f"t{section}_{task_id.split('.')[1]}_"
    if not module.rsplit(".", 1)[-1].startswith(expected):
        raise ValueError(f"task {task_id}'s module must be named {expected}<name>, got {module!r}")
    if task_id in _REGISTRY:
        raise ValueError(f"task {task_id} registered twice")
    package = next((p for p in SECTION_PACKAGES if p.split(".")[1].startswith(f"s{section}_")), None)
    full = module if module.startswith("experiments.") else f"{package}.{module}"
    t = Task(task_id, title, full, tuple(datasets), headline, tuple(metrics), image_dataset, threads, target,
             tuple(uses))
    _REGISTRY[task_id] = t
    return t


_loaded = False


def load_all() -> None:
    """Import every section package (cheap: declarations only)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in SECTION_PACKAGES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a section not built yet is simply absent; anything else is a bug
                raise


def all_tasks() -> list[Task]:
    load_all()
    return sorted(_REGISTRY.values(), key=lambda t: t.sort_key)


def get_task(task_id: str) -> Task | None:
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

