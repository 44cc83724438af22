"""The run's overviews, built from whatever task folders are in results/: summary.md (plain
text) and index.html (one page to grade from).

The page works from the file system (no server, no scripts, no web fonts): a header with the
run's provenance and a banner when any task ran on a stand-in, then per section and task the
status, headline, the catalogue target's verdict, time, figure thumbnails linking to the full
images, the analysis (markdown rendered by markdown-it-py, raw HTML disabled) and, for a failed
task, its error. Everything that comes from results is escaped.
"""
from __future__ import annotations

import functools
import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from utils.results import read_json, write_text


@dataclass
class TaskEntry:
    """What one task's folder holds, ready for a page or a table."""
    id: str
    title: str
    section: str
    dirname: str
    status: str = "not run"
    metrics: dict = field(default_factory=dict)
    headline: str = ""
    target_text: str = ""
    verdict: str = ""            # met | missed | not applicable | not run | "" (no target)
    verdict_why: str = ""
    figures: list[str] = field(default_factory=list)
    analysis: str = ""
    error: str = ""

    @property
    def seconds(self) -> float | None:
        s = self.metrics.get("seconds")
        return float(s) if isinstance(s, (int, float)) else None


def collect(results_dir: Path, tasks) -> list[TaskEntry]:
    """One entry per catalogue task, from its folder under ``results_dir`` (absent: "not run")."""
    entries = []
    for t in tasks:
        folder = Path(results_dir) / t.dirname
        m = read_json(folder / "metrics.json") or {}
        e = TaskEntry(t.id, t.title, t.section, t.dirname, str(m.get("status", "not run")), m)
        e.headline = m.get("headline") if isinstance(m.get("headline"), str) else ""
        if t.target is not None:
            e.target_text = t.target.text
            e.verdict, e.verdict_why = t.target.verdict(m)
        e.figures = [f for f in (m.get("figures") or []) if isinstance(f, str) and (folder / f).is_file()]
        try:
            e.analysis = (folder / "analysis.md").read_text(encoding="utf-8", errors="replace")
        except OSError:
            e.analysis = ""
        e.error = str(m.get("error", "")) if e.status != "done" else ""
        entries.append(e)
    return entries


def run_header(entries: list[TaskEntry]) -> dict[str, Any]:
    """Provenance over every run on the page: modes, seeds, devices, versions, hardware, data."""
    ran = [e.metrics for e in entries if e.metrics]

    def values(key):
        return sorted({str(m.get(key)) for m in ran if m.get(key) is not None})

    # a task on several datasets has one label "a, b": each dataset is listed once
    data = sorted({label for m in ran for label in (m["dataset_label"].split(", ") if m.get("dataset_label")
                                                  else m.get("dataset") or [])})
    versions = next((m.get("versions") for m in ran if m.get("versions")), {})
    hardware = next((m.get("hardware") for m in ran if m.get("hardware")), {})
    standins = [e for e in entries if e.metrics.get("standin")]
    return {"when": max((str(m.get("started_at", "")) for m in ran), default=""),
            "modes": values("mode"), "seeds": values("seed"), "devices": values("device"),
            "versions": versions, "hardware": hardware, "data": data, "standin_tasks": [e.id for e in standins],
            "counts": {s: sum(e.status == s for e in entries) for s in
                       ("done", "failed", "interrupted", "running", "not run")}}


CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:0 1rem 3rem;color:#1b1b1b;background:#fff}
h1{margin:1.2rem 0 .3rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#444;font-size:.9rem}.meta td{padding:.05rem .8rem .05rem 0;vertical-align:top}
.banner{background:#fff4d6;border:1px solid #e0b84c;padding:.6rem .9rem;border-radius:6px;margin:.8rem 0}
.task{border:1px solid #ddd;border-radius:8px;padding:.6rem .9rem;margin:.8rem 0;page-break-inside:avoid}
.task h3{margin:.1rem 0 .3rem;font-size:1.05rem}.task.compact{padding:.3rem .9rem;margin:.4rem 0}
.task.compact h3{font-size:.95rem;margin:0}.task.compact .row{color:#666;font-size:.8rem}.row{display:flex;flex-wrap:wrap;gap:.4rem 1rem;font-size:.9rem}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;font-weight:600}
.done,.met{background:#dff3e1;color:#145a1e}.failed,.missed{background:#fbe0e0;color:#8a1111}
.interrupted,.running{background:#fff1cc;color:#6b4d00}.not-run,.not-applicable{background:#eee;color:#555}
.thumbs{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0}.thumbs a{display:block;text-align:center;
font-size:.75rem;color:#333;text-decoration:none}.thumbs img{height:150px;max-width:260px;object-fit:contain;
border:1px solid #ccc;background:#fafafa}
.error{background:#fbe0e0;border-left:4px solid #b22;padding:.4rem .7rem;white-space:pre-wrap;font-family:monospace;font-size:.85rem}
details>summary{cursor:pointer;color:#234;font-weight:600;margin:.3rem 0}
.analysis table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}
.analysis td,.analysis th{border:1px solid #ccc;padding:.15rem .45rem}
.analysis code{background:#f3f3f3;padding:0 .2rem}
@media print{details{display:block}details>summary{display:none}.thumbs img{height:120px}a{color:inherit}}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


@functools.lru_cache(maxsize=1)
def _markdown_parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


# Cached by text: a serial run rewrites index.html after every task, and without the cache it
# rendered every analysis again each time (1,326 renders for 51 tasks, 10% of a tiny catalogue run).
@functools.lru_cache(maxsize=512)
def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML disabled (results text can never inject markup)."""
    return _markdown_parser().render(text)


def _badge(label: str) -> str:
    return f'<span class="badge {_e(label.replace(" ", "-"))}">{_e(label)}</span>'


def _task_html(e: TaskEntry) -> str:
    from urllib.parse import quote

    if e.status == "not run" and not e.metrics:  # one compact line: nothing to show yet
        target = f" · target: {_e(e.target_text)}" if e.target_text else ""
        return (f'<section class="task compact" id="task-{_e(e.id)}"><h3>{_e(e.id)} {_e(e.title)} '
                f"{_badge('not run')}</h3><div class=\"row\">not run in this results folder{target}</div></section>")

    parts = [f'<section class="task" id="task-{_e(e.id)}"><h3>{_e(e.id)} {_e(e.title)}</h3><div class="row">',
             f"<span>status {_badge(e.status)}</span>"]
    if e.headline:
        parts.append(f"<span><b>{_e(e.headline)}</b></span>")
    if e.seconds is not None:
        parts.append(f"<span>{e.seconds:.1f} s</span>")
    if e.metrics.get("mode"):
        parts.append(f"<span>{_e(e.metrics.get('mode'))} mode · seed {_e(e.metrics.get('seed'))}</span>")
    if e.metrics.get("dataset_label"):
        parts.append(f"<span>data: {_e(e.metrics['dataset_label'])}</span>")
    parts.append("</div>")
    if e.target_text:
        parts.append(f'<div class="row">target: {_e(e.target_text)} — {_badge(e.verdict)} '
                     f"<span>{_e(e.verdict_why)}</span></div>")
    if e.error:
        parts.append(f'<div class="error">{_e(e.error)}</div>')
    if e.figures:
        parts.append('<div class="thumbs">')
        for f in e.figures:
            href = quote(f"{e.dirname}/{f}")
            name = f.rsplit(".", 1)[0].replace("_", " ")
            parts.append(f'<a href="{href}"><img src="{href}" alt="{_e(e.id)} figure: {_e(name)}" loading="lazy">'
                         f"<br>{_e(name)}</a>")
        parts.append("</div>")
    if e.analysis:
        body = e.analysis.split("\n", 1)[1] if e.analysis.startswith("# ") else e.analysis
        parts.append(f'<details open><summary>analysis</summary><div class="analysis">{render_markdown(body)}'
                     f"</div></details>")
    parts.append("</section>")
    return "".join(parts)


def write_index(results_dir: Path, tasks, sections: dict[str, str]) -> Path:
    """Write results/index.html for ``tasks`` (every catalogue task appears) and return its path."""
    entries = collect(results_dir, tasks)
    h = run_header(entries)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{k} {v}" for k, v in (h["versions"] or {}).items())
    hw = h["hardware"] or {}
    hardware = f"{hw.get('cpu_model') or hw.get('processor', '?')}, {hw.get('cpu_count', '?')} cores" + (
        f", GPU {hw['gpu']}" if hw.get("gpu") else "")
    counts = ", ".join(f"{n} {s}" for s, n in h["counts"].items() if n)
    rows = [("page written", now), ("latest run started", h["when"] or "—"), ("tasks", counts),
            ("modes", ", ".join(h["modes"]) or "—"), ("seeds", ", ".join(h["seeds"]) or "—"),
            ("devices", ", ".join(h["devices"]) or "—"), ("hardware", hardware), ("versions", versions or "—"),
            ("data used", "; ".join(h["data"]) or "—")]
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
           f"<title>Deep-learning course results</title><style>{CSS}</style></head><body>",
           "<h1>Deep-learning course results</h1><table class=\"meta\">"]
    out += [f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows]
    out.append("</table>")
    if h["standin_tasks"]:
        out.append(f'<div class="banner" role="note"><b>Stand-in data.</b> {len(h["standin_tasks"])} task(s) ran on an '
                   f"offline stand-in instead of the dataset the catalogue names ({_e(', '.join(h['standin_tasks']))}); "
                   "their numbers are not comparable with the catalogue's targets.</div>")
    by_section: dict[str, list[TaskEntry]] = {}
    for e in entries:
        by_section.setdefault(e.section, []).append(e)
    out.append("<nav><p>" + " · ".join(f'<a href="#section-{_e(s)}">{_e(s)} {_e(sections.get(s, ""))}</a>'
                                        for s in by_section) + "</p></nav>")
    for sec, items in by_section.items():
        out.append(f'<h2 id="section-{_e(sec)}">{_e(sec)} {_e(sections.get(sec, ""))}</h2>')
        out += [_task_html(e) for e in items]
    out.append("</body></html>\n")
    target = Path(results_dir) / "index.html"
    write_text(target, "\n".join(out))
    return target


SUMMARY_HEAD = "# Results summary"


def write_summary(results_dir: Path, tasks) -> Path:
    """results/summary.md: every task's latest result and target verdict, one table row each.

    A summary.md that this program did not write is never overwritten (OSError says so).
    """
    target = Path(results_dir) / "summary.md"
    if target.exists():
        try:
            ours = target.read_text(encoding="utf-8", errors="replace").startswith(SUMMARY_HEAD)
        except OSError:
            ours = False
        if not ours:
            raise OSError(f"{target} exists and was not written by this program; it is left as it is")

    def cell(text: object) -> str:  # a table cell never breaks the table
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [SUMMARY_HEAD, "", "<!-- written by main.py after every run; index.html is the illustrated twin -->", "",
             "| task | title | status | mode | dataset | headline | target | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for e in collect(results_dir, tasks):
        seconds = f"{e.seconds:.1f}" if e.seconds is not None else ""
        datasets = e.metrics.get("dataset_label") or ", ".join(e.metrics.get("dataset") or [])
        link = f"[{e.id}]({e.dirname}/analysis.md)" if e.analysis else e.id
        verdict = f"{e.verdict}: {e.target_text}" if e.target_text else ""
        lines.append(f"| {link} | {cell(e.title)} | {e.status} | {cell(e.metrics.get('mode', ''))} | {cell(datasets)} | "
                     f"{cell(e.headline)} | {cell(verdict)} | {seconds} |")
    write_text(target, "\n".join(lines) + "\n")
    return target
