"""The run context handed to every task: budgets, device, seed, data, and recording.

Tasks never build paths or write JSON themselves; they call ``ctx.record``,
``ctx.save_figure`` and ``ctx.write_analysis``, and the runner writes metrics.json.
``ctx.budget`` is this mode's row of the task's BUDGET table (with --set overrides applied).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import config
from utils.console import console, progress_bar
from utils.results import write_text

# metrics.json keys the runner owns; tasks may not record these.
RESERVED_KEYS = frozenset({
    "task", "title", "status", "mode", "seed", "device", "dataset", "dataset_requested", "standin",
    "data_notes", "versions", "hardware", "seconds", "started_at", "headline", "figures", "error",
    "preset", "budget", "overrides", "code_version", "peak_rss_mb", "world_size", "dataset_label",
    "dataset_option", "overrides_applied", "stage_seconds", "run_processes"})


class Budget:
    """This mode's row of a task's BUDGET table: ``ctx.budget.epochs``. Unknown names fail loudly."""

    def __init__(self, values: dict[str, Any], task_id: str = "", mode: str = ""):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_where", f"task {task_id}'s {mode} budget")

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"{object.__getattribute__(self, '_where')} has no {name!r}; "
                             f"it has {', '.join(values) or 'nothing'}")

    def __setattr__(self, name, value):
        raise AttributeError("a budget is read-only; change it with --set KEY=VALUE")

    def as_dict(self) -> dict[str, Any]:
        return dict(object.__getattribute__(self, "_values"))


def budget_row(table: dict[str, dict], mode: str, overrides: dict[str, Any] | None = None) -> tuple[dict, dict]:
    """(this mode's budget with overrides applied, the overrides that applied).

    ``tiny`` falls back to ``quick`` when a table has no tiny row. An override applies to a
    budget key of the same name and is converted to that value's type.
    """
    row = dict(table.get(mode) or table.get("quick") or {})
    applied: dict[str, Any] = {}
    for key, raw in (overrides or {}).items():
        if key not in row:
            continue
        current = row[key]
        value = raw
        if isinstance(raw, str):
            if raw.lower() == "none":
                value = None
            elif isinstance(current, bool):
                value = raw.lower() in {"1", "true", "yes", "on"}
            elif isinstance(current, int):
                value = int(float(raw))
            elif isinstance(current, float):
                value = float(raw)
        row[key] = applied[key] = value
    return row, applied


class PreviousRun:
    """What another task left in this results folder (see ``RunContext.previous``)."""

    def __init__(self, folder: Path, metrics: dict):
        self.folder = folder
        self.metrics = metrics

    @property
    def dataset(self) -> list[str]:
        return list(self.metrics.get("dataset") or [])

    def load_weights(self, name: str = "model.pt") -> dict | None:
        """A state_dict the task saved, or None when absent or unreadable."""
        import torch

        path = self.folder / name
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt or foreign file: the caller trains afresh instead
            return None


class RunContext:
    def __init__(self, task, preset: config.Preset, device, seed: int, results_dir: Path,
                 data_dir: Path, dataset_override: str | None = None, allow_fallback: bool = True,
                 budget: dict | None = None, task_dirs: dict[str, str] | None = None):
        self.task = task
        self.budget = Budget(budget or {}, task.id, preset.name)
        self._task_dirs = task_dirs or {}  # task id -> results folder name, for previous()
        self.cfg = preset
        self.device = device
        self.seed = seed
        self.results_dir = Path(results_dir)
        self.out_dir = self.results_dir / task.dirname
        self.data_dir = Path(data_dir)
        self.dataset_override = dataset_override
        self.allow_fallback = allow_fallback
        self.metrics: dict[str, Any] = {}
        self.datasets: list[dict[str, Any]] = []
        self.figures: list[str] = []

    # ---------------------------------------------------------------- budgets
    @property
    def mode(self) -> str:
        return self.cfg.name

    def seeds(self, n: int | None = None) -> list[int]:
        """Seeds for repeated runs: the run's seed, then seed+1, ... (``cfg.seeds`` of them)."""
        return [self.seed + i for i in range(n or self.cfg.seeds)]

    # ---------------------------------------------------------------- output
    def log(self, message: str) -> None:
        console.print(message)

    def progress(self, total: int, description: str):
        return progress_bar(total, description)

    def map(self, fn, items, description: str, info=None, torch_runs: bool = True) -> list:
        """``[fn(item) for item in items]`` for independent runs, on every core this process may use
        (``utils.fanout``), with one progress bar; ``info(item, result)`` gives the bar's text.
        Each run starts from its own seed, so the results do not depend on the number of cores.
        ``torch_runs=False`` for runs that train no torch model (NumPy, scikit-learn): a little faster."""
        from utils.fanout import map_runs, worker_count

        items = list(items)
        workers = worker_count(len(items), self.device)
        # provenance: the most processes any of this task's sets of runs used (1: all in the task's own)
        self.metrics["run_processes"] = max(self.metrics.get("run_processes", 1), workers)
        with self.progress(len(items), description) as bar:
            return map_runs(fn, items, seed=self.seed, device=self.device, workers=workers, torch_runs=torch_runs,
                            on_done=lambda i, res: bar.advance(1, info=info(items[i], res) if info else None))

    @property
    def dataset_label(self) -> str:
        return ", ".join(d["label"] for d in self.datasets) or "none"

    @property
    def footer(self) -> str:
        return f"task {self.task.id} · {self.mode} mode · data: {self.dataset_label} · seed {self.seed}"

    def save_figure(self, fig, name: str, listed: bool = True) -> Path:
        """Save a matplotlib figure as results/<task>/<name>.png (the preset's dpi, footer, atomic).

        ``listed``: record it among the task's figures (metrics.json, index.html thumbnails). A
        figure in a subfolder (``name`` "attention_reviews/right_1", one of many) is saved unlisted."""
        from utils.plotting import save_figure

        path = save_figure(fig, self.out_dir / name, footer=self.footer, dpi=self.cfg.figure_dpi,
                           crop=self.cfg.figure_crop, mode=self.mode)
        if listed and path.name not in self.figures:
            self.figures.append(path.name)
        return path

    def write_analysis(self, markdown: str) -> Path:
        """analysis.md for this task; the heading and provenance line are added here."""
        head = (f"# {self.task.id} {self.task.title}\n\n"
                f"*Mode {self.mode}, seed {self.seed}, device {self.device}, data: {self.dataset_label}.*\n\n")
        path = self.out_dir / "analysis.md"
        write_text(path, head + markdown.strip() + "\n")
        return path

    def record(self, **metrics: Any) -> None:
        """Add numbers to metrics.json (merged; later calls overwrite the same key)."""
        clash = RESERVED_KEYS.intersection(metrics)
        if clash:
            raise ValueError(f"metric names reserved for the runner: {', '.join(sorted(clash))}")
        self.metrics.update(metrics)

    def save_weights(self, model, name: str = "model.pt") -> Path:
        """Save ``model``'s state_dict beside the task's results (atomic), for later tasks."""
        import torch

        from utils.results import atomic_path

        path = self.out_dir / name
        with atomic_path(path) as tmp:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
        return path

    def previous(self, task_id: str) -> PreviousRun | None:
        """Task ``task_id``'s finished run in this results folder, or None (not run, failed, unreadable)."""
        from utils.results import read_json

        dirname = self._task_dirs.get(task_id)
        if dirname is None:
            return None
        folder = self.results_dir / dirname
        metrics = read_json(folder / "metrics.json")
        if not metrics or metrics.get("status") != "done":
            return None
        return PreviousRun(folder, metrics)

    # ---------------------------------------------------------------- data
    def use_dataset(self, name: str, *, requested: str | None = None, standin: bool = False, note: str = "") -> None:
        """Record a dataset the task used (generated data and scikit-learn sets included)."""
        label = f"{name} (stand-in for {requested})" if standin else name
        entry = {"name": name, "requested": requested or name, "standin": standin, "note": note, "label": label}
        if entry not in self.datasets:
            self.datasets.append(entry)

    def load_images(self, default: str, *, train_size: int | None | str = "preset",
                    test_size: int | None | str = "preset"):
        """The task's image dataset (``--dataset`` overrides ``default`` where the task allows)."""
        from utils.data import load_images

        name = self.dataset_override if (self.dataset_override and self.task.image_dataset) else default
        ds = load_images(name, data_dir=self.data_dir, allow_fallback=self.allow_fallback,
                         train_size=self.cfg.train_size if train_size == "preset" else train_size,
                         test_size=self.cfg.test_size if test_size == "preset" else test_size,
                         seed=self.seed, log=self.log)
        self.use_dataset(ds.name, requested=ds.requested, standin=ds.standin, note=ds.note)
        self.log(f"  data: {ds.label}: {len(ds.y_train)} train / {len(ds.y_test)} test images, shape {ds.shape}")
        return ds

    def load_imdb(self):
        from utils.data import load_imdb

        data = load_imdb(data_dir=self.data_dir, allow_fallback=self.allow_fallback, seed=self.seed, log=self.log)
        self.use_dataset(data.name, requested="imdb", standin=data.standin, note=data.note)
        return data

    # ---------------------------------------------------------------- training
    def fit(self, model, train, val=None, **kwargs):
        """utils.train.fit with this run's device, batch size, seed and logging filled in."""
        from utils.train import fit

        kwargs.setdefault("batch_size", self.cfg.batch_size)
        kwargs.setdefault("eval_batch_size", self.cfg.eval_batch_size)
        kwargs.setdefault("seed", self.seed)
        kwargs.setdefault("log", self.log)
        kwargs.setdefault("epochs", self.cfg.epochs)
        return fit(model, train, val, device=self.device, **kwargs)

    def evaluate(self, model, x, y, **kwargs):
        from utils.train import evaluate

        kwargs.setdefault("batch_size", self.cfg.eval_batch_size)
        return evaluate(model, x, y, device=self.device, **kwargs)
