"""2.4 Learning-rate range test (LR finder): the training loss of a fresh MLP while its
learning rate grows exponentially, smoothed; the suggested rate read off it by the usual rule;
then short runs at that rate and at rates around it, to check that the suggestion trains well.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.ticker import MaxNLocator

from models import MLP
from utils.data import train_val_split
from utils.history import History
from utils.plotting import legend_outside, mark_diverged, plt
from utils.report import Comparison, compare_runs, pct, plural, table
from utils.train import batches, predict

BUDGET = {  # finder_steps: lr steps over [lr_min, lr_max]; short_seeds: runs per lr (their mean is compared)
    "tiny": {"train_size": 1000, "test_size": 300, "finder_steps": 100, "short_epochs": 1, "short_seeds": 1},
    "quick": {"train_size": 6000, "test_size": 2000, "finder_steps": 200, "short_epochs": 3, "short_seeds": 2},
    "hybrid": {"train_size": 20000, "test_size": None, "finder_steps": 300, "short_epochs": 5, "short_seeds": 3},
    "full": {"train_size": None, "test_size": None, "finder_steps": 400, "short_epochs": 8, "short_seeds": 3},
}
LR_MIN, LR_MAX, BATCH, BETA, STOP_FACTOR, HIDDEN = 1e-5, 10.0, 64, 0.9, 4.0, (256, 128)
FACTORS = {"suggested ÷ 10": 0.1, "suggested ÷ 3": 1 / 3, "suggested": 1.0, "suggested × 3": 3.0,
           "suggested × 10": 10.0}   # short runs around the suggestion
TOLERANCE = 0.02                     # the suggestion "trains well" within 2 points of the best short run


def smooth_losses(losses, beta: float = BETA) -> np.ndarray:
    """Exponential moving average with bias correction (the first values are not pulled towards 0)."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return np.array(out)


def suggest_lr(lrs, smoothed, skip: int = 5) -> tuple[float, int]:
    """The LR at the steepest descent of the smoothed loss vs log10(LR), before the loss minimum.

    Returns (lr, index). The first `skip` points are ignored: the moving average is still warming up there.
    """
    lrs, smoothed = np.asarray(lrs), np.asarray(smoothed)
    end = int(np.argmin(smoothed)) + 1
    start = min(skip, max(end - 2, 0))
    if end - start < 2:
        return float(lrs[start]), start
    slope = np.gradient(smoothed[start:end], np.log10(lrs[start:end]))
    index = start + int(np.argmin(slope))
    return float(lrs[index]), index


def lr_range_test(model, x, y, optimizer, *, lr_min: float, lr_max: float, steps: int, batch_size: int, seed: int,
                  beta: float = BETA, stop_factor: float = STOP_FACTOR):
    """`steps` training steps (reshuffled passes over (x, y) as needed), the lr multiplied by a constant factor
    each step from lr_min to lr_max. Stops early once the smoothed loss exceeds stop_factor × its minimum (or
    turns NaN). Returns (lrs, raw losses, smoothed losses, stopped_early)."""
    factor = (lr_max / lr_min) ** (1 / max(steps - 1, 1))
    gen = torch.Generator().manual_seed(seed)
    lrs, losses, smoothed = [], [], []
    avg, best = 0.0, float("inf")
    model.train()
    while True:
        for idx in batches(len(x), batch_size, True, gen):
            lr = lr_min * factor ** len(lrs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                return np.array(lrs), np.array(losses), np.array(smoothed), True
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            lrs.append(lr)
            losses.append(loss.item())
            avg = beta * avg + (1 - beta) * losses[-1]
            smoothed.append(avg / (1 - beta ** len(losses)))
            best = min(best, smoothed[-1])
            if len(lrs) > 10 and smoothed[-1] > stop_factor * best:
                return np.array(lrs), np.array(losses), np.array(smoothed), True
            if len(lrs) >= steps:
                return np.array(lrs), np.array(losses), np.array(smoothed), False


@dataclass
class Result:
    dataset: str
    classes: int
    train_examples: int
    test_examples: int
    batch: int
    planned_steps: int
    lrs: np.ndarray                  # the range test: lr at each step
    raw: np.ndarray                  # loss per step
    smoothed: np.ndarray             # bias-corrected EMA of the loss
    stopped: bool                    # stopped early when the loss blew up
    suggested: float                 # steepest descent of the smoothed loss
    suggested_index: int
    min_index: int                   # lowest smoothed loss
    short_lrs: dict[str, float]      # label ("suggested ÷ 10", "suggested", ...) -> lr
    epochs: int
    seeds: list[int]
    accuracy: dict[str, list[float]]  # label -> test accuracy per seed
    correct: dict[str, np.ndarray]   # label -> the first seed's per-example test correctness
    histories: dict[str, History]    # label -> the first seed's run


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("fashion-mnist", train_size=b.train_size, test_size=b.test_size)
    train, val = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=ctx.seed)
    batch = min(BATCH, max(8, len(train[1]) // 8))    # several steps per pass on small stand-ins

    def fresh(seed: int):
        torch.manual_seed(seed)
        return MLP(int(np.prod(ds.shape)), HIDDEN, ds.num_classes)

    model = fresh(ctx.seed)
    opt = torch.optim.SGD(model.parameters(), lr=LR_MIN, momentum=0.9)
    lrs, raw, smoothed, stopped = lr_range_test(model, *train, opt, lr_min=LR_MIN, lr_max=LR_MAX,
                                                steps=b.finder_steps, batch_size=batch, seed=ctx.seed)
    suggested, s_idx = suggest_lr(lrs, smoothed)
    m_idx = int(np.argmin(smoothed))
    ctx.log(f"  range test: {len(lrs)} steps, suggested lr {suggested:.3g} (lowest loss at {lrs[m_idx]:.3g})")

    short = {label: suggested * f for label, f in FACTORS.items()}
    seeds = ctx.seeds(b.short_seeds)
    accuracy = {label: [] for label in short}
    correct, histories = {}, {}

    def short_run(job):
        s, label = job
        m = fresh(s)
        h = ctx.fit(m, train, val, epochs=b.short_epochs, batch_size=batch, seed=s,
                    optimizer=torch.optim.SGD(m.parameters(), lr=short[label], momentum=0.9), restore_best=False,
                    description=f"lr {short[label]:.2g}")
        return h, (predict(m, ds.x_test, ctx.cfg.eval_batch_size).argmax(1) == ds.y_test).numpy()

    jobs = [(s, label) for s in seeds for label in short]
    done = ctx.map(short_run, jobs, "short runs", info=lambda j, out: f"{j[1]}: test {out[1].mean():.3f}")
    for (s, label), (h, right) in zip(jobs, done):
        accuracy[label].append(float(right.mean()))
        if s == seeds[0]:
            correct[label], histories[label] = right, h
    r = Result(ds.label, ds.num_classes, len(train[1]), len(ds.y_test), batch, b.finder_steps, lrs, raw, smoothed,
               stopped, suggested, s_idx, m_idx, short, b.short_epochs, seeds, accuracy, correct, histories)
    best, comp = confirmation(r)
    gap = np.mean(accuracy[best]) - np.mean(accuracy["suggested"])
    within = "within" if gap <= TOLERANCE else "more than"
    ctx.record(suggested_lr=suggested, lr_at_min_loss=float(lrs[m_idx]), min_over_10_lr=float(lrs[m_idx]) / 10,
               rule="steepest negative slope of the smoothed loss vs log10(lr), before its minimum",
               range_test={"lr_min": LR_MIN, "lr_max": LR_MAX, "steps": len(lrs), "planned_steps": b.finder_steps,
                           "factor_per_step": float(lrs[1] / lrs[0]), "stopped_early": stopped, "batch_size": batch,
                           "beta": BETA},
               short_run_accuracy={f"{short[k]:.3g}": float(np.mean(v)) for k, v in accuracy.items()},
               short_run_accuracy_per_seed={f"{short[k]:.3g}": v for k, v in accuracy.items()},
               short_run_status={f"{short[k]:.3g}": histories[k].status for k in short},
               best_short_run_lr=short[best], suggested_gap_to_best=float(gap),
               suggested_within_2_points=bool(gap <= TOLERANCE),
               confirmation=(f"the best of {len(short)} short runs" if best == "suggested" else
                             f"short run {100 * gap:.1f} points below the best ({within} 2)"),
               verdict=comp.verdict() if comp else "suggested lr gave the best short run",
               epochs=b.short_epochs, seeds=seeds, test_examples=len(ds.y_test))
    return r


def confirmation(r: Result) -> tuple[str, Comparison | None]:
    """The best short run's label, and the suggested run compared with it by the rule (None when it is the best)."""
    best = max(r.accuracy, key=lambda k: np.mean(r.accuracy[k]))
    if best == "suggested":
        return best, None
    return best, compare_runs("suggested lr", f"best short run (lr {r.short_lrs[best]:.2g})",
                              seeds_a=r.accuracy["suggested"], seeds_b=r.accuracy[best],
                              correct_a=r.correct["suggested"], correct_b=r.correct[best])


def draw(ctx, r: Result) -> None:
    lr_min_loss = float(r.lrs[r.min_index])
    fig, ax = plt.subplots(figsize=(9, 4.8))
    ax.semilogx(r.lrs, r.raw, color="0.7", lw=0.8, label="loss per step")
    ax.semilogx(r.lrs, r.smoothed, color="#1f77b4", lw=2, label=f"smoothed (EMA β = {BETA}, bias-corrected)")
    ax.plot(r.suggested, r.smoothed[r.suggested_index], "o", color="#2ca02c", ms=10,
            label=f"suggested {r.suggested:.2g} (steepest descent)")
    ax.plot(lr_min_loss, r.smoothed[r.min_index], "v", color="#d62728", ms=10, label=f"lowest loss at {lr_min_loss:.2g}")
    ax.axvline(lr_min_loss / 10, color="#d62728", linestyle=":", label=f"minimum ÷ 10 rule: {lr_min_loss / 10:.2g}")
    for label, lr in r.short_lrs.items():
        ax.axvline(lr, color="#2ca02c", alpha=0.25, lw=3)
    ax.plot([], [], color="#2ca02c", alpha=0.25, lw=3, label="short-run lrs (next figure)")
    top = 1.3 * max(r.smoothed[: r.min_index + 1].max(), r.raw[: r.min_index + 1].max())
    ax.set_ylim(0, top)
    if r.stopped:   # the blow-up runs off the top: mark where the test stopped
        ax.plot(r.lrs[-1], 0.97 * top, "x", color="k", ms=10, mew=2,
                label=f"stopped at {r.lrs[-1]:.2g}: loss > {STOP_FACTOR:g}× its minimum")
    ax.set_xlim(LR_MIN / 1.5, r.lrs[-1] * 2)
    ax.set_xlabel(f"learning rate (log scale), ×{r.lrs[1] / r.lrs[0]:.3f} per step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(f"LR range test on {r.dataset}: MLP {'-'.join(map(str, HIDDEN))}, SGD + momentum 0.9, "
                 f"{len(r.lrs)} steps of batch {r.batch}"
                 + (" (stopped when the loss blew up)" if r.stopped else ""), fontsize=10)
    legend_outside(ax)
    ctx.save_figure(fig, "lr_finder")

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    labels = sorted(r.short_lrs, key=r.short_lrs.get)
    xs = [r.short_lrs[k] for k in labels]
    means = [100 * np.mean(r.accuracy[k]) for k in labels]
    best = max(means)
    axes[0].axhspan(best - 100 * TOLERANCE, best, color="#2ca02c", alpha=0.12, label="within 2 points of the best")
    axes[0].semilogx(xs, means, "o-", color="#1f77b4", label=f"mean of {plural(len(r.seeds), 'seed')}")
    if len(r.seeds) > 1:
        axes[0].plot(np.repeat(xs, [len(r.accuracy[k]) for k in labels]),
                     [100 * a for k in labels for a in r.accuracy[k]], ".", color="0.5", label="single seeds")
    axes[0].plot(r.suggested, 100 * np.mean(r.accuracy["suggested"]), "*", color="#2ca02c", ms=16,
                 markeredgecolor="k", label=f"suggested {r.suggested:.2g}")
    bad = [k for k in labels if r.histories[k].diverged]
    if bad:
        axes[0].plot([r.short_lrs[k] for k in bad], [100 * np.mean(r.accuracy[k]) for k in bad], "x", color="#d62728",
                     ms=11, mew=2, label="diverged (NaN loss)")
    axes[0].set(xlabel="learning rate (log scale)", ylabel=f"test accuracy (%, {r.test_examples} images)",
                title=f"Test accuracy after {plural(r.epochs, 'epoch')}")
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    for k in labels:
        h = r.histories[k]
        line, = axes[1].plot(range(1, h.epochs + 1), h.train_loss, "o-", ms=3, label=f"lr {r.short_lrs[k]:.2g} ({k})"
                             + (" — diverged ×" if h.diverged else ""))
        if h.diverged:
            mark_diverged(axes[1], h.train_loss, color=line.get_color())
    axes[1].set(xlabel="epoch", ylabel="training loss (cross-entropy, log scale)", yscale="log",
                title=f"Training loss per epoch (seed {r.seeds[0]})")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.suptitle(f"Short SGD (momentum 0.9) runs on {r.dataset} at the suggested lr and around it")
    fig.tight_layout()
    ctx.save_figure(fig, "short_runs")


def write_up(r: Result) -> str:
    best, comp = confirmation(r)
    acc = {k: float(np.mean(v)) for k, v in r.accuracy.items()}
    gap = acc[best] - acc["suggested"]
    lr_min_loss = float(r.lrs[r.min_index])
    stop = (f"The test stopped after {len(r.lrs)} of {r.planned_steps} planned steps, at lr {r.lrs[-1]:.2g}, when the "
            f"smoothed loss exceeded {STOP_FACTOR:g}× its minimum." if r.stopped else
            f"The loss never exceeded {STOP_FACTOR:g}× its minimum, so all {len(r.lrs)} steps ran.")
    passes = len(r.lrs) * r.batch / r.train_examples
    ratio = r.suggested / (lr_min_loss / 10)
    rules = ("the two rules agree within a factor 2" if 0.5 <= ratio <= 2 else
             f"the steepest-descent value is {ratio:.1f}× the minimum ÷ 10 value")
    if best == "suggested":
        confirm = (f"**The suggested lr gave the best short run** ({pct(acc['suggested'])}) of the {len(acc)} tried: "
                   f"the suggestion trains well.")
    elif gap <= TOLERANCE:
        confirm = (f"**The suggested lr trains well: its short run reached {pct(acc['suggested'])}, {100 * gap:.1f} points "
                   f"below the best ({pct(acc[best])} at lr {r.short_lrs[best]:.2g}), within the 2-point margin.** "
                   + (f"By the comparison rule the two are not distinguishable: {comp.sentence()}" if comp.winner is None
                      else f"By the comparison rule the best run is still measurably better, so the finder pointed "
                           f"to the right range, a factor {r.short_lrs[best] / r.suggested:.2g} from the best of the "
                           f"rates tried: {comp.sentence()}"))
    else:
        confirm = (f"**The suggestion missed: its short run reached {pct(acc['suggested'])}, {100 * gap:.1f} points below "
                   f"the best ({pct(acc[best])} at lr {r.short_lrs[best]:.2g}), outside the 2-point margin.** "
                   + comp.sentence())
    rows = [(k, f"{r.short_lrs[k]:.2g}", r.histories[k].status, pct(acc[k]),
             ", ".join(pct(a) for a in r.accuracy[k]) if len(r.seeds) > 1 else "—")
            for k in sorted(r.short_lrs, key=r.short_lrs.get)]
    large = r.histories["suggested × 10"]
    large_text = (f"Ten times the suggestion ({r.short_lrs['suggested × 10']:.2g}) diverged (NaN loss), marked × in the figures."
                  if large.diverged else
                  f"Ten times the suggestion ({r.short_lrs['suggested × 10']:.2g}) reached {pct(acc['suggested × 10'])} "
                  f"(chance: {pct(1 / r.classes)})"
                  + (", so it is too large for this network." if acc["suggested × 10"] < acc["suggested"] - TOLERANCE else "."))
    small_text = (f"A tenth of the suggestion ({r.short_lrs['suggested ÷ 10']:.2g}) reached {pct(acc['suggested ÷ 10'])}"
                  + (": too small a rate spends the epoch budget crawling." if acc["suggested ÷ 10"] < acc["suggested"] - TOLERANCE
                     else f", within 2 points of the suggestion: in {plural(r.epochs, 'epoch')} a smaller rate also trained."))
    return f"""
## The range test (`lr_finder.png`)
A fresh MLP (hidden layers {', '.join(map(str, HIDDEN))}; {r.classes} classes) with SGD (momentum 0.9) trained on
{r.train_examples} {r.dataset} images in
batches of {r.batch} while its learning rate was multiplied by {r.lrs[1] / r.lrs[0]:.3f} every step, from {LR_MIN:g}
towards {LR_MAX:g} over {r.planned_steps} steps ({passes:.1f} passes over the data). {stop}

**Rule used:** the suggested lr is where the smoothed loss (exponential moving average, β = {BETA}, bias-corrected)
falls fastest per decade of lr: the steepest negative slope, searched before the loss minimum. It gives
**{r.suggested:.2g}**. The other usual rule, a tenth of the lr at the minimum ({lr_min_loss:.2g}), gives
{lr_min_loss / 10:.2g}; {rules}.

## Short runs (`short_runs.png`)
{plural(r.epochs, 'epoch')} at constant lr, fresh weights, batch {r.batch}, {plural(len(r.seeds), 'seed')} per lr; test accuracy on
{r.test_examples} images (one image = {100 / r.test_examples:.2f} points):

{table(["lr", "value", "status (first seed)", "mean test accuracy", "per seed"], rows)}

{confirm}
{small_text}
{large_text}
"""
