"""3.1 Polynomial regression: under- and over-fitting.

Twenty noisy samples of sin(2πx) are fitted by least squares with polynomials of degree 1, 3
and 15. Each degree is named from its numbers: too simple to fit even the training points
(under-fit), fitting them below the noise level but failing on new points (over-fit), or the
lowest test error — called best only when the comparison rule separates it from the others.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.s3_regularization._shared import compare_mse, fit_polynomial, smooth_target, tied_with_best
from utils.plotting import legend_outside, plt
from utils.report import Comparison, table

BUDGET = {mode: {"degrees": [1, 3, 15], "n_train": 20, "noise": 0.25, "n_test": 500, "curve_max_degree": 15}
          for mode in ("tiny", "quick", "hybrid", "full")}


@dataclass
class Result:
    degrees: list[int]
    n_train: int
    n_test: int
    noise: float
    seeds: list[int]
    train_mse: dict[int, list[float]]        # per seed
    test_mse: dict[int, list[float]]         # per seed, on fresh noisy test points
    x_train: np.ndarray                      # the first seed's training set
    y_train: np.ndarray
    x_grid: np.ndarray
    fit_curves: dict[int, np.ndarray]        # the first seed's fitted curves on x_grid
    curve_degrees: list[int]                 # 1 … curve_max_degree, first seed
    curve_train_mse: list[float]
    curve_test_mse: list[float]
    lowest: int                              # degree with the lowest mean test MSE
    against_lowest: dict[int, Comparison]    # lowest vs each other degree (test MSE)

    def mean(self, table_: dict[int, list[float]], d: int) -> float:
        return float(np.mean(table_[d]))

    @property
    def tied(self) -> list[int]:
        return tied_with_best(self.degrees, self.against_lowest)

    def label(self, d: int) -> str:
        """Under-, over- or well-fit, from the numbers (σ² is the floor a perfect model reaches)."""
        tr, te, var = self.mean(self.train_mse, d), self.mean(self.test_mse, d), self.noise ** 2
        if d == self.lowest:
            return "well-fit" if len(self.tied) == 1 else "lowest test MSE (tie)"
        if tr > 2 * var:
            return "under-fit"       # cannot even fit the training data down to the noise level
        if te > 1.5 * tr:
            return "over-fit"        # fits the training points (below σ²) but fails on new ones
        return "fits acceptably"


def measure(ctx) -> Result:
    b = ctx.budget
    ctx.use_dataset("synthetic", note=f"y = sin(2πx) + N(0, {b.noise}²), {b.n_train} training points, x ~ U(0, 1)")
    seeds = ctx.seeds()
    x_grid = np.linspace(0, 1, b.n_test)
    f_grid = smooth_target(x_grid)
    train_mse = {d: [] for d in b.degrees}
    test_mse = {d: [] for d in b.degrees}
    errors = {d: [] for d in b.degrees}          # per-point squared test errors, all seeds
    for s in seeds:
        rng = np.random.default_rng(s)
        x = np.sort(rng.uniform(0, 1, b.n_train))
        y = smooth_target(x) + rng.normal(0, b.noise, b.n_train)
        y_test = f_grid + rng.normal(0, b.noise, x_grid.size)  # fresh noisy test draws
        if s == seeds[0]:
            x0, y0, y_test0 = x, y, y_test
        for d in b.degrees:
            p = fit_polynomial(x, y, d)
            train_mse[d].append(float(np.mean((p(x) - y) ** 2)))
            errors[d].append((p(x_grid) - y_test) ** 2)
            test_mse[d].append(float(errors[d][-1].mean()))
    lowest = min(b.degrees, key=lambda d: np.mean(test_mse[d]))
    against = {d: compare_mse(f"degree {lowest}", f"degree {d}", seeds_a=test_mse[lowest], seeds_b=test_mse[d],
                              errors_a=np.concatenate(errors[lowest]), errors_b=np.concatenate(errors[d]))
               for d in b.degrees if d != lowest}
    curve = list(range(1, b.curve_max_degree + 1))
    fits = [fit_polynomial(x0, y0, d) for d in curve]
    r = Result(list(b.degrees), b.n_train, b.n_test, b.noise, seeds, train_mse, test_mse, x0, y0, x_grid,
               {d: fit_polynomial(x0, y0, d)(x_grid) for d in b.degrees}, curve,
               [float(np.mean((p(x0) - y0) ** 2)) for p in fits],
               [float(np.mean((p(x_grid) - y_test0) ** 2)) for p in fits], lowest, against)
    runner_up = min(against, key=lambda d: np.mean(test_mse[d]))
    tied = r.tied
    ctx.record(degrees=r.degrees, train_mse={str(d): r.mean(train_mse, d) for d in r.degrees},
               test_mse={str(d): r.mean(test_mse, d) for d in r.degrees},
               train_mse_per_seed={str(d): v for d, v in train_mse.items()},
               test_mse_per_seed={str(d): v for d, v in test_mse.items()},
               fit_label={str(d): r.label(d) for d in r.degrees}, lowest_test_mse_degree=lowest,
               best_degree=lowest if len(tied) == 1 else "tie: degrees " + ", ".join(map(str, tied)),
               verdict=against[runner_up].verdict(), noise_variance=b.noise ** 2, n_train=b.n_train,
               n_test=b.n_test, seeds=seeds)
    return r


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(1, len(r.degrees), figsize=(4 * len(r.degrees) + 1.5, 3.9), sharey=True)
    for ax, d in zip(np.atleast_1d(axes), r.degrees):
        ax.plot(r.x_grid, smooth_target(r.x_grid), color="0.3", linestyle="--", label="true f(x) = sin(2πx)")
        ax.scatter(r.x_train, r.y_train, s=18, color="#1f77b4", zorder=3, label="training samples (first seed)")
        ax.plot(r.x_grid, r.fit_curves[d], color="#d62728", label="least-squares polynomial fit")
        ax.set_ylim(-2, 2)
        ax.set_title(f"degree {d}: {r.label(d)}\ntrain MSE {r.mean(r.train_mse, d):.3f}, "
                     f"test MSE {r.mean(r.test_mse, d):.3g}")
        ax.set_xlabel("x")
    np.atleast_1d(axes)[0].set_ylabel("y")
    legend_outside(np.atleast_1d(axes)[-1])
    fig.suptitle(f"Polynomial fits to {r.n_train} noisy samples of sin(2πx) "
                 f"(synthetic, noise σ = {r.noise}; {ctx.mode} mode)", y=1.05)
    ctx.save_figure(fig, "fits")

    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.semilogy(r.curve_degrees, r.curve_train_mse, "o-", label="train MSE")
    ax.semilogy(r.curve_degrees, r.curve_test_mse, "s-", label=f"test MSE ({r.n_test} fresh points)")
    ax.axhline(r.noise ** 2, color="0.4", linestyle=":", label=f"noise variance σ² = {r.noise ** 2:.4f}")
    for d in r.degrees:
        ax.axvline(d, color="0.85", zorder=0)
    ax.set_xlabel("polynomial degree")
    ax.set_ylabel("mean squared error (log scale)")
    ax.set_title(f"Train vs test MSE by degree, synthetic sin(2πx), {r.n_train} points ({ctx.mode} mode, first seed)")
    legend_outside(ax)
    ctx.save_figure(fig, "mse_vs_degree")


def write_up(r: Result) -> str:
    var = r.noise ** 2
    tr = {d: r.mean(r.train_mse, d) for d in r.degrees}
    te = {d: r.mean(r.test_mse, d) for d in r.degrees}
    rows = [(d, f"{tr[d]:.4g}", f"{te[d]:.4g}", f"{te[d] / max(tr[d], 1e-12):.3g}×", r.label(d)) for d in r.degrees]
    tied = r.tied
    if len(tied) == 1:
        lines = [f"Degree **{r.lowest}** has the lowest test MSE ({te[r.lowest]:.4f}; noise floor σ² = {var:.4f}) "
                 f"and the rule separates it from every other degree: it is the well-fit model."]
    else:
        others = ", ".join(str(d) for d in tied if d != r.lowest)
        lines = [f"Degree {r.lowest} has the lowest test MSE ({te[r.lowest]:.4f}), but the rule cannot separate it "
                 f"from degree {others}: no single best degree is named."]
    lines += [r.against_lowest[d].sentence() for d in r.degrees if d != r.lowest]
    for d in r.degrees:
        if r.label(d) == "under-fit":
            lines.append(f"Degree {d} is **under-fit**: even its training MSE ({tr[d]:.4f}) is {tr[d] / var:.1f}× the "
                         f"noise variance, so the model is too simple to follow sin(2πx).")
        elif r.label(d) == "over-fit":
            lines.append(f"Degree {d} is **over-fit**: its training MSE ({tr[d]:.4f}) is "
                         f"{'below' if tr[d] < var else 'near'} the noise variance — it fits the noise in "
                         f"{r.n_train} points — while its test MSE ({te[d]:.4g}) is {te[d] / max(tr[d], 1e-12):.3g}× larger.")
    c_tr, c_te = r.curve_train_mse, r.curve_test_mse
    rises = [d for d, a, b in zip(r.curve_degrees[1:], c_tr, c_tr[1:]) if b > a + 1e-12]
    best_curve = r.curve_degrees[int(np.argmin(c_te))]
    evidence = (f"{len(r.seeds)} seeds (seed spread)" if len(r.seeds) > 1 else
                f"a paired moving-block bootstrap over the {r.n_test} test points (blocks of {r.n_test // 20} "
                f"neighbours: a fitted curve's errors at nearby x are correlated)")
    return f"""
{r.n_train} noisy training points of sin(2πx) (noise σ = {r.noise}), fitted by least squares with polynomials of
degree {', '.join(map(str, r.degrees))}; test MSE on {r.n_test} fresh noisy points;
{'one random draw' if len(r.seeds) == 1 else f'{len(r.seeds)} random draws (seeds), averaged'} of the data. Differences in test MSE are judged by {evidence}.

{table(["degree", "train MSE", "test MSE", "test / train", "label"], rows)}

{chr(10).join('- ' + line for line in lines)}

Labels, applied to the numbers above: the lowest test MSE is *well-fit* when the rule separates it from the rest;
a training MSE above 2σ² is *under-fit*; a test MSE more than 1.5× the training MSE is *over-fit*.

`mse_vs_degree.png` shows degrees 1–{r.curve_degrees[-1]} for the first draw: training MSE
{'never rises' if not rises else 'rises at degree ' + ', '.join(map(str, rises))} with degree
({c_tr[0]:.3f} → {c_tr[-1]:.2e}), while test MSE is lowest at degree {best_curve} ({min(c_te):.3f}) and is
{c_te[-1]:.3g} at degree {r.curve_degrees[-1]}.
"""
