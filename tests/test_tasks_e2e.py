"""Every catalogue task runs end to end in the tiny preset and honours its declared contract."""
from __future__ import annotations

import pytest

from experiments.registry import all_tasks

PROVENANCE = ("task", "status", "mode", "seed", "device", "dataset", "standin", "versions", "seconds",
              "hardware", "peak_rss_mb", "budget", "code_version")

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task_id", [t.id for t in all_tasks()])
def test_task_runs_in_tiny_mode(task_id, run_tiny):
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
    analysis = (out / "analysis.md").read_text()
    assert analysis.startswith(f"# {task_id} ") and len(analysis) > 300
    assert "may be noise" not in analysis and "one seed only" not in analysis
    assert (out / "result.json").exists()
