"""Writing results: atomic files, JSON that survives NaN, stored Results, summary.md ownership."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from utils.history import History
from utils.report import Comparison, compare_seeds
from utils.reports import write_summary
from utils.results import (TEMP_PREFIX, atomic_path, load_result, read_json, remove_stale_temporaries,
                           save_result, write_json)


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert not list(tmp_path.glob(f"{TEMP_PREFIX}*"))


def test_json_turns_nan_into_null_and_numpy_into_lists(tmp_path):
    write_json(tmp_path / "m.json", {"nan": float("nan"), "inf": float("inf"), "arr": np.arange(3),
                                     "scalar": np.float32(0.5), "path": Path("x")})
    assert read_json(tmp_path / "m.json") == {"nan": None, "inf": "inf", "arr": [0, 1, 2], "scalar": 0.5, "path": "x"}
    assert read_json(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert read_json(tmp_path / "bad.json") is None


@dataclass
class _Result:
    histories: dict[str, History]
    images: np.ndarray
    comparison: Comparison
    by_lr: dict[float, float]
    pair: tuple[int, int]
    optional: float | None = None


def test_results_round_trip_with_types(tmp_path):
    r = _Result({"a": History(train_loss=[1.0, float("nan")], status="diverged")},
                np.arange(6, dtype=np.float32).reshape(2, 3), compare_seeds("x", [1, 2], "y", [3, 4]),
                {0.1: 0.5, 1e-3: 0.25}, (1, 2))
    save_result(tmp_path / "result.json", r)
    back = load_result(_Result, tmp_path / "result.json")
    assert isinstance(back.histories["a"], History) and back.histories["a"].diverged
    assert math.isnan(back.histories["a"].train_loss[1])
    assert back.images.dtype == np.float32 and back.images.shape == (2, 3)
    assert isinstance(back.comparison, Comparison) and back.comparison.winner == r.comparison.winner
    assert back.by_lr == {0.1: 0.5, 1e-3: 0.25} and back.pair == (1, 2) and back.optional is None
    (tmp_path / "broken.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="cannot read the stored result"):
        load_result(_Result, tmp_path / "broken.json")


def test_stale_temporaries_are_removed_but_nothing_else(tmp_path):
    (tmp_path / f"{TEMP_PREFIX}curves.ab12cd34.png").write_bytes(b"half")
    (tmp_path / ".hidden-user-file.png").write_bytes(b"mine")
    (tmp_path / "curves.png").write_bytes(b"done")
    assert remove_stale_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden-user-file.png", "curves.png"]


class _Task:
    def __init__(self, id_, title):
        self.id, self.title, self.dirname, self.section, self.target = id_, title, f"{id_}_x", id_[0], None


def test_summary_is_written_but_never_over_a_foreign_file(tmp_path):
    write_json(tmp_path / "1.1_x" / "metrics.json", {"status": "done", "mode": "quick", "headline": "a | b",
                                                     "dataset_label": "digits (stand-in for mnist)", "seconds": 1.5})
    (tmp_path / "1.1_x" / "analysis.md").write_text("# x")
    path = write_summary(tmp_path, [_Task("1.1", "One"), _Task("1.2", "Two")])
    text = path.read_text()
    assert "[1.1](1.1_x/analysis.md)" in text and "| 1.2 | Two | not run |" in text
    assert "digits (stand-in for mnist)" in text and "a \\| b" in text
    foreign = tmp_path / "other"
    foreign.mkdir()
    (foreign / "summary.md").write_text("my notes")
    with pytest.raises(OSError, match="not written by this program"):
        write_summary(foreign, [_Task("1.1", "One")])
    assert (foreign / "summary.md").read_text() == "my notes"
