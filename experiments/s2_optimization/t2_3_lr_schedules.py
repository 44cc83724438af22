"""2.3 Learning-rate schedules: ten schedules from scratch (each checked against
torch.optim.lr_scheduler), their lr at every step, and each one driving the same training run
of a scratch MLP (SGD + momentum, same initial weights and batch order) on Fashion-MNIST.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from torch.optim import lr_scheduler as L

import scratch
from experiments.common.scratch_training import image_arrays, scratch_mlp
from experiments.s2_optimization._shared_a import (CosineWarmRestarts, PlateauLR, comparison_table,
                                                   torch_plateau_lrs)
from scratch import schedules as S
from scratch.schedules import lr_curve
from utils.history import History
from utils.plotting import legend_outside, plt
from utils.report import Comparison, compare_runs, pct, spread, table

BUDGET = {"tiny": {"train_size": 640, "test_size": 300, "epochs": 2, "patience": 0},
          "quick": {"train_size": 6000, "test_size": 2000, "epochs": 6, "patience": 1},
          "hybrid": {"train_size": 20000, "test_size": None, "epochs": 12, "patience": 1},
          "full": {"train_size": None, "test_size": None, "epochs": 20, "patience": 2}}
BATCH, BASE_LR, HIDDEN, PLATEAU_FACTOR = 64, 0.1, 128, 0.1
PLATEAU, RESTARTS, CONSTANT, WARMUP = "reduce on plateau (×0.1)", "cosine warm restarts (SGDR)", "constant", \
    "linear warm-up (10%)"


def make_schedules(base_lr: float, T: int) -> dict:
    """The nine closed-form schedules of 2.3 over T steps (scratch); reduce-on-plateau is built per run."""
    return {
        CONSTANT: S.ConstantLR(base_lr),
        "step (÷10 at 1/2, 3/4)": S.MultiStepLR(base_lr, [T // 2, 3 * T // 4], gamma=0.1),
        "exponential (to 1%)": S.ExponentialLR(base_lr, gamma=0.01 ** (1 / T)),
        "polynomial (power 2)": S.PolynomialLR(base_lr, total_iters=T, power=2.0),
        "cosine": S.CosineAnnealingLR(base_lr, T_max=T),
        RESTARTS: CosineWarmRestarts(base_lr, T_0=-(-T // 7), T_mult=2),   # cycles of T/7, 2T/7, 4T/7
        "cyclic (triangular2)": S.CyclicLR(base_lr / 20, base_lr, step_size_up=max(T // 8, 1), mode="triangular2"),
        "one-cycle": S.OneCycleLR(base_lr, total_steps=T),
        WARMUP: S.LinearWarmup(base_lr, warmup_steps=max(T // 10, 1), start_factor=0.01),
    }


def torch_schedule_curve(name: str, base_lr: float, T: int) -> np.ndarray:
    """The same schedule from torch.optim.lr_scheduler: the optimizer's lr at steps 0 .. T − 1."""
    import torch

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = {
        CONSTANT: lambda: L.ConstantLR(opt, factor=1.0, total_iters=0),
        "step (÷10 at 1/2, 3/4)": lambda: L.MultiStepLR(opt, [T // 2, 3 * T // 4], gamma=0.1),
        "exponential (to 1%)": lambda: L.ExponentialLR(opt, gamma=0.01 ** (1 / T)),
        "polynomial (power 2)": lambda: L.PolynomialLR(opt, total_iters=T, power=2.0),
        "cosine": lambda: L.CosineAnnealingLR(opt, T_max=T),
        RESTARTS: lambda: L.CosineAnnealingWarmRestarts(opt, T_0=-(-T // 7), T_mult=2),
        "cyclic (triangular2)": lambda: L.CyclicLR(opt, base_lr / 20, base_lr, step_size_up=max(T // 8, 1),
                                                   mode="triangular2", cycle_momentum=False),
        "one-cycle": lambda: L.OneCycleLR(opt, base_lr, total_steps=T, cycle_momentum=False),
        WARMUP: lambda: L.LinearLR(opt, start_factor=0.01, end_factor=1.0, total_iters=max(T // 10, 1)),
    }[name]()
    lrs = []
    for _ in range(T):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(lrs)


def train_run(model, schedule, data, *, epochs: int, seed: int) -> tuple[History, np.ndarray]:
    """SGD + momentum 0.9 on (x_tr, y_tr, x_val, y_val, x_te, y_te) with ``schedule`` setting the lr every step
    (a PlateauLR is stepped with the validation loss after each epoch). Returns the history (val_* on the
    validation split) and the per-example correctness on the test set."""
    x_tr, y_tr, x_val, y_val, x_te, y_te = data
    opt = scratch.SGD(model.param_arrays(), lr=BASE_LR, momentum=0.9)
    rng = np.random.default_rng(seed)     # same batch order for every schedule
    steps = math.ceil(len(x_tr) / BATCH)
    h = History()
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            t0 = time.perf_counter()
            h.lr.append(schedule.lr_at(epoch * steps))
            loss = scratch.train_epoch(model, x_tr, y_tr, scratch.softmax_cross_entropy, opt, BATCH, rng,
                                       schedule, epoch * steps)
            val_loss, val_acc = scratch.evaluate(model, x_val, y_val)
            if not (math.isfinite(loss) and math.isfinite(val_loss)):
                h.status = "diverged"
                h.train_loss.append(float("nan"))
                break
            h.train_loss.append(float(loss))
            h.val_loss.append(float(val_loss))
            h.val_acc.append(float(val_acc))
            h.epoch_seconds.append(time.perf_counter() - t0)
            h.stopped_epoch = epoch + 1
            if isinstance(schedule, PlateauLR):
                schedule.step(val_loss)
    return h, scratch.predict(model, x_te).argmax(1) == y_te


@dataclass
class Result:
    dataset: str
    train_examples: int
    val_examples: int
    test_examples: int
    epochs: int
    steps: int                          # total training steps
    patience: int                       # reduce-on-plateau patience (epochs)
    curve_steps: np.ndarray             # the steps the curves are sampled at (≤ 2000 of them, last included)
    curves: dict[str, np.ndarray]       # lr at those steps (reduce-on-plateau: the first seed's run)
    torch_gap: dict[str, float]         # max |scratch − torch| lr over the run, per schedule
    histories: dict[str, History]       # first seed's run per schedule
    accuracy: dict[str, list[float]]    # test accuracy per seed
    correct: dict[str, np.ndarray]      # last seed's per-example test correctness
    seeds: list[int]


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("fashion-mnist", train_size=b.train_size, test_size=b.test_size)
    x, y, x_te, y_te = image_arrays(ds)
    perm = np.random.default_rng(ctx.seed).permutation(len(y))
    n_val = max(1, round(ctx.cfg.val_fraction * len(y)))
    val, tr = perm[:n_val], perm[n_val:]
    data = (x[tr], y[tr], x[val], y[val], x_te, y_te)
    total = b.epochs * math.ceil(len(tr) / BATCH)
    names = [*make_schedules(BASE_LR, total), PLATEAU]
    curves = {name: lr_curve(s, total) for name, s in make_schedules(BASE_LR, total).items()}
    gap = {name: float(np.max(np.abs(curves[name] - torch_schedule_curve(name, BASE_LR, total))))
           for name in curves}
    seeds = ctx.seeds()
    runs: dict[str, list[History]] = {n: [] for n in names}
    accuracy: dict[str, list[float]] = {n: [] for n in names}
    correct = {}

    def train_one(job):
        s, name = job
        schedule = (PlateauLR(BASE_LR, PLATEAU_FACTOR, b.patience) if name == PLATEAU
                    else make_schedules(BASE_LR, total)[name])
        model = scratch_mlp((x.shape[1], HIDDEN, ds.num_classes), "relu", seed=s)  # same start for all
        return (*train_run(model, schedule, data, epochs=b.epochs, seed=s), getattr(schedule, "lr", None))

    jobs = [(s, name) for s in seeds for name in names]
    done = ctx.map(train_one, jobs, "schedules", info=lambda j, out: f"{j[1]}: test acc {out[1].mean():.3f}",
                   torch_runs=False)   # scratch NumPy training
    for (s, name), (h, correct[name], last_lr) in zip(jobs, done):
        runs[name].append(h)
        accuracy[name].append(float(correct[name].mean()))
        if s == seeds[0] and name == PLATEAU:
            plateau_lrs = h.lr + [last_lr] * (b.epochs - len(h.lr))
            curves[PLATEAU] = np.repeat(plateau_lrs, math.ceil(len(tr) / BATCH))[:total]
            torch_lrs = [BASE_LR] + torch_plateau_lrs(BASE_LR, h.val_loss, PLATEAU_FACTOR, b.patience)
            gap[PLATEAU] = float(np.max(np.abs(np.array(torch_lrs[:len(h.lr)]) - np.array(h.lr))))
    at = np.unique(np.linspace(0, total - 1, min(total, 2000)).round().astype(int))
    r = Result(ds.label, len(tr), len(val), len(y_te), b.epochs, total, b.patience, at,
               {n: c[at] for n, c in curves.items()}, gap,
               {n: runs[n][0] for n in names}, accuracy, correct, seeds)
    ranked, comps, verdict = ranking(r)
    leaders = [ranked[0]] + [n for n, c in comps.items() if c.winner is None]
    top = f"top {len(leaders)} schedules tied" if len(leaders) > 1 else f"{ranked[0]} beats all nine others"
    best = ranked[0] if len(leaders) == 1 else "tie: " + ", ".join(leaders)
    ctx.record(verdict=f"{verdict.verdict()} ({top})", best_schedule=best,
               test_accuracy={n: float(np.mean(v)) for n, v in accuracy.items()}, test_accuracy_per_seed=accuracy,
               test_examples=len(y_te), final_train_loss={n: runs[n][0].final("train_loss") for n in names},
               max_abs_diff_vs_torch=max(gap.values()), diff_vs_torch=gap,
               run_status={n: runs[n][0].status for n in names}, total_steps=total, base_lr=BASE_LR,
               plateau_lr_per_epoch=runs[PLATEAU][0].lr, epochs=b.epochs, seeds=seeds,
               comparisons={n: c.verdict() for n, c in comps.items()})
    return r


def ranking(r: Result) -> tuple[list[str], dict[str, Comparison], Comparison]:
    """Schedules by mean test accuracy; the top one against each other one; the best non-constant one
    against the constant lr (the headline)."""
    ranked = sorted(r.accuracy, key=lambda n: -np.mean(r.accuracy[n]))

    def comp(a, b):
        return compare_runs(a, b, seeds_a=r.accuracy[a], seeds_b=r.accuracy[b], correct_a=r.correct[a],
                            correct_b=r.correct[b])

    best_scheduled = next(n for n in ranked if n != CONSTANT)
    return ranked, {n: comp(ranked[0], n) for n in ranked[1:]}, comp(best_scheduled, CONSTANT)


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(2, 5, figsize=(16, 5.8), sharex=True, sharey=True)
    for ax, (name, curve) in zip(axes.ravel(), r.curves.items()):
        ax.plot(r.curve_steps, curve, color="#1f77b4")
        ax.set_title(name + (" — this run" if name == PLATEAU else ""), fontsize=9)
        ax.set_ylim(0, BASE_LR * 1.08)
    for ax in axes[1]:
        ax.set_xlabel("training step")
    for ax in axes[:, 0]:
        ax.set_ylabel("learning rate")
    fig.suptitle(f"Ten learning-rate schedules from scratch over {r.steps} steps (peak lr {BASE_LR}); each matches "
                 f"torch.optim.lr_scheduler to {max(r.torch_gap.values()):.0e}")
    ctx.save_figure(fig, "lr_vs_step")

    fig, axes = plt.subplots(1, 2, figsize=(13.5, 4.6))
    for i, (name, h) in enumerate(r.histories.items()):
        style = "-" if i < 5 else "--"
        epochs = range(1, len(h.train_loss) + 1)
        axes[0].semilogy(epochs, h.train_loss, style, marker="o", ms=3, label=name)
        axes[1].plot(range(1, len(h.val_acc) + 1), [100 * a for a in h.val_acc], style, marker="o", ms=3)
    axes[0].set(ylabel="training loss (cross-entropy, log scale)", title="Training loss per epoch")
    axes[1].set(ylabel=f"validation accuracy (%, {r.val_examples} images)", title="Validation accuracy per epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
    legend_outside(axes[1], sources=[axes[0]])
    fig.suptitle(f"Scratch MLP {HIDDEN} hidden units on {r.dataset}: one run per schedule, SGD + momentum 0.9, same "
                 f"initial weights and batches (seed {r.seeds[0]})")
    ctx.save_figure(fig, "training_curves")


def warmup_note(r: Result) -> str:
    """Why warm-up did or did not help, from the runs' own numbers."""
    c = compare_runs(WARMUP, CONSTANT, seeds_a=r.accuracy[WARMUP], seeds_b=r.accuracy[CONSTANT],
                     correct_a=r.correct[WARMUP], correct_b=r.correct[CONSTANT])
    swing = {n: 100 * (max(r.histories[n].val_acc[-3:]) - min(r.histories[n].val_acc[-3:]))
             for n in (WARMUP, CONSTANT) if r.histories[n].val_acc}
    noise = (f"both end at the full lr {BASE_LR}, and their validation accuracy swung by "
             f"{swing.get(WARMUP, float('nan')):.1f} and {swing.get(CONSTANT, float('nan')):.1f} points over the last "
             f"{min(3, r.epochs)} epochs, so the last epoch's noise, which warm-up does not touch, decides the final number")
    if c.winner == WARMUP:
        return f"Warm-up protected the first steps, when the weights are random and the gradients largest; but {noise}."
    if c.winner == CONSTANT:
        return f"This goes against the usual advice to warm up; the measured reason: {noise}."
    return f"Protecting the first steps made no measurable difference at this lr: {noise}."


def write_up(r: Result) -> str:
    ranked, comps, verdict = ranking(r)

    def vs(a, b) -> str:
        return compare_runs(a, b, seeds_a=r.accuracy[a], seeds_b=r.accuracy[b], correct_a=r.correct[a],
                            correct_b=r.correct[b]).sentence()

    top = ranked[0]
    tied = [n for n, c in comps.items() if c.winner is None]
    beaten = [n for n, c in comps.items() if c.winner == top]
    if tied:
        best = (f"{top} had the highest test accuracy ({pct(np.mean(r.accuracy[top]))}), but by the rule it is "
                f"**no measurably better than {', '.join(tied)}**, so no single best schedule is named"
                + (f"; it does beat {', '.join(beaten)}." if beaten else "."))
    else:
        best = f"**{top} is the best schedule here**: it measurably beats each of the other nine."
    final_lr = {n: float(c[-1]) for n, c in r.curves.items()}
    decayed = [n for n in r.histories if final_lr[n] < 0.2 * BASE_LR]
    high = [n for n in r.histories if n not in decayed]
    loss = {n: r.histories[n].final("train_loss") for n in r.histories}
    d_loss, h_loss = np.mean([loss[n] for n in decayed]), np.mean([loss[n] for n in high]) if high else np.nan
    anneal = ("annealing let SGD settle into a minimum instead of bouncing around it at full step size"
              if d_loss < h_loss else "here annealing did not lower the final training loss")
    if verdict.winner == CONSTANT:
        textbook = ("Against the textbook, the constant lr beat the best schedule: " + verdict.sentence())
    elif verdict.winner is None:
        textbook = ("Against the textbook expectation that a schedule helps, the best one could not be told from the "
                    f"constant lr on {r.test_examples} test images after {r.epochs} epochs: " + verdict.sentence())
    else:
        textbook = "As the textbook expects, scheduling helped: " + verdict.sentence()
    plateau_lrs = r.histories[PLATEAU].lr
    cuts = [i + 1 for i in range(1, len(plateau_lrs)) if plateau_lrs[i] < plateau_lrs[i - 1]]
    plateau = (f"Reduce-on-plateau (patience {r.patience}, factor {PLATEAU_FACTOR:g}, on the validation loss) cut the "
               f"lr before epoch{'s' if len(cuts) > 1 else ''} {', '.join(map(str, cuts))}, ending at "
               f"{plateau_lrs[-1]:.2g}" if cuts else
               f"Reduce-on-plateau (patience {r.patience}) never cut the lr: the validation loss kept improving, so "
               f"it ran as the constant lr did")
    t0 = -(-r.steps // 7)   # SGDR's first cycle
    rows = [(n, spread(r.accuracy[n]), f"{loss[n]:.4f}", f"{final_lr[n]:.2g}", r.histories[n].status) for n in ranked]
    return f"""
## The schedules (`lr_vs_step.png`)
Nine closed-form schedules and reduce-on-plateau, written in `scratch.schedules` and
`experiments/s2_optimization/_shared_a.py`; each matches torch.optim.lr_scheduler to
{max(r.torch_gap.values()):.0e} (reduce-on-plateau: torch's ReduceLROnPlateau fed the same validation losses).
Peak lr {BASE_LR}, {r.steps} steps = {r.epochs} epochs of batch {BATCH}.

## Their effect on one training run (`training_curves.png`)
The same scratch MLP ({HIDDEN} hidden units) trained on {r.train_examples} {r.dataset} images with SGD + momentum 0.9,
the same initial weights and batch order, once per schedule ({len(r.seeds)} seed{'s' if len(r.seeds) > 1 else ''});
{r.val_examples} held-out training images steer reduce-on-plateau; accuracies are on {r.test_examples} test images
(one image = {100 / r.test_examples:.2f} points):

{table(["schedule", "test accuracy", "final train loss", "lr at the last step", "status"], rows)}

- {best}
- {textbook}
- The schedules that end at a small lr ({', '.join(decayed)}) finished with a mean training loss of {d_loss:.3f},
  against {h_loss:.3f} for those that stay high ({', '.join(high) or 'none'}): {anneal}.
- {plateau}. Against the constant lr: {vs(PLATEAU, CONSTANT)}
- Warm restarts (cycles of {t0}, {2 * t0} and {4 * t0} steps, the lr jumping back to {BASE_LR} at each restart)
  vs one cosine: {vs(RESTARTS, 'cosine')}
- Warm-up vs constant: {vs(WARMUP, CONSTANT)} {warmup_note(r)}

Every comparison with the top schedule:

{comparison_table(comps.values())}
"""
