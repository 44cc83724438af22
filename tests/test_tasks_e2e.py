"""Every catalogue task runs end to end in the tiny preset and honours its declared contract."""
from __future__ import annotations

import re

import pytest

from experiments.registry import all_tasks
from utils.reports import render_markdown

PROVENANCE = ("task", "status", "mode", "seed", "device", "dataset", "standin", "versions", "seconds",
              "hardware", "peak_rss_mb", "budget", "code_version")

pytestmark = pytest.mark.slow

# Deterministic checks hold in every mode, tiny included: each gets its bound.
BOUNDS = {
    "1.4": ("max_abs_grad_diff", 1e-10),       # NumPy backprop vs autograd, float64
    "2.1": ("max_relative_error", 1e-6),       # every scratch layer vs central differences
    "2.2": ("max_abs_diff_vs_torch", 1e-10),   # scratch optimizers vs torch.optim, step for step
    "2.8": ("max_abs_error", 1e-6),            # the derivation's equations, checked numerically
    "6.1": ("max_relative_error", 1e-6),       # BPTT vs finite differences
    "7.1": ("max_abs_diff_vs_torch", 1e-6),    # attention written out vs torch's
}


@pytest.mark.parametrize("task_id", [t.id for t in all_tasks()])
def test_task_runs_in_tiny_mode(task_id, run_tiny, monkeypatch):
    import utils.plotting

    untitled, save = [], utils.plotting.save_figure

    def save_and_read_the_title(fig, path, *args, **kwargs):  # every figure has a title, and it names the mode
        saved = save(fig, path, *args, **kwargs)
        texts = [fig.get_suptitle()] + [ax.get_title(loc) for ax in fig.axes for loc in ("center", "left")]
        if not any("tiny mode" in t for t in texts):
            untitled.append(saved.name)
        return saved

    monkeypatch.setattr(utils.plotting, "save_figure", save_and_read_the_title)
    outcome, metrics, out = run_tiny(task_id)
    assert outcome.status == "done", outcome.message
    for key in PROVENANCE:
        assert key in metrics, f"{task_id}: metrics.json lacks {key}"
    assert metrics["mode"] == "tiny" and metrics["seed"] == 0
    assert metrics["dataset"], f"{task_id}: no dataset recorded"
    assert not outcome.task.missing_metrics(metrics)
    assert metrics["headline"] and "{" not in metrics["headline"], f"{task_id}: headline {metrics['headline']!r}"
    pngs = sorted(out.glob("*.png"))
    assert pngs and set(metrics["figures"]) == {p.name for p in pngs}
    assert not list(out.glob(".*.png")), "temporary files left behind"
    assert not untitled, f"{task_id}: figures whose title does not name the mode: {untitled}"
    analysis = (out / "analysis.md").read_text()
    assert analysis.startswith(f"# {task_id} ") and len(analysis) > 300
    assert "may be noise" not in analysis and "one seed only" not in analysis
    named = set(re.findall(r"`([\w.-]+\.png)`", analysis))
    assert named <= {p.name for p in pngs}, f"{task_id}: analysis.md names missing figures {named - {p.name for p in pngs}}"
    # every Markdown table renders as a table (a stray "|" in a cell once turned tables into paragraphs)
    html = render_markdown(analysis)
    assert not re.search(r"<p>\s*\|", html), f"{task_id}: a table in analysis.md does not render"
    assert analysis.count("\n|---") == html.count("<table>"), f"{task_id}: tables lost in rendering"
    assert (out / "result.json").exists()
    if task_id in BOUNDS:
        key, bound = BOUNDS[task_id]
        assert isinstance(metrics[key], (int, float)) and 0 <= metrics[key] < bound, f"{task_id}: {key} = {metrics[key]}"
