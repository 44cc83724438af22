"""Section 8's helpers: Fréchet distance, histogram distances, diversity, triplet sampling, pairs, one-shot scoring."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments.s8_generative._shared import (contrastive_loss, fixed_pairs, frechet_distance, histogram_distance,
                                               interpolate, mean_pairwise_distance, one_shot_correct,
                                               one_shot_episodes, pixels_uint8, sample_triplets, train_gan,
                                               triplet_loss)


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # same covariance, means 2 apart in one coordinate: ‖Δμ‖² = 4
    assert frechet_distance(a, a + np.array([2.0, 0, 0])) == pytest.approx(4.0, abs=1e-6)
    # N(0, I) vs N(0, 4I) in 3-D: Tr(I + 4I − 2·2I) = 3
    b = rng.normal(size=(20000, 3)) * 2
    assert frechet_distance(a, b) == pytest.approx(3.0, rel=0.05)


def test_histogram_distance_extremes():
    assert histogram_distance([5, 5, 5, 5]) == {"total_variation": 0.0, "kl_from_uniform": 0.0, "top_class_share": 0.25}
    one = histogram_distance([0, 12, 0, 0])
    assert one["total_variation"] == pytest.approx(0.75) and one["kl_from_uniform"] == pytest.approx(np.log(4))
    assert one["top_class_share"] == 1.0


def test_mean_pairwise_distance_and_interpolation():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert mean_pairwise_distance(x) == pytest.approx(5.0)
    assert mean_pairwise_distance(torch.ones(50, 4)) == 0.0
    line = interpolate(torch.zeros(3), torch.ones(3) * 2, 5)
    assert torch.allclose(line[:, 0], torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0]))


def test_pixels_uint8_maps_tanh_range_to_bytes():
    out = pixels_uint8(torch.tensor([[-1.0, 0.0, 1.0, 3.0]]))
    assert out.dtype == np.uint8 and out.tolist() == [[0, 128, 255, 255]]


def test_sample_triplets_positives_share_the_class_and_negatives_do_not():
    y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 4, 4, 4])
    for seed in range(30):
        pos, neg = sample_triplets(y, seed)
        assert (y[pos] == y).all() and (pos != torch.arange(len(y))).all()
        assert (y[neg] != y).all()


def test_fixed_pairs_are_half_same_half_different():
    y = torch.arange(200) % 5
    i, j, same = fixed_pairs(y, 100, 0)
    assert same.sum() == 50 and ((y[i] == y[j]) == same.bool()).all() and len(set(i.tolist())) == 100


def test_losses_on_hand_made_embeddings():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])   # distance √2
    assert contrastive_loss(a, b, torch.tensor([1.0]), 1.0) == pytest.approx(1.0)      # ½·d²
    assert contrastive_loss(a, b, torch.tensor([0.0]), 1.0) == pytest.approx(0.0)      # beyond the margin
    assert contrastive_loss(a, a, torch.tensor([0.0]), 1.0) == pytest.approx(0.5)      # ½·margin²
    assert triplet_loss(a, a, b, 0.5) == pytest.approx(0.0)
    assert triplet_loss(a, b, a, 0.5) == pytest.approx(2 ** 0.5 + 0.5)


def test_one_shot_scores_nearest_support_and_skips_the_supports():
    emb = torch.tensor([[0.0], [0.1], [5.0], [5.2], [2.4]])
    y = torch.tensor([0, 0, 1, 1, 1])
    support = torch.tensor([[0, 2]])
    correct, asked = one_shot_correct(emb, y, support, torch.tensor([0, 1]))
    assert asked.tolist() == [[False, True, False, True, True]]
    assert correct.tolist() == [[False, True, False, True, False]]   # 2.4 is nearer 0 than 5
    sup, classes = one_shot_episodes(torch.arange(30) % 3, 7, 0)
    assert sup.shape == (7, 3) and ((torch.arange(30) % 3)[sup] == classes).all()


def test_train_gan_records_curves_and_snapshots():
    x = torch.rand(64, 16) * 2 - 1
    gen, disc, run = train_gan(x, epochs=2, lr=2e-4, beta1=0.5, batch_size=16, seed=0, noise_dim=8, hidden=8,
                               fixed_noise=torch.randn(4, 8), snapshot_epochs=(1, 2), on_snapshot=lambda g: 1.5,
                               points_per_epoch=2)
    assert len(run.d_loss) == 4 and run.epoch_at == [0.5, 1.0, 1.5, 2.0]
    assert set(run.snapshots) == {"1", "2"} and run.snapshots["2"].shape == (4, 16)
    assert run.frechet == {"1": 1.5, "2": 1.5}
    assert all(0 < v < 1 for v in run.d_real + run.d_fake)
