"""1.1 logic gates: the write-up names a winner only when the rule separates the two nets, and the
headline phrase is built from the metrics."""
from __future__ import annotations

import numpy as np

from experiments.registry import get_task
from experiments.s1_foundations._shared import GATE_INPUTS, GATE_TARGETS, GateNets, chain_rule_trace
from experiments.s1_foundations.t1_1_logic_gates import (DEMO, SMALL, Result, bending_split, default_seed_outcome,
                                                         write_up)
from utils.report import compare_predictions
from utils.results import load_result, save_result


def solved_runs(k: int, n: int) -> np.ndarray:
    return np.arange(n) < k


def make_result(xor_demo: int, xor_small: int, n: int = 20) -> Result:
    solved = {}
    for name, xor in ((SMALL, xor_small), ("2-4-1", xor_small), ("2-8-1", xor_demo), (DEMO, xor_demo)):
        solved[name] = {"AND": solved_runs(n - 1, n), "OR": solved_runs(n, n), "XOR": solved_runs(xor, n)}
    net = GateNets(16, 1, seed=0)
    trace = chain_rule_trace(net.one(0), GATE_INPUTS[3], 0.0, units=(0, 1))
    preds = {name: {g: [0.1, 0.9, 0.9, 0.1] for g in GATE_TARGETS} for name in solved}
    bending = {name: np.where(solved[name]["XOR"], 2, 0) for name in solved}
    failures = {g: {name: ({"no unit bends between the inputs, so the net is linear on them": int((~s[g]).sum())}
                           if (~s[g]).any() else {}) for name, s in solved.items()} for g in GATE_TARGETS}
    comparisons = {g: compare_predictions(DEMO, solved[DEMO][g], SMALL, solved[SMALL][g],
                                          metric=f"share of seeds solving {g}") for g in GATE_TARGETS}
    return Result(seed=42, restarts=n, steps=3000, lr=0.5, logged_steps=[0, 2999], curves={}, solved=solved,
                  params={}, bending_at_init=bending, failures=failures, predictions=preds,
                  final_loss={name: {g: 0.01 for g in GATE_TARGETS} for name in solved}, trace=trace,
                  single_neuron={"AND": {"final_loss": 0.01, "inputs_correct": 4},
                                 "OR": {"final_loss": 0.01, "inputs_correct": 4},
                                 "XOR": {"final_loss": 0.6931, "inputs_correct": 2}},
                  comparisons=comparisons)


def test_write_up_names_the_wider_net_when_the_rule_separates_them():
    text = " ".join(write_up(make_result(xor_demo=20, xor_small=4)).split())
    assert "XOR: 2-16-1 solved it on more seeds than 2-2-1 (2-16-1 20/20, 2-2-1 4/20" in text
    assert "p < 0.001" in text
    assert "AND/OR/XOR all solved" in text
    assert "| XOR | 4/20 | 4/20 | 20/20 | 20/20 |" in text
    assert "XOR was solved in 48/48 runs that started with at least one bending unit and in 0/32" in text


def test_write_up_calls_a_small_difference_a_tie():
    r = make_result(xor_demo=6, xor_small=4, n=10)
    text = " ".join(write_up(r).split())
    assert "- XOR: no measurable difference between 2-16-1 and 2-2-1 (6 vs 4 of 10 seeds" in text
    assert "solved it on more seeds" not in text
    assert r.comparisons["XOR"].winner is None


def test_default_seed_outcome_and_bending_split():
    r = make_result(xor_demo=20, xor_small=4)
    assert default_seed_outcome(r) == "AND/OR/XOR all solved"
    split = bending_split(r)
    assert split["none"] == {"runs": 2 * 16, "solved": 0}              # 16 failed runs in each of the two narrow nets
    assert split["one or more"] == {"runs": 2 * 4 + 2 * 20, "solved": 2 * 4 + 2 * 20}
    r.solved[DEMO]["XOR"][0] = False
    assert default_seed_outcome(r) == "AND/OR solved, XOR not"


def test_headline_is_a_phrase_from_the_metrics():
    task = get_task("1.1")
    text = task.headline_text({"default_seed_outcome": "AND/OR/XOR all solved", "demo_net": "2-16-1",
                               "traced_seed": 42, "xor_solved_fraction": 0.2, "restarts": 20})
    assert text == "AND/OR/XOR all solved by the 2-16-1 net (seed 42); the 2-2-1 net solves XOR on 20% of 20 seeds"


def test_result_round_trips_through_json(tmp_path):
    r = make_result(xor_demo=20, xor_small=4)
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert write_up(back) == write_up(r)
    assert back.solved[DEMO]["XOR"].dtype == bool and back.comparisons["XOR"].winner == DEMO


def test_truth_tables():
    assert GATE_TARGETS == {"AND": (0.0, 0.0, 0.0, 1.0), "OR": (0.0, 1.0, 1.0, 1.0), "XOR": (0.0, 1.0, 1.0, 0.0)}
