"""Accuracy, speed and memory bars of the catalogue, checked by running the tasks for real.

    python benchmarks/targets.py                 # every bar (HYBRID/FULL ones take long)
    python benchmarks/targets.py --only quick    # only the QUICK bars (minutes)
    python benchmarks/targets.py --list

Each bar runs ``main.py`` in a subprocess (so timings include start-up, as a user sees them)
into benchmarks/results/<mode>/, then reads metrics.json. Timed bars are meaningful only on an
otherwise idle machine. Every run's measurements (time, accuracy, peak memory per task,
versions, hardware) are written to benchmarks/results/runs/<timestamp>.json and compared with
the previous run's, so regressions show. Exit status 1 if any bar fails.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def best_learned_beats_baselines(m: dict) -> bool:
    learned = min(m["mse"][k] for k in ("rnn", "lstm", "gru"))
    return learned < min(m["mse"]["moving_average"], m["mse"]["last_value"])


@dataclass
class Bar:
    name: str
    ids: tuple[str, ...]
    mode: str
    check: Callable[[dict[str, dict], float], bool]   # (metrics by task id, wall seconds) -> passed
    describe: str
    dataset: str | None = None


MEMORY_MB = 3000  # every task, every mode


def within_memory(m: dict[str, dict]) -> bool:
    return all((t.get("peak_rss_mb") or 0) <= MEMORY_MB for t in m.values())


BARS = [
    Bar("all-quick", ("--all",), "quick", lambda m, s: s <= 300 and within_memory(m),
        "the whole catalogue (sections 1-8) in QUICK in <= 5 min, every task <= 3 GB peak memory"),
    Bar("4.3-quick", ("4.3",), "quick", lambda m, s: m["4.3"]["test_accuracy"] >= 0.91 and m["4.3"]["seconds"] <= 20,
        "4.3 Fashion-MNIST QUICK: test accuracy >= 0.91 in <= 20 s of task time", "fashion-mnist"),
    Bar("sections-1-2-quick", ("1", "2"), "quick", lambda m, s: s <= 150,
        "sections 1 and 2 in QUICK: all done in about 2 minutes"),
    Bar("sections-3-4-quick", ("3", "4"), "quick", lambda m, s: s < 300,
        "sections 3 and 4 in QUICK: all done in under 5 minutes"),
    Bar("section-6-quick", ("6",), "quick", lambda m, s: s < 180,
        "section 6 in QUICK: all done in under 3 minutes"),
    Bar("gradients-quick", ("2.1", "2.2", "6.1"), "quick",
        lambda m, s: (m["2.1"]["max_relative_error"] < 1e-6 and m["2.1"]["layers_checked"] >= 10
                      and m["2.2"]["max_abs_diff_vs_torch"] < 1e-6 and m["6.1"]["max_relative_error"] < 1e-6),
        "2.1 rel. error < 1e-6 over >= 10 layers; 2.2 |scratch - torch.optim| < 1e-6; 6.1 BPTT rel. error < 1e-6"),
    Bar("4.3-hybrid", ("4.3",), "hybrid", lambda m, s: m["4.3"]["test_accuracy"] >= 0.91,
        "4.3 Fashion-MNIST HYBRID: test accuracy >= 0.91", "fashion-mnist"),
    Bar("4.2-hybrid", ("4.2",), "hybrid", lambda m, s: m["4.2"]["test_accuracy"] >= 0.88,
        "4.2 NumPy CNN, Fashion-MNIST HYBRID: test accuracy >= 0.88", "fashion-mnist"),
    Bar("4.9-hybrid", ("4.9",), "hybrid", lambda m, s: m["4.9"]["test_accuracy"] >= 0.93,
        "4.9 Fashion-MNIST HYBRID: test accuracy >= 0.93"),
    Bar("6.7-hybrid", ("6.7",), "hybrid", lambda m, s: best_learned_beats_baselines(m["6.7"]),
        "6.7 HYBRID: the best learned model beats both baselines on MSE"),
    Bar("4.9-full", ("4.9",), "full", lambda m, s: m["4.9"]["test_accuracy"] >= 0.950 and s <= 1800,
        "4.9 Fashion-MNIST FULL: test accuracy >= 0.950 in <= 30 min"),
    Bar("5-quick", ("5",), "quick", lambda m, s: s <= 180 and within_memory(m), "section 5 in QUICK in <= 3 min"),
    Bar("7-quick", ("7",), "quick", lambda m, s: s <= 180 and within_memory(m), "section 7 in QUICK in <= 3 min"),
    Bar("8-quick", ("8",), "quick", lambda m, s: s <= 120 and within_memory(m), "section 8 in QUICK in <= 2 min"),
]


def run_bar(bar: Bar) -> tuple[bool, float, str, dict[str, dict]]:
    results = OUT / bar.mode / bar.name
    cmd = [sys.executable, "main.py", *bar.ids, "--mode", bar.mode, "--results", str(results)]
    if bar.dataset:
        cmd += ["--dataset", bar.dataset]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    metrics: dict[str, dict] = {}
    for d in results.glob("*/metrics.json"):
        data = json.loads(d.read_text())
        metrics[data["task"]] = data
    ran = [m for m in metrics.values()
           if "--all" in bar.ids or any(m["task"] == i or m["task"].split(".")[0] == i for i in bar.ids)]
    if proc.returncode != 0 or any(m["status"] != "done" for m in ran):
        failed = [m["task"] for m in ran if m["status"] != "done"]
        return False, seconds, f"run failed (exit {proc.returncode}; not done: {', '.join(failed) or '?'})", metrics
    try:
        ok = bar.check(metrics, seconds)
    except (KeyError, TypeError) as exc:
        return False, seconds, f"metric missing: {exc}", metrics
    headline = "; ".join(f"{m['task']}: {m.get('headline')}" for m in ran if len(ran) <= 3 and m.get("headline"))
    peak = max((m.get("peak_rss_mb") or 0 for m in ran), default=0)
    return ok, seconds, f"{headline} (peak {peak:.0f} MB)", metrics


def record(rows: list[dict]) -> Path:
    """Write this run's measurements and print the comparison with the previous run."""
    runs = OUT / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    previous = sorted(runs.glob("*.json"))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    sample = next((m for r in rows for m in r["tasks"].values()), {})
    data = {"when": stamp, "python": platform.python_version(), "versions": sample.get("versions"),
            "hardware": sample.get("hardware"), "bars": rows}
    path = runs / f"{stamp}.json"
    path.write_text(json.dumps(data, indent=1))
    if previous:
        before = {r["name"]: r for r in json.loads(previous[-1].read_text())["bars"]}
        print(f"compared with {previous[-1].name}:")
        for r in rows:
            old = before.get(r["name"])
            if old:
                print(f"  {r['name']:22s} {old['seconds']:7.1f}s -> {r['seconds']:7.1f}s  "
                      f"{'PASS' if old['passed'] else 'FAIL'} -> {'PASS' if r['passed'] else 'FAIL'}")
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", default=[], help="bar names or modes (quick, hybrid, full)")
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    bars = [b for b in BARS if not args.only or b.name in args.only or b.mode in args.only]
    if args.list or not bars:
        for b in BARS:
            print(f"{b.name:22s} {b.describe}")
        return 0 if bars else 2
    failures = 0
    rows = []
    for bar in bars:
        ok, seconds, detail, metrics = run_bar(bar)
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {bar.name:22s} {seconds:7.1f}s  {bar.describe}  {detail}", flush=True)
        keep = ("status", "seconds", "stage_seconds", "run_processes", "peak_rss_mb", "test_accuracy", "headline",
                "versions", "hardware", "dataset")
        if len(metrics) > 1:  # where a section's time went: the slowest tasks, and their drawing share
            slowest = sorted(metrics.items(), key=lambda kv: -(kv[1].get("seconds") or 0))[:5]
            print("      slowest: " + ", ".join(
                f"{k} {m.get('seconds') or 0:.1f}s (draw {(m.get('stage_seconds') or {}).get('draw', 0):.1f}s)"
                for k, m in slowest))
        rows.append({"name": bar.name, "mode": bar.mode, "passed": ok, "seconds": round(seconds, 2), "detail": detail,
                     "tasks": {k: {f: m.get(f) for f in keep} for k, m in metrics.items()}})
    print(f"measurements written to {record(rows)}")
    print(f"{len(bars) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
