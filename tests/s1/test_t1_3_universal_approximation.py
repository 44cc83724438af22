"""1.3 universal approximation: the shallow nets' backward pass, and the write-up's width verdicts."""
from __future__ import annotations

import numpy as np

from experiments.s1_foundations.t1_3_universal_approximation import (SHOWN, TEST_POINTS, WIDTHS, Result, ShallowNets,
                                                                     best_width, target_functions, write_up)
from scratch.gradcheck import numerical_gradient
from utils.report import compare_errors
from utils.results import load_result, save_result


def test_shallow_nets_backward_matches_finite_differences():
    net = ShallowNets(n_functions=2, width=5, seed=1)
    x = np.linspace(-1, 1, 7)[:, None]
    targets = np.stack([np.sin(3 * x), x ** 2])
    _, dy = net.mse(x, targets)
    net.backward(dy)
    for param, grad in zip(net.params, net.grads):
        numeric = numerical_gradient(lambda _: float(net.mse(x, targets)[0].sum()), param)
        np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_target_functions():
    f = target_functions()
    x = np.array([-0.5, 0.0, 0.25])
    np.testing.assert_allclose(f["sin"][1](x), [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(f["abs"][1](x), [0.5, 0.0, 0.25])
    np.testing.assert_allclose(f["step"][1](x), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(f["cubic"][1](x), [0.125, 0.0, 0.25 ** 3 - 0.125])


def make_result(errors_by_width: dict[int, float], noise: float) -> Result:
    """Per-point squared errors of each width = its level × (1 + noise × a shared random pattern)."""
    rng = np.random.default_rng(0)
    names = list(target_functions())
    pattern = np.abs(1 + noise * rng.standard_normal(TEST_POINTS))
    jitter = {w: 1 + 0.01 * rng.standard_normal(TEST_POINTS) for w in WIDTHS}   # keeps exact ties apart
    per_point = {w: level * pattern * jitter[w] for w, level in errors_by_width.items()}
    mse = np.array([[per_point[w].mean()] * len(names) for w in WIDTHS])[None]
    # The same errors for every function, so each comparison is bootstrapped once and shared.
    steps = [compare_errors(f"width {b}", per_point[b], f"width {a}", per_point[a], metric="test MSE")
             for a, b in zip(WIDTHS[:-1], WIDTHS[1:])]
    doubling = {n: steps for n in names}
    order = sorted(WIDTHS, key=lambda w: per_point[w].mean())
    top = compare_errors(f"width {order[0]}", per_point[order[0]], f"width {order[1]}", per_point[order[1]],
                         metric="test MSE")
    best = {n: top for n in names}
    return Result(seeds=[42], steps=100, lr=0.02, functions={n: target_functions()[n][0] for n in names},
                  test_mse=mse, train_mse=mse * 0.9, fits={w: np.zeros((len(names), TEST_POINTS)) for w in SHOWN},
                  doubling=doubling, best=best)


def test_clear_improvements_name_the_best_width():
    r = make_result({w: 1.0 / w ** 2 for w in WIDTHS}, noise=0.1)
    assert best_width(r.best["sin"]) == 128
    text = " ".join(write_up(r).split())
    assert "the error fell measurably at 6 of 6 doublings." in text
    assert "| 128 |" in text and "tie:" not in text
    assert "cut the test error by a median factor of 4096×" in text or "factor of 4095×" in text


def test_a_flat_tail_is_a_tie_not_a_best_width():
    levels = {w: 1.0 / w ** 2 for w in WIDTHS} | {128: 1.0 / 64 ** 2}   # 64 and 128 at the same level
    r = make_result(levels, noise=0.5)
    assert best_width(r.best["abs"]).startswith("tie: width")
    text = " ".join(write_up(r).split())
    assert "no measurable change width 64 → 128" in text
    assert "fell measurably at 5 of 6 doublings" in text


def test_a_rise_is_explained_by_the_training_error():
    levels = {w: 1.0 / w ** 2 for w in WIDTHS} | {8: 1.0}   # width 8 far worse than width 4
    r = make_result(levels, noise=0.1)
    text = " ".join(write_up(r).split())
    assert "it *rose* width 4 → 8 — there the training-point error rose too" in text


def test_result_round_trips_through_json(tmp_path):
    r = make_result({w: 1.0 / w for w in WIDTHS}, noise=0.1)
    save_result(tmp_path / "result.json", r)
    back = load_result(Result, tmp_path / "result.json")
    assert write_up(back) == write_up(r) and set(back.fits) == set(SHOWN)
