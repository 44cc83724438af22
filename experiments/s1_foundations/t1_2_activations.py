"""1.2 Activation functions: eight activations and their hand-written derivatives, checked against torch,
then the same scratch MLP trained on the real 8×8 digits with each one. "Trains faster/better" is decided
by the comparison rule on the held-out digits (paired predictions with one seed, seed spread with several)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import scratch
from experiments.common.scratch_training import digits_arrays, scratch_mlp, train_scratch
from scratch.activations import ACTIVATIONS
from utils.history import History
from utils.plotting import legend_outside, mark_diverged, plt, seed_band
from utils.report import Comparison, compare_runs, pct, spread, table

BUDGET = {"tiny": {"epochs": 2, "early_epoch": 1, "lr": 0.05}, "quick": {"epochs": 15, "early_epoch": 2, "lr": 0.05},
          "hybrid": {"epochs": 30, "early_epoch": 2, "lr": 0.05}, "full": {"epochs": 40, "early_epoch": 2, "lr": 0.05}}
ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu")
# How each is written in figures and sentences (the keys above stay the metrics keys)
LABEL = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "leaky ReLU", "elu": "ELU", "gelu": "GELU",
         "softplus": "softplus", "silu": "SiLU"}
SIZES = (64, 64, 64, 10)
MOMENTUM, BATCH = 0.9, 64


@dataclass
class Result:
    seeds: list[int]
    epochs: int
    early_epoch: int
    lr: float
    held_out: int                              # held-out digits per seed
    diffs: dict[str, list[float]]              # name -> [max |f − torch|, max |f′ − torch autograd|]
    histories: dict[str, list[History]]        # name -> one History per seed (val_* = held-out digits)
    early_acc: dict[str, list[float]]          # name -> held-out accuracy after early_epoch, per seed
    final_acc: dict[str, list[float]]
    grad_ratio: dict[str, float]               # name -> |∂L/∂W first layer| / |∂L/∂W last layer| at initialisation
    vs_top: dict[str, Comparison]              # name -> the top-ranked activation vs it, final held-out accuracy
    textbook: dict[str, Comparison]            # "early" / "final": relu vs sigmoid


def torch_activation(name: str):
    """The torch function that scratch.activations' `name` mirrors (torch's default parameters)."""
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "leaky_relu": F.leaky_relu,
            "elu": F.elu, "gelu": F.gelu, "softplus": F.softplus, "silu": F.silu}[name]


def activation_vs_torch(name: str, x) -> tuple[float, float]:
    """Max |f - f_torch| and max |f' - f'_torch| on x (float64); torch's f' from autograd."""
    fn, grad_fn = ACTIVATIONS[name]
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = torch_activation(name)(xt)
    out.sum().backward()  # elementwise f, so d(Σf)/dx_i = f'(x_i)
    return (float(np.max(np.abs(fn(x) - out.detach().numpy()))),
            float(np.max(np.abs(grad_fn(x) - xt.grad.numpy()))))


def epochs_to_reach(accs, level: float):
    """First 1-based epoch whose accuracy is >= level, or None."""
    return next((i + 1 for i, a in enumerate(accs) if a >= level), None)


def first_to_last_gradient(model, x, y) -> float:
    """|∂L/∂W| of the first Linear layer over that of the last, on one batch (the vanishing-gradient factor)."""
    _, dlogits = scratch.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    norms = [float(np.linalg.norm(g)) for name, _, g in model.parameters() if name.endswith("weight")]
    return norms[0] / norms[-1]


def train_tracked(model, data, opt, *, epochs: int, early: int, seed: int):
    """train_scratch one epoch at a time; returns (History, {epoch: held-out correctness}) at ``early`` and the end."""
    x_te, y_te = data[2], data[3]
    hist, snaps = History(), {}
    for epoch in range(1, epochs + 1):
        h = train_scratch(model, data, opt, epochs=1, seed=seed * 1000 + epoch)
        hist.seconds += h.seconds
        for name in ("train_loss", "val_loss", "val_acc", "epoch_seconds"):
            getattr(hist, name).extend(getattr(h, name))
        if h.diverged:
            hist.status = "diverged"
        else:
            hist.stopped_epoch = epoch
        if epoch in (early, epochs) or h.diverged:
            with np.errstate(all="ignore"):
                snaps[epoch] = scratch.predict(model, x_te).argmax(axis=1) == y_te
        if h.diverged:
            break
    correct = {e: snaps.get(e, snaps[max(snaps)]) for e in (early, epochs)}
    return hist, correct


def measure(ctx) -> Result:
    b = ctx.budget
    early = min(b.early_epoch, b.epochs)
    ctx.use_dataset("synthetic", note="1,001 evenly spaced inputs in [−5, 5] for the function checks")
    x = np.linspace(-5, 5, 1001)   # includes x = 0 exactly, where ReLU's derivative is a convention (0, as torch)
    diffs = {name: list(activation_vs_torch(name, x)) for name in ACTIVATION_NAMES}
    seeds = ctx.seeds()
    hist = {n: [] for n in ACTIVATION_NAMES}
    acc = {"early": {n: [] for n in ACTIVATION_NAMES}, "final": {n: [] for n in ACTIVATION_NAMES}}
    correct, grad_ratio = {}, {}
    with ctx.progress(len(seeds) * len(ACTIVATION_NAMES), "activations") as bar:
        for s in seeds:
            data = digits_arrays(ctx, s)
            for name in ACTIVATION_NAMES:
                model = scratch_mlp(SIZES, name, seed=s)   # same initial weights for every activation
                if s == seeds[0]:
                    grad_ratio[name] = first_to_last_gradient(model, data[0][:256], data[1][:256])
                opt = scratch.SGD(model.param_arrays(), lr=b.lr, momentum=MOMENTUM)
                h, c = train_tracked(model, data, opt, epochs=b.epochs, early=early, seed=s)
                hist[name].append(h)
                correct[name] = c   # the last seed's, for the paired test
                acc["early"][name].append(float(c[early].mean()))
                acc["final"][name].append(float(c[b.epochs].mean()))
                bar.advance(1, info=f"{name}: held-out acc {acc['final'][name][-1]:.3f}")
    final = acc["final"]
    top = max(ACTIVATION_NAMES, key=lambda n: np.mean(final[n]))

    def rule(a, b_, when):
        return compare_runs(LABEL[a], LABEL[b_], seeds_a=acc[when][a], seeds_b=acc[when][b_],
                            correct_a=correct[a][early if when == "early" else b.epochs],
                            correct_b=correct[b_][early if when == "early" else b.epochs],
                            metric=f"held-out accuracy after {early if when == 'early' else b.epochs} epochs")

    vs_top = {n: rule(top, n, "final") for n in ACTIVATION_NAMES if n != top}
    textbook = {"early": rule("relu", "sigmoid", "early"), "final": rule("relu", "sigmoid", "final")}
    r = Result(seeds, b.epochs, early, b.lr, len(data[3]), diffs, hist, acc["early"], final, grad_ratio, vs_top,
               textbook)
    group = top_group(r)
    ctx.record(max_abs_diff_vs_torch=max(max(v) for v in diffs.values()),
               max_abs_diff={n: {"value": v[0], "derivative": v[1]} for n, v in diffs.items()},
               test_accuracy={n: float(np.mean(v)) for n, v in final.items()}, test_accuracy_per_seed=final,
               test_examples=len(data[3]), early_epoch=early,
               early_test_accuracy={n: float(np.mean(v)) for n, v in acc["early"].items()},
               final_train_loss={n: hist[n][0].final("train_loss") for n in ACTIVATION_NAMES},
               epochs_to_90_percent={n: epochs_to_reach(hist[n][0].val_acc, 0.9) for n in ACTIVATION_NAMES},
               run_status={n: hist[n][0].status for n in ACTIVATION_NAMES}, epochs=b.epochs, architecture=list(SIZES),
               seeds=seeds, top_group=group, best_activation=group[0] if len(group) == 1 else "tie",
               comparisons_vs_top={n: c.verdict() for n, c in vs_top.items()},
               relu_vs_sigmoid={k: c.verdict() for k, c in textbook.items()}, verdict=textbook["early"].verdict(),
               first_to_last_layer_gradient_at_init=grad_ratio)
    return r


def top_group(r: Result) -> list[str]:
    """The top-ranked activation and every one the rule cannot tell apart from it."""
    top = next(n for n in ACTIVATION_NAMES if n not in r.vs_top)
    return [top] + [n for n, c in r.vs_top.items() if c.winner is None]


def draw(ctx, r: Result) -> None:
    x = np.linspace(-5, 5, 1001)
    fig, axes = plt.subplots(2, 4, figsize=(13, 6), sharex=True)
    for ax, name in zip(axes.ravel(), ACTIVATION_NAMES):
        fn, grad_fn = ACTIVATIONS[name]
        ax.plot(x, fn(x), color="#1f77b4", label="f(x)")
        ax.plot(x, grad_fn(x), color="#d62728", linestyle="--", label="f′(x)")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_ylim(-1.5, 3)
        ax.set_title(f"{LABEL[name]}\nmax |Δ| vs torch: {max(r.diffs[name]):.0e}")
    for ax in axes[1]:
        ax.set_xlabel("pre-activation x")
    for ax in axes[:, 0]:
        ax.set_ylabel("f(x), f′(x)")
    legend_outside(axes[0, -1])
    fig.suptitle("Activation functions (solid) and their derivatives (dashed), NumPy from scratch, vs torch")
    ctx.save_figure(fig, "functions_and_derivatives")

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.3))
    for i, name in enumerate(ACTIVATION_NAMES):
        runs = r.histories[name]
        epochs = np.arange(1, r.epochs + 1)
        pad = lambda v: list(v) + [np.nan] * (r.epochs - len(v))   # noqa: E731 (a diverged run stops early)
        line = seed_band(axes[0], epochs, [pad(h.train_loss) for h in runs], label=LABEL[name])
        line.set_linestyle("-" if i < 4 else "--")
        line.set_linewidth(3.2 if name == "relu" else 1.6)   # leaky_relu's curve often lies on top of it
        seed_band(axes[1], epochs, [pad(h.val_acc) for h in runs], label=LABEL[name], color=line.get_color()
                  ).set_linestyle(line.get_linestyle())
        for h in runs:
            if h.diverged:
                mark_diverged(axes[0], h.train_loss, color=line.get_color(), label=f"{LABEL[name]} diverged (×)")
    axes[0].set_yscale("log")
    axes[0].set(ylabel="training loss (cross-entropy, log scale)", title="Training loss per epoch")
    axes[1].set(ylabel="held-out accuracy (fraction)", title=f"Held-out accuracy per epoch ({r.held_out} digits)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.axvline(r.early_epoch, color="0.5", ls=":", lw=1)
    legend_outside(axes[1], sources=[axes[0]])
    seeds = f"seed {r.seeds[0]}" if len(r.seeds) == 1 else f"mean ± std of {len(r.seeds)} seeds"
    fig.suptitle(f"Scratch MLP {'-'.join(map(str, SIZES))}, same initial weights, SGD + momentum, on scikit-learn's "
                 f"8×8 digits ({seeds}; dotted: epoch {r.early_epoch})")
    ctx.save_figure(fig, "training_curves")


def write_up(r: Result) -> str:
    max_diff = max(max(v) for v in r.diffs.values())
    diff_rows = [(LABEL[n], f"{v[0]:.1e}", f"{v[1]:.1e}") for n, v in r.diffs.items()]
    ranked = sorted(r.final_acc, key=lambda n: -np.mean(r.final_acc[n]))
    top = ranked[0]
    reach = {n: epochs_to_reach(r.histories[n][0].val_acc, 0.9) for n in ranked}
    spread_ = spread if len(r.seeds) > 1 else (lambda v: pct(v[0]))
    rows = [(LABEL[n], spread_(r.final_acc[n]), spread_(r.early_acc[n]), f"{r.histories[n][0].final('train_loss'):.4f}",
             reach[n] or f"not within {r.epochs}", r.histories[n][0].status,
             "—" if n == top else r.vs_top[n].verdict()) for n in ranked]
    group = top_group(r)
    if len(group) == 1:
        top_text = f"{LABEL[top]} is the single best: the rule separates it from every other activation."
    else:
        top_text = (f"{len(group)} activations cannot be told apart at the top ({', '.join(LABEL[n] for n in group)}): "
                    f"none of them is the best on this evidence. " + (f"Measurably behind {LABEL[top]}: "
                    f"{', '.join(LABEL[n] for n in ranked if n not in group)}." if len(group) < len(ranked) else ""))
    worst = ranked[-1]
    evidence = (f"paired predictions on the same {r.held_out} held-out digits (McNemar), one seed" if len(r.seeds) == 1
                else f"seed spread over {len(r.seeds)} seeds, {r.held_out} held-out digits each")
    early, final = r.textbook["early"], r.textbook["final"]
    ratio = r.grad_ratio
    if early.winner == LABEL["relu"]:
        book = (f"This is the textbook result: ReLU trained faster than sigmoid. {early.sentence()}")
    else:
        book = (f"The textbook says sigmoid trains slower than ReLU; after {r.early_epoch} epoch(s) the rule does not "
                f"support that here: {early.sentence()}")
        if early.winner == LABEL["sigmoid"]:
            book = book.replace("does not support that here", "says the opposite here")
    return f"""
## From scratch vs torch (`functions_and_derivatives.png`)
Each activation and its hand-written derivative were evaluated on 1,001 points in [−5, 5] (float64) and compared
with torch's function and its autograd derivative. Largest absolute difference over all eight: **{max_diff:.1e}**
(tolerance 1e-12: {'passed' if max_diff < 1e-12 else 'FAILED'}).

{table(["activation", "max |f − f_torch|", "max |f′ − f′_torch|"], diff_rows)}

## Training with each activation (`training_curves.png`)
The same scratch MLP {'-'.join(map(str, SIZES))} (identical initial weights, torch-default init), SGD with momentum
{MOMENTUM}, learning rate {r.lr}, batch {BATCH}, {r.epochs} epochs on scikit-learn's real 8×8 digits (80/20 split:
{r.held_out} held-out digits, one is {100 / r.held_out:.2f} points). Ranked by final held-out accuracy; the last column
applies the comparison rule ({evidence}) against the top-ranked {LABEL[top]}:

{table(["activation", "held-out accuracy", f"after epoch {r.early_epoch}", "final train loss",
        "epochs to 90%", "status", f"vs {LABEL[top]}"], rows)}

{top_text} Top-ranked vs last-ranked: {r.vs_top[worst].sentence() if worst != top else ''}

## Does sigmoid train slower than ReLU?
Sigmoid's derivative is at most 0.25, so each sigmoid layer scales the backpropagated gradient by at most 0.25.
Measured at initialisation on 256 training digits, the first layer's weight gradient was {ratio['sigmoid']:.3g}× the
last layer's with sigmoid against {ratio['relu']:.3g}× with ReLU ({ratio['relu'] / ratio['sigmoid']:.0f} times
smaller relative to the last layer for sigmoid). {book}
At the end of training: {final.sentence()}
"""
