"""Helpers of section 8: the GAN's training loop and its judges (class histogram, diversity, Fréchet
distance on a classifier's features), and the Siamese network's triplet sampling, losses and scoring."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import linalg

from models import GANDiscriminator, GANGenerator


# ----------------------------------------------------------------------------- GAN (8.1)
def to_unit_range(ds, x):
    """Normalised dataset images (N, C, H, W) -> flat pixels in [−1, 1] (N, C·H·W), the tanh's range."""
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.std).view(1, -1, 1, 1)
    return ((x * std + mean).clamp(0, 1) * 2 - 1).flatten(1)


def to_classifier_input(ds, flat):
    """Flat pixels in [−1, 1] -> the normalised (N, C, H, W) images the dataset's classifier expects."""
    c, h, w = ds.shape
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.std).view(1, -1, 1, 1)
    return ((flat.view(-1, c, h, w) + 1) / 2 - mean) / std


@dataclass
class GanRun:
    """One GAN training run: per-step curves averaged over ``points_per_epoch`` blocks per epoch."""
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    d_real: list[float] = field(default_factory=list)      # mean D(x) on real batches
    d_fake: list[float] = field(default_factory=list)      # mean D(G(z)) on generated batches (D step)
    epoch_at: list[float] = field(default_factory=list)    # x coordinate of each point, in epochs
    epoch_seconds: list[float] = field(default_factory=list)
    snapshots: dict[str, np.ndarray] = field(default_factory=dict)  # epoch -> fixed-noise samples
    frechet: dict[str, float] = field(default_factory=dict)          # epoch -> Fréchet distance


def train_gan(x, *, epochs: int, lr: float, beta1: float, batch_size: int, seed: int, noise_dim: int = 100,
              hidden: int = 128, fixed_noise=None, snapshot_epochs=(), on_snapshot=None, points_per_epoch: int = 10,
              progress=None):
    """Train the course's GAN on flat images ``x`` in [−1, 1] with alternating D and G steps (BCE, Adam).

    D step: maximise log D(x) + log(1 − D(G(z))); G step: the non-saturating loss −log D(G(z)) on a fresh
    batch of noise. At each epoch in ``snapshot_epochs`` the generator's output for ``fixed_noise`` is kept
    (as uint8 pixels in [0, 255]) and ``on_snapshot(generator)`` may return a number (the Fréchet distance).
    """
    torch.manual_seed(seed)
    gen, disc = GANGenerator(noise_dim, hidden, x.shape[1]), GANDiscriminator(x.shape[1], hidden)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(beta1, 0.999))
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    batch_size = min(batch_size, max(8, n // 4))
    run = GanRun()
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        steps = []
        for i in range(0, n - batch_size + 1, batch_size):
            real = x[perm[i:i + batch_size]]
            b = len(real)
            fake = gen(torch.randn(b, noise_dim, generator=g))
            p_real, p_fake = disc(real), disc(fake.detach())
            d_loss = F.binary_cross_entropy(p_real, torch.ones(b)) + F.binary_cross_entropy(p_fake, torch.zeros(b))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            p_gen = disc(gen(torch.randn(b, noise_dim, generator=g)))
            g_loss = F.binary_cross_entropy(p_gen, torch.ones(b))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            steps.append((d_loss.item(), g_loss.item(), p_real.mean().item(), p_fake.mean().item()))
        run.epoch_seconds.append(time.perf_counter() - start)
        blocks = np.array_split(np.asarray(steps), min(points_per_epoch, len(steps)))
        for k, blk in enumerate(blocks):
            d, gl, dr, df = blk.mean(0)
            run.d_loss.append(float(d)), run.g_loss.append(float(gl))
            run.d_real.append(float(dr)), run.d_fake.append(float(df))
            run.epoch_at.append(epoch - 1 + (k + 1) / len(blocks))
        if epoch in snapshot_epochs and fixed_noise is not None:
            gen.eval()
            with torch.no_grad():
                run.snapshots[str(epoch)] = pixels_uint8(gen(fixed_noise))
            if on_snapshot is not None:
                run.frechet[str(epoch)] = float(on_snapshot(gen))
            gen.train()
        if progress is not None:
            progress.advance(1, info=f"epoch {epoch}: D {run.d_loss[-1]:.3f}, G {run.g_loss[-1]:.3f}")
    return gen.eval(), disc.eval(), run


def pixels_uint8(flat):
    """Flat tanh outputs in [−1, 1] -> uint8 pixels (N, C·H·W) in [0, 255] (compact in result.json)."""
    return ((flat.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def generate(gen, n: int, seed: int, chunk: int = 5000):
    """``n`` generated images (flat, in [−1, 1]) from seeded noise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return torch.cat([gen(torch.randn(min(chunk, n - i), gen.noise_dim, generator=g))
                          for i in range(0, n, chunk)])


def interpolate(z0, z1, steps: int):
    """``steps`` points on the straight line from z0 to z1 (both ends included): (steps, dim)."""
    t = torch.linspace(0, 1, steps).view(-1, 1)
    return (1 - t) * z0.view(1, -1) + t * z1.view(1, -1)


@torch.no_grad()
def classifier_features(model, x, batch_size: int = 1000):
    """(logits, penultimate features) of a SmallCNN: the features are the FC-128 layer after its ReLU."""
    logits, feats = [], []
    head = model.classifier
    for i in range(0, len(x), batch_size):
        f = head[:3](model.features(x[i:i + batch_size]))        # Flatten → Linear → ReLU
        feats.append(f)
        logits.append(head[3:](f))                                 # Dropout (off in eval) → Linear
    return torch.cat(logits), torch.cat(feats)


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` and ``b`` (rows = examples):
    ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) — the FID formula, here on whatever features are given."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # a singular product (fewer examples than features) is handled below
        warnings.simplefilter("ignore")
        root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(root).all():  # near-singular product: nudge both diagonals, as the FID code does
        eps = 1e-6 * np.eye(len(mu_a))
        root = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * np.real(root)))
    return max(value, 0.0)


def histogram_distance(counts) -> dict[str, float]:
    """How far a class histogram is from uniform: total variation (0 = uniform, 1 − 1/K = one class only),
    KL(p ‖ uniform) in nats (log K for one class), and the share of the commonest class."""
    p = np.asarray(counts, dtype=float)
    p = p / p.sum()
    k = len(p)
    nz = p[p > 0]
    return {"total_variation": float(0.5 * np.abs(p - 1 / k).sum()),
            "kl_from_uniform": float((nz * np.log(nz * k)).sum()),
            "top_class_share": float(p.max())}


def mean_pairwise_distance(x, n: int = 1000, seed: int = 0) -> float:
    """Mean Euclidean distance between distinct rows of the first ``n`` of a random order of ``x``."""
    x = torch.as_tensor(x, dtype=torch.float32)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    d = torch.cdist(x[idx], x[idx])
    m = len(idx)
    return float(d.sum() / max(m * (m - 1), 1))


# ----------------------------------------------------------------------------- Siamese (8.2)
def sample_triplets(y, seed: int):
    """For every anchor i: a positive (another example of y[i]'s class, when it has one) and a negative
    (an example of a different class, chosen uniformly among the other classes). Vectorised."""
    y = torch.as_tensor(y)
    g = torch.Generator().manual_seed(seed)
    classes, y_idx = torch.unique(y, return_inverse=True)
    k = len(classes)
    order = torch.argsort(y_idx, stable=True)
    counts = torch.bincount(y_idx, minlength=k)
    offsets = torch.cumsum(counts, 0) - counts

    position = torch.empty_like(order)
    position[order] = torch.arange(len(y))
    rank = position - offsets[y_idx]                       # each anchor's place inside its class block
    others = (counts[y_idx] - 1).clamp(min=1)
    r = (torch.rand(len(y), generator=g) * others).long().clamp(max=others - 1)
    r = torch.where((r >= rank) & (counts[y_idx] > 1), r + 1, r)   # skip the anchor itself
    pos = order[offsets[y_idx] + r]

    def pick(cls):
        r = (torch.rand(len(cls), generator=g) * counts[cls]).long().clamp(max=counts[cls] - 1)
        return order[offsets[cls] + r]

    shift = torch.randint(1, max(k, 2), (len(y),), generator=g) if k > 1 else torch.zeros(len(y), dtype=torch.long)
    neg = pick((y_idx + shift) % k)
    return pos, neg


def contrastive_loss(ea, eb, same, margin: float):
    """Hadsell et al.: same pairs pulled together (d²), different pairs pushed beyond the margin."""
    d = (ea - eb).norm(dim=1)
    return (same * d ** 2 + (1 - same) * F.relu(margin - d) ** 2).mean() / 2


def triplet_loss(ea, ep, en, margin: float):
    """max(0, d(a, p) − d(a, n) + margin), averaged."""
    return F.relu((ea - ep).norm(dim=1) - (ea - en).norm(dim=1) + margin).mean()


@torch.no_grad()
def embed(encoder: nn.Module, x, batch_size: int = 1000):
    encoder.eval()
    return torch.cat([encoder(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def fixed_pairs(y, n: int, seed: int):
    """``n`` pairs of indices into ``y``, half same-class and half different-class: (i, j, same)."""
    n = min(n, len(y))
    anchors = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    pos, neg = sample_triplets(torch.as_tensor(y)[anchors], seed + 1)
    # pos/neg index into the anchor subset; map back to the full set
    half = n // 2
    j = torch.cat([anchors[pos[:half]], anchors[neg[half:]]])
    same = torch.cat([torch.ones(half), torch.zeros(n - half)])
    return anchors, j, same


def one_shot_episodes(y, n_episodes: int, seed: int):
    """Episodes of one-shot classification: per episode one support example per class (indices,
    (episodes, classes)) drawn at random; every other example is a query. Returns (support, classes)."""
    y = torch.as_tensor(y)
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    support = torch.stack([torch.nonzero(y == c)[:, 0][torch.randint(0, int((y == c).sum()), (n_episodes,),
                                                                       generator=g)] for c in classes], 1)
    return support, classes


def one_shot_correct(emb, y, support, classes):
    """Per episode and query, whether the nearest support embedding has the query's class: (episodes, N)
    booleans; a query that is the episode's own support example counts as not asked (False and masked)."""
    emb, y = torch.as_tensor(emb), torch.as_tensor(y)
    e, k = support.shape
    d = torch.cdist(emb[support.flatten()], emb).view(e, k, -1)                   # (E, classes, N)
    pred = classes[d.argmin(1)]                                                       # (E, N)
    asked = torch.ones_like(pred, dtype=torch.bool)
    asked.scatter_(1, support, False)
    return (pred == y.unsqueeze(0)) & asked, asked
