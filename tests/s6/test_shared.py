"""Section-6 shared helpers: data generators, gradient probes on cases with a known answer, the rule
applied to several models, the timing helpers, and the recurrent models' read-out."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments.s6_recurrent import _shared as sh
from models import RecurrentClassifier, RecurrentRegressor
from utils.report import compare_errors


def test_sum_sequences_target_is_scaled_sum():
    x, y = sh.sum_sequences(20000, 25, torch.Generator().manual_seed(0))
    assert x.shape == (20000, 25, 1) and y.shape == (20000, 1)
    assert x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(y, x.sum(dim=1) / 5.0)
    assert float(y.var()) == pytest.approx(sh.SUM_TARGET_VARIANCE, rel=0.05)


def test_spectral_radius_known_matrices():
    rotation = np.array([[0.0, -2.0], [2.0, 0.0]])  # eigenvalues ±2i
    assert sh.spectral_radius(rotation) == pytest.approx(2.0)
    non_normal = np.array([[0.5, 10.0], [0.0, 0.3]])  # norm ≈ 10, but eigenvalues 0.5 and 0.3
    assert sh.spectral_radius(non_normal) == pytest.approx(0.5)
    assert np.linalg.norm(non_normal, 2) > 9
    # circular law, which 6.3 relies on: N(0, 1/H) entries give ρ close to 1
    h = 400
    assert sh.spectral_radius(np.random.default_rng(1).standard_normal((h, h)) / np.sqrt(h)) == pytest.approx(1, abs=0.1)


def _linear_unit(a: float, w: float):
    model = RecurrentRegressor(1, 1, cell="rnn").double()
    with torch.no_grad():
        model.rnn.weight_ih_l0.fill_(a)
        model.rnn.weight_hh_l0.fill_(w)
        model.rnn.bias_ih_l0.zero_()
        model.rnn.bias_hh_l0.zero_()
    return model


def test_input_gradient_norms_linear_regime():
    # One tanh unit with zero input and bias stays at h = 0 where tanh' = 1, so the
    # gradient of h_T with respect to x_t is exactly a · w^(T - t).
    a, w, steps = 0.7, 0.8, 12
    model = _linear_unit(a, w)
    x, u = torch.zeros(3, steps, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    norms = sh.input_gradient_norms(model, x, u)
    np.testing.assert_allclose(norms, a * w ** np.arange(steps - 1, -1, -1), rtol=1e-12)
    assert sh.per_step_factor(norms) == pytest.approx(w)
    per_seq = sh.input_gradient_norms(model, x, u, per_sequence=True)
    assert per_seq.shape == (3, steps)
    np.testing.assert_allclose(per_seq.mean(0), norms, rtol=1e-12)


def test_per_sequence_gradients_are_each_sequences_own():
    torch.manual_seed(0)
    model = RecurrentRegressor(1, 4, cell="gru").double()
    x, u = torch.randn(5, 7, 1, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    together = sh.input_gradient_norms(model, x, u, per_sequence=True)
    alone = sh.input_gradient_norms(model, x[2:3], u, per_sequence=True)
    np.testing.assert_allclose(together[2], alone[0], rtol=1e-10)


def _errors(shift_b: float, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.exponential(1.0, 500)
    return base, base + shift_b + rng.normal(0, 0.01, 500)


def test_rank_names_a_single_winner_only_when_it_beats_all():
    a, b = _errors(0.5)
    _, c = _errors(0.0005)
    errs = {"lstm": a, "gru": c, "rnn": b}
    values = {k: float(v.mean()) for k, v in errs.items()}
    rk = sh.rank(values, sh.NAMES, lambda x, o: compare_errors(sh.NAMES[x], errs[x], sh.NAMES[o], errs[o]))
    assert rk.leader in ("lstm", "gru")
    assert rk.best is None and rk.beaten == ["rnn"] and len(rk.tied) == 1
    assert "(tie)" in rk.verdict() and rk.verdict().endswith("both beat vanilla RNN")
    clear = {"lstm": a, "rnn": b}
    rk2 = sh.rank({k: float(v.mean()) for k, v in clear.items()}, sh.NAMES,
                  lambda x, o: compare_errors(sh.NAMES[x], clear[x], sh.NAMES[o], clear[o]))
    assert rk2.best == "lstm" and rk2.verdict() == "LSTM beats vanilla RNN"


def test_rank_leaves_out_diverged_models():
    a, b = _errors(0.5)
    errs = {"lstm": a, "rnn": b}
    rk = sh.rank({"lstm": float(a.mean()), "rnn": float(b.mean()), "gru": float("nan")}, sh.NAMES,
                 lambda x, o: compare_errors(sh.NAMES[x], errs[x], sh.NAMES[o], errs[o]))
    assert rk.excluded == ["gru"] and set(rk.versus) == {"rnn"}


def test_compare_models_uses_seeds_when_there_are_several():
    c = sh.compare_models("A", [0.10, 0.11, 0.09], None, "B", [0.50, 0.52, 0.48], None)
    assert c.method == "seeds" and c.winner == "A"
    a, b = _errors(0.3)
    c1 = sh.compare_models("A", [a.mean()], a, "B", [b.mean()], b)
    assert c1.method == "bootstrap" and c1.winner == "A"


def test_time_phrase_follows_the_rule():
    fast = sh.compare_times("LSTM", [0.045, 0.046, 0.044], "GRU", [0.076, 0.077, 0.075])
    assert fast.winner == "LSTM"
    assert sh.time_phrase(fast).startswith("LSTM is faster per epoch than GRU")
    same = sh.compare_times("LSTM", [0.045, 0.060, 0.030], "GRU", [0.050, 0.065, 0.035])
    assert same.winner is None and "same time per epoch" in sh.time_phrase(same)
    once = sh.compare_times("LSTM", [0.01], "GRU", [0.5])   # one epoch each: no spread, no verdict
    assert once.winner is None and "no spread was measured" in sh.time_phrase(once)


def test_autograd_graph_sees_per_step_operations():
    nodes_10, fused = sh.autograd_graph("gru", 8, 10, batch=4)
    nodes_20, _ = sh.autograd_graph("gru", 8, 20, batch=4)
    assert not fused and nodes_20 - nodes_10 >= 10 * 5   # the GRU adds several operations per step
    assert len(sh.batch_seconds("rnn", 8, 5, 2, batch=4)) == 2


def test_bidirectional_summary_joins_both_ends():
    torch.manual_seed(0)
    model = RecurrentClassifier(3, 5, 4, cell="gru", bidirectional=True)
    out, summary = model.encode(torch.randn(2, 6, 3))
    torch.testing.assert_close(summary, torch.cat([out[:, -1, :5], out[:, 0, 5:]], dim=1))
    assert model(torch.randn(2, 6, 3)).shape == (2, 4)


@pytest.mark.parametrize("cell,bidirectional", [("lstm", False), ("rnn", True), ("gru", True)])
def test_lengths_ignore_padding(cell, bidirectional):
    torch.manual_seed(0)
    model = RecurrentClassifier(3, 6, 2, cell=cell, bidirectional=bidirectional, num_layers=2).eval()
    short = torch.randn(1, 4, 3)
    padded = torch.cat([short, torch.randn(1, 3, 3)], dim=1)  # 3 padding steps of garbage
    torch.testing.assert_close(model(padded, lengths=torch.tensor([4])), model(short))


def test_token_input_and_forget_bias():
    model = RecurrentClassifier(8, 4, 3, cell="lstm", vocab_size=20, forget_bias=1.0)
    assert model(torch.randint(1, 20, (2, 5))).shape == (2, 3)
    assert torch.all(model.rnn.bias_ih_l0[4:8] == 1) and torch.all(model.rnn.bias_hh_l0[4:8] == 0)
    with pytest.raises(ValueError):
        RecurrentClassifier(3, 4, 2, cell="gru", forget_bias=1.0)
