"""8.1 GAN on MNIST, the course's fully connected one: generator 100 → 128 (ReLU) → 784 (tanh),
discriminator 784 → 128 (LeakyReLU 0.2) → 1 (sigmoid), BCE, Adam (lr 2e-4, β1 = 0.5), alternating
D and G steps over the whole training set.

Judged with task 4.3's classifier (trained on the same data): the class histogram of generated
images (mode collapse shows as a lopsided histogram), a diversity score, and a Fréchet distance on
the classifier's penultimate (FC-128) features — the FID recipe, with our own classifier in place of
Inception, so the numbers are comparable within this project only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from experiments.common.small_cnn import trained_cnn
from experiments.s8_generative._shared import (GanRun, classifier_features, frechet_distance, generate,
                                               histogram_distance, interpolate, mean_pairwise_distance,
                                               pixels_uint8, to_classifier_input, to_unit_range, train_gan)
from utils.plotting import image_grid, legend_outside, plt
from utils.report import Comparison, compare_seeds, table

BUDGET = {  # train_size / test_size None: the whole set; epochs are raised to reach min_steps on small data
    "tiny": {"epochs": 2, "min_steps": 0, "train_size": 600, "test_size": 300, "batch_size": 64, "generated": 300, "track": 200,
             "classifier_epochs": 1, "sweep_epochs": 1, "sweep_train_size": 600, "sweep_seeds": 2},
    "quick": {"epochs": 5, "min_steps": 1200, "train_size": 12000, "test_size": None, "batch_size": 128, "generated": 10000, "track": 1000,
              "classifier_epochs": 1, "sweep_epochs": 2, "sweep_train_size": 3000, "sweep_seeds": 2},
    "hybrid": {"epochs": 30, "min_steps": 6000, "train_size": None, "test_size": None, "batch_size": 128, "generated": 10000, "track": 2000,
               "classifier_epochs": 4, "sweep_epochs": 5, "sweep_train_size": 12000, "sweep_seeds": 2},
    "full": {"epochs": 50, "min_steps": 0, "train_size": None, "test_size": None, "batch_size": 64, "generated": 10000, "track": 2000,
             "classifier_epochs": 8, "sweep_epochs": 10, "sweep_train_size": None, "sweep_seeds": 3},
}
LR, BETA1 = 2e-4, 0.5
SWEEP = {"Adam lr 2e-4, β1 0.5 (course)": (2e-4, 0.5), "Adam lr 2e-4, β1 0.9": (2e-4, 0.9),
         "Adam lr 1e-3, β1 0.5": (1e-3, 0.5)}  # names start sentences: "Adam lr 1e-3 … beats …"
BASELINE = "Adam lr 2e-4, β1 0.5 (course)"
SHOWN, INTERP_STEPS = 16, 10


@dataclass
class Result:
    dataset: str
    classes: list[str]
    shape: list[int]                   # C, H, W
    train_examples: int
    classifier_note: str               # whose classifier judged the samples
    classifier_test_accuracy: float
    run: GanRun                        # curves, snapshots (fixed noise) and Fréchet distance per snapshot epoch
    final_grid: np.ndarray             # (64, C·H·W) uint8, the final generator on the fixed noise
    interpolation: np.ndarray          # (INTERP_STEPS, C·H·W) uint8
    generated: int
    generated_counts: list[int]        # class histogram of the generated images
    real_counts: list[int]             # class histogram of the real test images (same classifier)
    generated_distance: dict[str, float]
    real_distance: dict[str, float]
    diversity: dict[str, float]        # mean pairwise pixel distance: generated, real, ratio
    frechet: float                     # generated vs real test features
    frechet_floor: float               # real training vs real test features (the score of a perfect generator)
    sweep: dict[str, list[float]]      # config -> Fréchet distance per seed
    sweep_epochs: int
    sweep_comparisons: list[Comparison]
    sweep_images: int = 0              # training images of each sweep run (0 in results saved before it was stored)

    @property
    def sweep_subset(self) -> bool:
        """Whether the sweep trained on fewer images than the main run."""
        return 0 < self.sweep_images < self.train_examples


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("mnist", train_size=b.train_size, test_size=b.test_size)
    classifier, note, _ = trained_cnn(ctx, ds, epochs=b.classifier_epochs)
    classifier.cpu()
    test_logits, test_feats = classifier_features(classifier, ds.x_test)
    cls_acc = float((test_logits.argmax(1) == ds.y_test).float().mean())
    x = to_unit_range(ds, ds.x_train)
    real_test = to_unit_range(ds, ds.x_test)
    _, train_feats = classifier_features(classifier, ds.x_train[:len(ds.x_test)])

    def fd_of(gen, n, seed):
        _, f = classifier_features(classifier, to_classifier_input(ds, generate(gen, n, seed)))
        return frechet_distance(f[:n].numpy(), test_feats[:n].numpy())

    # Count optimizer steps, not epochs: 5 epochs of the 1,437 digits are 56 steps, too few to learn anything.
    def epochs_for(at_least: int, steps: float, images: int) -> int:   # enough epochs to take ``steps`` steps
        return max(at_least, math.ceil(steps / math.ceil(images / b.batch_size)))

    epochs = epochs_for(b.epochs, b.min_steps, len(x))
    sweep_epochs = epochs_for(b.sweep_epochs, b.min_steps / 4, min(len(x), b.sweep_train_size or len(x)))
    torch.manual_seed(ctx.seed + 1000)
    fixed = torch.randn(64, 100)
    every = 5 if epochs <= 50 else math.ceil(epochs / 10)      # the course's 1, 5, 10, …; about 10 rows beyond 50
    snaps = sorted({1, *range(every, epochs + 1, every), epochs})
    with ctx.progress(epochs, "GAN") as bar:
        gen, disc, run = train_gan(x, epochs=epochs, lr=LR, beta1=BETA1, batch_size=b.batch_size, seed=ctx.seed,
                                   fixed_noise=fixed[:SHOWN], snapshot_epochs=snaps, progress=bar,
                                   on_snapshot=lambda g: fd_of(g, b.track, ctx.seed + 7))
    ctx.save_weights(gen, "generator.pt")
    ctx.save_weights(disc, "discriminator.pt")
    with torch.no_grad():
        final = pixels_uint8(gen(fixed))
        interp = pixels_uint8(gen(interpolate(fixed[0], fixed[1], INTERP_STEPS)))
    fake = generate(gen, b.generated, ctx.seed + 11)
    fake_logits, fake_feats = classifier_features(classifier, to_classifier_input(ds, fake))
    k = ds.num_classes
    gen_counts = np.bincount(fake_logits.argmax(1).numpy(), minlength=k).tolist()
    real_counts = np.bincount(test_logits.argmax(1).numpy(), minlength=k).tolist()
    div = {"generated": mean_pairwise_distance(fake, seed=ctx.seed), "real": mean_pairwise_distance(real_test,
                                                                                                    seed=ctx.seed)}
    div["ratio"] = div["generated"] / div["real"]
    n = min(len(fake_feats), len(test_feats))
    fd = frechet_distance(fake_feats[:n].numpy(), test_feats[:n].numpy())
    m = min(len(train_feats), len(test_feats))
    floor = frechet_distance(train_feats[:m].numpy(), test_feats[:m].numpy())

    xs = x[:b.sweep_train_size] if b.sweep_train_size else x

    def sweep_run(job):
        name, s = job
        g, _, _ = train_gan(xs, epochs=sweep_epochs, lr=SWEEP[name][0], beta1=SWEEP[name][1], batch_size=b.batch_size,
                            seed=s)
        return fd_of(g, b.track, s + 7)

    jobs = [(name, s) for name in SWEEP for s in ctx.seeds(b.sweep_seeds)]
    sweep = {name: [] for name in SWEEP}
    for (name, _), fd_value in zip(jobs, ctx.map(sweep_run, jobs, "lr / β1 sweep",
                                                 info=lambda j, fd_value: f"{j[0]}: FD {fd_value:.2f}")):
        sweep[name].append(fd_value)
    comps = [compare_seeds(BASELINE, sweep[BASELINE], name, sweep[name], higher_is_better=False, percent=False,
                           metric="Fréchet distance") for name in SWEEP if name != BASELINE]
    gd, rd = histogram_distance(gen_counts), histogram_distance(real_counts)
    ctx.record(frechet_distance=fd, frechet_floor=floor, tv_from_uniform=gd["total_variation"],
               real_tv_from_uniform=rd["total_variation"], kl_from_uniform=gd["kl_from_uniform"],
               class_histogram=dict(zip(ds.classes, gen_counts)), real_class_histogram=dict(zip(ds.classes, real_counts)),
               diversity=div, frechet_over_training=run.frechet, classifier=note, classifier_test_accuracy=cls_acc,
               final_d_loss=run.d_loss[-1], final_g_loss=run.g_loss[-1], final_d_real=run.d_real[-1],
               final_d_fake=run.d_fake[-1], epochs=epochs, sweep_epochs=sweep_epochs, sweep_images=len(xs),
               epoch_seconds=run.epoch_seconds,
               sweep_frechet=sweep, sweep_verdicts=[c.verdict() for c in comps], generated_images=b.generated)
    return Result(ds.label, list(ds.classes), list(ds.shape), len(x), note, cls_acc, run, final, interp, b.generated,
                  gen_counts, real_counts, gd, rd, div, fd, floor, sweep, sweep_epochs, comps, len(xs))


def _images(r: Result, flat):
    c, h, w = r.shape
    img = np.asarray(flat, dtype=float).reshape(-1, c, h, w) / 255.0
    return img[:, 0] if c == 1 else img.transpose(0, 2, 3, 1)


def draw(ctx, r: Result) -> None:
    epochs = list(r.run.snapshots)
    fig, axes = plt.subplots(len(epochs), 1, figsize=(9, 0.75 * len(epochs) + 0.8), squeeze=False)
    for ax, e in zip(axes[:, 0], epochs):
        image_grid(ax, _images(r, r.run.snapshots[e]), ncols=SHOWN)
        ax.text(-4, ax.get_ylim()[0] / 2, f"epoch {e}", ha="right", va="center", fontsize=8)
    fig.suptitle(f"GAN samples on {r.dataset}: the same {SHOWN} noise vectors after each epoch shown")
    ctx.save_figure(fig, "samples_over_training")

    fig, ax = plt.subplots(figsize=(6, 6.4))
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93)  # the square grid fills the figure: no empty band
    image_grid(ax, _images(r, r.final_grid), ncols=8,
               title=f"Final generator ({len(r.run.epoch_seconds)} epochs) on {r.dataset}: 64 samples")
    ctx.save_figure(fig, "final_samples")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].plot(r.run.epoch_at, r.run.d_loss, label="discriminator loss")
    axes[0].plot(r.run.epoch_at, r.run.g_loss, label="generator loss")
    axes[0].axhline(2 * np.log(2), color="0.5", ls=":", label="D loss at equilibrium (2 ln 2)")
    axes[0].axhline(np.log(2), color="0.7", ls="--", label="G loss at equilibrium (ln 2)")
    axes[0].set(xlabel="epoch", ylabel="BCE loss (nats)", title="Losses (block means)")
    axes[1].plot(r.run.epoch_at, r.run.d_real, label="D(x), real images")
    axes[1].plot(r.run.epoch_at, r.run.d_fake, label="D(G(z)), generated")
    axes[1].axhline(0.5, color="0.5", ls=":", label="0.5 (D cannot tell)")
    axes[1].set(xlabel="epoch", ylabel="discriminator output (probability real)", ylim=(0, 1),
                title="Discriminator outputs")
    legend_outside(axes[1], sources=axes)
    fig.suptitle(f"GAN training on {r.dataset}")
    ctx.save_figure(fig, "losses")

    fig, ax = plt.subplots(figsize=(10, 1.9))
    image_grid(ax, _images(r, r.interpolation), ncols=len(r.interpolation),
               labels=[f"t={t:.2f}" for t in np.linspace(0, 1, len(r.interpolation))],
               title=f"Latent interpolation z = (1−t)·z₀ + t·z₁ ({r.dataset})")
    ctx.save_figure(fig, "interpolation")

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    k = np.arange(len(r.classes))
    axes[0].bar(k - 0.2, 100 * np.asarray(r.generated_counts) / sum(r.generated_counts), 0.4,
                label=f"{r.generated:,} generated")
    axes[0].bar(k + 0.2, 100 * np.asarray(r.real_counts) / sum(r.real_counts), 0.4,
                label=f"{sum(r.real_counts):,} real test images")
    axes[0].axhline(100 / len(k), color="0.3", ls=":", label="uniform")
    axes[0].set_xticks(k, [c[:9] for c in r.classes], rotation=30)
    axes[0].set(ylabel="share of images (%)", title="Class predicted by the 4.3 classifier")
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    if r.run.frechet:
        axes[1].plot([int(e) for e in r.run.frechet], list(r.run.frechet.values()), "o-", label="generated vs real")
        axes[1].axhline(r.frechet_floor, color="0.4", ls=":", label="real vs real (floor)")
        axes[1].set(xlabel="epoch", ylabel="Fréchet distance (classifier features)", title="Fréchet distance")
        axes[1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=1)
    fig.subplots_adjust(wspace=0.3)
    fig.suptitle(f"Mode-collapse check on {r.dataset}")
    ctx.save_figure(fig, "mode_collapse")

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, fds) in enumerate(r.sweep.items()):
        ax.scatter([i] * len(fds), fds, color=f"C{i}", zorder=3, label=f"{name} (one point per seed)")
        ax.plot([i - 0.2, i + 0.2], [np.mean(fds)] * 2, color=f"C{i}")
    ax.set_xticks(range(len(r.sweep)), [n.replace("Adam ", "").replace(" (course)", "\n(course)") for n in r.sweep])
    ax.set(ylabel="Fréchet distance (lower is better)",
           title=f"Adam settings after {r.sweep_epochs} epoch(s) on "
                 f"{f'{r.sweep_images:,} ' if r.sweep_subset else ''}{r.dataset} images"
                 f"\n(main run: {len(r.run.epoch_seconds)} epochs; compare the settings with one another)")
    ctx.save_figure(fig, "hyperparameters")


def write_up(r: Result) -> str:
    run = r.run
    gd, rd, dv = r.generated_distance, r.real_distance, r.diversity
    top = int(np.argmax(r.generated_counts))
    excess = gd["total_variation"] - rd["total_variation"]
    if gd["top_class_share"] > 0.9:
        collapse = (f"**Mode collapse**: nearly every sample is a {r.classes[top]}.")
    elif excess > 0.15 or gd["top_class_share"] > 0.4:
        collapse = (f"**Partial mode collapse**: the histogram is {excess:+.2f} further from uniform than the real "
                    f"images' and {r.classes[top]} takes {gd['top_class_share']:.0%} of the samples.")
    else:
        collapse = (f"No sign of mode collapse in the histogram: its distance from uniform is within 0.15 of the "
                    f"real images' ({excess:+.2f}).")
    missing = [c for c, n in zip(r.classes, r.generated_counts) if n < 0.01 * sum(r.generated_counts)]
    missing_note = (f" Classes under 1% of the samples: {', '.join(missing)}." if missing
                    else " Every class gets at least 1% of the samples.")
    fr = list(run.frechet.items())
    trend = (f"It went from {fr[0][1]:.2f} after epoch {fr[0][0]} to {fr[-1][1]:.2f} after epoch {fr[-1][0]} "
             f"(`mode_collapse.png`, right)." if len(fr) > 1 else "")
    d_gap = run.d_real[-1] - run.d_fake[-1]
    balance = ("the discriminator still separates real from generated images clearly" if d_gap > 0.3 else
               "the discriminator separates them only weakly, so the two players are close to balanced")
    im = np.asarray(r.interpolation, dtype=float) / 255
    steps = np.linalg.norm(np.diff(im, axis=0), axis=1)
    span = np.linalg.norm(im[-1] - im[0])
    share = steps.max() / steps.sum() if steps.sum() > 0 else 0.0
    smooth = (f"Pixel change between neighbours: largest step {share:.0%} of all the steps together (even spacing gives "
              f"{1 / len(steps):.0%}); end-to-end distance {span:.2f}. "
              + ("The morph is gradual: no single step dominates." if share < 2.5 / len(steps) else
                 "Most of the change happens in one step: the generator jumps between outputs here."))
    rows = [(n, f"{np.mean(v):.2f}", ", ".join(f"{x:.2f}" for x in v)) for n, v in r.sweep.items()]
    sweep_text = "\n".join(f"- {c.sentence()}" for c in r.sweep_comparisons)
    shorter = r.sweep_subset or r.sweep_epochs < len(run.epoch_seconds)
    sweep_data = f" on the first {r.sweep_images:,} of the {r.train_examples:,} training images" if r.sweep_subset else ""
    sweep_scope = (f" The main run above had {len(run.epoch_seconds)} epochs on {r.train_examples:,} images: these "
                   f"shorter runs rank the settings against one another, and their distances are not comparable with "
                   f"its {r.frechet:.2f}.") if shorter else ""
    return f"""
## Training (`losses.png`, `samples_over_training.png`, `final_samples.png`)
{len(run.epoch_seconds)} epochs over {r.train_examples:,} {r.dataset} images ({sum(run.epoch_seconds):.0f} s,
{np.mean(run.epoch_seconds):.1f} s per epoch). At the end the discriminator's loss was {run.d_loss[-1]:.3f}
(2 ln 2 = 1.386 at the equilibrium where D outputs 0.5 everywhere) and the generator's {run.g_loss[-1]:.3f};
D(x) = {run.d_real[-1]:.2f} on real and D(G(z)) = {run.d_fake[-1]:.2f} on generated images: {balance}.
The sample grids follow one fixed batch of noise through training, so each column is one noise vector.

## Latent interpolation (`interpolation.png`)
{len(r.interpolation)} images on the straight line between two noise vectors. {smooth}

## Mode-collapse check (`mode_collapse.png`)
The judge: {r.classifier_note}; its accuracy on the {sum(r.real_counts):,} real test images is {r.classifier_test_accuracy:.1%}.
Of {r.generated:,} generated images it assigned {gd['top_class_share']:.0%} to the commonest class ({r.classes[top]}).
Total-variation distance from uniform: **{gd['total_variation']:.3f}** for the generated images vs
{rd['total_variation']:.3f} for the real test images judged by the same classifier (KL from uniform
{gd['kl_from_uniform']:.3f} vs {rd['kl_from_uniform']:.3f} nats). {collapse}{missing_note}

Diversity: the mean pixel distance between two generated images is {dv['generated']:.2f} against {dv['real']:.2f}
between two real ones (ratio {dv['ratio']:.2f}; a collapsed generator gives a ratio near 0).

Fréchet distance on the classifier's FC-128 features (the FID recipe with our classifier instead of Inception;
comparable inside this project only): **{r.frechet:.2f}** between generated and real test images, against
{r.frechet_floor:.2f} between real training and real test images (what a perfect generator would score). {trend}

## Adam settings (`hyperparameters.png`)
Each setting trained for {r.sweep_epochs} epoch(s){sweep_data} with {len(next(iter(r.sweep.values())))} seeds, judged by the
Fréchet distance on {r.dataset}.{sweep_scope}

{table(["setting", "mean Fréchet distance", "per seed"], rows)}

{sweep_text}

Weights: `generator.pt` and `discriminator.pt` beside this analysis.
"""
