"""4.6 Max vs average pooling: two SmallCNNs identical but for their pooling layers, compared on accuracy,
training curves, and robustness to small shifts of the input (the same shifted test images for both).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from experiments.common.small_cnn import train_small_cnn
from experiments.s4_cnn._shared import shift_images
from utils.history import History
from utils.plotting import history_figure, legend_outside, plt
from utils.report import Comparison, compare_runs, pct, spread, table
from utils.train import predict

BUDGET = {  # small training sets: more, smaller steps (batch 64)
    "tiny": {"train_size": 600, "epochs": 1, "batch_size": 64, "eval_images": 300},
    "quick": {"train_size": 2500, "epochs": 3, "batch_size": 64, "eval_images": 2000},
    "hybrid": {"train_size": 15000, "epochs": 5, "batch_size": 128, "eval_images": 5000},
    "full": {"train_size": None, "epochs": 10, "batch_size": 128, "eval_images": 10000},
}
SHIFTS = (0, 1, 2, 3)
POOLS = {"max": "max pooling", "avg": "average pooling"}
COLORS = {"max": "#d62728", "avg": "#1f77b4"}
ARROWS = "→←↓↑"


@dataclass
class Result:
    dataset: str
    train_images: int
    val_images: int
    eval_images: int
    epochs: int
    seeds: list[int]
    histories: dict[str, History]                  # pool -> first seed's history
    accuracy: dict[str, dict[str, list[float]]]    # pool -> shift -> per-seed accuracy
    consistency: dict[str, dict[str, list[float]]]  # pool -> shift -> share of predictions unchanged
    accuracy_cmp: dict[str, Comparison]            # shift -> max vs average accuracy on those images
    stability_cmp: dict[str, Comparison]           # shift -> max vs average share of unchanged predictions
    examples: np.ndarray                           # (shifts, 4, H, W[, 3]) what the networks saw
    example_arrows: list[str]

    def wins(self) -> dict[str, list[str]]:
        """Pool name -> the shifts (px) at which the rule says it kept more predictions unchanged."""
        return {name: [d for d, c in self.stability_cmp.items() if c.winner == name] for name in POOLS.values()}

    @property
    def verdict(self) -> str:
        wins = {k: v for k, v in self.wins().items() if v}
        if not wins:
            return f"shift stability (1–{SHIFTS[-1]} px): max ≈ average pooling (tie)"
        if len(wins) == 2:
            return "shift stability: mixed (" + "; ".join(f"{n} at {', '.join(v)} px" for n, v in wins.items()) + ")"
        (name, shifts), = wins.items()
        ties = [d for d in self.stability_cmp if d not in shifts]
        return (f"{name} more shift-stable at {', '.join(shifts)} px" + (f", tie at {', '.join(ties)} px" if ties else ""))


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("mnist", train_size=b.train_size)
    n_eval = min(len(ds.y_test), b.eval_images)
    x_eval, y_eval = ds.x_test[:n_eval], ds.y_test[:n_eval]
    # Each test image moves along one of the four axis directions (the same draw for both models); the
    # uncovered border takes the value of a blank pixel.
    steps = torch.tensor([[0, 1], [0, -1], [1, 0], [-1, 0]])
    direction = torch.randint(0, 4, (n_eval,), generator=torch.Generator().manual_seed(ctx.seed))
    dy, dx = steps[direction, 0], steps[direction, 1]
    blank = float(ds.x_train.min())
    shifted = {d: shift_images(x_eval, d * dy, d * dx, blank) for d in SHIFTS}

    histories, correct, same = {}, {p: [] for p in POOLS}, {p: [] for p in POOLS}
    seconds, status = {p: [] for p in POOLS}, {p: [] for p in POOLS}

    def train_one(job):
        s, pool = job
        model, history, val = train_small_cnn(ctx, ds, epochs=b.epochs, seed=s, pool=pool, batch_size=b.batch_size)
        preds = {d: predict(model, shifted[d], ctx.cfg.eval_batch_size, ctx.device).argmax(1) for d in SHIFTS}
        return history, len(val[1]), preds

    jobs = [(s, pool) for s in ctx.seeds() for pool in POOLS]
    done = ctx.map(train_one, jobs, "max and average pooling",
                   info=lambda j, out: f"{j[1]} (seed {j[0]}): {(out[2][0] == y_eval).float().mean():.3f}")
    for (s, pool), (history, n_val, preds) in zip(jobs, done):
        histories.setdefault(pool, history)
        seconds[pool].append(history.seconds)
        status[pool].append(history.status)
        correct[pool].append({d: (preds[d] == y_eval).numpy() for d in SHIFTS})
        same[pool].append({d: (preds[d] == preds[0]).numpy() for d in SHIFTS})
    accuracy = {p: {str(d): [float(c[d].mean()) for c in correct[p]] for d in SHIFTS} for p in POOLS}
    consistency = {p: {str(d): [float(c[d].mean()) for c in same[p]] for d in SHIFTS} for p in POOLS}

    def rule(table_, arrays, d, metric):
        return compare_runs(POOLS["max"], POOLS["avg"], seeds_a=table_["max"][str(d)], seeds_b=table_["avg"][str(d)],
                            correct_a=arrays["max"][0][d], correct_b=arrays["avg"][0][d], metric=metric)

    accuracy_cmp = {str(d): rule(accuracy, correct, d, f"accuracy at a {d}-px shift" if d else "unshifted accuracy")
                    for d in SHIFTS}
    stability_cmp = {str(d): rule(consistency, same, d, f"predictions unchanged by a {d}-px shift") for d in SHIFTS[1:]}
    n_train = len(ds.y_train) - n_val
    result = Result(ds.label, n_train, n_val, n_eval, b.epochs, ctx.seeds(), histories, accuracy, consistency,
                    accuracy_cmp, stability_cmp, np.stack([ds.to_display(shifted[d][:4]) for d in SHIFTS]),
                    [ARROWS[i] for i in direction[:4].tolist()])
    mean = lambda v: float(np.mean(v))  # noqa: E731
    ctx.record(test_accuracy={p: mean(accuracy[p]["0"]) for p in POOLS},
               accuracy_under_shift={p: {k: mean(v) for k, v in accuracy[p].items()} for p in POOLS},
               accuracy_under_shift_per_seed=accuracy,
               accuracy_under_shift_std={p: {k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
                                             for k, v in accuracy[p].items()} for p in POOLS},
               prediction_consistency={p: {k: mean(v) for k, v in consistency[p].items()} for p in POOLS},
               accuracy_drop_at_max_shift={p: mean(accuracy[p]["0"]) - mean(accuracy[p][str(SHIFTS[-1])]) for p in POOLS},
               comparisons={"accuracy": {k: c.sentence() for k, c in accuracy_cmp.items()},
                            "stability": {k: c.sentence() for k, c in stability_cmp.items()}},
               verdict=result.verdict, train_seconds=seconds, run_status=status, epochs=b.epochs, train_images=n_train,
               eval_images=n_eval, seeds=ctx.seeds())
    return result


def draw(ctx, r: Result) -> None:
    fig = history_figure({POOLS[p]: r.histories[p] for p in ("avg", "max")},  # the cycle's blue, red: as COLORS
                         f"SmallCNN with max vs average pooling on {r.train_images} {r.dataset} images (first seed)")
    ctx.save_figure(fig, "curves")

    several = len(r.seeds) > 1
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4))
    for p in POOLS:
        for ax, values in ((axes[0], r.accuracy[p]), (axes[1], r.consistency[p])):
            m = [np.mean(values[str(d)]) for d in SHIFTS]
            e = [np.std(values[str(d)], ddof=1) for d in SHIFTS] if several else None
            ax.errorbar(SHIFTS, m, yerr=e, marker="o", capsize=3, color=COLORS[p], label=POOLS[p])
    axes[0].set_ylabel("test accuracy (fraction)")
    axes[0].set_title("Accuracy on shifted test images")
    axes[1].set_ylabel("predictions unchanged by the shift (fraction)")
    axes[1].set_title("Consistency with the unshifted prediction")
    for ax in axes:
        ax.set_xlabel("shift (pixels, along a random axis direction)")
        ax.set_xticks(SHIFTS)
    legend_outside(axes[1])
    seeds_note = f"mean ± std over {len(r.seeds)} seeds" if several else "1 seed"
    fig.suptitle(f"Robustness to small translations: {r.eval_images} {r.dataset} test images ({seeds_note})")
    ctx.save_figure(fig, "shift_robustness")

    fig, axes = plt.subplots(4, len(SHIFTS), figsize=(1.6 * len(SHIFTS) + 0.8, 7), layout="constrained")
    for d, col in zip(SHIFTS, axes.T):
        for i, ax in enumerate(col):
            ax.imshow(r.examples[d][i], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == 0:
                ax.set_title(f"shift {d} px", fontsize=9)
            if d == 0:
                ax.set_ylabel(f"image {i + 1}, moved {r.example_arrows[i]}", fontsize=8.5)
    fig.suptitle(f"{r.dataset} test images as the networks saw them", fontsize=10.5)
    ctx.save_figure(fig, "shift_examples")


def write_up(r: Result) -> str:
    k = str(SHIFTS[-1])
    rows = [(POOLS[p], *[spread(r.accuracy[p][str(d)]) for d in SHIFTS], spread(r.consistency[p][k])) for p in POOLS]
    drop = {p: np.mean(r.accuracy[p]["0"]) - np.mean(r.accuracy[p][k]) for p in POOLS}
    wins = r.wins()
    w_max, w_avg = wins[POOLS["max"]], wins[POOLS["avg"]]
    cons = {p: ", ".join(f"{pct(np.mean(r.consistency[p][str(d)]))} at {d} px" for d in SHIFTS[1:]) for p in POOLS}
    if w_max and not w_avg:
        textbook = (f"This agrees with the textbook expectation that max pooling tolerates small shifts better (at "
                    f"{', '.join(w_max)} px).")
    elif w_avg and not w_max:
        textbook = (f"This contradicts the textbook expectation that max pooling tolerates small shifts better: average "
                    f"pooling kept more predictions unchanged at {', '.join(w_avg)} px (average pooling {cons['avg']}; "
                    f"max pooling {cons['max']}).")
    elif w_max and w_avg:
        textbook = (f"The evidence is mixed: max pooling was more stable at {', '.join(w_max)} px, average pooling at "
                    f"{', '.join(w_avg)} px, so neither confirms nor refutes the textbook's 'max pooling is more "
                    f"shift-robust' overall.")
    else:
        textbook = (f"So these runs do not show the textbook expectation that max pooling tolerates small shifts "
                    f"better (max pooling {cons['max']}; average pooling {cons['avg']}). A 2×2 stride-2 window is "
                    f"invariant only to shifts that keep a feature inside it; whole-pixel shifts cross window "
                    f"borders for both kinds.")
    lines = "\n".join(f"- {c.sentence()}" for c in r.accuracy_cmp.values())
    stab_lines = "\n".join(f"- {c.sentence()}" for c in r.stability_cmp.values())
    evidence = (f"{len(r.seeds)} seeds, so a difference counts when it exceeds the seed spread" if len(r.seeds) > 1 else
                "one seed, so each comparison is McNemar's exact test on the same test images, paired image by image")
    return f"""
Two SmallCNNs identical except for their pooling layers (both 2×2, stride 2) were trained for {r.epochs} epoch(s) on
{r.train_images} {r.dataset} images (validated on {r.val_images}), with the same initial weights and batches; {evidence}.
Robustness: each of {r.eval_images} test images was shifted by 0–{k} pixels along a random axis direction (the same
direction for both networks; the border filled with blank pixels), and both networks classified every version.

{table(["pooling", *[f"accuracy, shift {d} px" for d in SHIFTS], f"predictions unchanged at {k} px"], rows)}

## Accuracy (`curves.png`, `shift_robustness.png`, left)
{lines}

A {k}-pixel shift cost max pooling {100 * drop['max']:.1f} points of accuracy and average pooling
{100 * drop['avg']:.1f} points.

## Robustness to shifts (`shift_robustness.png`, right; `shift_examples.png`)
Share of test images whose predicted class stays the same when the image is shifted:
{stab_lines}

{textbook}
"""
