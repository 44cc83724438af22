"""7.1: the written-out attention agrees with torch's own; masks; the write-up states the check."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from experiments.s7_attention import t7_1_attention as t


def test_scaled_dot_product_matches_torch_with_and_without_mask():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g, dtype=torch.float64) for _ in range(3))
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    for m in (None, mask):
        ours, w, _ = t.scaled_dot_product_attention(q, k, v, m)
        assert (ours - F.scaled_dot_product_attention(q, k, v, m)).abs().max() < 1e-12
        assert torch.allclose(w.sum(-1), torch.ones_like(w.sum(-1)))
    _, w, _ = t.scaled_dot_product_attention(q, k, v, mask)
    assert torch.all(w[..., 0, 1:] == 0)


def test_multi_head_matches_nn_multiheadattention_below_tolerance():
    diffs = t.check_against_torch(4, seed=3)
    assert max(diffs.values()) < t.TOLERANCE
    assert set(diffs) == {"sdpa", "multihead", "multihead_weights"}


def test_a_wrong_scale_would_fail_the_check():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 4, 8, generator=g, dtype=torch.float64) for _ in range(3))
    wrong = torch.softmax(q @ k.transpose(-2, -1) / 8, -1) @ v          # divides by d_k, not √d_k
    assert (wrong - F.scaled_dot_product_attention(q, k, v)).abs().max() > 1e-3


def make_result(diff=1e-15):
    w = np.full((8, 6, 6), 1 / 6)
    return t.Result(5, {"sdpa": diff, "multihead": diff, "multihead_weights": diff}, t.SENTENCE, w,
                    [0.1, 0.5, 1.2, -0.3, 0.1, 0.0], [0.12, 0.18, 0.36, 0.08, 0.12, 0.11], np.tril(np.ones((6, 6))), 1e-16)


def test_write_up_states_tolerance_and_the_top_word():
    text = t.write_up(make_result())
    assert "All within the tolerance" in text and "1e-06" in text
    assert 'largest on "sat" (position 3' in text


def test_write_up_reports_a_failed_check():
    assert "OUTSIDE the tolerance" in t.write_up(make_result(diff=1e-3))
