"""2.5 Hyperparameter study on one network (an MLP on Fashion-MNIST): from a baseline (Adam, lr 0.001,
batch 64, no dropout, hidden 256-128) one factor changes at a time — the learning rate, the batch size,
the optimizer, dropout, the depth and the width — and plain SGD is swept over five decades of
learning rate, from the stall at the bottom to the explosion at the top. Diverged runs are kept,
drawn as × and labelled; every "better/worse" is decided by the project's comparison rule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator

from experiments.s2_optimization._shared_b import Variant, compare, compare_to_baseline, seeds_note, train_variants
from utils.history import History
from utils.plotting import legend_outside, mark_diverged, plt, sweep_plot
from utils.report import Comparison, pct, spread, table

BUDGET = {
    "tiny": {"train_size": 500, "test_size": 200, "epochs": 1, "sgd_lrs": [1e-4, 10.0]},
    "quick": {"train_size": 3000, "test_size": 2000, "epochs": 3, "sgd_lrs": [1e-4, 1e-3, 1e-2, 0.1, 1.0]},
    "hybrid": {"train_size": 20000, "test_size": None, "epochs": 10, "sgd_lrs": [1e-4, 1e-3, 1e-2, 0.1, 1.0]},
    "full": {"train_size": None, "test_size": None, "epochs": 15, "sgd_lrs": [1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0]},
}
BASELINE = {"hidden": [256, 128], "activation": "ReLU", "dropout": 0.0, "optimizer": "Adam", "lr": 1e-3, "batch": 64}
GROUPS = {   # panel -> the settings changed from the baseline (one factor each)
    "learning rate (Adam)": {"Adam lr 0.1": {"lr": 0.1}, "Adam lr 0.01": {"lr": 0.01}},
    "batch size": {"batch 1024": {"batch": 1024}},
    "optimizer": {"SGD + momentum 0.9, lr 0.01": {"optimizer": "SGD+momentum", "lr": 0.01}},
    "dropout": {"dropout 0.5": {"dropout": 0.5}},
    "depth": {"1 hidden layer (256)": {"hidden": [256]}, "3 hidden layers (256-128-64)": {"hidden": [256, 128, 64]}},
    "width": {"half width (128-64)": {"hidden": [128, 64]}, "double width (512-256)": {"hidden": [512, 256]}},
}
BASE_LABEL = "baseline (Adam lr 0.001, batch 64, no dropout, 256-128)"


def sgd_name(lr: float) -> str:
    return f"plain SGD lr {lr:g}"


@dataclass
class Result:
    dataset: str
    num_classes: int
    in_features: int
    train_examples: int
    test_examples: int
    epochs: int
    seeds: int
    sgd_lrs: list[float]
    variants: dict[str, Variant]           # "baseline", every GROUPS setting, every plain-SGD lr
    verdicts: dict[str, str]               # name -> trained | stalled | failed to learn | diverged
    comparisons: dict[str, Comparison]     # one-factor setting -> vs baseline
    top: Comparison | None                 # the most accurate setting vs its closest rival (the headline)
    sgd_top: Comparison | None             # the two most accurate plain-SGD learning rates


def run_verdict(history: History, val_acc: float | None, num_classes: int) -> str:
    """'diverged' (NaN/inf loss); 'stalled' (every epoch's training loss within 10% of ln(classes), the loss
    of a uniform guess); 'failed to learn' (validation accuracy under twice chance, or a final training
    loss no better than the uniform guess); else 'trained'."""
    if history.diverged:
        return "diverged"
    chance, losses = math.log(num_classes), history.train_loss
    if losses and all(0.9 * chance <= v <= 1.1 * chance for v in losses):
        return "stalled"
    if (val_acc is None or not math.isfinite(val_acc) or val_acc < 2 / num_classes
            or not losses or losses[-1] >= chance):
        return "failed to learn"
    return "trained"


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("fashion-mnist", train_size=b.train_size, test_size=b.test_size)
    settings = {"baseline": dict(BASELINE)}
    for group in GROUPS.values():
        settings.update({name: {**BASELINE, **change} for name, change in group.items()})
    settings.update({sgd_name(lr): {**BASELINE, "optimizer": "SGD", "lr": lr} for lr in b.sgd_lrs})
    variants, correct, _, train_examples = train_variants(ctx, ds, settings, epochs=b.epochs)
    verdicts = {n: run_verdict(v.history, v.history.final("val_acc"), ds.num_classes) for n, v in variants.items()}
    one_factor = [n for g in GROUPS.values() for n in g]
    comparisons = compare_to_baseline(variants, correct, "baseline", one_factor)
    ranked = sorted((n for n, v in variants.items() if v.finished and verdicts[n] == "trained"),
                    key=lambda n: -variants[n].accuracy)
    top = None
    if len(ranked) > 1:
        rival = "baseline" if ranked[0] != "baseline" else ranked[1]
        top = compare(variants, correct, ranked[0], rival)
    sgd_ranked = [n for n in ranked if n.startswith("plain SGD")]
    sgd_top = compare(variants, correct, *sgd_ranked[:2]) if len(sgd_ranked) > 1 else None
    r = Result(ds.label, ds.num_classes, int(np.prod(ds.shape)), train_examples, len(ds.y_test), b.epochs,
               len(ctx.seeds()), list(b.sgd_lrs), variants, verdicts, comparisons, top, sgd_top)
    ctx.record(verdict=headline(r), best_setting=(top.winner or f"tie: {top.verdict()}") if top else "none",
               baseline=BASELINE, epochs=b.epochs, test_examples=len(ds.y_test),
               comparisons={n: c.verdict() for n, c in comparisons.items()},
               sgd_sweep={f"{lr:g}": verdicts[sgd_name(lr)] for lr in b.sgd_lrs},
               runs={n: {"config": v.config, "verdict": verdicts[n], "status": v.status, "test_accuracy": v.test_accuracy,
                         "val_accuracy": v.history.final("val_acc"), "final_train_loss": v.history.final("train_loss"),
                         "parameters": v.parameters, "seconds": v.seconds} for n, v in variants.items()})
    return r


def headline(r: Result) -> str:
    return r.top.verdict() if r.top else "no two settings trained"


def label(r: Result, name: str) -> str:
    v = r.variants[name]
    acc = pct(v.accuracy) if v.finished else "—"
    return f"{name}: {acc} [{r.verdicts[name]}]"


def below(ax) -> None:
    """The axes' legend under it, where it hides no data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7)


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(3, 2, figsize=(13, 10), layout="constrained")
    for ax, (group, names) in zip(axes.ravel(), GROUPS.items()):
        for name in ["baseline", *names]:
            h = r.variants[name].history
            line, = ax.plot(range(1, len(h.val_loss) + 1), h.val_loss, "o-", ms=3, label=label(r, name),
                            **({"color": "k"} if name == "baseline" else {}))
            if h.diverged:
                mark_diverged(ax, h.val_loss, color=line.get_color())
        ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="validation loss (cross-entropy, log scale)", title=f"Varying the {group}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend_outside(ax, fontsize=7)
    fig.suptitle(f"MLP on {r.dataset} ({r.train_examples} training images, {r.epochs} epochs, {ctx.mode} mode): "
                 f"one factor changed at a time; × = diverged\n{BASE_LABEL}; legend: test accuracy on "
                 f"{r.test_examples} images [verdict]")
    ctx.save_figure(fig, "grid_of_curves")

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
    names = [sgd_name(lr) for lr in r.sgd_lrs]
    for name in names:
        h = r.variants[name].history
        line, = axes[0].semilogy(range(1, len(h.train_loss) + 1), h.train_loss, "o-", ms=3, label=label(r, name))
        if h.diverged:
            mark_diverged(axes[0], h.train_loss, color=line.get_color())
    axes[0].set(xlabel="epoch", ylabel="training loss (cross-entropy, log scale)", title="Training curves")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    diverged = [r.variants[n].history.diverged for n in names]
    sweep_plot(axes[1], r.sgd_lrs, [r.variants[n].history.final("train_loss") for n in names], diverged=diverged,
               label="final training loss")
    axes[1].axhline(math.log(r.num_classes), color="0.4", linestyle="--",
                    label=f"uniform guess, ln {r.num_classes} = {math.log(r.num_classes):.2f}")
    axes[1].set(xscale="log", yscale="log", xlabel="learning rate (log scale)",
                ylabel="final training loss (log scale)", title="Loss after the last epoch")
    below(axes[1])
    sweep_plot(axes[2], r.sgd_lrs, [100 * r.variants[n].accuracy for n in names], diverged=diverged,
               label="test accuracy")
    axes[2].axhline(100 / r.num_classes, color="0.4", linestyle="--", label="chance")
    axes[2].set(xscale="log", xlabel="learning rate (log scale)", ylabel=f"test accuracy (%, {r.test_examples} images)",
                title="Test accuracy")
    below(axes[2])
    below(axes[0])
    fig.suptitle(f"Plain SGD (no momentum, batch 64) on {r.dataset}: learning-rate sweep, {r.epochs} epochs, "
                 f"{ctx.mode} mode; × = diverged")
    ctx.save_figure(fig, "sgd_lr_sweep")


def write_up(r: Result) -> str:
    v, C = r.variants, r.num_classes
    chance = math.log(C)

    def acc_cell(name):
        return spread(v[name].test_accuracy) if v[name].finished else "—"

    def cmp(name):
        return r.comparisons[name].sentence() if name in r.comparisons else f"{name} {r.verdicts[name]}: not compared."

    def final_val(name):
        h = v[name].history
        return f"{h.final('val_loss'):.3f}" + (" before diverging" if h.diverged else "")

    group_of = {n: g for g, names in GROUPS.items() for n in names}
    rows = [(BASE_LABEL if n == "baseline" else n, group_of.get(n, "baseline" if n == "baseline" else "plain-SGD sweep"),
             r.verdicts[n], f"{v[n].history.final('train_loss'):.4g}", acc_cell(n), f"{v[n].parameters:,}",
             f"{np.mean(v[n].seconds):.1f}", r.comparisons[n].verdict() if n in r.comparisons else "")
            for n in v]
    top = (f"Most accurate trained setting against its closest rival: {r.top.sentence()}" if r.top else
           "Fewer than two settings trained, so none is named best.")
    base = v["baseline"].history
    best_epoch = int(np.nanargmin(base.val_loss)) + 1 if base.val_loss else 0
    overfit = (f"the baseline's validation loss was lowest at epoch {best_epoch} of {len(base.val_loss)} and rose after"
               if 0 < best_epoch < len(base.val_loss) else
               f"the baseline's validation loss was still falling at epoch {len(base.val_loss)}, so it had not begun "
               f"to over-fit and dropout had nothing to cure yet")
    steps = {n: math.ceil(r.train_examples / min(v[n].config["batch"], r.train_examples)) for n in ("baseline", "batch 1024")}
    adam_note = (f": Adam moves every weight by about lr per step, and 0.1 is {0.1 * math.sqrt(r.in_features):.1f}× "
                 f"the first layer's initial weight bound 1/√{r.in_features}, so it ended "
                 f"**{r.verdicts['Adam lr 0.1']}**" if r.verdicts["Adam lr 0.1"] != "trained" else
                 ", and it still trained")
    sgd = {lr: r.verdicts[sgd_name(lr)] for lr in r.sgd_lrs}
    exploded = [lr for lr, s in sgd.items() if s in ("diverged", "failed to learn")]
    stalled = [lr for lr, s in sgd.items() if s == "stalled"]
    sgd_ok = [lr for lr in r.sgd_lrs if sgd[lr] == "trained"]
    if r.sgd_top is not None:
        best_sgd = (f"Best plain-SGD learning rate: {r.sgd_top.winner}. {r.sgd_top.sentence()}" if r.sgd_top.winner
                    else f"The two best plain-SGD learning rates are a tie: {r.sgd_top.sentence()}")
    else:
        best_sgd = (f"Only {sgd_name(sgd_ok[0])} trained ({pct(v[sgd_name(sgd_ok[0])].accuracy)})." if sgd_ok else
                    "No plain-SGD run trained.")
    explosion = (", ".join(f"lr {lr:g} ({sgd[lr]})" for lr in exploded) if exploded else
                 "no learning rate in the sweep diverged or failed")
    stall = (", ".join(f"lr {lr:g}" for lr in stalled) + " (the loss stayed within 10% of the uniform guess: steps too "
             f"small to move the weights in {r.epochs} epochs)" if stalled else "no learning rate stalled")

    def cost(n):
        return (f"{v[n].parameters:,} parameters and {np.mean(v[n].seconds):.1f} s vs the baseline's "
                f"{v['baseline'].parameters:,} and {np.mean(v['baseline'].seconds):.1f} s")

    sgd_lines = [f"- lr {lr:g}: **{s}**; training loss {' → '.join(f'{x:.3g}' for x in v[sgd_name(lr)].history.train_loss)}"
                 for lr, s in sgd.items()]
    return f"""
One network (MLP {'-'.join(map(str, BASELINE['hidden']))} with ReLU) on {r.train_examples} {r.dataset} training
images, {r.epochs} epochs per run; test accuracy on {r.test_examples} test images. From the baseline one factor is
changed at a time, with the same initial-weight seed and batch order; comparisons with the baseline use
{seeds_note(r.seeds, r.test_examples)}. A run is *diverged* if its loss became NaN/inf, *stalled* if every
epoch's training loss stayed within 10% of ln {C} = {chance:.3f} (a uniform guess), *failed to learn* if its
validation accuracy stayed under twice chance ({2 / C:.0%}) or its final training loss was no better than ln {C}.

{table(["setting", "factor", "verdict", "final train loss", "test accuracy", "parameters", "seconds", "vs baseline"], rows)}

**{top}**

## One factor at a time (`grid_of_curves.png`)
- Learning rate (Adam): {cmp('Adam lr 0.01')} {cmp('Adam lr 0.1')} At lr 0.1 the validation loss ended at
  {final_val('Adam lr 0.1')} (uniform guess {chance:.2f}){adam_note}.
- Batch size: batch 1024 takes {steps['batch 1024']} steps per epoch instead of {steps['baseline']}, so
  {steps['baseline'] // max(steps['batch 1024'], 1)}× fewer updates in the same epochs; validation loss
  {final_val('batch 1024')} vs {final_val('baseline')}. {cmp('batch 1024')}
- Optimizer: {cmp('SGD + momentum 0.9, lr 0.01')}
- Dropout: final training loss {v['dropout 0.5'].history.final('train_loss'):.3f} with dropout 0.5 vs
  {base.final('train_loss'):.3f} without; {overfit}. {cmp('dropout 0.5')}
- Depth: {' '.join(f"{cmp(n)} Cost: {cost(n)}." for n in GROUPS['depth'])}
- Width: {' '.join(f"{cmp(n)} Cost: {cost(n)}." for n in GROUPS['width'])}

## Plain SGD over {len(r.sgd_lrs)} learning rates (`sgd_lr_sweep.png`)
{chr(10).join(sgd_lines)}
- Explosion: {explosion}.
- Stall: {stall}.
- {best_sgd}
"""
