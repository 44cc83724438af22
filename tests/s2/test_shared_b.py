"""_shared_b: one-factor variants train deterministically from the same start, diverged runs are kept as such
and never compared."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from experiments.s2_optimization._shared_b import (Variant, build_mlp, compare, compare_to_baseline, make_optimizer,
                                                   seeds_note, train_variants)
from utils.fanout import map_runs
from utils.history import History
from utils.train import fit

BASE = {"hidden": [16], "activation": "ReLU", "dropout": 0.0, "optimizer": "Adam", "lr": 1e-2, "batch": 4096}


class FakeCtx:
    seed = 0
    device = "cpu"
    cfg = SimpleNamespace(val_fraction=0.2, eval_batch_size=256)

    def seeds(self):
        return [0]

    def fit(self, model, train, val, **kw):
        kw.pop("description", None)
        return fit(model, train, val, **kw)

    def map(self, fn, items, description, info=None):
        return map_runs(fn, items, seed=self.seed, workers=2)  # forked workers, as on a 2-core machine


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 1, 4, 4, generator=g)
    y = (x.flatten(1).sum(1) > 0).long()
    xt = torch.randn(100, 1, 4, 4, generator=g)
    return SimpleNamespace(x_train=x, y_train=y, x_test=xt, y_test=(xt.flatten(1).sum(1) > 0).long(),
                           shape=(1, 4, 4), num_classes=2)


def test_train_variants_is_deterministic_and_keeps_divergence(single_torch_thread):
    settings = {"baseline": BASE, "same again": dict(BASE),
                "exploding": {**BASE, "optimizer": "SGD", "lr": 1e30}}
    variants, correct, models, n_train = train_variants(FakeCtx(), _data(), settings, epochs=40, keep=("baseline",))
    assert n_train == 160                                            # 200 minus the 20% validation split
    assert set(models) == {"baseline"} and not models["baseline"].training
    assert variants["baseline"].test_accuracy == variants["same again"].test_accuracy
    assert np.array_equal(correct["baseline"], correct["same again"]) and correct["baseline"].shape == (100,)
    assert variants["baseline"].accuracy > 0.7                      # a linearly separable toy problem
    assert variants["baseline"].parameters == 16 * 16 + 16 + 16 * 2 + 2
    c = compare(variants, correct, "same again", "baseline")
    assert c.winner is None and c.diff == 0
    assert variants["exploding"].status == ["diverged"] and not variants["exploding"].finished
    assert "exploding" not in correct and math.isnan(variants["exploding"].accuracy)
    assert compare_to_baseline(variants, correct, "baseline", ["exploding", "same again"]).keys() == {"same again"}


def test_compare_skips_a_diverged_variant():
    ok = Variant(BASE, History(), [0.9], ["done"], [1.0], 10)
    bad = Variant(BASE, History(status="diverged"), [math.nan], ["diverged"], [1.0], 10)
    right = np.ones(10, bool)
    assert compare({"a": ok, "b": bad}, {"a": right, "b": right}, "a", "b") is None
    assert math.isnan(bad.accuracy) and not bad.finished and ok.finished


@pytest.mark.parametrize("name,kind,momentum", [("Adam", torch.optim.Adam, None), ("SGD", torch.optim.SGD, 0),
                                                ("SGD+momentum", torch.optim.SGD, 0.9)])
def test_make_optimizer(name, kind, momentum):
    model = build_mlp({**BASE, "activation": "tanh", "dropout": 0.5}, 16, 3)
    assert isinstance(model.net[2], torch.nn.Tanh) and isinstance(model.net[3], torch.nn.Dropout)
    opt = make_optimizer({**BASE, "optimizer": name, "lr": 0.05}, model.parameters())
    assert isinstance(opt, kind) and opt.param_groups[0]["lr"] == 0.05
    if momentum is not None:
        assert opt.param_groups[0]["momentum"] == momentum
    with pytest.raises(ValueError):
        make_optimizer({**BASE, "optimizer": "Lion"}, model.parameters())


def test_seeds_note_names_the_rule():
    assert "McNemar" in seeds_note(1, 2000) and "0.05 points" in seeds_note(1, 2000)
    assert "seed spread" in seeds_note(3, 2000)
