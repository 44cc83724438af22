"""4.7 Batch-norm CNN vs plain CNN: the same SmallCNN with and without batch norm after each convolution,
trained with plain SGD at three learning rates — convergence (how far each got after one epoch, and the
training loss step by step) and sensitivity to the learning rate (accuracy at the end, per rate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from experiments.s4_cnn._shared import recording_cross_entropy, steps_below
from models import SmallCNN
from utils.data import train_val_split
from utils.plotting import legend_outside, mark_diverged, plt, sweep_plot
from utils.report import Comparison, compare_runs, pct, spread, table
from utils.train import predict

BUDGET = {  # small subsets: more steps per epoch with batch 32
    "tiny": {"train_size": 400, "val_fraction": 0.25, "epochs": 1, "batch_size": 32, "test_images": 300},
    "quick": {"train_size": 1100, "val_fraction": 0.25, "epochs": 2, "batch_size": 32, "test_images": 2000},
    "hybrid": {"train_size": 10000, "val_fraction": 0.1, "epochs": 4, "batch_size": 64, "test_images": 5000},
    "full": {"train_size": 30000, "val_fraction": 0.1, "epochs": 8, "batch_size": 64, "test_images": 10000},
}
LRS = (0.003, 0.03, 0.3)  # SGD with momentum 0.9: slow, usual, and high for a plain CNN
KINDS = {"plain": "plain CNN", "batch_norm": "batch-norm CNN"}
COLORS = {"plain": "#1f77b4", "batch_norm": "#d62728"}
LOSS_THRESHOLD = 1.0


@dataclass
class Run:
    step_losses: list[float]      # training loss of every step (NaN from divergence on)
    status: str                   # "done" | "diverged"
    early_accuracy: float         # test accuracy after the first epoch
    final_accuracy: float         # test accuracy at the end
    val_accuracy: float           # validation accuracy at the end (nan if diverged at once)
    steps_to_threshold: int | None
    seconds: float


@dataclass
class Result:
    dataset: str
    train_images: int
    val_images: int
    test_images: int
    epochs: int
    batch_size: int
    chance: float
    runs: dict[str, dict[str, list[Run]]]     # kind -> lr -> one Run per seed
    early: dict[str, Comparison]              # lr -> batch norm vs plain, test accuracy after epoch 1
    final: dict[str, Comparison]              # lr -> batch norm vs plain, test accuracy at the end

    def wins(self, which: str) -> dict[str, list[str]]:
        cmps = self.early if which == "early" else self.final
        return {name: [lr for lr, c in cmps.items() if c.winner == name] for name in KINDS.values()}

    @property
    def verdict(self) -> str:
        w = self.wins("final")
        bn, plain = w[KINDS["batch_norm"]], w[KINDS["plain"]]
        if not bn and not plain:
            return f"batch norm ≈ plain at all {len(self.final)} learning rates (tie)"
        parts = [f"{n} better at lr {', '.join(v)}" for n, v in w.items() if v]
        ties = [lr for lr, c in self.final.items() if c.winner is None]
        return "; ".join(parts) + (f"; tie at {', '.join(ties)}" if ties else "")


def correctness(model, x, y, ctx) -> np.ndarray:
    """Per-image right/wrong; a network whose outputs are not finite gets every image wrong."""
    logits = predict(model, x, ctx.cfg.eval_batch_size, ctx.device)
    return ((logits.argmax(1) == y) & torch.isfinite(logits).all(1)).numpy()


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("mnist", train_size=b.train_size)
    train, val = train_val_split(ds.x_train, ds.y_train, b.val_fraction, seed=ctx.seed)
    n_test = min(len(ds.y_test), b.test_images)
    x_test, y_test = ds.x_test[:n_test], ds.y_test[:n_test]
    batch_size = min(b.batch_size, max(8, len(train[1]) // 8))
    c, h, _ = ds.shape
    runs = {k: {f"{lr:g}": [] for lr in LRS} for k in KINDS}
    correct = {k: {f"{lr:g}": {} for lr in LRS} for k in KINDS}  # first seed's per-image outcomes

    def train_one(job):
        s, lr, kind = job
        torch.manual_seed(s)  # same conv/linear initial weights with and without batch norm
        model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h, batch_norm=kind == "batch_norm")
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        loss_fn, losses = recording_cross_entropy()
        early = {}

        def after_epoch(epoch, net, _history):
            if epoch == 1:
                early["correct"] = correctness(net, x_test, y_test, ctx)

        hist = ctx.fit(model, train, val, epochs=b.epochs, optimizer=opt, loss_fn=loss_fn, batch_size=batch_size,
                       seed=s, on_epoch_end=after_epoch, description=f"{KINDS[kind]}, lr {lr} (seed {s})")
        first = early.get("correct", np.zeros(n_test, dtype=bool))
        return hist, losses, first, correctness(model, x_test, y_test, ctx)

    jobs = [(s, lr, kind) for s in ctx.seeds() for lr in LRS for kind in KINDS]
    done = ctx.map(train_one, jobs, "batch norm × learning rate",
                   info=lambda j, out: f"{KINDS[j[2]]}, lr {j[1]}: test {out[3].mean():.3f}")
    for (s, lr, kind), (hist, losses, first, final) in zip(jobs, done):
        key = f"{lr:g}"
        if s == ctx.seed:
            correct[kind][key] = {"early": first, "final": final}
        losses = [v if math.isfinite(v) else float("nan") for v in losses]
        runs[kind][key].append(Run(losses, hist.status, float(first.mean()), float(final.mean()),
                                   hist.final("val_acc"), steps_below(losses, LOSS_THRESHOLD), hist.seconds))

    def rule(key, stage, metric):
        acc = {k: [getattr(r, f"{stage}_accuracy") for r in runs[k][key]] for k in KINDS}
        return compare_runs(KINDS["batch_norm"], KINDS["plain"], seeds_a=acc["batch_norm"], seeds_b=acc["plain"],
                            correct_a=correct["batch_norm"][key][stage], correct_b=correct["plain"][key][stage],
                            metric=metric)

    keys = [f"{lr:g}" for lr in LRS]
    result = Result(ds.label, len(train[1]), len(val[1]), n_test, b.epochs, batch_size, 1.0 / ds.num_classes, runs,
                    {k: rule(k, "early", "test accuracy after epoch 1") for k in keys},
                    {k: rule(k, "final", f"test accuracy after {b.epochs} epoch(s)") for k in keys})
    mean = lambda rs, f: float(np.nanmean([getattr(r, f) for r in rs]))  # noqa: E731
    ctx.record(learning_rates=list(LRS), epochs=b.epochs, train_images=len(train[1]), val_images=len(val[1]),
               test_images=n_test, batch_size=batch_size, seeds=ctx.seeds(), loss_threshold=LOSS_THRESHOLD,
               final_val_accuracy={k: {lr: mean(rs, "val_accuracy") for lr, rs in runs[k].items()} for k in KINDS},
               final_val_accuracy_per_seed={k: {lr: [r.val_accuracy for r in rs] for lr, rs in runs[k].items()}
                                            for k in KINDS},
               usable_learning_rates=usable(runs),
               mean_val_accuracy_over_lrs={k: float(np.nanmean([mean(rs, "val_accuracy") for rs in runs[k].values()]))
                                           for k in KINDS},
               test_accuracy={k: {lr: mean(rs, "final_accuracy") for lr, rs in runs[k].items()} for k in KINDS},
               test_accuracy_after_epoch_1={k: {lr: mean(rs, "early_accuracy") for lr, rs in runs[k].items()}
                                            for k in KINDS},
               outcome={k: {lr: [r.status for r in rs] for lr, rs in runs[k].items()} for k in KINDS},
               steps_to_loss_threshold={k: {lr: [r.steps_to_threshold for r in rs] for lr, rs in runs[k].items()}
                                        for k in KINDS},
               train_seconds={k: {lr: [r.seconds for r in rs] for lr, rs in runs[k].items()} for k in KINDS},
               comparisons={"after_epoch_1": {lr: c.sentence() for lr, c in result.early.items()},
                            "final": {lr: c.sentence() for lr, c in result.final.items()}},
               verdict=result.verdict)
    return result


def usable(runs) -> dict[str, list[str]]:
    """Learning rates at which a network's mean final validation accuracy reached 90% of the best seen."""
    means = {k: {lr: float(np.nanmean([r.val_accuracy for r in rs])) for lr, rs in runs[k].items()} for k in runs}
    best = max((v for m in means.values() for v in m.values() if np.isfinite(v)), default=float("nan"))
    return {k: [lr for lr, v in m.items() if v >= 0.9 * best] for k, m in means.items()}


def draw(ctx, r: Result) -> None:
    loss_cap = 20.0  # y-axis top: exploding losses leave the plot instead of flattening the others
    fig, axes = plt.subplots(1, len(LRS), figsize=(4.2 * len(LRS) + 2, 4.1), sharey=True, layout="constrained")
    for ax, lr in zip(axes, r.final):
        for kind, name in KINDS.items():
            run = r.runs[kind][lr][0]
            losses = np.minimum(np.asarray(run.step_losses, dtype=float), loss_cap)
            ax.plot(np.arange(1, len(losses) + 1), losses, color=COLORS[kind], lw=1.2, label=name)
            if run.status == "diverged":
                mark_diverged(ax, losses, color=COLORS[kind], label=f"{name}: diverged (×, last finite loss)")
        ax.axhline(-math.log(r.chance), color="0.5", ls="--", lw=0.8, label="loss of a uniform guess")
        ax.axhline(LOSS_THRESHOLD, color="0.3", ls=":", lw=0.8, label=f"threshold {LOSS_THRESHOLD:g}")
        ax.set_yscale("log")
        ax.set_ylim(0.05, loss_cap)
        ax.set_title(f"SGD, learning rate {lr}")
        ax.set_xlabel(f"training step (batch of {r.batch_size})")
    axes[0].set_ylabel("training loss (cross-entropy, log scale)")
    legend_outside(axes[-1], sources=list(axes))
    fig.suptitle(f"Convergence with and without batch norm: {r.train_images} {r.dataset} images, {r.epochs} epoch(s) "
                 f"(first seed)")
    ctx.save_figure(fig, "loss_per_step")

    several = len(next(iter(r.runs["plain"].values()))) > 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3), sharey=True, layout="constrained")
    for ax, stage, title in ((axes[0], "early", "after epoch 1"), (axes[1], "final", f"after {r.epochs} epoch(s)")):
        for kind, name in KINDS.items():
            values = [[getattr(run, f"{stage}_accuracy") for run in r.runs[kind][lr]] for lr in r.final]
            diverged = [any(run.status == "diverged" for run in r.runs[kind][lr]) for lr in r.final]
            line = sweep_plot(ax, list(LRS), [np.mean(v) for v in values], diverged=diverged, label=name,
                              color=COLORS[kind])
            if several:
                ax.errorbar(LRS, [np.mean(v) for v in values], yerr=[np.std(v, ddof=1) for v in values], fmt="none",
                            capsize=3, color=line.get_color())
        ax.axhline(r.chance, color="0.5", ls="--", lw=0.8, label="chance")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (SGD, momentum 0.9; log scale)")
        ax.set_title(f"test accuracy {title}")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel(f"test accuracy on {r.test_images} images (fraction)")
    legend_outside(axes[1], sources=list(axes))
    fig.suptitle(f"Sensitivity to the learning rate, {r.dataset}" + (" (mean ± std over seeds)" if several else
                                                                      " (one seed)"))
    ctx.save_figure(fig, "lr_sensitivity")


def _lrs(values: list[str]) -> str:
    return ", ".join(values) if values else "none"


def write_up(r: Result) -> str:
    bn, plain = KINDS["batch_norm"], KINDS["plain"]

    def cell(kind, lr, what):
        rs = r.runs[kind][lr]
        if what == "steps":
            found = [x.steps_to_threshold for x in rs if x.steps_to_threshold is not None]
            return f"{np.mean(found):.0f}" if len(found) == len(rs) else "not reached" if not found else \
                f"{np.mean(found):.0f} ({len(rs) - len(found)} of {len(rs)} not reached)"
        text = spread([getattr(x, what) for x in rs])
        n_div = sum(x.status == "diverged" for x in rs)
        return text + (f", diverged ×{n_div}" if n_div else "")

    rows = [(lr, *[cell(k, lr, "early_accuracy") for k in KINDS], *[cell(k, lr, "final_accuracy") for k in KINDS],
             *[cell(k, lr, "steps") for k in KINDS]) for lr in r.final]
    early, final = r.wins("early"), r.wins("final")
    if early[bn] and not early[plain]:
        speed = (f"Batch norm converged faster: after one epoch it was ahead at lr {_lrs(early[bn])} and behind at none "
                 f"— as the textbook says batch norm speeds up training.")
    elif early[plain] and not early[bn]:
        speed = (f"Against the textbook's 'batch norm speeds up training', the plain CNN was ahead after one epoch at "
                 f"lr {_lrs(early[plain])} and batch norm at none.")
    elif early[bn] and early[plain]:
        speed = (f"Convergence speed depends on the learning rate: after one epoch batch norm was ahead at lr "
                 f"{_lrs(early[bn])}, the plain CNN at lr {_lrs(early[plain])}.")
    else:
        speed = ("After one epoch there was no measurable difference at any learning rate, so these runs do not show "
                 "the textbook's faster convergence with batch norm.")
    # Chance level: within two binomial standard errors of 1/classes on this many test images
    margin = 2 * np.sqrt(r.chance * (1 - r.chance) / r.test_images)

    def at_chance(what: str) -> str:
        notes = []
        for lr in r.final:
            acc = {k: np.mean([getattr(x, what) for x in r.runs[k][lr]]) for k in KINDS}
            stuck = [KINDS[k] for k in KINDS if abs(acc[k] - r.chance) <= margin]
            if stuck:
                who = "both networks were" if len(stuck) == len(KINDS) else f"the {stuck[0]} was"
                notes.append(f"at lr {lr} {who} still guessing ("
                             + ", ".join(f"{KINDS[k]} {pct(acc[k])}" for k in KINDS) + ")")
        if not notes:
            return ""
        when = "after one epoch" if what == "early_accuracy" else f"after {r.epochs} epoch(s)"
        return (f" At chance {when} (guessing gives {pct(r.chance)}; within ±{100 * margin:.1f} points, two binomial "
                f"standard errors on {r.test_images} images): " + "; ".join(notes) + ".")

    finals = {k: [np.mean([x.final_accuracy for x in r.runs[k][lr]]) for lr in r.final] for k in KINDS}
    spread_note = (f"Across the {len(LRS)} learning rates the final accuracy ranged {pct(min(finals['batch_norm']))}–"
                   f"{pct(max(finals['batch_norm']))} with batch norm and {pct(min(finals['plain']))}–"
                   f"{pct(max(finals['plain']))} without.")
    if final[bn] and not final[plain]:
        ties = [lr for lr in r.final if lr not in final[bn]]
        sens = (f"Batch norm ended measurably better at lr {_lrs(final[bn])} and measurably worse at none"
                + (f" (lr {_lrs(ties)}: no measurable difference)" if ties else "")
                + ": it is less sensitive to the learning rate here, as the textbook says.")
    elif final[plain] and not final[bn]:
        sens = (f"This contradicts the textbook claim that batch norm widens the range of usable learning rates: the "
                f"plain CNN ended better at lr {_lrs(final[plain])} and batch norm at none.")
    elif final[bn] and final[plain]:
        sens = (f"Neither is less sensitive overall: batch norm ended better at lr {_lrs(final[bn])}, the plain CNN "
                f"at lr {_lrs(final[plain])}.")
    else:
        sens = ("At the end there was no measurable difference at any learning rate, so these runs do not show the "
                "textbook's wider usable learning-rate range for batch norm.")
    diverged = [f"{KINDS[k]} at lr {lr}" for k in KINDS for lr in r.final
                if any(x.status == "diverged" for x in r.runs[k][lr])]
    div_note = (f" Diverged (loss NaN/inf; the best epoch before it is used, or every image counted wrong when there "
                f"was none): {', '.join(diverged)}." if diverged else " No run diverged.")
    n_seeds = len(r.runs["plain"][next(iter(r.final))])
    rule = (f"{n_seeds} seeds per setting; a difference counts when it exceeds the seed spread" if n_seeds > 1 else
            "one seed; each comparison is McNemar's exact test on the same test images, paired image by image")
    lines = lambda cmps: "\n".join(f"- lr {lr}: {c.sentence()}" for lr, c in cmps.items())  # noqa: E731
    return f"""
The SmallCNN with and without batch norm after each convolution, trained with SGD (momentum 0.9, constant learning
rate, batch {r.batch_size}) for {r.epochs} epoch(s) on {r.train_images} {r.dataset} images (validation {r.val_images});
the same initial conv/linear weights for both; accuracy measured on {r.test_images} test images; {rule}.

{table(["learning rate", "after epoch 1, plain", "after epoch 1, batch norm", f"after epoch {r.epochs}, plain",
        f"after epoch {r.epochs}, batch norm", f"steps to loss < {LOSS_THRESHOLD:g}, plain",
        f"steps to loss < {LOSS_THRESHOLD:g}, batch norm"], rows)}

("steps to loss < {LOSS_THRESHOLD:g}" uses a 5-step moving average of the training loss, first reached; descriptive,
one number per run.){div_note}

## Convergence (`loss_per_step.png`, `lr_sensitivity.png` left)
{lines(r.early)}

{speed}{at_chance("early_accuracy")}

## Sensitivity to the learning rate (`lr_sensitivity.png` right)
{lines(r.final)}

{spread_note} {sens}{at_chance("final_accuracy")}
"""
