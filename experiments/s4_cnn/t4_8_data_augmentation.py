"""4.8 Data augmentation: a gallery of whole-batch augmentations (crop, flip, rotation, affine, perspective,
erasing) on the same images, and their effect on over-fitting when a SmallCNN without dropout trains on a
small subset, with and without an augmentation policy (same initial weights, same batches).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import torch

from experiments.s4_cnn._shared import random_perspective
from models import SmallCNN
from utils.augment import compose, random_affine, random_crop, random_erasing, random_hflip
from utils.history import History
from utils.plotting import image_grid, legend_outside, plt
from utils.report import ALPHA, Comparison, compare_runs, compare_seeds, pct, spread
from utils.train import predict

BUDGET = {
    "tiny": {"train_images": 100, "val_images": 100, "test_images": 300, "epochs": 2, "batch_size": 32},
    "quick": {"train_images": 300, "val_images": 400, "test_images": 2000, "epochs": 12, "batch_size": 32},
    "hybrid": {"train_images": 1000, "val_images": 5000, "test_images": None, "epochs": 30, "batch_size": 32},
    "full": {"train_images": 2000, "val_images": 10000, "test_images": None, "epochs": 40, "batch_size": 32},
}
KINDS = ("plain", "augmented")
COLORS = {"plain": "#1f77b4", "augmented": "#d62728"}


@dataclass
class GapComparison(Comparison):
    """A Comparison of generalisation gaps (train − validation accuracy): its evidence names both image sets."""
    n_train: int = 0

    def _evidence(self) -> str:
        if self.method == "seeds":
            return super()._evidence()
        p = "p < 0.001" if self.p_value is not None and self.p_value < 0.001 else f"p = {self.p_value:.2g}"
        return (f"95% interval ±{self._size(self.half_width)}, {p}, paired bootstrap over {self.n_train} training "
                f"and {self.n} validation images")


def compare_gaps(name_a, train_a, val_a, name_b, train_b, val_b, *, n_boot: int = 2000, seed: int = 0) -> GapComparison:
    """Gap A vs gap B (lower is better) from per-image right/wrong on the same clean training images and the
    same validation images: both sets resampled together for both models (paired), 95% percentile interval."""
    ta, va, tb, vb = (np.asarray(v, dtype=float) for v in (train_a, val_a, train_b, val_b))
    rng = np.random.default_rng(seed)
    it = rng.integers(0, len(ta), (n_boot, len(ta)))
    iv = rng.integers(0, len(va), (n_boot, len(va)))
    boots = (ta[it].mean(1) - va[iv].mean(1)) - (tb[it].mean(1) - vb[iv].mean(1))
    gap_a, gap_b = ta.mean() - va.mean(), tb.mean() - vb.mean()
    diff = float(gap_a - gap_b)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = max(float(min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean()))), 1.0 / n_boot)
    if lo <= 0 <= hi:  # the interval holds zero: a tie whatever the p-value's rounding says
        p = max(p, ALPHA)
    return GapComparison(name_a, name_b, float(gap_a), float(gap_b), diff, float(max(hi - diff, diff - lo)), "bootstrap",
                         len(va), False, p, True, "generalisation gap (train − validation accuracy)", n_train=len(ta))


@dataclass
class Result:
    dataset: str
    policy: str
    flip: bool
    train_images: int
    val_images: int
    test_images: int
    epochs: int
    batch_size: int
    gallery_names: list[str]
    gallery: np.ndarray                      # (augmentations, 8, H, W[, 3]) in [0, 1]
    histories: dict[str, History]            # first seed
    clean_train_acc: dict[str, list[float]]  # first seed, per epoch, on the clean training images
    final: dict[str, dict[str, list[float]]]  # kind -> train / val / gap / test -> per seed
    gap: GapComparison                       # augmented vs plain
    test: Comparison                         # augmented vs plain, test accuracy

    @property
    def verdict(self) -> str:
        w = self.gap.winner
        return f"{w} training has the smaller generalisation gap" if w else "generalisation gap: augmented ≈ plain (tie)"


def policy_for(flip: bool):
    parts = [lambda x: random_crop(x, 2)] + ([random_hflip] if flip else []) + [
        lambda x: random_affine(x, degrees=10), lambda x: random_perspective(x, 0.2, p=0.3),
        lambda x: random_erasing(x, p=0.3)]
    text = ("random crop (pad 2), " + ("horizontal flip (p 0.5), " if flip else "") +
            "rotation ±10°, perspective (corners up to 20% inward, p 0.3), random erasing (p 0.3)")
    return compose(*parts), text


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("fashion-mnist", train_size=b.train_images + b.val_images, test_size=b.test_images)
    n_small = min(b.train_images, len(ds.y_train) // 2)
    train, val = (ds.x_train[:n_small], ds.y_train[:n_small]), (ds.x_train[n_small:], ds.y_train[n_small:])
    batch_size = min(b.batch_size, max(8, n_small // 4))
    c, h, _ = ds.shape
    flip = ds.name not in ("mnist", "digits")  # a mirrored digit is another shape; clothing stays clothing
    policy, policy_text = policy_for(flip)
    gallery = {"original": lambda x: x, "random crop (pad 3)": lambda x: random_crop(x, 3),
               "horizontal flip": lambda x: x.flip(-1), "rotation ±20°": lambda x: random_affine(x, degrees=20),
               "affine: shift ±10%, scale 0.85–1.15, shear ±15°":
                   lambda x: random_affine(x, translate=0.1, scale=(0.85, 1.15), shear=15),
               "perspective: corners up to 40% inward": lambda x: random_perspective(x, 0.4),
               "random erasing": lambda x: random_erasing(x, p=1.0), f"training policy: {policy_text}": policy}
    torch.manual_seed(ctx.seed)
    sample = ds.x_test[:8]
    shown = np.stack([np.round(ds.to_display(fn(sample)).astype(np.float64), 3) for fn in gallery.values()])

    histories, clean_acc, outcomes, gaps = {}, {}, {}, {k: [] for k in KINDS}
    final = {k: {m: [] for m in ("train", "val", "gap", "test")} for k in KINDS}

    def train_one(job):
        s, kind = job
        torch.manual_seed(s)  # same initial weights with and without augmentation
        model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h, dropout=0.0)  # no other regulariser
        per_epoch: list[float] = []

        def clean_fit(epoch, net, _history):
            per_epoch.append(ctx.evaluate(net, *train)[1])

        hist = ctx.fit(model, train, val, epochs=b.epochs, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                       batch_size=batch_size, seed=s, augment=policy if kind == "augmented" else None,
                       on_epoch_end=clean_fit, description=f"{kind} (seed {s})")
        right = {name: (predict(model, x, ctx.cfg.eval_batch_size, ctx.device).argmax(1) == y).numpy()
                 for name, (x, y) in (("train", train), ("val", val), ("test", (ds.x_test, ds.y_test)))}
        return hist, per_epoch, right

    jobs = [(s, kind) for s in ctx.seeds() for kind in KINDS]
    done = ctx.map(train_one, jobs, "with and without augmentation",
                   info=lambda j, out: f"{j[1]} (seed {j[0]}): test {out[2]['test'].mean():.3f}")
    for (s, kind), (hist, per_epoch, right) in zip(jobs, done):
        if s == ctx.seed:
            histories[kind], clean_acc[kind], outcomes[kind] = hist, per_epoch, right
        for m in ("train", "val", "test"):
            final[kind][m].append(float(right[m].mean()))
        final[kind]["gap"].append(final[kind]["train"][-1] - final[kind]["val"][-1])
        gaps[kind].append([t - v for t, v in zip(per_epoch, hist.val_acc)])
    o = outcomes
    if len(ctx.seeds()) > 1:
        c_gap = compare_seeds("augmented", final["augmented"]["gap"], "plain", final["plain"]["gap"],
                              higher_is_better=False, metric="generalisation gap (train − validation accuracy)")
        gap = GapComparison(**vars(c_gap))
    else:
        gap = compare_gaps("augmented", o["augmented"]["train"], o["augmented"]["val"], "plain", o["plain"]["train"],
                           o["plain"]["val"], seed=ctx.seed)
    test = compare_runs("augmented", "plain", seeds_a=final["augmented"]["test"], seeds_b=final["plain"]["test"],
                        correct_a=o["augmented"]["test"], correct_b=o["plain"]["test"])
    result = Result(ds.label, policy_text, flip, n_small, len(val[1]), len(ds.y_test), b.epochs, batch_size,
                    list(gallery), shown, histories, clean_acc, final, gap, test)
    mean = {k: {m: float(np.mean(v)) for m, v in final[k].items()} for k in KINDS}
    ctx.record(train_images=n_small, val_images=len(val[1]), test_images=len(ds.y_test), epochs=b.epochs,
               policy=policy_text, horizontal_flip=flip, generalisation_gap={k: mean[k]["gap"] for k in KINDS},
               final_val_accuracy={k: mean[k]["val"] for k in KINDS},
               final_train_accuracy_clean={k: mean[k]["train"] for k in KINDS},
               test_accuracy={k: mean[k]["test"] for k in KINDS}, per_seed=final, seeds=ctx.seeds(), gap_per_epoch=gaps,
               gap_comparison=gap.sentence(), test_comparison=test.sentence(), verdict=result.verdict)
    return result


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(len(r.gallery), 1, figsize=(8.5, 1.32 * len(r.gallery)))
    for ax, name, images in zip(axes, r.gallery_names, r.gallery):
        image_grid(ax, images, ncols=8)
        ax.set_title(textwrap.fill(name, 100), fontsize=9, loc="left")
    fig.suptitle(f"Augmentations of the same 8 {r.dataset} test images (each draws its own random parameters)",
                 fontsize=10.5)
    fig.tight_layout()
    ctx.save_figure(fig, "augmentation_gallery")

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), layout="constrained")
    for kind in KINDS:
        hist, clean = r.histories[kind], r.clean_train_acc[kind]
        ep = np.arange(1, len(clean) + 1)
        axes[0].plot(ep, hist.train_loss[:len(ep)], color=COLORS[kind], label=f"{kind}: train (batches as trained on)")
        axes[0].plot(ep, hist.val_loss[:len(ep)], color=COLORS[kind], ls="--", label=f"{kind}: validation")
        axes[1].plot(ep, clean, color=COLORS[kind], label=f"{kind}: train (clean images)")
        axes[1].plot(ep, hist.val_acc[:len(ep)], color=COLORS[kind], ls="--", label=f"{kind}: validation")
        axes[2].plot(ep, np.array(clean) - np.array(hist.val_acc[:len(ep)]), color=COLORS[kind], marker="o", ms=3,
                     label=f"{kind}: gap")
    for ax, ylabel, title in ((axes[0], "loss (cross-entropy)", "Loss"), (axes[1], "accuracy (fraction)", "Accuracy"),
                              (axes[2], "train − validation accuracy (fraction)", "Generalisation gap")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    axes[2].axhline(0, color="0.5", lw=0.8)
    legend_outside(axes[2], sources=list(axes))
    fig.suptitle(f"Training on only {r.train_images} {r.dataset} images, with and without augmentation (first seed; "
                 f"validation on {r.val_images} other images)")
    ctx.save_figure(fig, "overfitting")


def write_up(r: Result) -> str:
    f = {k: {m: float(np.mean(v)) for m, v in r.final[k].items()} for k in KINDS}
    rows = [(label, spread(r.final["plain"][m]), spread(r.final["augmented"][m])) for label, m in (
        ("train accuracy (clean images), last epoch", "train"), ("validation accuracy, last epoch", "val"),
        ("generalisation gap (train − val)", "gap"), (f"test accuracy ({r.test_images} images)", "test"))]
    fit_loss = 100 * (f["plain"]["train"] - f["augmented"]["train"])
    val_gain = 100 * (f["augmented"]["val"] - f["plain"]["val"])
    parts = (f"the gap shrank by {100 * (f['plain']['gap'] - f['augmented']['gap']):.1f} points as clean training "
             f"accuracy {'fell' if fit_loss >= 0 else 'rose'} by {abs(fit_loss):.1f} points and validation accuracy "
             f"{'rose' if val_gain >= 0 else 'fell'} by {abs(val_gain):.1f}")
    gap_w, test_w = r.gap.winner, r.test.winner
    if gap_w == "augmented":
        conclusion = {"augmented": (f"Augmentation reduced over-fitting and raised test accuracy, as the textbook "
                                    f"expects; {parts}."),
                      None: (f"Augmentation reduced over-fitting but brought no measurable test-accuracy gain in "
                             f"{r.epochs} epochs: {parts}."),
                      "plain": (f"Augmentation reduced the gap but lowered test accuracy: the augmented network fits "
                                f"less in {r.epochs} epochs; {parts}.")}[test_w]
    elif gap_w is None:
        conclusion = ("These runs show no measurable difference in over-fitting, so they do not confirm the textbook "
                      "expectation that augmentation reduces it" +
                      (f"; test accuracy favours {test_w} training." if test_w else "; nor is there one in test accuracy."))
    else:
        conclusion = (f"This contradicts the textbook expectation: the gap was larger with augmentation (clean training "
                      f"accuracy {pct(f['augmented']['train'])} vs {pct(f['plain']['train'])}, validation "
                      f"{pct(f['augmented']['val'])} vs {pct(f['plain']['val'])}).")
    onset = []
    for kind in KINDS:
        v = r.histories[kind].val_loss
        best = int(np.nanargmin(v))
        onset.append(f"the {kind} network's was still lowest in the last epoch ({v[-1]:.3f})" if best == len(v) - 1 else
                     f"the {kind} network's was lowest at epoch {best + 1} ({v[best]:.3f}) and rose to {v[-1]:.3f} "
                     f"by epoch {len(v)}")
    rising = []
    for kind, h in r.histories.items():
        best = int(np.nanargmin(h.val_loss))
        if best < len(h.val_loss) - 1 and h.train_loss[-1] < h.train_loss[best]:
            rising.append(f"{kind} ({h.train_loss[best]:.3f} → {h.train_loss[-1]:.3f})")
    mark = (f" Training loss kept falling after the validation minimum for: {', '.join(rising)} — validation loss "
            f"rising while training loss falls is the mark of over-fitting." if rising else "")
    n_seeds = len(r.final["plain"]["test"])
    return f"""
A SmallCNN without dropout (Adam, lr 1e-3, batch {r.batch_size}) trained for {r.epochs} epochs on only
{r.train_images} {r.dataset} images, with and without augmentation ({r.policy}); validation on {r.val_images}
other training images, test on {r.test_images}; {n_seeds} seed(s), the same initial weights and batch order for both.
Training accuracy is measured on the {r.train_images} training images *without* augmentation, so the gap compares like
with like. The perspective warp is this section's own whole-batch implementation (a homography per image, one
`grid_sample` call).

| | plain | augmented |
|---|---|---|
{chr(10).join('| ' + ' | '.join(row) + ' |' for row in rows)}

## Over-fitting (`overfitting.png`)
- Gap: {r.gap.sentence()}
- Test accuracy: {r.test.sentence()}
- {conclusion}
- Validation loss (first seed): {'; '.join(onset)}.{mark}
{'' if r.flip else '- Horizontal flips were left out of the policy: a mirrored digit is a different shape.'}

## Augmentations (`augmentation_gallery.png`)
Each row applies one augmentation to the same 8 test images; the last row is the training policy above.
"""
