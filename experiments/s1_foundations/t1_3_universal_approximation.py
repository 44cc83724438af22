"""1.3 Universal approximation: one-hidden-layer tanh nets (NumPy, hand-written backprop) fitting four 1-D
functions at widths 2 to 128. Whether a wider net fits better is decided by the comparison rule on the
per-point errors of the dense test grid (paired bootstrap with one seed, seed spread with several)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import scratch
from scratch.schedules import CosineAnnealingLR
from utils.plotting import legend_outside, plt
from utils.report import Comparison, compare_errors, compare_seeds, table

BUDGET = {"tiny": {"steps": 100, "lr": 0.02}, "quick": {"steps": 2500, "lr": 0.02},
          "hybrid": {"steps": 6000, "lr": 0.02}, "full": {"steps": 10000, "lr": 0.02}}
WIDTHS = (2, 4, 8, 16, 32, 64, 128)
SHOWN = (2, 8, 32, 128)
TRAIN_POINTS, TEST_POINTS = 100, 1001


def target_functions() -> dict:
    """The 1-D functions of 1.3: key -> (label, f). A step and |x| test the kinks a smooth tanh net must build."""
    return {"sin": ("sin(2πx)", lambda x: np.sin(2 * math.pi * x)),
            "abs": ("|x|", np.abs),
            "step": ("step 1[x > 0]", lambda x: (x > 0).astype(x.dtype)),
            "cubic": ("x³ − x/2", lambda x: x ** 3 - 0.5 * x)}


def grids():
    """(x_train (100, 1), x_test (1001, 1)) in [−1, 1], float32; the test grid also lies between training points."""
    return (np.linspace(-1, 1, TRAIN_POINTS, dtype=np.float32)[:, None],
            np.linspace(-1, 1, TEST_POINTS, dtype=np.float32)[:, None])


class ShallowNets:
    """F independent one-hidden-layer tanh nets of width H (one per target function), hand-written backprop.

    W1, b1: (F, 1, H); W2: (F, H, 1); b2: (F, 1, 1). x: (N, 1) shared; y = tanh(x W1 + b1) W2 + b2: (F, N, 1).
    """

    def __init__(self, n_functions: int, width: int, seed: int, dtype=None):
        dtype = dtype or np.float64
        rng = np.random.default_rng(seed)
        # Input weights ~N(0, 3²) and biases ~U(±3) put the tanh "knees" (at x = −b/w) across [−1, 1].
        params = [rng.normal(0, 3, (n_functions, 1, width)), rng.uniform(-3, 3, (n_functions, 1, width)),
                  rng.normal(0, 1 / math.sqrt(width), (n_functions, width, 1)), np.zeros((n_functions, 1, 1))]
        self.params = [p.astype(dtype) for p in params]
        self.grads = [np.zeros_like(p) for p in self.params]

    def forward(self, x):
        W1, b1, W2, b2 = self.params
        h = np.tanh(x[None] * W1 + b1)            # (F, N, H)
        self.cache = (x, h)
        return h @ W2 + b2                        # (F, N, 1)

    def backward(self, dy) -> None:
        """dy: ∂loss/∂y (F, N, 1); fills self.grads in place (for a scratch optimizer)."""
        x, h = self.cache
        W2 = self.params[2]
        dz = 1 - h * h                                        # tanh′ = 1 − tanh², then times ∂/∂h = dy W2ᵀ
        dz *= dy * W2.transpose(0, 2, 1)
        for grad, value in zip(self.grads, (
                (x[None] * dz).sum(axis=1, keepdims=True),    # ∂/∂W1 = Σₙ xₙ δₙ
                dz.sum(axis=1, keepdims=True),                # ∂/∂b1 = Σₙ δₙ
                h.transpose(0, 2, 1) @ dy,                    # ∂/∂W2 = hᵀ dy
                dy.sum(axis=1, keepdims=True))):              # ∂/∂b2 = Σₙ dy
            grad[...] = value

    def mse(self, x, targets):
        """Per-function MSE (F,) and ∂(Σ_f MSE_f)/∂y."""
        diff = self.forward(x) - targets
        return (diff ** 2).mean(axis=(1, 2)), 2 * diff / diff.shape[1]


@dataclass
class Result:
    seeds: list[int]
    steps: int
    lr: float
    functions: dict[str, str]                  # key -> label
    test_mse: np.ndarray                       # (seeds, widths, functions), on the 1,001-point grid
    train_mse: np.ndarray                      # (seeds, widths, functions), on the 100 training points
    fits: dict[int, np.ndarray]                # shown width -> (functions, 1,001) predictions, first seed
    doubling: dict[str, list[Comparison]]      # function -> width 2w vs w, for each doubling
    best: dict[str, Comparison]                # function -> lowest-error width vs the runner-up


def measure(ctx) -> Result:
    b = ctx.budget
    functions = target_functions()
    names = list(functions)
    x_train, x_test = grids()
    y_train = np.stack([functions[n][1](x_train) for n in names]).astype(np.float32)
    y_test = np.stack([functions[n][1](x_test) for n in names]).astype(np.float32)
    ctx.use_dataset("synthetic", note="4 functions sampled at 100 points in [−1, 1]; error on 1,001 points")
    seeds = ctx.seeds()
    train_mse = np.zeros((len(seeds), len(WIDTHS), len(names)))
    test_mse = np.zeros_like(train_mse)
    sq_err = np.zeros((len(WIDTHS), len(names), TEST_POINTS))   # first seed's per-point squared errors
    fits = {}
    def fit(job):   # every function at one width from one seed: (train MSE, test predictions)
        s, width = job
        net = ShallowNets(len(names), width, seed=s + 1000 * width, dtype=np.float32)
        opt = scratch.Adam(net.params, lr=b.lr)
        # cosine decay to 0: a constant Adam step left the widest nets oscillating around their best fit
        schedule = CosineAnnealingLR(b.lr, T_max=b.steps)
        for step in range(b.steps):   # full batch: all 100 points every step
            schedule.apply(opt, step)
            _, dy = net.mse(x_train, y_train)
            net.backward(dy)
            opt.step(net.grads)
        return net.mse(x_train, y_train)[0], net.forward(x_test)

    jobs = [(s, width) for width in reversed(WIDTHS) for s in seeds]   # the widest (slowest) first
    runs = ctx.map(fit, jobs, "widths", info=lambda job, _: f"width {job[1]}", torch_runs=False)
    for (s, width), (mse, pred) in zip(jobs, runs):
        si, wi = seeds.index(s), WIDTHS.index(width)
        sq = (pred - y_test) ** 2   # (functions, points, 1)
        train_mse[si, wi], test_mse[si, wi] = mse, sq.mean(axis=(1, 2))
        if si == 0:
            sq_err[wi] = sq[:, :, 0]
            if width in SHOWN:
                fits[width] = pred[:, :, 0]

    def rule(fi, wa, wb):   # width wa vs width wb on function fi, lower test MSE is better
        ia, ib = WIDTHS.index(wa), WIDTHS.index(wb)
        if len(seeds) > 1:
            return compare_seeds(f"width {wa}", test_mse[:, ia, fi], f"width {wb}", test_mse[:, ib, fi],
                                 higher_is_better=False, percent=False, metric="test MSE")
        return compare_errors(f"width {wa}", sq_err[ia, fi], f"width {wb}", sq_err[ib, fi], metric="test MSE")

    mean = test_mse.mean(axis=0)
    doubling = {n: [rule(fi, w2, w1) for w1, w2 in zip(WIDTHS[:-1], WIDTHS[1:])] for fi, n in enumerate(names)}
    best = {}
    for fi, n in enumerate(names):
        first, second = np.argsort(mean[:, fi])[:2]
        best[n] = rule(fi, WIDTHS[first], WIDTHS[second])
    r = Result(seeds, b.steps, b.lr, {n: functions[n][0] for n in names}, test_mse, train_mse, fits, doubling, best)
    mse_train = train_mse.mean(axis=0)
    reduction = {n: float(mean[0, fi] / mean[-1, fi]) for fi, n in enumerate(names)}
    ctx.record(widths=list(WIDTHS), functions=r.functions,
               test_mse={n: {str(w): float(mean[wi, fi]) for wi, w in enumerate(WIDTHS)} for fi, n in enumerate(names)},
               train_mse={n: {str(w): float(mse_train[wi, fi]) for wi, w in enumerate(WIDTHS)} for fi, n in enumerate(names)},
               test_mse_per_seed={n: test_mse[:, :, fi].tolist() for fi, n in enumerate(names)},
               mse_reduction_2_to_128=reduction, median_mse_reduction=float(np.median(list(reduction.values()))),
               error_falls_at_every_width={n: all(c.winner == c.name_a for c in doubling[n]) for n in names},
               doubling_verdicts={n: [c.verdict() for c in doubling[n]] for n in names},
               best_width={n: best_width(best[n]) for n in names}, steps=b.steps, learning_rate=b.lr, seeds=seeds)
    return r


def best_width(c: Comparison) -> int | str:
    """The lowest-error width, or the tie as words when the rule cannot separate it from the runner-up."""
    return int(c.name_a.split()[-1]) if c.winner == c.name_a else f"tie: {c.name_a} ≈ {c.name_b}"


def draw(ctx, r: Result) -> None:
    functions = target_functions()
    _, x_test = grids()
    mean, mean_train = r.test_mse.mean(axis=0), r.train_mse.mean(axis=0)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), layout="constrained")
    for fi, (ax, name) in enumerate(zip(axes.ravel(), r.functions)):
        ax.plot(x_test[:, 0], functions[name][1](x_test[:, 0]), color="k", lw=2.5, label="target")
        for width in SHOWN:
            ax.plot(x_test[:, 0], r.fits[width][fi], lw=1.3,
                    label=f"width {width} (test MSE {r.test_mse[0, WIDTHS.index(width), fi]:.1e})")
        ax.set(title=f"f(x) = {r.functions[name]}", xlabel="x", ylabel="f(x) and fits")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"One-hidden-layer tanh nets on 100 points of 4 synthetic functions (scratch, Adam + cosine decay, "
                 f"{r.steps} full-batch steps), seed {r.seeds[0]}")
    ctx.save_figure(fig, "fits")

    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    for fi, name in enumerate(r.functions):
        spread = r.test_mse[:, :, fi].std(axis=0, ddof=1) if len(r.seeds) > 1 else None
        line = ax.errorbar(WIDTHS, mean[:, fi], yerr=spread, fmt="o-", capsize=3,
                           label=f"{r.functions[name]}: test grid")[0]
        ax.plot(WIDTHS, mean_train[:, fi], "s:", color=line.get_color(), alpha=0.8,
                label=f"{r.functions[name]}: training points")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(WIDTHS, [str(w) for w in WIDTHS])
    ax.set(xlabel="hidden units (width)", ylabel="MSE (log scale)")
    seeds = "one seed" if len(r.seeds) == 1 else f"mean ± std of {len(r.seeds)} seeds"
    ax.set_title(f"Approximation error vs width, synthetic functions ({seeds})")
    legend_outside(ax)
    ctx.save_figure(fig, "error_vs_width")


def write_up(r: Result) -> str:
    names = list(r.functions)
    mean, mean_train = r.test_mse.mean(axis=0), r.train_mse.mean(axis=0)
    reduction = {n: float(mean[0, fi] / mean[-1, fi]) for fi, n in enumerate(names)}
    rows = [(r.functions[n], *[f"{mean[wi, fi]:.1e}" for wi in range(len(WIDTHS))], f"{reduction[n]:.0f}×",
             best_width(r.best[n])) for fi, n in enumerate(names)]
    evidence = ("a paired bootstrap over the 1,001 test-grid points of one seed" if len(r.seeds) == 1
                else f"the seed spread over {len(r.seeds)} seeds")
    lines = []
    for n in names:
        falls = [c for c in r.doubling[n] if c.winner == c.name_a]
        flat = [c for c in r.doubling[n] if c.winner is None]
        rises = [c for c in r.doubling[n] if c.winner == c.name_b]
        text = f"- {r.functions[n]}: the error fell measurably at {len(falls)} of {len(r.doubling[n])} doublings"
        if flat:
            text += "; no measurable change " + ", ".join(f"{c.name_b} → {c.name_a.split()[-1]}" for c in flat)
        if rises:
            fi = names.index(n)
            steps = {c.name_b + " → " + c.name_a.split()[-1]: mean_train[WIDTHS.index(int(c.name_a.split()[-1])), fi] >
                     mean_train[WIDTHS.index(int(c.name_b.split()[-1])), fi] for c in rises}
            optimiser = [k for k, v in steps.items() if v]
            interp = [k for k, v in steps.items() if not v]
            text += "; it *rose* " + ", ".join(steps)
            every = "there" if len(steps) == 1 else "at each"
            where = lambda group: every if len(group) == len(steps) else "at " + ", ".join(group)   # noqa: E731
            if optimiser:
                text += (f" — {where(optimiser)} the training-point error rose too, so the optimiser (a fixed step "
                         f"budget from a random start) did not reach a fit the wider net can represent")
            if interp:
                text += (f" — {where(interp)} the training-point error fell, so the wider net fits the samples "
                         f"better but interpolates worse between them")
        lines.append(text + ".")
    step = names.index("step")
    hardest = max(names, key=lambda n: mean[-1, names.index(n)])
    x_train, x_test = grids()
    gap_points = int(np.sum(np.abs(x_test[:, 0]) < np.min(np.abs(x_train[:, 0]))))
    rank = sorted(names, key=lambda n: -mean[-1, names.index(n)]).index("step") + 1
    step_rank = "" if hardest == "step" else f"; the step came {rank} of {len(names)} (test MSE {mean[-1, step]:.1e})"
    step_where = ("most of the step's error is in that unconstrained gap" if mean[-1, step] > 2 * mean_train[-1, step]
                  else "the error is mostly the imperfect fit around the jump itself, not the gap between samples")
    return f"""
One hidden layer of tanh units, trained by hand-written backprop with Adam (lr {r.lr}, cosine decay to 0, {r.steps}
full-batch steps on 100 points in [−1, 1]); test MSE on 1,001 points{f', mean of {len(r.seeds)} seeds' if len(r.seeds) > 1 else ', one seed'}.
The last column is the lowest-error width when the comparison rule ({evidence}) separates it from the runner-up:

{table(["function", *[f"width {w}" for w in WIDTHS], "2 → 128", "best width"], rows)}

## Error vs width (`error_vs_width.png`)
Going from 2 to 128 hidden units cut the test error by a median factor of {np.median(list(reduction.values())):.0f}×
(from {min(reduction.values()):.0f}× for {r.functions[min(reduction, key=reduction.get)]} to
{max(reduction.values()):.0f}× for {r.functions[max(reduction, key=reduction.get)]}). Each doubling of the width,
judged by the rule:

{chr(10).join(lines)}

## The fits (`fits.png`)
Hardest at width 128: {r.functions[hardest]} (test MSE {mean[-1, names.index(hardest)]:.1e}){step_rank}. A step cannot be
made by a finite sum of smooth tanh units, only approached by ever steeper ones, which need large weights that gradient
descent reaches slowly. {gap_points} of the 1,001 test points lie between the two training points that bracket the jump
(x = ±{np.min(np.abs(x_train[:, 0])):.4f}), where no training point pins the function down; on the training points the
widest net's MSE for the step was {mean_train[-1, step]:.1e} against {mean[-1, step]:.1e} on the test grid, so {step_where}.

This is the universal approximation theorem at work: one hidden layer can approximate any continuous function on an
interval as closely as desired given enough units. The theorem says nothing about how many units or how long training
takes — the numbers above are what this budget achieved.
"""
