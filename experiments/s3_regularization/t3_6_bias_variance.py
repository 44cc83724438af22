"""3.6 Bias–variance trade-off: polynomial degrees 1–20 on 30 noisy samples of sin(2πx).

For each degree the expected test error is split into bias², variance and noise, from two
families of fitted curves: bootstrap resamples of the one training set (all one has with real
data) and, because the generator is known, fresh training sets (the ground truth). The test
error is U-shaped; the lowest degree is called best only when the comparison rule separates it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from experiments.s3_regularization._shared import (bias_variance_decomposition, bootstrap_predictions, compare_mse,
                                                   fit_polynomial, smooth_target, tied_with_best)
from utils.plotting import legend_outside, plt
from utils.report import Comparison, table

BUDGET = {mode: {"max_degree": 20, "n_train": 30, "noise": 0.25, "n_test": 200, "n_models": n, "shown_fits": 25}
          for mode, n in (("tiny", 20), ("quick", 200), ("hybrid", 500), ("full", 1000))}
PARTS = ("bias_squared", "variance", "noise", "test_mse", "residual")


@dataclass
class Pick:
    """The degree with the lowest expected test MSE and how it compares with every other degree."""
    lowest: int
    against: dict[int, Comparison]

    def tied(self, degrees) -> list[int]:
        return tied_with_best(degrees, self.against)


@dataclass
class Result:
    degrees: list[int]
    n_train: int
    n_test: int
    noise: float
    n_models: int
    seeds: list[int]
    x: np.ndarray                       # the fixed, evenly spaced training inputs
    y0: np.ndarray                      # the first seed's training targets
    x_test: np.ndarray
    boot: dict[str, np.ndarray]         # part -> (seeds, degrees), bootstrap family
    fresh: dict[str, np.ndarray]        # part -> (seeds, degrees), fresh-training-set family (truth)
    single_train: np.ndarray            # (seeds, degrees): one fit on the training set
    single_test: np.ndarray
    rank_deficient: np.ndarray          # (degrees,) share of resamples with fewer distinct x than coefficients
    shown: dict[int, np.ndarray]        # degree -> (k, n_test) fits to fresh sets, first seed (under/best/over)
    pick_boot: Pick
    pick_fresh: Pick

    def mean(self, family: str, part: str) -> np.ndarray:
        return getattr(self, family)[part].mean(0)

    def at(self, family: str, part: str, d: int) -> float:
        return float(self.mean(family, part)[self.degrees.index(d)])


def _pick(degrees, per_seed: np.ndarray, per_point: dict[int, np.ndarray]) -> Pick:
    lowest = degrees[int(np.argmin(per_seed.mean(0)))]
    i = degrees.index(lowest)
    return Pick(lowest, {d: compare_mse(f"degree {lowest}", f"degree {d}", seeds_a=per_seed[:, i],
                                        seeds_b=per_seed[:, j], errors_a=per_point[lowest], errors_b=per_point[d], metric="expected test MSE")
                         for j, d in enumerate(degrees) if d != lowest})


def measure(ctx) -> Result:
    b = ctx.budget
    degrees = list(range(1, b.max_degree + 1))
    # A fixed, evenly spaced design: with random x a gap at the edge of [0, 1] alone sends a
    # high-degree fit to ±10⁶, and that would hide the trade-off behind a few such draws.
    x = np.linspace(0, 1, b.n_train)
    f_train = smooth_target(x)
    ctx.use_dataset("synthetic", note=f"y = sin(2πx) + N(0, {b.noise}²) at {b.n_train} evenly spaced x in [0, 1]")
    x_test = np.linspace(0, 1, b.n_test)
    f_test = smooth_target(x_test)
    seeds = ctx.seeds()
    shape = (len(seeds), len(degrees))
    boot = {k: np.zeros(shape) for k in PARTS}
    fresh = {k: np.zeros(shape) for k in PARTS}
    point = {"boot": {d: [] for d in degrees}, "fresh": {d: [] for d in degrees}}  # per-test-point MSE
    single_train, single_test = np.zeros(shape), np.zeros(shape)
    rank_deficient = np.zeros(len(degrees))
    first_fresh = {}
    with ctx.progress(len(seeds) * len(degrees), "polynomial fits") as bar, warnings.catch_warnings():
        # A bootstrap resample repeats points; with fewer distinct x than coefficients the
        # least-squares problem is under-determined and numpy warns, then returns the minimum-norm fit.
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        for si, s in enumerate(seeds):
            rng = np.random.default_rng(s)
            y = f_train + rng.normal(0, b.noise, b.n_train)
            y_test = f_test + rng.normal(0, b.noise, x_test.size)
            fresh_ys = f_train + rng.normal(0, b.noise, (b.n_models, b.n_train))
            for di, d in enumerate(degrees):
                def fit(xs, ys, d=d):
                    return fit_polynomial(xs, ys, d)
                preds = {"boot": bootstrap_predictions(x, y, x_test, fit, b.n_models, np.random.default_rng([s, d])),
                         "fresh": np.stack([fit(x, yf)(x_test) for yf in fresh_ys])}
                for family, table_ in (("boot", boot), ("fresh", fresh)):
                    for k, v in bias_variance_decomposition(preds[family], f_test, y_test).items():
                        table_[k][si, di] = v
                    point[family][d].append(((preds[family] - y_test) ** 2).mean(0))
                p = fit(x, y)
                single_train[si, di] = np.mean((p(x) - y) ** 2)
                single_test[si, di] = np.mean((p(x_test) - y_test) ** 2)
                if si == 0:
                    first_fresh[d] = preds["fresh"][:b.shown_fits]
                    # The same resamples again (same generator seed), to count their distinct points.
                    resample = np.random.default_rng([s, d]).integers(0, b.n_train, size=(b.n_models, b.n_train))
                    rank_deficient[di] = np.mean([len(np.unique(r)) < d + 1 for r in resample])
                bar.advance(1, info=f"seed {s} degree {d}")
            if si == 0:
                y0 = y
    picks = {fam: _pick(degrees, (boot if fam == "boot" else fresh)["test_mse"],
                        {d: np.concatenate(v) for d, v in point[fam].items()}) for fam in ("boot", "fresh")}
    shown_degrees = {degrees[0], picks["fresh"].lowest, degrees[-1]}
    r = Result(degrees, b.n_train, b.n_test, b.noise, b.n_models, seeds, x, y0, x_test, boot, fresh, single_train,
               single_test, rank_deficient, {d: first_fresh[d] for d in shown_degrees}, picks["boot"], picks["fresh"])
    record(ctx, r)
    return r


def record(ctx, r: Result) -> None:
    def per_degree(arr):
        return {str(d): float(v) for d, v in zip(r.degrees, arr)}

    def best(p: Pick):
        tied = p.tied(r.degrees)
        return p.lowest if len(tied) == 1 else "tie: degrees " + ", ".join(map(str, tied))

    tied = r.pick_fresh.tied(r.degrees)
    ctx.record(degrees=r.degrees, best_degree=best(r.pick_boot), lowest_test_mse_degree=r.pick_fresh.lowest,
               verdict=(f"degree {r.pick_fresh.lowest} beats all others" if len(tied) == 1 else
                        f"degrees {', '.join(map(str, tied))} tie"),
               bias_squared=per_degree(r.mean("boot", "bias_squared")), variance=per_degree(r.mean("boot", "variance")),
               noise=per_degree(r.mean("boot", "noise")), test_mse=per_degree(r.mean("boot", "test_mse")),
               decomposition_residual=per_degree(r.mean("boot", "residual")),
               test_mse_per_seed={str(d): r.boot["test_mse"][:, i] for i, d in enumerate(r.degrees)},
               fresh_data={"best_degree": best(r.pick_fresh), "lowest_test_mse_degree": r.pick_fresh.lowest,
                           "bias_squared": per_degree(r.mean("fresh", "bias_squared")),
                           "variance": per_degree(r.mean("fresh", "variance")),
                           "test_mse": per_degree(r.mean("fresh", "test_mse")),
                           "decomposition_residual": per_degree(r.mean("fresh", "residual"))},
               single_fit={"train_mse": per_degree(r.single_train.mean(0)),
                           "test_mse": per_degree(r.single_test.mean(0))},
               bootstrap_rank_deficient_share=per_degree(r.rank_deficient), noise_variance=r.noise ** 2,
               n_train=r.n_train, n_test=r.n_test, n_models=r.n_models, seeds=r.seeds,
               variance_exceeds_bias_from_degree={"bootstrap": crossing(r, "boot"), "fresh_data": crossing(r, "fresh")})


def crossing(r: Result, family: str):
    """First degree whose variance exceeds its bias², or None."""
    return next((d for d in r.degrees if r.at(family, "variance", d) > r.at(family, "bias_squared", d)), None)


def draw(ctx, r: Result) -> None:
    ticks = r.degrees[::2] if len(r.degrees) > 10 else r.degrees
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    for ax, family, name in ((axes[0], "boot", f"Bootstrap: {r.n_models} resamples of the one training set"),
                             (axes[1], "fresh", f"Ground truth: {r.n_models} fresh training sets")):
        m = {k: r.mean(family, k) for k in PARTS}
        ax.semilogy(r.degrees, m["test_mse"], "o-", color="k", markersize=4, label="expected test MSE (measured)")
        ax.semilogy(r.degrees, m["bias_squared"], "s-", color="#1f77b4", markersize=4, label="bias²")
        ax.semilogy(r.degrees, m["variance"], "^-", color="#d62728", markersize=4, label="variance")
        ax.semilogy(r.degrees, m["noise"], ":", color="0.4", label="noise (measured on the test targets)")
        ax.semilogy(r.degrees, m["bias_squared"] + m["variance"] + m["noise"], "--", color="#2ca02c",
                    linewidth=1.2, label="bias² + variance + noise")
        low = (r.pick_boot if family == "boot" else r.pick_fresh).lowest
        ax.axvline(low, color="#9467bd", linestyle="-.", linewidth=1, zorder=0, label="lowest expected test MSE")
        ax.set_xlabel("polynomial degree")
        ax.set_title(f"{name}\n(lowest test MSE at degree {low})")
        ax.set_xticks(ticks)
        ax.set_ylabel("mean squared error (log scale)")
    legend_outside(axes[1], sources=list(axes))
    fig.suptitle(f"Bias–variance decomposition, synthetic sin(2πx), {r.n_train} training points, noise σ = {r.noise} "
                 f"({ctx.mode} mode)", y=1.04)
    ctx.save_figure(fig, "decomposition")

    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    ax.semilogy(r.degrees, r.single_train.mean(0), "o-", markersize=4, label="train MSE (one fit on the training set)")
    ax.semilogy(r.degrees, r.single_test.mean(0), "s-", markersize=4, label="test MSE of that fit")
    ax.semilogy(r.degrees, r.mean("fresh", "test_mse"), "d-", markersize=4,
                label="expected test MSE, fresh training sets")
    top = 3 * max(r.single_test.mean(0).max(), r.mean("fresh", "test_mse").max())
    est = r.mean("boot", "test_mse")
    off = [d for d, v in zip(r.degrees, est) if v > top]
    ax.semilogy(r.degrees, est, "^--", markersize=4,
                label="expected test MSE, bootstrap estimate"
                + (f" (partly above the axis from degree {off[0]})" if off else ""))
    ax.axhline(r.noise ** 2, color="0.4", linestyle=":", label=f"noise variance σ² = {r.noise ** 2:.4f}")
    ax.set_ylim(min(r.single_train.mean(0).min(), r.noise ** 2) / 2, top)
    ax.set_xlabel("polynomial degree")
    ax.set_ylabel("mean squared error (log scale)")
    ax.set_xticks(ticks)
    ax.set_title(f"Test error vs degree, synthetic sin(2πx), {r.n_train} training points ({ctx.mode} mode)")
    legend_outside(ax)
    ctx.save_figure(fig, "test_error")

    shown = sorted(r.shown)
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown) + 1.5, 4.2), sharey=True)
    for ax, d in zip(np.atleast_1d(axes), shown):
        role = ("under-fit" if d == r.degrees[0] else "over-fit" if d == r.degrees[-1] else "lowest test MSE")
        for j, row in enumerate(r.shown[d]):
            ax.plot(r.x_test, row, color="#d62728", alpha=0.2, linewidth=0.8,
                    label="fits to fresh training sets" if j == 0 else None)
        ax.plot(r.x_test, np.mean(r.shown[d], 0), color="#d62728", linewidth=2, label="mean of the fits")
        ax.plot(r.x_test, smooth_target(r.x_test), color="k", linestyle="--", label="true f(x) = sin(2πx)")
        ax.scatter(r.x, r.y0, s=14, color="#1f77b4", zorder=3, label="one training set")
        ax.set_ylim(-2, 2)
        ax.set_xlabel("x")
        ax.set_title(f"degree {d} ({role})\nbias² {r.at('fresh', 'bias_squared', d):.3g}, "
                     f"variance {r.at('fresh', 'variance', d):.3g}")
    np.atleast_1d(axes)[0].set_ylabel("y")
    legend_outside(np.atleast_1d(axes)[-1])
    fig.suptitle(f"{len(r.shown[shown[0]])} of the {r.n_models} fits per degree, synthetic sin(2πx) ({ctx.mode} mode)",
                 y=1.04)
    ctx.save_figure(fig, "fits")


def write_up(r: Result) -> str:
    def g(v):
        return f"{v:.3g}" if v < 1e4 else f"{v:.1e}"

    def at(fam, part, d):
        return r.at(fam, part, d)

    lo, hi, best = r.degrees[0], r.degrees[-1], r.pick_fresh.lowest
    show = sorted({1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, best, r.pick_boot.lowest} & set(r.degrees))
    rows = [(d, *(g(at(f, k, d)) for f in ("fresh", "boot") for k in ("bias_squared", "variance", "test_mse")),
             f"{100 * r.rank_deficient[r.degrees.index(d)]:.0f}%") for d in show]
    tied = r.pick_fresh.tied(r.degrees)
    u_shape = best not in (lo, hi) and all(r.pick_fresh.against[d].winner == f"degree {best}" for d in (lo, hi))
    train = r.single_train.mean(0)
    below = next((d for d, v in zip(r.degrees, train) if v < r.noise ** 2), "—")
    if len(tied) == 1:
        best_text = f"the rule separates degree {best} from every other degree"
    else:
        best_text = (f"the rule cannot separate it from degree(s) {', '.join(str(d) for d in tied if d != best)}, "
                     f"so no single best degree is named")
    ends = [r.pick_fresh.against[d].sentence() for d in (lo, hi) if d != best]
    ct, cb = crossing(r, "fresh"), crossing(r, "boot")
    rel = {f: float(np.max(np.abs(r.mean(f, "residual")) / r.mean(f, "test_mse"))) for f in ("fresh", "boot")}
    agree = sum(at("boot", "test_mse", d) <= 1.5 * at("fresh", "test_mse", d) for d in r.degrees)
    sane = [d for d in r.degrees if 0.5 <= at("boot", "variance", d) / at("fresh", "variance", d) <= 2]
    overstated = [d for d in r.degrees if at("boot", "variance", d) > 2 * at("fresh", "variance", d)]
    distinct = r.n_train * (1 - (1 - 1 / r.n_train) ** r.n_train)
    half = next((d for d, v in zip(r.degrees, r.rank_deficient) if v > 0.5), "—")
    pb = r.pick_boot.lowest
    evidence = (f"the seed spread over {len(r.seeds)} seeds" if len(r.seeds) > 1 else
                f"a paired moving-block bootstrap over the {r.n_test} test points (blocks of {r.n_test // 20} "
                f"neighbours: a fitted curve's errors at nearby x are correlated)")
    return f"""
## Setup
{r.n_train} training points at evenly spaced x in [0, 1], y = sin(2πx) + Gaussian noise (σ = {r.noise}: irreducible
error σ² = {r.noise ** 2:.4f}); least-squares polynomials of degree {lo}–{hi}; {len(r.seeds)} seed{'s' if len(r.seeds) > 1 else ''}. For each degree the
expected squared error on {r.n_test} test inputs is split into **bias²** (distance of the average fitted curve from
sin(2πx)), **variance** (how much the fitted curve moves when the training data change) and **noise** (the test
targets' own scatter, measured). The family of fitted curves comes from **bootstrap** resamples of the one training
set ({r.n_models}, with replacement; all one has with real data) and from **fresh training sets** ({r.n_models} new
noise draws, possible because the generator is known): the ground truth. Differences in expected test MSE are
judged by {evidence}.

## Result
{table(["degree", "bias² (fresh)", "variance (fresh)", "test MSE (fresh)", "bias² (bootstrap)", "variance (bootstrap)",
        "test MSE (bootstrap)", "resamples under-determined"], rows)}

- **Test error is {'U-shaped' if u_shape else 'not U-shaped by the rule in this run'}** (`test_error.png`): on fresh
  data the expected test MSE is {at('fresh', 'test_mse', lo):.4f} at degree {lo}, lowest at degree {best}
  ({at('fresh', 'test_mse', best):.4f}, {at('fresh', 'test_mse', best) / r.noise ** 2:.2f}× σ²) and
  {g(at('fresh', 'test_mse', hi))} at degree {hi}; {best_text}. The training MSE only falls
  ({train[0]:.4f} → {train[-1]:.4f}, below σ² from degree {below}).
{chr(10).join('  - ' + s for s in ends)}
- **Bias² falls, variance rises** (`decomposition.png`, fresh data): bias² {at('fresh', 'bias_squared', lo):.4f} →
  {at('fresh', 'bias_squared', hi):.2g}, variance {at('fresh', 'variance', lo):.4f} → {g(at('fresh', 'variance', hi))}
  (degree {lo} → {hi}); {f'variance first exceeds bias² at degree {ct}' if ct else 'variance never exceeds bias²'}.
  At degree {lo} bias² is {at('fresh', 'bias_squared', lo) / at('fresh', 'variance', lo):.0f}× the variance: a line
  misses the sine the same way on every training set. At degree {hi} variance is
  {at('fresh', 'variance', hi) / max(at('fresh', 'bias_squared', hi), 1e-12):.0f}× the bias²: the curve follows the
  noise of whichever {r.n_train} points it saw (`fits.png`).
- **The parts add up**: bias² + variance + noise equals the measured expected test MSE to within
  {100 * rel['fresh']:.2f}% (fresh) and {100 * rel['boot']:.2f}% (bootstrap) at every degree; the remainder is the
  cross term between the fits and the test noise. Measured noise {at('boot', 'noise', lo):.4f} vs σ² = {r.noise ** 2:.4f}.

## How good is the bootstrap?
The bootstrap's lowest expected test MSE is at degree {pb} (fresh data: {best}){', the same degree' if pb == best else ''}.
Its expected test MSE was within 1.5× of the truth at {agree} of {len(r.degrees)} degrees. Its variance was within a
factor 2 of the true variance at degree(s) {', '.join(map(str, sane)) or 'none'} and more than twice it at
{len(overstated)} degree(s): at degree {lo} it was {at('boot', 'variance', lo) / at('fresh', 'variance', lo):.1f}× the
truth (resampling (x, y) pairs also makes the x positions random, which tilts a misspecified line; the fresh training
sets keep x fixed), and at degree {hi} {g(at('boot', 'variance', hi))} vs {g(at('fresh', 'variance', hi))}
{f'(it first puts variance above bias² at degree {cb})' if cb else ''}. A resample of {r.n_train} points holds on average
only {distinct:.0f} distinct ones, leaving gaps that a high-degree polynomial bridges with large swings, and from
degree {half} more than half the resamples have fewer distinct points than coefficients (under-determined fits). So
the bootstrap answers "what if I had about {distinct:.0f} distinct points" and overstates the variance of flexible
models; as a tool for choosing the degree it {'pointed to the same degree as the truth here' if pb == best else
f'pointed to degree {pb} instead of {best} here'}.
"""
