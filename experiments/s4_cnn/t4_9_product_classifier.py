"""4.9 Product image classification: the project's best CNN on Fashion-MNIST (clothing product images), with
per-class accuracy, confusion matrix, CPU inference latency per image and per batch, and a comparison with 4.3's
SmallCNN on the same test images. Three conv blocks with batch norm, a hidden FC layer, AdamW, one-cycle LR, label
smoothing. The schedule counts optimizer steps, not epochs: small data sets get a smaller batch and more epochs, so
batch norm's statistics and the weights both settle."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from experiments.s4_cnn._shared_projects import (MIRROR_SYMMETRIC, Baseline, baseline_from_43, comparison_sentence,
                                                 inference_latency, product_augmentation, steps_plan)
from models import ProductClassifier, count_parameters
from utils.data import train_val_split
from utils.fanout import available_cores
from utils.history import History
from utils.plotting import confusion_matrix_plot, history_figure, legend_outside, mistakes_figure, plt
from utils.report import (Comparison, compare_predictions, confusion_matrix, confusion_sentence, describe_accuracy,
                          most_confused, pct, table)
from utils.train import predict

_COMMON = {"max_lr": 3e-3, "weight_decay": 5e-4, "smoothing": 0.1, "flips": True, "shifts": False, "erasing": False,
           "target": None, "latency_batches": (1, 16, 256, 1000), "warmup": 5, "repeats": 10, "single_repeats": 100, "max_seconds": 1.5}
BUDGET = {  # data: the preset's sizes, as 4.3 (quick: 12,000 training / 2,000 test images; hybrid, full: all)
    # steps = max(epochs × batches per epoch, min_steps), the batch clipped to an eighth of the training set.
    # QUICK underfits, so no augmentation (measured on Fashion-MNIST: 89.2% without mirror images, 88.2% with).
    # HYBRID reaches 93% quickly on a CPU (one conv per block, mirror images only); FULL buys the last points
    # with a wider network, two convs per block, longer training, shifts and erasing.
    "tiny": {**_COMMON, "epochs": 1, "min_steps": 20, "batch_size": 64, "width": 8, "convs_per_block": 1,
             "latency_batches": (1, 64), "warmup": 2, "repeats": 3, "single_repeats": 10, "max_seconds": 0.5},
    "quick": {**_COMMON, "epochs": 2, "min_steps": 300, "batch_size": 64, "width": 32, "convs_per_block": 1,
              "flips": False,  # a shorter latency probe: 9.6 s -> 1.5 s of a 50 s task
              "latency_batches": (1, 16, 256), "warmup": 2, "repeats": 5, "single_repeats": 30, "max_seconds": 0.5},
    "hybrid": {**_COMMON, "epochs": 10, "min_steps": 1000, "batch_size": 256, "width": 32, "convs_per_block": 1,
               "target": 0.93, "repeats": 20, "single_repeats": 300, "max_seconds": 3.0},
    "full": {**_COMMON, "epochs": 30, "min_steps": 2000, "batch_size": 256, "width": 64, "convs_per_block": 2,
             "shifts": True, "erasing": True, "target": 0.945, "warmup": 10, "repeats": 30, "single_repeats": 500,
             "max_seconds": 3.0},
}
NAME = "4.9 product CNN"


@dataclass
class Result:
    dataset: str
    mode: str
    classes: list[str]
    recipe: dict[str, object]            # architecture and training settings actually used
    history: History
    steps: int
    test_accuracy: float
    test_examples: int
    tta_comparison: Comparison | None    # mirrored-image averaging vs plain, McNemar (mirror-symmetric data only)
    confusion: np.ndarray                # rows = true class
    predicted_classes: int               # how many classes the network predicts at all
    baseline: Baseline                   # 4.3's SmallCNN on the same data
    latency: dict[str, dict[str, dict[str, float]]]  # threads -> batch size -> ms_per_image, images_per_second, ...
    train_threads: int                   # torch threads during CPU training (the task declares one); 0 on a GPU
    mistake_images: np.ndarray           # the most confident mistakes, for display
    mistake_true: list[int]
    mistake_pred: list[int]
    mistake_confidence: list[float]


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("fashion-mnist")
    train, val = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=ctx.seed)
    batch_size, epochs = steps_plan(len(train[1]), b.batch_size, b.epochs, b.min_steps)
    flips = b.flips and ds.name in MIRROR_SYMMETRIC  # mirror images only where classes survive a mirror
    model = ProductClassifier(ds.shape[0], ds.num_classes, ds.shape[1], width=b.width, convs_per_block=b.convs_per_block)
    model = model.to(ctx.device, memory_format=torch.channels_last)  # NHWC: faster oneDNN convolutions on the CPU
    opt = torch.optim.AdamW(model.parameters(), lr=b.max_lr, weight_decay=b.weight_decay)
    steps = epochs * -(-len(train[1]) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=b.max_lr, total_steps=steps, pct_start=0.25)
    augment = product_augmentation(flips=flips, shifts=b.shifts, erasing=b.erasing)
    loss_fn = partial(F.cross_entropy, label_smoothing=b.smoothing)
    # Training runs on the one thread the task declares: with batch norm and the channels-last layout the numbers
    # depend on the thread count, so a second thread would make them depend on the machine and on --jobs.
    threads = torch.get_num_threads()
    train_threads = threads if ctx.device.type == "cpu" else 0
    history = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, scheduler=sched, scheduler_per_batch=True,
                      batch_size=batch_size, augment=augment, description="product CNN", loss_fn=loss_fn)
    ctx.save_weights(model)
    logits = predict(model, ds.x_test, ctx.cfg.eval_batch_size, ctx.device)
    # Test-time augmentation where mirror images are valid inputs: average the two predictions.
    mirrored = predict(model, ds.x_test.flip(-1), ctx.cfg.eval_batch_size, ctx.device) if flips else None
    # Inference speed with one thread and with every core this process may use (timing only: results unaffected).
    latency = {}
    try:
        for n in sorted({1, available_cores()}):
            torch.set_num_threads(n)
            latency[str(n)] = {str(k): v for k, v in inference_latency(
                model.cpu(), ds.x_test, b.latency_batches, warmup=b.warmup, repeats=b.repeats,
                single_repeats=b.single_repeats, max_seconds=b.max_seconds).items()}
    finally:
        torch.set_num_threads(threads)
    pred, true = logits.argmax(1).numpy(), ds.y_test.numpy()
    correct = pred == true
    tta = None if mirrored is None else compare_predictions(  # mirrored-image averaging vs plain, same images
        "with mirrored-image averaging", (logits.softmax(1) + mirrored.softmax(1)).argmax(1).numpy() == true, "plain",
        correct)
    cm = confusion_matrix(true, pred, ds.num_classes)
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    baseline = baseline_from_43(ctx, ds, correct, NAME)
    probs = torch.softmax(logits, 1).numpy()
    wrong = np.flatnonzero(~correct)
    shown = wrong[np.argsort(-probs[wrong, pred[wrong]])][:16]
    single_n, best_n, best_b = _speed_choices(latency)
    ti, pi, n_confused = most_confused(cm)
    recipe = {"width": b.width, "convs_per_block": b.convs_per_block, "hidden": model.classifier[1].out_features,
              "parameters": count_parameters(model), "batch_size": batch_size, "epochs": epochs, "max_lr": b.max_lr,
              "weight_decay": b.weight_decay, "label_smoothing": b.smoothing, "train_examples": len(train[1]),
              "val_examples": len(val[1]), "augmentation": {"hflip": flips, "shifts": b.shifts, "erasing": b.erasing},
              "target": b.target}
    test_acc = float(correct.mean())
    ctx.record(test_accuracy=test_acc, test_examples=len(true), test_accuracy_flip_tta=tta.value_a if tta else None,
               per_class_accuracy=dict(zip(ds.classes, per_class.tolist())),
               latency_ms_per_image=latency[single_n]["1"]["ms_per_image"], latency_threads=int(single_n),
               images_per_second=latency[best_n][best_b]["images_per_second"], images_per_second_batch=int(best_b),
               images_per_second_threads=int(best_n), latency_by_threads_and_batch=latency,
               test_loss=float(F.cross_entropy(logits, ds.y_test)), confusion_matrix=cm,
               most_confused={"true": ds.classes[ti], "predicted": ds.classes[pi], "count": n_confused},
               steps=steps, train_status=history.status, train_seconds=history.seconds,
               epoch_seconds=history.epoch_seconds, val_accuracy=history.val_acc, predicted_classes=len(set(pred)),
               train_threads=train_threads,
               vs_4_3={"available": baseline.available, "accuracy_4_3": baseline.test_accuracy, "note": baseline.note},
               verdict=baseline.comparison.verdict() if baseline.comparison else "not compared with 4.3",
               **{k: v for k, v in recipe.items() if k != "target"})
    return Result(ds.label, ctx.mode, list(ds.classes), recipe, history, steps, test_acc, len(true), tta, cm,
                  len(set(pred)), baseline, latency, train_threads,
                  ds.to_display(ds.x_test[shown]), true[shown].tolist(), pred[shown].tolist(),
                  probs[shown, pred[shown]].tolist())


def _speed_choices(latency) -> tuple[str, str, str]:
    """(threads fastest for one image, threads and batch size with the highest throughput) as keys."""
    single = min(latency, key=lambda n: latency[n]["1"]["ms_per_image"])
    best = max(((n, bs) for n in latency for bs in latency[n]), key=lambda k: latency[k[0]][k[1]]["images_per_second"])
    return single, *best


def _thread_verdict(one: dict, many: dict) -> str:
    """'faster' / 'slower' when the middle halves (quartiles) of the two timings do not overlap, else 'no clear
    difference'; results saved before quartiles were recorded are judged by their medians alone."""
    if "ms_per_image_q1" not in one or "ms_per_image_q1" not in many:
        return "faster, medians only" if many["ms_per_image"] < one["ms_per_image"] else "slower, medians only"
    if many["ms_per_image_q3"] < one["ms_per_image_q1"]:
        return "faster"
    if many["ms_per_image_q1"] > one["ms_per_image_q3"]:
        return "slower"
    return "no clear difference: the middle halves of the timings overlap"


def draw(ctx, r: Result) -> None:
    augmented = " (training batches augmented, dropout on)" if any(r.recipe["augmentation"].values()) else ""
    fig = history_figure({"product CNN": r.history}, f"Product CNN on {r.dataset}, {r.mode} mode, {r.steps} optimizer "
                         f"steps{augmented}: test accuracy {pct(r.test_accuracy, 2)}"
                         + (" — DIVERGED" if r.history.diverged else ""),
                         loss_label=f"loss (cross-entropy, label smoothing {r.recipe['label_smoothing']})")
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(7, 6))
    confusion_matrix_plot(ax, r.confusion, r.classes, title=f"Product CNN confusion matrix, {r.dataset} test set ({r.mode} mode)")
    ctx.save_figure(fig, "confusion_matrix")

    per_class = r.confusion.diagonal() / np.maximum(r.confusion.sum(1), 1)
    order = np.argsort(per_class)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.barh(np.arange(len(order)), per_class[order], color="#1f77b4", label=NAME)
    base = r.baseline
    if base.per_class:
        ax.plot([base.per_class.get(r.classes[i], np.nan) for i in order], np.arange(len(order)), "D",
                color="#ff7f0e", label="4.3 SmallCNN", zorder=5)  # above the value labels' white boxes
    for y_pos, i in enumerate(order):
        ax.text(per_class[i] + 0.004, y_pos, pct(per_class[i]), va="center", ha="left", fontsize=7,
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
    for acc, color, ls, who in ((r.test_accuracy, "#d62728", "--", NAME), (base.test_accuracy, "#ff7f0e", ":", "4.3 "
                                "SmallCNN")) if base.comparison else ((r.test_accuracy, "#d62728", "--", NAME),):
        ax.axvline(acc, color=color, linestyle=ls, label=f"{who}, all classes {pct(acc, 2)}")
    ax.set_yticks(np.arange(len(order)), [r.classes[i] for i in order])
    ax.set_xlim(max(0.0, min(per_class.min(), min(base.per_class.values(), default=1.0)) - 0.1), 1.06)
    ax.invert_yaxis()  # worst class on top
    ax.set_xlabel("test accuracy of the class (fraction)")
    ax.set_title(f"Per-class test accuracy, {NAME}" + (" vs 4.3 SmallCNN" if base.per_class else "")
                 + f"\n{r.dataset}, {r.mode} mode, {r.test_examples} test images, worst class first")
    legend_outside(ax)
    ctx.save_figure(fig, "per_class_accuracy")

    single_n, best_n, best_b = _speed_choices(r.latency)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (n, lat), color in zip(r.latency.items(), ("#1f77b4", "#d62728", "#2ca02c")):
        sizes = sorted(lat, key=int)
        for ax, key in zip(axes, ("ms_per_image", "images_per_second")):
            ax.plot([int(s) for s in sizes], [lat[s][key] for s in sizes], "o-", color=color, label=f"{n} thread(s)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        sizes = sorted({int(s) for lat in r.latency.values() for s in lat})
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("batch size (images, log scale)")
    legend_outside(axes[1])
    axes[0].set(ylabel="time per image (ms, median, log scale)", title="Latency per image")
    axes[1].set(ylabel="throughput (images / second, log scale)", title="Throughput")
    fig.suptitle(f"CPU inference of the product CNN ({r.dataset} test images): batch 1 takes "
                 f"{r.latency[single_n]['1']['ms_per_image']:.2f} ms/image with {single_n} thread(s); best "
                 f"throughput {r.latency[best_n][best_b]['images_per_second']:,.0f} images/s")
    ctx.save_figure(fig, "inference_speed")

    if r.mistake_true:
        errors = int(r.confusion.sum() - np.trace(r.confusion))
        fig = mistakes_figure(r.mistake_images, r.mistake_true, r.mistake_pred, r.mistake_confidence, r.classes,
                              f"Most confident mistakes of the product CNN (true→predicted, confidence): {errors} "
                              f"error(s) in {r.test_examples} {r.dataset} test images, {r.mode} mode", ncols=min(8, len(r.mistake_true)))
        ctx.save_figure(fig, "confident_mistakes")


def write_up(r: Result) -> str:
    h, rc, base = r.history, r.recipe, r.baseline
    per_class = r.confusion.diagonal() / np.maximum(r.confusion.sum(1), 1)
    order = np.argsort(per_class)
    spread = ("Every class was recognised equally well." if per_class[order[0]] == per_class[order[-1]] else
              f"The weakest class was **{r.classes[order[0]]}** ({pct(per_class[order[0]])}), the strongest "
              f"{r.classes[order[-1]]} ({pct(per_class[order[-1]])}).")
    names = {"shifts": "random 2-pixel shifts", "hflip": "horizontal flips", "erasing": "random erasing"}
    aug = [names[k] for k, used in rc["augmentation"].items() if used]
    target = "" if rc["target"] is None else (
        f" This {'meets' if r.test_accuracy >= rc['target'] else '**misses**'} the {r.mode.upper()} target of "
        f"{pct(rc['target'], 1)}." if r.dataset == "fashion-mnist" else
        f" (The {r.mode.upper()} target of {pct(rc['target'], 1)} is set for Fashion-MNIST, not this data.)")
    tta = (f"\nAveraging each prediction with the one for the mirrored image (test-time augmentation, twice the "
           f"inference cost): {r.tta_comparison.sentence()}" if r.tta_comparison else "")
    gap_note = (f"training accuracy (on {'augmented ' if aug else ''}training batches, dropout on, averaged over the epoch) "
                f"{pct(h.final('train_acc'))}, validation {pct(h.final('val_acc'))}, train − validation "
                f"{100 * (h.final('train_acc') - h.final('val_acc')):+.1f} points")
    collapse = ("" if r.predicted_classes == len(r.classes) else
                f" **The network predicts only {r.predicted_classes} of the {len(r.classes)} classes.**")
    c = base.comparison
    vs43 = (f"No comparison with task 4.3: {base.note}." if c is None else
            f"{base.note}. {comparison_sentence(c, r.test_examples, base.test_examples)} The product CNN "
            + ("beats 4.3's SmallCNN, as the section's best network should." if c.winner == NAME else
               "does **not** beat 4.3's SmallCNN here." if c.winner is None else "**loses to 4.3's SmallCNN** here."))
    lat = r.latency
    single_n, best_n, best_b = _speed_choices(lat)
    single, best = lat[single_n]["1"], lat[best_n][best_b]
    sizes = sorted(lat[single_n], key=int)
    speed = (f"the highest throughput was **{best['images_per_second']:,.0f} images/s** (batch {best_b}, {best_n} "
             f"thread(s)), {best['images_per_second'] / single['images_per_second']:.1f}× the single-image rate."
             if best_b != "1" else "batching did not raise throughput in this measurement.")
    if len(lat) > 1:
        many = max(lat, key=int)
        ratios = {s: lat[many][s]["ms_per_image"] / lat["1"][s]["ms_per_image"] for s in sizes}
        verdicts = {s: _thread_verdict(lat["1"][s], lat[many][s]) for s in sizes}
        speed += (f" With {many} threads instead of 1 the time per image was "
                  + ", ".join(f"{ratios[s]:.2f}× at batch {s} ({verdicts[s]})" for s in sizes) + ".")
        if "slower" in verdicts.values():
            speed += (" Possible causes of a slowdown: a small batch gives too little work to split, and another "
                      "program on the CPU makes each parallel step wait for the thread it interrupted.")
    threads = (f" on {r.train_threads} CPU thread(s), so that the numbers do not depend on the machine's core count"
               if r.train_threads else " on the GPU")
    rows = [(r.classes[i], pct(per_class[i]), pct(base.per_class[r.classes[i]]) if r.classes[i] in base.per_class
             else "–", int(r.confusion[i].sum())) for i in order]
    lat_rows = [(s, *(f"{lat[n][s]['ms_per_image']:.3f} ms / {lat[n][s]['images_per_second']:,.0f}" for n in lat))
                for s in sizes]
    return f"""
## Model and training (`curves.png`)
Three convolution blocks ({rc['convs_per_block']} × (3×3 conv → batch norm → ReLU) → 2×2 max-pool; {rc['width']},
{2 * rc['width']}, {4 * rc['width']} channels) → FC {rc['hidden']} → batch norm → ReLU → dropout → linear:
{rc['parameters']:,} parameters, channels-last layout. AdamW (weight decay {rc['weight_decay']}), one-cycle learning
rate peaking at {rc['max_lr']}, cross-entropy with label smoothing {rc['label_smoothing']},
{('augmentation: ' + ', '.join(aug)) if aug else 'no augmentation'}. **{r.steps} optimizer steps**: {h.epochs} epoch(s)
of {rc['train_examples']:,} images in batches of {rc['batch_size']} ({h.seconds:.0f} s{threads}){"; **diverged**" * h.diverged}.
At the last epoch {gap_note}.

## Result
**{describe_accuracy(r.test_accuracy, r.test_examples)}** on the {r.dataset} test set.{target}{collapse}{tta}

## Against task 4.3's SmallCNN
{vs43}

## Per class (`per_class_accuracy.png`, `confusion_matrix.png`{', `confident_mistakes.png`' * bool(r.mistake_true)})
{spread} {confusion_sentence(r.confusion, r.classes)}

{table(["class", "product CNN", "4.3 SmallCNN", "test images"], rows)}

## Inference speed (`inference_speed.png`)
Median of repeated forward passes after warm-up on the CPU, with {" and ".join(lat)} thread(s). One image at a time
took **{single['ms_per_image']:.2f} ms** ({single_n} thread(s)); {speed}

{table(["batch size", *(f"{n} thread(s): time per image / images per s" for n in lat)], lat_rows)}
"""
