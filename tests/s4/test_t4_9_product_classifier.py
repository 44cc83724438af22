"""4.9: the step budget, augmentation, speed measurements, the comparison with 4.3, and the write-up's verdicts."""
from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from experiments.s4_cnn import t4_9_product_classifier as t49
from experiments.s4_cnn._shared_projects import (Baseline, baseline_from_43, compare_intervals, comparison_sentence,
                                                 inference_latency, product_augmentation, steps_plan)
from models import ProductClassifier, SmallCNN
from utils.history import History
from utils.report import compare_predictions

@pytest.fixture(autouse=True)
def _one_thread():
    """One torch and one BLAS thread: tiny NumPy/torch ops only wait for a second one on a busy CPU."""
    from utils.provenance import limit_threads

    with limit_threads(1):
        yield


def test_steps_plan_gives_small_data_enough_steps():
    assert steps_plan(1293, 64, 2, 300) == (64, 15)      # digits stand-in: 21 batches/epoch → 15 epochs, 315 steps
    assert steps_plan(10800, 64, 2, 300) == (64, 2)      # Fashion-MNIST QUICK: 169 batches/epoch already enough
    assert steps_plan(1293, 256, 10, 1000) == (161, 112)  # batch clipped to an eighth of the data
    assert steps_plan(40, 256, 1, 20) == (5, 3)


def test_product_augmentation_applies_what_was_asked():
    torch.manual_seed(0)
    x = torch.arange(28.0).repeat(64, 1, 28, 1)            # each row 0..27: a flip reverses it
    shifted = product_augmentation(flips=False, shifts=True, erasing=False)(x)
    mirrored = product_augmentation(flips=True, shifts=False, erasing=False)(x)
    assert product_augmentation(flips=False, shifts=False, erasing=False) is None
    assert shifted.shape == x.shape == mirrored.shape

    def decreasing(t):
        return (t[:, 0, 14, 10:18].diff(dim=-1) < 0).all(dim=-1)
    # Shifts of at most 2 pixels keep the middle of each row increasing; a flip makes it decrease.
    assert not decreasing(shifted).any()
    assert not torch.equal(shifted, x)
    flipped = decreasing(mirrored)
    assert 10 < int(flipped.sum()) < 54
    assert torch.equal(mirrored[flipped], x[flipped].flip(-1)) and torch.equal(mirrored[~flipped], x[~flipped])
    erased = product_augmentation(flips=False, shifts=False, erasing=True)(x)
    changed = (erased != x).flatten(1).any(1)
    assert 10 < int(changed.sum()) < 54                      # about half the images get a box
    assert torch.allclose(erased[changed][erased[changed] != x[changed]], x.mean())


class _Sleepy(torch.nn.Module):
    """A model whose forward pass takes at least 4 ms whatever the batch size."""

    def forward(self, x):
        time.sleep(0.004)
        return x.flatten(1)[:, :3]


def test_inference_latency_measures_the_forward_time_and_clips_batches():
    x = torch.randn(40, 1, 8, 8)
    res = inference_latency(_Sleepy(), x, (1, 32, 1000), warmup=1, repeats=3, single_repeats=5)
    assert set(res) == {1, 32, 40}                         # 1000 clipped to the 40 images there are
    assert res[1]["calls"] == 5 and res[32]["calls"] == 3
    for bs, r in res.items():
        assert 4.0 <= r["ms_per_batch"] < 100.0            # the sleep, plus scheduling noise
        assert r["ms_per_image"] == pytest.approx(r["ms_per_batch"] / bs)
    assert res[40]["images_per_second"] > 5 * res[1]["images_per_second"]  # batching amortises the fixed cost
    cut = inference_latency(_Sleepy(), x, (1,), warmup=0, repeats=1000, single_repeats=1000, max_seconds=0.0)
    assert cut[1]["calls"] == 5                           # stopped after the minimum of 5 timed calls


def test_product_classifier_shapes_and_channels_last_agreement():
    torch.manual_seed(0)
    for c, size in ((1, 28), (3, 32)):
        model = ProductClassifier(c, 10, size, width=4, convs_per_block=2, hidden=8).eval()
        x = torch.randn(3, c, size, size)
        out = model(x)
        assert out.shape == (3, 10)
        fast = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(fast, out, rtol=1e-4, atol=1e-5)


def test_compare_intervals_unpaired_rule():
    win = compare_intervals("A", 0.90, 1000, "B", 0.80, 1000)
    assert win.winner == "A" and win.p_value < 1e-6 and win.method == "binomial"
    assert win.half_width == pytest.approx(1.959964 * np.sqrt(0.09 / 1000 + 0.16 / 1000))
    tie = compare_intervals("A", 0.90, 360, "B", 0.89, 2000)
    assert tie.winner is None
    text = comparison_sentence(tie, 360, 2000)
    assert text.startswith("No measurable difference") and "unpaired two-proportion test" in text and "(360" in text
    near = compare_intervals("A", 0.8205, 2000, "B", 0.8215, 2000)   # shown as 82.0% and 82.2%
    assert "(82.0% vs 82.2%;" in comparison_sentence(near) and "Δ 0.2 ±" in comparison_sentence(near)


class _Prev:
    def __init__(self, dataset, metrics, state):
        self.dataset, self.metrics, self._state = dataset, metrics, state

    def load_weights(self):
        return self._state


def _ctx(prev):
    return SimpleNamespace(previous=lambda task_id: prev, cfg=SimpleNamespace(eval_batch_size=100),
                           device=torch.device("cpu"))


def test_baseline_from_43_pairs_predictions_or_says_why_not():
    torch.manual_seed(0)
    ds = SimpleNamespace(name="digits", shape=(1, 28, 28), num_classes=10, classes=[str(i) for i in range(10)],
                         x_test=torch.randn(50, 1, 28, 28), y_test=torch.arange(50) % 10)
    correct = np.ones(50, dtype=bool)
    assert "no finished run" in baseline_from_43(_ctx(None), ds, correct, "A").note
    other = baseline_from_43(_ctx(_Prev(["fashion-mnist"], {}, None)), ds, correct, "A")
    assert not other.available and "fashion-mnist, not digits" in other.note
    small = SmallCNN().eval()
    paired = baseline_from_43(_ctx(_Prev(["digits"], {"mode": "quick", "test_accuracy": 0.1, "test_examples": 50},
                                         small.state_dict())), ds, correct, "A")
    expected = (small(ds.x_test).argmax(1) == ds.y_test).float().mean().item()
    assert paired.available and paired.comparison.method == "mcnemar"
    assert paired.test_accuracy == pytest.approx(expected) and paired.comparison.value_b == pytest.approx(expected)
    unpaired = baseline_from_43(_ctx(_Prev(["digits"], {"mode": "full", "test_accuracy": 0.5, "test_examples": 360},
                                           {"bad": torch.zeros(1)})), ds, correct, "A")
    assert unpaired.comparison.method == "binomial" and unpaired.test_accuracy == 0.5


# ------------------------------------------------------------------ write_up on hand-built results
def _result(correct, base_correct=None, *, predicted_classes=10, mode="quick"):
    n = len(correct)
    cm = np.diag(np.full(10, n // 10))
    baseline = Baseline(note="task 4.3 has no finished run in this results folder")
    if base_correct is not None:
        baseline = Baseline(True, "4.3's saved network re-evaluated", "quick", float(base_correct.mean()), n,
                            {str(i): 0.8 for i in range(10)}, compare_predictions(t49.NAME, correct, "4.3 SmallCNN",
                                                                                   base_correct))
    hist = History(train_loss=[1.0, 0.5], train_acc=[0.7, 0.9], val_loss=[0.6, 0.4], val_acc=[0.8, 0.9], seconds=12.0)
    recipe = {"width": 32, "convs_per_block": 1, "hidden": 256, "parameters": 100000, "batch_size": 64, "epochs": 2,
              "max_lr": 3e-3, "weight_decay": 5e-4, "label_smoothing": 0.1, "train_examples": 10800,
              "val_examples": 1200, "augmentation": {"hflip": True, "shifts": False, "erasing": False},
              "target": 0.93 if mode == "hybrid" else None}
    lat = {"1": {"1": {"ms_per_image": 2.0, "images_per_second": 500.0, "ms_per_batch": 2.0, "calls": 100},
                 "256": {"ms_per_image": 0.1, "images_per_second": 10000.0, "ms_per_batch": 25.6, "calls": 10}}}
    return t49.Result("fashion-mnist", mode, [str(i) for i in range(10)], recipe, hist, 338, float(correct.mean()), n,
                      None, cm, predicted_classes, baseline, lat, 1, np.zeros((0, 28, 28)), [], [], [])


def test_write_up_calls_a_small_gap_with_4_3_a_tie():
    n = 2000
    correct = np.arange(n) % 10 != 0                    # 90.0%
    base = correct.copy()
    base[1:9] = False                                   # 8 images lost ...
    base[0:40:10] = True                                # ... and 4 gained: 89.8%, 12 discordant, inside the noise
    text = t49.write_up(_result(correct, base))
    assert "No measurable difference between 4.9 product CNN and 4.3 SmallCNN" in text
    assert "does **not** beat 4.3's SmallCNN" in text and "4.9 product CNN beats" not in text
    assert "338 optimizer steps" in text and "may be noise" not in text


def test_write_up_names_a_clear_win_over_4_3_and_a_target_miss():
    n = 2000
    correct = np.arange(n) % 10 != 0                    # 90%
    base = np.arange(n) % 5 != 0                        # 80%
    text = t49.write_up(_result(correct, base, mode="hybrid"))
    assert "4.9 product CNN beats 4.3 SmallCNN" in text and "as the section's best network should" in text
    assert "**misses** the HYBRID target of 93.0%" in text


def test_write_up_flags_collapsed_predictions_and_a_missing_baseline():
    text = t49.write_up(_result(np.arange(360) % 2 == 0, predicted_classes=2))
    assert "predicts only 2 of the 10 classes" in text
    assert "No comparison with task 4.3: task 4.3 has no finished run" in text


def test_write_up_says_training_used_one_thread_and_why():
    correct = np.arange(2000) % 10 != 0
    text = " ".join(t49.write_up(_result(correct, correct)).split())
    assert "on 1 CPU thread(s), so that the numbers do not depend on the machine's core count" in text
    gpu = " ".join(t49.write_up(dataclasses.replace(_result(correct, correct), train_threads=0)).split())
    assert "on the GPU" in gpu and "thread(s)" not in gpu.split("## Inference speed")[0]


def test_write_up_names_the_mistakes_figure_only_when_there_were_mistakes():
    correct = np.ones(2000, bool)
    perfect = _result(correct, correct)                     # no mistake: draw() makes no mistakes figure
    assert "confident_mistakes.png" not in t49.write_up(perfect)
    shown = dataclasses.replace(perfect, mistake_images=np.zeros((1, 28, 28)), mistake_true=[3], mistake_pred=[5],
                                mistake_confidence=[0.9])
    assert "`confident_mistakes.png`" in t49.write_up(shown)


def test_thread_verdict_needs_separate_quartiles():
    one = {"ms_per_image": 1.0, "ms_per_image_q1": 0.95, "ms_per_image_q3": 1.10}
    assert t49._thread_verdict(one, {"ms_per_image": 0.98, "ms_per_image_q1": 0.90, "ms_per_image_q3": 1.05}) \
        .startswith("no clear difference")               # 0.98×, but the middle halves overlap
    assert t49._thread_verdict(one, {"ms_per_image": 0.6, "ms_per_image_q1": 0.55, "ms_per_image_q3": 0.7}) == "faster"
    assert t49._thread_verdict(one, {"ms_per_image": 1.5, "ms_per_image_q1": 1.3, "ms_per_image_q3": 1.7}) == "slower"
    assert t49._thread_verdict({"ms_per_image": 1.0}, {"ms_per_image": 0.9}) == "faster, medians only"


def test_inference_latency_records_the_middle_half_of_the_calls():
    res = inference_latency(_Sleepy(), torch.randn(8, 1, 8, 8), (1,), warmup=0, repeats=5, single_repeats=9)
    r = res[1]
    assert r["ms_per_image_q1"] <= r["ms_per_image"] <= r["ms_per_image_q3"] and r["ms_per_image_q1"] >= 4.0
