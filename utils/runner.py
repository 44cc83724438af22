"""Running tasks: context set-up, error handling, metrics.json, summaries."""
from __future__ import annotations

import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import config
from rich.markup import escape

from utils.console import console
from utils.results import (load_result, remove_stale_temporaries, read_json, save_result, task_status, write_json,
                           write_text)


class Terminated(KeyboardInterrupt):
    """SIGTERM (main.py turns it into this): stops the running task like Ctrl-C."""


_last_interrupt = ""


def interrupted_by() -> str:
    """"SIGTERM", "Ctrl-C", or "" when no task was interrupted in this process."""
    return _last_interrupt


@dataclass
class Settings:
    """What the user chose on the command line or in the menu."""
    mode: str = config.DEFAULT_MODE
    overrides: dict = field(default_factory=dict)
    device: str = "auto"
    seed: int = config.DEFAULT_SEED
    results_dir: Path = config.RESULTS_DIR
    data_dir: Path = config.DATA_DIR
    dataset: str | None = None
    allow_fallback: bool = True
    resume: bool = False


@dataclass
class Outcome:
    task: object
    status: str            # done | failed | interrupted | skipped
    seconds: float = 0.0
    headline: str = ""
    message: str = ""


def run_task(task, settings: Settings, task_dirs: dict[str, str] | None = None) -> Outcome:
    """Run one task (measure → store result → draw → write_up); never raises.

    KeyboardInterrupt becomes status 'interrupted'; a task that leaves out a metrics key it
    guarantees fails with a message naming the key.
    """
    global _last_interrupt
    from utils.context import RunContext, budget_row
    from utils.distributed import world_size
    from utils.download import DataUnavailable
    from utils.provenance import (code_version, configure_torch, hardware, limit_threads, peak_rss,
                                  pick_device, reset_peak_rss, set_seed, versions)

    preset = config.get_preset(settings.mode, **config.preset_overrides(settings.overrides))
    console.rule(f"[bold]{task.id} {escape(task.title)}[/]  ({preset.name} mode, seed {settings.seed})")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    reset_peak_rss()  # peak_rss_mb is this task's own peak, not the process's so far
    ctx = None
    status, message = "failed", ""
    budget, applied = {}, {}
    stage_seconds: dict[str, float] = {}  # where the task's time went: measure (incl. set-up), draw
    try:
        configure_torch()
        device = pick_device(settings.device)
        set_seed(settings.seed)
        module = task.load()
        budget, applied = budget_row(module.BUDGET, preset.name, settings.overrides)
        ctx = RunContext(task, preset, device, settings.seed, settings.results_dir, settings.data_dir,
                         settings.dataset, settings.allow_fallback, budget=budget, task_dirs=task_dirs)
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        (ctx.out_dir / "error.log").unlink(missing_ok=True)  # a previous failure's traceback is stale now
        remove_stale_temporaries(ctx.out_dir)  # left by a run killed while saving
        # Mark the folder as in progress first: a run killed half-way is never taken for a finished one.
        write_json(ctx.out_dir / "metrics.json", {"task": task.id, "title": task.title, "status": "running",
                                                  "mode": preset.name, "seed": settings.seed, "started_at": started})
        console.print(f"  seed {settings.seed} · device {device} · results in {escape(str(ctx.out_dir))}")
        if settings.dataset and not task.image_dataset:
            console.print(f"  [yellow]note:[/] task {task.id} has fixed data; --dataset is ignored")
        with limit_threads(task.threads) if task.threads else nullcontext():
            result = module.measure(ctx)
            save_result(ctx.out_dir / "result.json", result)
            stage_seconds["measure"] = round(time.perf_counter() - t0, 3)
            module.draw(ctx, result)
            stage_seconds["draw"] = round(time.perf_counter() - t0 - stage_seconds["measure"], 3)
            ctx.write_analysis(module.write_up(result))
        missing = task.missing_metrics(ctx.metrics)
        if missing:
            raise ContractError(f"task {task.id} did not record the metrics it guarantees: {', '.join(missing)}")
        status = "done"
    except KeyboardInterrupt as exc:
        _last_interrupt = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        status, message = "interrupted", f"stopped by {_last_interrupt}; files saved so far are kept"
    except DataUnavailable as exc:
        message = str(exc)
    except ContractError as exc:
        message = str(exc)
    except ValueError as exc:
        if ctx is None:  # a bad --device or config value, before the task started
            message = str(exc)
        else:
            message = _save_traceback(ctx, exc)
    except Exception as exc:  # a bug in a task: report it, keep the batch going
        message = _save_traceback(ctx, exc) if ctx else f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    headline = ""
    if ctx is not None:
        headline = task.headline_text(ctx.metrics) if status == "done" else ""
        record = {
            "task": task.id, "title": task.title, "status": status, "mode": preset.name,
            "seed": settings.seed, "device": str(ctx.device),
            "dataset": [d["name"] for d in ctx.datasets],
            "dataset_requested": [d["requested"] for d in ctx.datasets],
            "dataset_label": ctx.dataset_label,
            "standin": any(d["standin"] for d in ctx.datasets),
            "data_notes": [d["note"] for d in ctx.datasets if d["note"]],
            "dataset_option": settings.dataset,
            "seconds": round(seconds, 3), "stage_seconds": stage_seconds, "started_at": started,
            "peak_rss_mb": round(peak_rss() / 2**20, 1),
            "headline": headline,
            "figures": ctx.figures,
            "versions": versions(), "hardware": hardware(ctx.device),
            "code_version": code_version(), "world_size": world_size(),
            "preset": {k: v for k, v in vars(preset).items()},
            "budget": budget, "overrides": dict(settings.overrides), "overrides_applied": applied,
        }
        if message:
            record["error"] = message
        record.update(ctx.metrics)
        try:
            write_json(ctx.out_dir / "metrics.json", record)
        except OSError as exc:
            status = "failed"
            message = (message + "; " if message else "") + f"also could not write metrics.json: {exc}"
    colour = {"done": "green", "interrupted": "yellow"}.get(status, "red")
    console.print(f"  [{colour}]{status}[/] in {seconds:.1f}s" + (f" · {escape(headline)}" if headline else "")
                  + (f"\n  [{colour}]{escape(message)}[/]" if message else ""))
    return Outcome(task, status, seconds, headline, message)


class ContractError(Exception):
    """A task broke its declared contract (a guaranteed metrics key is missing)."""


def redraw_task(task, settings: Settings) -> Outcome:
    """Re-make a finished task's figures and analysis from its stored result.json, without training."""
    from utils.context import RunContext
    from utils.provenance import pick_device

    folder = Path(settings.results_dir) / task.dirname
    metrics = read_json(folder / "metrics.json")
    t0 = time.perf_counter()
    if not metrics or metrics.get("status") != "done" or not (folder / "result.json").exists():
        return Outcome(task, "failed", 0.0, "", f"task {task.id} has no finished run with a stored result "
                       f"in {folder}; run it first")
    try:
        module = task.load()
        result = load_result(module.Result, folder / "result.json")
        preset = config.get_preset(metrics.get("mode") or settings.mode)
        ctx = RunContext(task, preset, pick_device("cpu"), int(metrics.get("seed", settings.seed)),
                         settings.results_dir, settings.data_dir, budget=metrics.get("budget") or {})
        ctx.device = metrics.get("device", "cpu")
        for name, requested, note in zip(metrics.get("dataset") or [], metrics.get("dataset_requested") or [],
                                         _padded(metrics.get("data_notes"), len(metrics.get("dataset") or []))):
            ctx.use_dataset(name, requested=requested, standin=name != requested, note=note)
        module.draw(ctx, result)
        ctx.write_analysis(module.write_up(result))
        metrics["figures"] = sorted(set(metrics.get("figures") or []) | set(ctx.figures))
        write_json(folder / "metrics.json", metrics)
    except KeyboardInterrupt:
        return Outcome(task, "interrupted", time.perf_counter() - t0, "", "stopped by Ctrl-C")
    except Exception as exc:  # report, keep going with the next task
        return Outcome(task, "failed", time.perf_counter() - t0, "", f"redraw failed: {type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - t0
    console.print(f"[green]redrawn[/] {task.id} {escape(task.title)} in {seconds:.1f}s ({len(ctx.figures)} figures)")
    return Outcome(task, "done", seconds, metrics.get("headline") if isinstance(metrics.get("headline"), str) else "",
                   "redrawn from result.json")


def _padded(values, n: int) -> list:
    values = list(values or [])
    return values + [""] * (n - len(values))


def _save_traceback(ctx, exc: BaseException) -> str:
    log = ctx.out_dir / "error.log"
    try:
        write_text(log, traceback.format_exc())
        where = f" (traceback in {log})"
    except OSError:
        where = ""
    return f"{type(exc).__name__}: {exc}{where}"


def resume_reason(task, settings: Settings) -> str | None:
    """Why --resume may skip ``task`` (its last run finished with these very settings and this
    code), or None when it must run again."""
    from utils.provenance import code_version

    prev = read_json(Path(settings.results_dir) / task.dirname / "metrics.json") or {}
    wanted = {"status": "done", "mode": settings.mode, "seed": settings.seed,
              "dataset_option": settings.dataset, "overrides": dict(settings.overrides),
              "code_version": code_version()}
    if all(prev.get(k) == v for k, v in wanted.items()):
        return f"already done with these settings in {settings.mode} mode (--resume)"
    return None


def run_tasks(tasks, settings: Settings, catalogue=(), stop_on_interrupt: bool = True,
              sections: dict[str, str] | None = None) -> list[Outcome]:
    """Run tasks in order; one failure never stops the others. Ctrl-C stops the batch.

    ``catalogue``: every known task (for the overviews and for tasks that reuse another's
    results); ``sections``: section titles for index.html.
    """
    catalogue = list(catalogue) or list(tasks)
    task_dirs = {t.id: t.dirname for t in catalogue}
    outcomes: list[Outcome] = []
    for i, task in enumerate(tasks):
        if settings.resume:
            reason = resume_reason(task, settings)
            if reason:
                outcomes.append(Outcome(task, "skipped", 0.0, task_status(settings.results_dir, task)["headline"],
                                        reason))
                console.print(f"[dim]{task.id} {escape(task.title)}: skipped, {reason}[/]")
                continue
        outcome = run_task(task, settings, task_dirs)
        outcomes.append(outcome)
        update_summary(settings, catalogue, sections)
        if outcome.status == "interrupted" and stop_on_interrupt:
            for rest in tasks[i + 1:]:
                outcomes.append(Outcome(rest, "skipped", message="batch stopped by Ctrl-C"))
            break
    return outcomes


def update_summary(settings: Settings, catalogue, sections: dict[str, str] | None = None) -> None:
    """Rewrite results/summary.md and results/index.html from the task folders there."""
    from utils.reports import write_index, write_summary

    for name, write in (("summary.md", lambda: write_summary(settings.results_dir, catalogue)),
                        ("index.html", lambda: write_index(settings.results_dir, catalogue, sections or {}))):
        try:
            write()
        except OSError as exc:
            console.print(f"  [red]could not write {name}: {escape(str(exc))}[/]")


def print_summary(outcomes: list[Outcome]) -> None:
    from rich.table import Table

    table = Table(title="Summary", show_lines=False)
    for col in ("task", "title", "status", "seconds", "headline"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    colours = {"done": "green", "failed": "red", "interrupted": "yellow", "skipped": "dim"}
    for o in outcomes:
        table.add_row(o.task.id, escape(o.task.title), f"[{colours.get(o.status, 'white')}]{o.status}[/]",
                      f"{o.seconds:.1f}", escape(o.headline or ""))
    console.print(table)
    total = sum(o.seconds for o in outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "failed", "interrupted", "skipped")}
    console.print(f"{len(outcomes)} tasks in {total:.1f}s: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
