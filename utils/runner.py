"""Running tasks: context set-up, error handling, metrics.json, summaries."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import config
from utils.console import console
from utils.results import format_metric, read_json, task_status, write_json, write_summary, write_text


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


def _headline_value(metrics: dict, key: str | None):
    value = metrics
    for part in (key or "").split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, (int, float, str)) else None


def run_task(task, settings: Settings) -> Outcome:
    """Run one task; never raises (KeyboardInterrupt becomes status 'interrupted')."""
    from utils.download import DataUnavailable
    from utils.context import RunContext
    from utils.provenance import configure_torch, hardware, limit_threads, pick_device, set_seed, versions

    preset = config.get_preset(settings.mode, **settings.overrides)
    console.rule(f"[bold]{task.id} {task.title}[/]  ({preset.name} mode, seed {settings.seed})")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    ctx = None
    status, message = "failed", ""
    try:
        configure_torch()
        device = pick_device(settings.device)
        set_seed(settings.seed)
        ctx = RunContext(task, preset, device, settings.seed, settings.results_dir, settings.data_dir,
                         settings.dataset, settings.allow_fallback)
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        (ctx.out_dir / "error.log").unlink(missing_ok=True)  # a previous failure's traceback is stale now
        console.print(f"  seed {settings.seed} · device {device} · results in {ctx.out_dir}")
        if settings.dataset and not task.image_dataset:
            console.print(f"  [yellow]note:[/] task {task.id} has fixed data; --dataset is ignored")
        if task.threads:
            with limit_threads(task.threads):
                task.fn(ctx)
        else:
            task.fn(ctx)
        status = "done"
    except KeyboardInterrupt:
        status, message = "interrupted", "stopped by Ctrl-C; files saved so far are kept"
    except DataUnavailable as exc:
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
        value = _headline_value(ctx.metrics, task.headline)
        headline = format_metric(task.headline, value)
        record = {
            "task": task.id, "title": task.title, "status": status, "mode": preset.name,
            "seed": settings.seed, "device": str(ctx.device),
            "dataset": [d["name"] for d in ctx.datasets],
            "dataset_requested": [d["requested"] for d in ctx.datasets],
            "standin": any(d["standin"] for d in ctx.datasets),
            "data_notes": [d["note"] for d in ctx.datasets if d["note"]],
            "seconds": round(seconds, 3), "started_at": started,
            "headline": {"key": task.headline, "value": value},
            "figures": ctx.figures,
            "versions": versions(), "hardware": hardware(ctx.device),
            "preset": {k: v for k, v in vars(preset).items()},
        }
        if message:
            record["error"] = message
        record.update(ctx.metrics)
        try:
            write_json(ctx.out_dir / "metrics.json", record)
        except OSError as exc:
            status, message = "failed", f"could not write metrics.json: {exc}"
    colour = {"done": "green", "interrupted": "yellow"}.get(status, "red")
    console.print(f"  [{colour}]{status}[/] in {seconds:.1f}s" + (f" · {headline}" if headline else "")
                  + (f"\n  [{colour}]{message}[/]" if message else ""))
    return Outcome(task, status, seconds, headline, message)


def _save_traceback(ctx, exc: BaseException) -> str:
    log = ctx.out_dir / "error.log"
    try:
        write_text(log, traceback.format_exc())
        where = f" (traceback in {log})"
    except OSError:
        where = ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_tasks(tasks, settings: Settings, stop_on_interrupt: bool = True) -> list[Outcome]:
    """Run tasks in order; one failure never stops the others. Ctrl-C stops the batch."""
    outcomes: list[Outcome] = []
    for i, task in enumerate(tasks):
        if settings.resume:
            prev = read_json(Path(settings.results_dir) / task.dirname / "metrics.json") or {}
            if prev.get("status") == "done" and prev.get("mode") == settings.mode:
                outcomes.append(Outcome(task, "skipped", 0.0, task_status(settings.results_dir, task)["headline"],
                                        "already done in this mode (--resume)"))
                console.print(f"[dim]{task.id} {task.title}: skipped, already done in {settings.mode} mode (--resume)[/]")
                continue
        outcome = run_task(task, settings)
        outcomes.append(outcome)
        _update_summary(settings)
        if outcome.status == "interrupted" and stop_on_interrupt:
            for rest in tasks[i + 1:]:
                outcomes.append(Outcome(rest, "skipped", message="batch stopped by Ctrl-C"))
            break
    return outcomes


def _update_summary(settings: Settings) -> None:
    from experiments.registry import all_tasks

    try:
        write_summary(settings.results_dir, all_tasks())
    except OSError as exc:
        console.print(f"  [red]could not write summary.md: {exc}[/]")


def print_summary(outcomes: list[Outcome]) -> None:
    from rich.table import Table

    table = Table(title="Summary", show_lines=False)
    for col in ("task", "title", "status", "seconds", "headline"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    colours = {"done": "green", "failed": "red", "interrupted": "yellow", "skipped": "dim"}
    for o in outcomes:
        table.add_row(o.task.id, o.task.title, f"[{colours.get(o.status, 'white')}]{o.status}[/]",
                      f"{o.seconds:.1f}", o.headline)
    console.print(table)
    total = sum(o.seconds for o in outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "failed", "interrupted", "skipped")}
    console.print(f"{len(outcomes)} tasks in {total:.1f}s: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
