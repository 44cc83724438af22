"""8.1's write-up from hand-built results: mode collapse named from the histogram, the Adam settings' verdicts
from the comparison rule (tie vs a clear winner), the interpolation judged from its pixel steps."""
from __future__ import annotations

import numpy as np

from experiments.s8_generative._shared import GanRun
from experiments.s8_generative.t8_1_gan import BASELINE, Result, write_up
from utils.report import compare_seeds

CLASSES = [f"c{i}" for i in range(10)]


def _result(gen_counts, sweep, interpolation=None, sweep_images=1000):
    run = GanRun(d_loss=[1.2, 1.1], g_loss=[0.9, 0.8], d_real=[0.6, 0.58], d_fake=[0.45, 0.42],
                 epoch_at=[0.5, 1.0], epoch_seconds=[3.0], snapshots={"1": np.zeros((4, 4), np.uint8)},
                 frechet={"1": 30.0, "5": 12.5})
    interp = interpolation if interpolation is not None else np.linspace(0, 255, 10)[:, None].repeat(4, 1)
    comps = [compare_seeds(BASELINE, sweep[BASELINE], n, v, higher_is_better=False, percent=False,
                           metric="Fréchet distance") for n, v in sweep.items() if n != BASELINE]
    from experiments.s8_generative._shared import histogram_distance
    return Result("fashion-mnist (stand-in for mnist)", CLASSES, [1, 2, 2], 1000, "the network is task 4.3's", 0.9,
                  run, np.zeros((64, 4), np.uint8), interp.astype(np.uint8), sum(gen_counts), gen_counts,
                  [100] * 10, histogram_distance(gen_counts), histogram_distance([100] * 10),
                  {"generated": 9.0, "real": 10.0, "ratio": 0.9}, 12.5, 0.7, sweep, 2, comps, sweep_images)


def test_balanced_histogram_and_tied_settings():
    sweep = {BASELINE: [10.0, 11.0], "Adam lr 2e-4, β1 0.9": [10.5, 11.5], "Adam lr 1e-3, β1 0.5": [10.2, 10.9]}
    text = write_up(_result([100] * 10, sweep))
    assert "No sign of mode collapse" in text and "Every class gets at least 1%" in text
    assert text.count("No measurable difference") == 2 and " beats " not in text
    assert "12.50" in text and "0.70" in text and "after epoch 5" in text
    assert "The morph is gradual" in text


def test_collapsed_histogram_and_clear_winner_named():
    counts = [0] * 10
    counts[3] = 990
    counts[4] = 10
    sweep = {BASELINE: [10.0, 10.2], "Adam lr 2e-4, β1 0.9": [20.0, 21.0], "Adam lr 1e-3, β1 0.5": [10.1, 10.3]}
    step = np.array([0] * 5 + [255] * 5)[:, None].repeat(4, 1)
    text = write_up(_result(counts, sweep, step))
    assert "**Mode collapse**: nearly every sample is a c3" in text
    assert "Classes under 1% of the samples: c0, c1, c2, c5" in text
    assert "Adam lr 2e-4, β1 0.5 (course) beats Adam lr 2e-4, β1 0.9 in Fréchet distance" in text
    assert "No measurable difference between Adam lr 2e-4, β1 0.5 (course) and Adam lr 1e-3, β1 0.5" in text
    assert "jumps between outputs" in text


def test_partial_collapse_is_named_as_partial():
    counts = [300, 300, 100, 100, 50, 50, 50, 20, 20, 10]
    sweep = {BASELINE: [10.0, 11.0], "Adam lr 2e-4, β1 0.9": [10.5, 11.5], "Adam lr 1e-3, β1 0.5": [10.2, 10.9]}
    text = write_up(_result(counts, sweep))
    assert "**Partial mode collapse**" in text and "c0 takes 30%" in text


def test_a_sweep_on_fewer_images_says_so_and_is_not_compared_with_the_main_run():
    sweep = {BASELINE: [40.0, 41.0], "Adam lr 2e-4, β1 0.9": [40.5, 41.5], "Adam lr 1e-3, β1 0.5": [30.2, 30.9]}
    text = write_up(_result([100] * 10, sweep, sweep_images=250))
    assert "trained for 2 epoch(s) on the first 250 of the 1,000 training images with 2 seeds" in text
    assert "The main run above had 1 epochs on 1,000 images: these shorter runs" in text
    assert "not comparable with its 12.50" in text
    whole = write_up(_result([100] * 10, sweep, sweep_images=1000))   # all images, more epochs than the main run
    assert "first" not in whole.split("## Adam settings")[1] and "not comparable" not in whole


def test_a_sweep_with_fewer_epochs_than_the_main_run_is_not_compared_with_it():
    sweep = {BASELINE: [40.0, 41.0], "Adam lr 2e-4, β1 0.9": [40.5, 41.5], "Adam lr 1e-3, β1 0.5": [30.2, 30.9]}
    r = _result([100] * 10, sweep, sweep_images=1000)
    r.run.epoch_seconds = [3.0] * 5   # the main run: 5 epochs; the sweep: 2
    text = write_up(r).split("## Adam settings")[1]
    assert "first" not in text and "The main run above had 5 epochs on 1,000 images" in text
