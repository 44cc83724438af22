"""4.4: template matching, the random-initialisation null distribution, and the write-up's verdicts."""
from __future__ import annotations

import numpy as np
import torch

from experiments.s4_cnn.t4_4_filters_and_feature_maps import (TEMPLATES, Result, against_null, filter_stats,
                                                             null_counts, verdict, write_up)


def test_template_match_is_sign_invariant_and_counts():
    filters = torch.tensor([TEMPLATES["vertical edge"], TEMPLATES["horizontal edge"]], dtype=torch.float32)
    st = filter_stats(torch.cat([filters, -filters, torch.ones(1, 3, 3)]))
    assert st["best_template"] == ["vertical edge", "horizontal edge"] * 2 + ["brightness (uniform)"]
    assert np.allclose(st["best_abs_cos"], 1.0)
    assert st["edge_like"] == 4            # the Sobels sum to zero; the uniform filter does not
    assert np.allclose(st["dc_ratio"], [0, 0, 0, 0, 1])
    assert st["matched"] == 5 and st["matched_by_template"] == {"vertical edge": 2, "horizontal edge": 2,
                                                                "brightness (uniform)": 1}


def test_null_counts_are_reproducible_and_plausible():
    a = null_counts((32, 1, 3, 3), 300, seed=3)
    b = null_counts((32, 1, 3, 3), 300, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    edge, matched = a
    assert edge.shape == matched.shape == (300,)
    # For 9 symmetric uniform weights |sum| / sum|w| < 0.2 holds for roughly a third of the filters.
    assert 6 < edge.mean() < 16 and matched.mean() < 4


def test_against_null_calls_a_tie_and_a_difference():
    null = np.arange(0, 21).repeat(10)                # 0..20 evenly
    assert against_null(10, null)["side"] == "tie"
    high = against_null(40, null)
    assert high["side"] == "above" and high["p"] == 2 / 211 and (high["lo"], high["hi"]) == (0, 20)
    assert against_null(-5, null)["side"] == "below"


def _result(trained_edge: int) -> Result:
    n = 32
    dc = [0.1] * trained_edge + [0.5] * (n - trained_edge)
    st = lambda edge: {"best_template": ["vertical edge"] * n, "best_abs_cos": [0.5] * n,  # noqa: E731
                       "dc_ratio": [0.1] * edge + [0.5] * (n - edge), "edge_like": edge, "matched": 1,
                       "matched_by_template": {"vertical edge": 1}}
    stats = {"trained": st(trained_edge), "random init": st(10)}
    stats["trained"]["dc_ratio"] = dc
    rng = np.random.default_rng(0)
    layer = {"channels": 32, "map_size": [28, 28], "zero_fraction": 0.5, "dead_channels": 0, "mean_activation": 0.2,
             "probe_images": 500}
    return Result("digits", "the network is task 4.3's", 0.95, 360, np.zeros((n, 3, 3)), 1, 0.42, stats,
                  rng.integers(7, 15, 1000), rng.integers(0, 3, 1000), list(range(16)), [[0, 1, 2]] * 16,
                  np.zeros((16, 3, 3, 3)), [0.4] * 16, [64, 32, 3, 3], [], np.zeros((2, 28, 28)), [],
                  {"conv1": layer, "conv2": {**layer, "zero_fraction": 0.7, "channels": 64, "map_size": [14, 14]}})


def test_write_up_tie_names_no_winner():
    r = _result(11)
    text = write_up(r)
    assert "within the range of chance" in text
    assert "did **not** make the first layer measurably more edge-like" in text
    assert "as the textbook describes" not in text
    assert "360 test examples" in text and "moved the conv1 weights by 42%" in text
    assert verdict(against_null(11, r.null_edge_like)) == "trained conv1 ≈ random init in edge-like filters (tie)"


def test_write_up_names_a_real_difference():
    r = _result(30)
    text = write_up(r)
    assert "more edge-like than random initialisations are, as the textbook describes" in text
    assert "within the range of chance (two-sided p" not in text.split("Filters within")[0]
    assert verdict(against_null(30, r.null_edge_like)) == "trained conv1 more edge-like than random init"
    assert "the other 29 channels carry the remaining 60%" in text  # 40% on 3 of 32 channels
    assert "zero-sum sense only" in text  # 1 template match: within chance
