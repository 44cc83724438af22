"""1.5 Loss functions: MSE, MAE, Huber, BCE and cross-entropy from scratch (value and gradient vs prediction,
checked against torch); raw scores vs softmax probabilities; a line fitted through outliers with each
regression loss, judged on clean held-out points by the comparison rule; which loss for which task."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit

from scratch import losses
from utils.plotting import legend_outside, plt
from utils.report import Comparison, compare_errors, table

BUDGET = {"tiny": {"fit_steps": 300, "test_points": 200}, "quick": {"fit_steps": 3000, "test_points": 1000},
          "hybrid": {"fit_steps": 3000, "test_points": 1000}, "full": {"fit_steps": 3000, "test_points": 1000}}
REGRESSION = {"MSE": losses.mse, "MAE": losses.mae, "Huber": losses.huber}   # Huber with δ = 1 (torch's default)
SCORES = np.array([2.0, 1.0, 0.1, -0.5, -1.5])   # raw scores (logits) of 5 classes for the softmax figure


@dataclass
class Curves:
    """One panel of the value/gradient figures: loss value and gradient vs one prediction."""
    title: str
    xlabel: str
    x: np.ndarray
    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]


@dataclass
class Result:
    torch_gap: dict[str, float]          # loss -> max |value or gradient − torch's|
    ce_check: float                      # scratch cross-entropy vs its closed form on a logit grid
    panels: list[Curves]
    fits: dict[str, list[float]]         # regression loss -> [slope, intercept]
    data: dict[str, np.ndarray]          # x, y, outliers (indices), x_test, y_test
    robust: dict[str, Comparison]        # "Huber vs MSE", "MAE vs MSE", "MAE vs Huber": squared error on clean points


def losses_vs_torch(grid) -> dict[str, float]:
    """Max |value| and |gradient| differences between scratch.losses and torch on a grid of predictions."""
    def gap(np_fn, torch_fn, pred, target):
        value, grad = np_fn(pred, target)
        pt = torch.tensor(pred, requires_grad=True)
        out = torch_fn(pt, torch.tensor(target))
        out.backward()
        return max(abs(value - out.item()), float(np.max(np.abs(grad - pt.grad.numpy()))))

    errors = grid - 0.3
    probs = np.linspace(0.01, 0.99, 99)
    logits = np.linspace(-6, 6, 121)
    return {
        "mse": gap(losses.mse, F.mse_loss, errors, np.zeros_like(errors)),
        "mae": gap(losses.mae, F.l1_loss, errors, np.zeros_like(errors)),
        "huber": gap(losses.huber, F.huber_loss, errors, np.zeros_like(errors)),
        "bce": gap(losses.bce, F.binary_cross_entropy, probs, np.ones_like(probs)),
        "bce_with_logits": gap(losses.bce_with_logits, F.binary_cross_entropy_with_logits, logits, np.ones_like(logits)),
        "cross_entropy": gap(losses.softmax_cross_entropy, F.cross_entropy,
                             np.column_stack([logits, np.zeros_like(logits), np.zeros_like(logits)]),
                             np.zeros(len(logits), dtype=np.int64)),
    }


def pointwise(loss_fn, pred, target):
    """Per-element loss and gradient of a mean-reduced scratch loss. The gradient of the mean is ∂ℓᵢ/∂pᵢ / N,
    so one call gives every element's; the values need one call per element (a few hundred, not a hot path)."""
    grads = loss_fn(pred, target)[1] * pred.size
    values = np.array([loss_fn(p[None], t[None])[0] for p, t in zip(pred, target)])
    return values, grads


def robust_line_fit(x, y, loss_fn, steps: int = 3000, lr: float = 0.05):
    """Fit y ≈ a·x + b by gradient descent on loss_fn (a scratch loss); returns (a, b)."""
    a, b = 0.0, 0.0
    for _ in range(steps):
        _, dpred = loss_fn(a * x + b, y)
        a -= lr * float(np.sum(dpred * x))
        b -= lr * float(np.sum(dpred))
    return a, b


def measure(ctx) -> Result:
    bud = ctx.budget
    ctx.use_dataset("synthetic", note="prediction grids; a line y = 2x + 1 with 10% gross outliers; 5 class scores")
    torch_gap = losses_vs_torch(np.linspace(-3, 3, 121))
    err = np.linspace(-3, 3, 241)
    p = np.linspace(0.005, 0.995, 199)
    z = np.linspace(-6, 6, 241)
    reg = {name: pointwise(fn, err, np.zeros_like(err)) for name, fn in REGRESSION.items()}
    binary = {"BCE, target 1": pointwise(losses.bce, p, np.ones_like(p)),
              "BCE, target 0": pointwise(losses.bce, p, np.zeros_like(p)),
              "MSE on p, target 1": pointwise(losses.mse, p, np.ones_like(p))}
    logits = np.column_stack([z, np.zeros_like(z), np.zeros_like(z)])   # true class 0 with logit z, two others at 0
    ce_grad = losses.softmax_cross_entropy(logits, np.zeros(len(z), dtype=int))[1][:, 0] * len(z)
    ce_value = -losses.log_softmax(logits)[:, 0]
    ce_check = max(float(np.max(np.abs(ce_value - (np.log(2 + np.exp(z)) - z)))),
                   float(np.max(np.abs(ce_grad - (np.exp(z) / (np.exp(z) + 2) - 1)))))
    sig = expit(z)
    on_logit = {"cross-entropy (3 classes), true-class logit": (ce_value, ce_grad),
                "BCE on σ(z), target 1": (np.logaddexp(0, -z), sig - 1),
                "MSE on σ(z), target 1": ((sig - 1) ** 2, 2 * (sig - 1) * sig * (1 - sig))}
    panels = [Curves(title, xlabel, xs, {k: v[0] for k, v in c.items()}, {k: v[1] for k, v in c.items()})
              for title, xlabel, xs, c in (("Regression losses (Huber δ = 1)", "prediction − target", err, reg),
                                           ("Losses on a probability", "predicted probability p", p, binary),
                                           ("Losses on a logit", "logit z of the true class", z, on_logit))]

    rng = np.random.default_rng(ctx.seed)
    x = rng.uniform(-1, 1, 100)
    y = 2 * x + 1 + rng.normal(0, 0.1, 100)
    outliers = rng.choice(100, 10, replace=False)
    y[outliers] += rng.uniform(8, 12, 10)   # gross errors, all on one side
    x_test = rng.uniform(-1, 1, bud.test_points)
    y_test = 2 * x_test + 1 + rng.normal(0, 0.1, bud.test_points)   # clean: what the fitted line should predict
    fits = {name: list(robust_line_fit(x, y, fn, steps=bud.fit_steps)) for name, fn in REGRESSION.items()}
    sq = {name: (a * x_test + b - y_test) ** 2 for name, (a, b) in fits.items()}
    robust = {f"{a} vs {b}": compare_errors(a, sq[a], b, sq[b], metric="squared error on clean points", seed=ctx.seed)
              for a, b in (("Huber", "MSE"), ("MAE", "MSE"), ("MAE", "Huber"))}
    r = Result(torch_gap, ce_check, panels, fits, {"x": x, "y": y, "outliers": outliers, "x_test": x_test,
                                                   "y_test": y_test}, robust)
    ctx.record(max_abs_diff_vs_torch=max(max(torch_gap.values()), ce_check), diff_vs_torch=torch_gap,
               cross_entropy_formula_check=ce_check,
               gradient_at_error_3={name: float(v[1][-1]) for name, v in reg.items()},
               saturation=saturation(), softmax_example=softmax_example(),
               outlier_fit={name: {"slope": a, "intercept": b} for name, (a, b) in fits.items()},
               outlier_intercept_error={name: abs(b - 1) for name, (a, b) in fits.items()},
               clean_test_mse={name: float(v.mean()) for name, v in sq.items()},
               robust_verdicts={k: c.verdict() for k, c in robust.items()}, verdict=robust["Huber vs MSE"].verdict())
    return r


def saturation() -> dict[str, float]:
    """Gradients wrt the logit of a confidently wrong sigmoid output (z = −5, target 1)."""
    s = float(expit(-5))
    return {"bce_grad_at_logit_-5": s - 1, "mse_on_sigmoid_grad_at_logit_-5": 2 * (s - 1) * s * (1 - s)}


def softmax_example() -> dict[str, list[float] | float]:
    probs = losses.softmax(SCORES)
    return {"scores": SCORES.tolist(), "softmax": probs.tolist(), "softmax_of_2x": losses.softmax(2 * SCORES).tolist(),
            "sigmoid": expit(SCORES).tolist(), "sigmoid_sum": float(expit(SCORES).sum()),
            "shift_invariance_gap": float(np.max(np.abs(losses.softmax(SCORES + 100) - probs)))}


def draw(ctx, r: Result) -> None:
    for which, ylabel, name in (("values", "loss value", "loss_values"), ("grads", "∂loss/∂prediction", "loss_gradients")):
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.9))
        fig.subplots_adjust(bottom=0.3, wspace=0.25)
        for ax, c in zip(axes, r.panels):
            for label, series in getattr(c, which).items():
                ax.plot(c.x, series, label=label)
            ax.set(xlabel=c.xlabel, ylabel=ylabel, title=c.title)
            ax.axhline(0, color="0.6", lw=0.6)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7.5)
        axes[1].set_ylim(-12 if which == "grads" else -0.2, 12 if which == "grads" else 6)
        fig.suptitle(f"Loss {'values' if which == 'values' else 'gradients'} vs prediction on synthetic grids "
                     "(scratch.losses, one example)")
        ctx.save_figure(fig, name)

    ex = softmax_example()
    k = np.arange(len(SCORES))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    axes[0].bar(k, SCORES, color="0.45")
    axes[0].set(title="Raw scores (logits): any real numbers", ylabel="score z (no unit)")
    axes[1].bar(k - 0.2, ex["softmax"], 0.4, label="softmax(z)")
    axes[1].bar(k + 0.2, ex["softmax_of_2x"], 0.4, label="softmax(2z): sharper")
    axes[1].set(title="Softmax: probabilities that sum to 1", ylabel="probability", ylim=(0, 1))
    axes[1].bar_label(axes[1].containers[0], fmt="%.2f", fontsize=7)
    axes[1].legend(loc="upper right")
    axes[2].bar(k, ex["sigmoid"], color="#2ca02c")
    axes[2].bar_label(axes[2].containers[0], fmt="%.2f", fontsize=7)
    axes[2].set(title=f"Sigmoid per score: sum {ex['sigmoid_sum']:.2f} (multi-label)", ylabel="probability", ylim=(0, 1))
    for ax in axes:
        ax.set(xlabel="class", xticks=k)
    fig.suptitle("The same 5 class scores as raw scores, softmax probabilities and independent sigmoids (synthetic)")
    ctx.save_figure(fig, "softmax_scores")

    d = r.data
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    inl = np.setdiff1d(np.arange(len(d["x"])), d["outliers"])
    ax.scatter(d["x"][inl], d["y"][inl], s=12, color="0.4", label="training data")
    ax.scatter(d["x"][d["outliers"]], d["y"][d["outliers"]], s=25, color="#d62728", marker="x", label="10 outliers")
    xs = np.linspace(-1, 1, 2)
    ax.plot(xs, 2 * xs + 1, "k--", label="true line y = 2x + 1")
    for name, (a, b) in r.fits.items():
        ax.plot(xs, a * xs + b, label=f"{name}: y = {a:.2f}x + {b:.2f}")
    ax.set(xlabel="x", ylabel="y", title="Synthetic line with 10% outliers: fit by gradient descent on each loss")
    legend_outside(ax)
    ctx.save_figure(fig, "outlier_fit")


def write_up(r: Result) -> str:
    max_gap = max(max(r.torch_gap.values()), r.ce_check)
    reg = r.panels[0]
    g3 = {k: float(v[-1]) for k, v in reg.grads.items()}
    sat = saturation()
    ex = softmax_example()
    n = next(iter(r.robust.values())).n
    d = r.data
    mse_test = {k: float(np.mean((a * d["x_test"] + b - d["y_test"]) ** 2)) for k, (a, b) in r.fits.items()}
    beaten = [c.winner for k, c in r.robust.items() if k.endswith("vs MSE") and c.winner and c.winner != "MSE"]
    if len(beaten) == 2:
        why = ("MSE's gradient on an outlier is proportional to its size (8–12 here), so the outliers pull its line up; "
               "MAE's and Huber's gradients are capped at 1 per point, so 10 outliers cannot outweigh 90 good points.")
    else:
        why = (f"The textbook expects MAE and Huber to beat MSE here (their gradients are capped at 1 per point); the "
               f"rule confirms it for {' and '.join(beaten) or 'neither'} on these {n} points.")
    if r.robust["MAE vs Huber"].winner == "MAE":
        why += (" MAE also beat Huber: both cap an outlier's pull at 1, but Huber's pull from a good point is only its "
                "small error (about 0.1 here) where MAE's is a full ±1, so under Huber the same outliers outweigh the "
                "good points about ten times more.")
    fits = ", ".join(f"{k} {abs(b - 1):.2f}" for k, (a, b) in r.fits.items())
    verdicts = "\n".join(f"- {c.sentence()}" for c in r.robust.values())
    return f"""
## From scratch vs torch
Every loss (value and gradient) matches torch's: largest absolute difference **{max_gap:.1e}** (tolerance 1e-12:
{'passed' if max_gap < 1e-12 else 'FAILED'}; {', '.join(f'{k} {v:.0e}' for k, v in r.torch_gap.items())}).

## What the curves show (`loss_values.png`, `loss_gradients.png`)
- At an error of 3 the gradient is {g3['MSE']:.1f} for MSE, {g3['MAE']:.1f} for MAE and {g3['Huber']:.1f} for Huber: MSE's
  gradient grows with the error, so one large error dominates the update; MAE's has constant size (and jumps at 0,
  which makes it jitter near the optimum); Huber is MSE near 0 and MAE beyond δ = 1.
- BCE's gradient wrt p is −1/p for target 1: it grows without bound as the prediction becomes confidently wrong.
- With a sigmoid output, a confidently wrong logit z = −5 (target 1) gets gradient {sat['bce_grad_at_logit_-5']:.3f}
  from BCE but {sat['mse_on_sigmoid_grad_at_logit_-5']:.4f} from MSE on σ(z) —
  {sat['bce_grad_at_logit_-5'] / sat['mse_on_sigmoid_grad_at_logit_-5']:.0f}× smaller, because σ′(z) saturates. That is
  why classifiers pair sigmoid/softmax with cross-entropy, whose gradient wrt the logit is simply p − y.

## Raw scores vs probabilities (`softmax_scores.png`)
Scores {', '.join(f'{v:g}' for v in ex['scores'])} become softmax probabilities
{', '.join(f'{v:.3f}' for v in ex['softmax'])} (sum 1). Doubling the scores sharpens them (top class
{ex['softmax'][0]:.3f} → {ex['softmax_of_2x'][0]:.3f}); adding 100 to every score changes nothing (largest change
{ex['shift_invariance_gap']:.0e}): softmax only sees differences between scores. Independent sigmoids of the same scores
sum to {ex['sigmoid_sum']:.2f}: each is a separate yes/no probability, which suits multi-label outputs, not a choice of one class.

## Outliers (`outlier_fit.png`)
A line y = 2x + 1 with 10 of 100 points pushed up by 8–12 units; intercept error of each fit: {fits}. Judged on
{n} clean held-out points from the true line (noise σ = 0.1), mean squared error
{', '.join(f'{k} {v:.3g}' for k, v in mse_test.items())}:

{verdicts}

{why}

## Which loss for which task
{table(["task", "output layer", "loss", "why"], [
    ("regression, Gaussian-like noise", "linear", "MSE", "maximum likelihood under Gaussian noise; smooth gradient"),
    ("regression with outliers", "linear", "MAE or Huber", "bounded gradient: outliers cannot dominate (measured above)"),
    ("regression, want the median", "linear", "MAE", "minimised by the median, not the mean"),
    ("binary classification", "sigmoid (or logits)", "BCE (with logits)",
     "gradient p − y does not saturate; use the logits form for stability"),
    ("multi-label classification", "one sigmoid per label", "BCE per label", "labels are independent yes/no questions"),
    ("multi-class, one label", "softmax (logits)", "cross-entropy", "gradient softmax − onehot; probabilities sum to 1"),
])}
"""
