"""7.2: the similarity numbers and their write-up."""
from __future__ import annotations

from experiments.s7_attention import t7_2_positional_encoding as t


class Ctx:
    class budget:
        positions = 50
    seed = 0

    def use_dataset(self, *a, **k):
        pass

    def record(self, **k):
        self.metrics = k


def test_measure_finds_offset_invariance_and_a_falling_similarity():
    ctx = Ctx()
    r = t.measure(ctx)
    assert r.encoding.shape == (50, 64) and abs(r.by_offset[0] - 32.0) < 1e-9
    assert r.offset_only_deviation < 1e-9
    assert r.by_offset[1] < r.by_offset[0] and r.by_offset[10] < r.by_offset[2]
    text = t.write_up(r)
    assert "holds to rounding error" in text and "offset 1: 30.92" in text
