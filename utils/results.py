"""Writing results safely, and reading back what earlier runs left.

Every file is written to a temporary name in the same folder and then renamed over the
target (``os.replace`` is atomic on POSIX and Windows), so an interrupted run never leaves a
half-written metrics.json or figure behind.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=suffix or target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def to_jsonable(value: Any) -> Any:
    """numpy / torch scalars and arrays, tuples, paths and non-finite floats -> plain JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json(target: Path, data: dict) -> None:
    write_text(target, json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict | None:
    """The JSON object at ``path``, or None if it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_writable(folder: Path) -> str | None:
    """None if ``folder`` can be created and written, else a one-line reason."""
    try:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"cannot write to results folder {folder}: {exc.strerror or exc}"
    return None


def format_metric(key: str | None, value: Any) -> str:
    """A short human form of a headline metric."""
    if value is None or key is None:
        return ""
    if isinstance(value, float):
        if "accuracy" in key and 0.0 <= value <= 1.0:
            return f"{key} {value:.2%}"
        return f"{key} {value:.4g}"
    return f"{key} {value}"


def task_status(results_dir: Path, task) -> dict:
    """What the last run of ``task`` left: status, mode, headline text, seconds."""
    data = read_json(Path(results_dir) / task.dirname / "metrics.json")
    if data is None:
        return {"status": "not run", "mode": "", "headline": "", "seconds": None}
    headline = data.get("headline") or {}
    return {
        "status": str(data.get("status", "unknown")),
        "mode": str(data.get("mode", "")),
        "headline": format_metric(headline.get("key"), headline.get("value")),
        "seconds": data.get("seconds"),
    }


def write_summary(results_dir: Path, tasks) -> Path:
    """results/summary.md: every task's latest result, one table row each."""
    lines = ["# Results summary", "",
             "| task | title | status | mode | dataset | headline | seconds |",
             "|---|---|---|---|---|---|---|"]
    for t in tasks:
        data = read_json(Path(results_dir) / t.dirname / "metrics.json") or {}
        st = task_status(results_dir, t)
        seconds = f"{st['seconds']:.1f}" if isinstance(st["seconds"], (int, float)) else ""
        datasets = data.get("dataset") or []
        if isinstance(datasets, list):
            datasets = ", ".join(datasets)
        link = f"[{t.id}]({t.dirname}/analysis.md)" if data else t.id
        lines.append(f"| {link} | {t.title} | {st['status']} | {st['mode']} | {datasets} | {st['headline']} | {seconds} |")
    target = Path(results_dir) / "summary.md"
    write_text(target, "\n".join(lines) + "\n")
    return target
