"""Helpers several section-3 tasks use.

- the smooth target and polynomial fits of 3.1 and 3.6, and the bias–variance split of 3.6;
- the small image subset, the MLP and its training recipe of 3.2–3.5 (and the weight
  penalties, sparsity and pruning of 3.3–3.4);
- the comparison rule for cases utils.report does not cover directly: test MSE (3.1, 3.6) and
  the generalization gap (3.2), both falling back on utils.report's Comparison.
"""
from __future__ import annotations

import numpy as np
import torch

from models import MLP
from utils.data import train_val_split
from utils.report import ALPHA, Comparison, compare_errors, compare_predictions, compare_seeds, pct, spread
from utils.train import predict


# ----------------------------------------------------------------------------- polynomials (3.1, 3.6)
def smooth_target(x):
    """The smooth function behind the noisy samples of 3.1 and 3.6: f(x) = sin(2πx)."""
    return np.sin(2 * np.pi * x)


def fit_polynomial(x, y, degree: int):
    """Least-squares polynomial on a scaled domain (numerically stable even at degree 15+)."""
    from numpy.polynomial import Polynomial

    return Polynomial.fit(x, y, degree, domain=[0, 1])


def bootstrap_predictions(x, y, x_eval, fit, n_boot: int, rng):
    """Predictions at ``x_eval`` of ``fit(x_b, y_b)`` for ``n_boot`` bootstrap resamples: (n_boot, len(x_eval)).

    Each resample draws len(x) points from (x, y) with replacement; ``fit`` returns a callable model.
    """
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    return np.stack([fit(x[i], y[i])(x_eval) for i in idx])


def bias_variance_decomposition(predictions, f_true, y_test) -> dict:
    """Split the expected squared error of a family of fitted models into bias², variance and noise.

    predictions: (n_models, n_points), each row one fitted model's predictions at the test inputs;
    f_true: the noise-free target there; y_test: noisy observations there. Averaged over the points:
    bias² = (mean prediction − f)², variance = spread of the predictions around their mean,
    noise = (y − f)², test_mse = (prediction − y)² over all models. test_mse equals
    bias² + variance + noise up to the cross term 2·(mean prediction − f)·(f − y), which
    averages to zero when the test noise is independent of the fits (returned as ``residual``).
    """
    predictions = np.asarray(predictions, dtype=float)
    mean_prediction = predictions.mean(axis=0)
    out = {
        "bias_squared": float(np.mean((mean_prediction - f_true) ** 2)),
        "variance": float(np.mean(predictions.var(axis=0))),
        "noise": float(np.mean((y_test - f_true) ** 2)),
        "test_mse": float(np.mean((predictions - y_test) ** 2)),
    }
    out["residual"] = out["test_mse"] - out["bias_squared"] - out["variance"] - out["noise"]
    return out


def compare_mse(name_a: str, name_b: str, *, seeds_a, seeds_b, errors_a, errors_b,
                metric: str = "test MSE", blocks: int = 20) -> Comparison:
    """The rule for squared errors: seed spread with several seeds, else a paired moving-block
    bootstrap over the test points (``errors_*``: per-point squared errors on the same points, in
    order along x). A fitted curve's errors at neighbouring x are correlated, so the points are
    resampled in ``blocks`` runs of neighbours rather than one by one."""
    if len(seeds_a) > 1 and len(seeds_b) > 1:
        return compare_seeds(name_a, seeds_a, name_b, seeds_b, higher_is_better=False, percent=False,
                             metric=metric)
    n = np.asarray(errors_a).size
    return compare_errors(name_a, errors_a, name_b, errors_b, metric=metric, block=max(1, n // blocks),
                          unit="test points (moving blocks of neighbours)")


def compare_accuracy(name_a: str, name_b: str, *, seeds_a, seeds_b, correct_a, correct_b,
                     metric: str = "test accuracy", unit: str = "test images") -> Comparison:
    """utils.report.compare_runs with the examples named: seed spread with several seeds per side,
    else McNemar on the (last seed's) paired right/wrong of the same ``unit``."""
    if len(seeds_a) > 1 and len(seeds_b) > 1:
        return compare_seeds(name_a, seeds_a, name_b, seeds_b, metric=metric)
    return compare_predictions(name_a, correct_a, name_b, correct_b, metric=metric, unit=unit)


def tied_with_best(names, comparisons: dict) -> list:
    """The candidates the rule cannot separate from the best one: the best itself plus every
    other whose comparison against it (``comparisons[name]``) has no winner."""
    return [n for n in names if n not in comparisons or comparisons[n].winner is None]


# ----------------------------------------------------------------------------- image MLPs (3.2–3.5)
def image_subset(ctx, n_train: int, n_val: int):
    """The task's image data cut to ``n_train + n_val`` training images, then split into train and
    validation in that proportion. On a smaller dataset (the 1,437-image digits stand-in) all its
    training images are used, split in the same proportion. Returns (ds, (x, y) train, (x, y) val)."""
    ds = ctx.load_images("mnist", train_size=n_train + n_val)
    train, val = train_val_split(ds.x_train, ds.y_train, n_val / (n_train + n_val), seed=ctx.seed)
    return ds, train, val


def make_mlp(ds, seed: int, hidden=(512, 256, 128), **options):
    """models.MLP for ``ds``; the seed fixes the initial weights, so variants of a seed start alike."""
    torch.manual_seed(seed)
    return MLP(int(np.prod(ds.shape)), tuple(hidden), ds.num_classes, **options)


def weight_matrices(model) -> list:
    """The weight matrices of a network (biases and normalisation scales excluded)."""
    return [p for p in model.parameters() if p.ndim >= 2]


def abs_weights(model) -> np.ndarray:
    """|w| of all weight matrices as one NumPy vector."""
    return torch.cat([p.detach().abs().flatten().cpu() for p in weight_matrices(model)]).numpy()


def add_weight_penalty(model, kind: str, lam: float) -> None:
    """Train ``model`` with the penalty λ·Σ|w| ("l1") or λ·Σw² ("l2") on its weight matrices.

    The penalty's gradient (λ·sign(w) or 2λ·w) is added to each weight's gradient by a hook
    during backward, so the cross-entropy that fit() reports stays the plain data loss and
    train/validation losses remain comparable. Biases are not penalised, as usual.
    """
    if kind not in ("l1", "l2"):
        raise ValueError(f"penalty kind must be 'l1' or 'l2', got {kind!r}")
    for p in weight_matrices(model):
        if kind == "l1":
            p.register_hook(lambda g, p=p: g + lam * torch.sign(p.detach()))
        else:
            p.register_hook(lambda g, p=p: g + 2 * lam * p.detach())


def weight_penalty(model, kind: str, lam: float) -> float:
    """The value of the penalty of add_weight_penalty for the current weights."""
    return float(lam * sum((p.detach().abs() if kind == "l1" else p.detach() ** 2).sum()
                           for p in weight_matrices(model)))


def near_zero_share(values, threshold: float) -> float:
    """Share of entries with |value| < threshold (the sparsity measure of 3.4)."""
    values = np.abs(np.asarray(values, dtype=float))
    return float((values < threshold).mean()) if values.size else 0.0


def prune_small_weights(model, threshold: float) -> int:
    """Set weights with |w| < threshold to exactly zero (in place); return how many were zeroed."""
    zeroed = 0
    with torch.no_grad():
        for p in weight_matrices(model):
            small = p.abs() < threshold
            zeroed += int(small.sum())
            p[small] = 0.0
    return zeroed


def train_mlp(ctx, ds, train, val, *, seed: int, epochs: int, lr: float = 1e-3,
              penalty: tuple[str, float] | None = None, description: str = "MLP", hidden=(512, 256, 128),
              patience: int | None = None, **options):
    """Train make_mlp(ds, seed, hidden, **options) with Adam; return (model, History).

    The seed fixes the initial weights and the batch order, so the variants of one comparison
    start alike and see the same batches. The batch size is the preset's, clipped so that a
    small stand-in still gets at least eight steps per epoch.
    """
    model = make_mlp(ds, seed, hidden, **options)
    if penalty is not None and penalty[1] > 0:
        add_weight_penalty(model, *penalty)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batch_size = min(ctx.cfg.batch_size, max(8, len(train[1]) // 8))
    history = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, seed=seed, description=description,
                      batch_size=batch_size, patience=patience)
    return model, history


def correct(ctx, model, x, y) -> np.ndarray:
    """Per-example right/wrong (bool) of ``model`` (eval mode) on (x, y): the paired input of the rule."""
    out = predict(model, x, ctx.cfg.eval_batch_size, ctx.device)
    return (out.argmax(1) == y.cpu()).numpy()


def over_seeds(values, fmt=pct) -> str:
    """'91.2% ± 0.3% (3 seeds)' with several seeds, plain '91.2%' with one."""
    return spread(values, fmt=fmt) if len(values) > 1 else fmt(values[0])


def log_histogram(values, bins: np.ndarray) -> np.ndarray:
    """Counts of |values| in log-spaced ``bins``; values below the first edge land in the first bin."""
    return np.histogram(np.clip(np.abs(values), bins[0], bins[-1]), bins)[0]


def lambda_label(lam: float) -> str:
    return "0" if lam == 0 else f"{lam:.0e}".replace("e-0", "e-")


# ----------------------------------------------------------------------------- the generalization gap (3.2)
def compare_gaps(name_a: str, name_b: str, *, seeds_a=(), seeds_b=(), train_a=None, train_b=None,
                 test_a=None, test_b=None, n_boot: int = 2000, seed: int = 0) -> Comparison:
    """The rule for the generalization gap (train accuracy − test accuracy; smaller is better).

    Several seeds: the seed spread (compare_seeds). One seed: a paired bootstrap that resamples
    the training and the test examples independently (``train_*``/``test_*``: per-example
    right/wrong of the two models on the same examples); the gap difference counts when its
    95% interval excludes zero.
    """
    metric = "generalization gap (train − test accuracy)"
    if len(seeds_a) > 1 and len(seeds_b) > 1:
        return compare_seeds(name_a, seeds_a, name_b, seeds_b, higher_is_better=False, metric=metric)
    tr = np.asarray(train_a, float) - np.asarray(train_b, float)
    te = np.asarray(test_a, float) - np.asarray(test_b, float)
    rng = np.random.default_rng(seed)
    boots = (tr[rng.integers(0, tr.size, (n_boot, tr.size))].mean(1)
             - te[rng.integers(0, te.size, (n_boot, te.size))].mean(1))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    diff = float(tr.mean() - te.mean())
    p = max(float(min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean()))), 1.0 / n_boot)
    if lo <= 0 <= hi:
        p = max(p, ALPHA)
    gap_a = float(np.mean(train_a) - np.mean(test_a))
    gap_b = float(np.mean(train_b) - np.mean(test_b))
    return Comparison(name_a, name_b, gap_a, gap_b, diff, float(max(hi - diff, diff - lo)), "bootstrap",
                      int(tr.size + te.size), False, p, True, metric, "training and test images")


# ----------------------------------------------------------------------------- spread of estimates (3.8)
def compare_spread(name_a: str, a, name_b: str, b, *, n_boot: int = 2000, seed: int = 0) -> Comparison:
    """The rule for two sets of independent estimates' standard deviations (smaller is better): a
    bootstrap that resamples each set on its own; the difference counts when its 95% interval
    excludes zero."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    boots = (a[rng.integers(0, a.size, (n_boot, a.size))].std(1, ddof=1)
             - b[rng.integers(0, b.size, (n_boot, b.size))].std(1, ddof=1))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    diff = float(a.std(ddof=1) - b.std(ddof=1))
    p = max(float(min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean()))), 1.0 / n_boot)
    if lo <= 0 <= hi:
        p = max(p, ALPHA)
    return Comparison(name_a, name_b, float(a.std(ddof=1)), float(b.std(ddof=1)), diff,
                      float(max(hi - diff, diff - lo)), "bootstrap_unpaired", int(a.size + b.size), False, p, True,
                      "standard deviation of the accuracy estimate", "estimates")
