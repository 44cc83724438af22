"""Every registered task runs end to end in the tiny preset and leaves complete results."""
from __future__ import annotations

import json

import pytest

from experiments.registry import all_tasks, get_task
from utils.runner import Settings, run_task

# metrics.json keys the issues require, per task (the runner adds the provenance keys).
REQUIRED_KEYS = {
    "1.1": ["predictions"],
    "1.4": ["max_abs_grad_diff"],
    "2.1": ["max_relative_error", "layers_checked"],
    "2.2": ["max_abs_diff_vs_torch"],
    "2.8": ["max_abs_error"],
    "3.1": ["train_mse", "test_mse"],
    "3.2": ["test_accuracy", "generalization_gap"],
    "3.3": ["val_accuracy", "best_lambda"],
    "3.5": ["best_epoch", "stopped_epoch", "test_accuracy", "train_seconds"],
    "3.6": ["bias_squared", "variance", "test_mse", "best_degree"],
    "4.2": ["test_accuracy", "seconds_per_epoch"],
    "4.3": ["test_accuracy"],
    "4.5": ["receptive_field"],
    "4.9": ["test_accuracy", "per_class_accuracy", "latency_ms_per_image", "images_per_second"],
    "6.1": ["max_relative_error", "final_loss"],
    "6.2": ["decay_ratio"],
    "6.3": ["spectral_radius"],
    "6.7": ["mse", "mae"],
    "6.8": ["test_accuracy"],
}
PROVENANCE = ("task", "status", "mode", "seed", "device", "dataset", "standin", "versions", "seconds", "hardware")


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("results")


@pytest.mark.parametrize("task_id", [t.id for t in all_tasks()])
def test_task_runs_in_tiny_mode(task_id, results_dir):
    task = get_task(task_id)
    outcome = run_task(task, Settings(mode="tiny", results_dir=results_dir, seed=0))
    assert outcome.status == "done", outcome.message
    out = results_dir / task.dirname
    metrics = json.loads((out / "metrics.json").read_text())
    for key in PROVENANCE:
        assert key in metrics, f"{task_id}: metrics.json lacks {key}"
    assert metrics["dataset"], f"{task_id}: no dataset recorded"
    for key in REQUIRED_KEYS.get(task_id, []):
        assert key in metrics, f"{task_id}: metrics.json lacks required key {key}"
    if task.headline:
        assert metrics["headline"]["value"] is not None, f"{task_id}: headline {task.headline} not recorded"
    pngs = sorted(out.glob("*.png"))
    assert pngs and set(metrics["figures"]) == {p.name for p in pngs}
    analysis = (out / "analysis.md").read_text()
    assert len(analysis) > 300 and "seed 0" in analysis


def test_analysis_depends_on_the_numbers(results_dir):
    """The same task with another seed writes a different analysis (no canned text)."""
    task = get_task("3.1")
    a = results_dir / "a"
    b = results_dir / "b"
    run_task(task, Settings(mode="tiny", results_dir=a, seed=1))
    run_task(task, Settings(mode="tiny", results_dir=b, seed=2))
    text_a = (a / task.dirname / "analysis.md").read_text().split("\n", 3)[-1]
    text_b = (b / task.dirname / "analysis.md").read_text().split("\n", 3)[-1]
    assert text_a != text_b
