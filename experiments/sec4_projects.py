"""Section 4 projects: a CNN written from scratch in NumPy (4.2) and the project's best CNN on
product images (4.9)."""
from __future__ import annotations

from experiments.registry import task


# ------------------------------------------------------------------------------------ 4.2 helpers
def build_scratch_cnn(in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                      widths: tuple[int, int] = (16, 32), hidden: int = 64, pool: str = "max", seed: int = 0):
    """The NumPy CNN of 4.2: conv → ReLU → pool → conv → ReLU → pool → FC → ReLU → FC.

    3×3 convolutions with padding 1 keep the spatial size, each 2×2 pool ("max" or "avg") halves
    it, so the classifier sees widths[1] · (image_size // 4)² features. He init suits ReLU.
    """
    import numpy as np

    from scratch import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential

    rng = np.random.default_rng(seed)
    c1, c2 = widths
    side = image_size // 4
    Pool = {"max": MaxPool2d, "avg": AvgPool2d}[pool]
    return Sequential([
        Conv2d(in_channels, c1, 3, padding=1, init="he", rng=rng), ReLU(), Pool(2),
        Conv2d(c1, c2, 3, padding=1, init="he", rng=rng), ReLU(), Pool(2),
        Flatten(),
        Linear(c2 * side * side, hidden, init="he", rng=rng), ReLU(),
        Linear(hidden, num_classes, init="xavier", rng=rng),
    ])


def torch_twin(net):
    """The same network in PyTorch with the scratch network's current weights copied in.

    Layer i of the scratch Sequential becomes layer i of an nn.Sequential, so parameter names
    ("0.weight", "3.bias", ...) and weight layouts agree one to one.
    """
    import torch
    import torch.nn as nn

    import scratch

    def convert(layer):
        if isinstance(layer, scratch.Conv2d):
            return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                             layer.padding, bias="bias" in layer.params)
        if isinstance(layer, scratch.Linear):
            return nn.Linear(layer.in_features, layer.out_features, bias="bias" in layer.params)
        if isinstance(layer, scratch.MaxPool2d):
            return nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        if isinstance(layer, scratch.AvgPool2d):
            return nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding)
        if isinstance(layer, scratch.Flatten):
            return nn.Flatten()
        if isinstance(layer, scratch.ReLU):
            return nn.ReLU()
        if isinstance(layer, scratch.Dropout):
            return nn.Dropout(layer.p)
        raise TypeError(f"no PyTorch twin for scratch layer {type(layer).__name__}")

    twin = nn.Sequential(*(convert(layer) for layer in net.layers))
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net.state_dict().items()})
    return twin


def twin_gradient_gap(net, twin, x, y) -> dict[str, float]:
    """Largest relative differences between the scratch network and its torch twin on one batch.

    Returns {"logits": ..., "<param name>": ...}: |scratch − torch|max / |torch|max for the
    forward output and for the gradient of the cross-entropy w.r.t. every parameter.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from scratch import softmax_cross_entropy

    def rel(a, b):
        b = b.detach().numpy()
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))

    logits = net.forward(x, training=True)
    _, dlogits = softmax_cross_entropy(logits, y)
    net.backward(dlogits)
    twin.train()
    twin.zero_grad()
    t_logits = twin(torch.from_numpy(x))
    F.cross_entropy(t_logits, torch.from_numpy(y)).backward()
    gaps = {"logits": rel(logits, t_logits)}
    t_params = dict(twin.named_parameters())
    for name, _, grad in net.parameters():
        gaps[name] = rel(grad, t_params[name].grad)
    return gaps


def train_scratch(ctx, net, train, val, *, epochs: int, lr: float, batch_size: int, seed: int,
                  description: str) -> dict:
    """Train a scratch network with scratch.Adam and a one-cycle LR schedule (one step per batch).

    Uses scratch.model.train_epoch; its loss function is wrapped to log every batch's loss and
    accuracy and advance the progress bar. Returns the history and status ("done" or "diverged").
    """
    import math
    import time

    import numpy as np

    from scratch import Adam, evaluate, softmax_cross_entropy, train_epoch
    from scratch.schedules import OneCycleLR

    (x, y), (xv, yv) = train, val
    steps_per_epoch = math.ceil(len(y) / batch_size)
    optimizer = Adam(net.param_arrays(), lr=lr)
    schedule = OneCycleLR(lr, total_steps=epochs * steps_per_epoch, pct_start=0.25)
    hist = {"step_loss": [], "step_acc": [], "train_loss": [], "val_loss": [], "val_acc": [],
            "epoch_seconds": [], "status": "done"}
    rng = np.random.default_rng(seed)
    with ctx.progress(epochs * steps_per_epoch, description) as bar:
        def logged_loss(logits, labels):
            loss, dlogits = softmax_cross_entropy(logits, labels)
            hist["step_loss"].append(loss)
            hist["step_acc"].append(float((logits.argmax(1) == labels).mean()))
            bar.advance(1, info=f"loss {loss:.4f}")
            return loss, dlogits

        for epoch in range(epochs):
            t0 = time.perf_counter()
            loss = train_epoch(net, x, y, logged_loss, optimizer, batch_size, rng, schedule,
                               start_step=epoch * steps_per_epoch)
            if not math.isfinite(loss):
                hist["status"] = "diverged"
                ctx.log(f"  [red]diverged[/] at epoch {epoch + 1}: the loss became NaN/inf")
                break
            val_loss, val_acc = evaluate(net, xv, yv, batch_size=500)
            hist["epoch_seconds"].append(time.perf_counter() - t0)
            hist["train_loss"].append(loss)
            hist["val_loss"].append(val_loss)
            hist["val_acc"].append(val_acc)
            ctx.log(f"  epoch {epoch + 1}/{epochs}  train loss {loss:.4f}  val loss {val_loss:.4f}  "
                    f"acc {val_acc:.3f}  ({hist['epoch_seconds'][-1]:.1f}s)")
    return hist


def moving_average(values, window: int):
    """Trailing mean over ``window`` points (shorter at the start), same length as ``values``."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    csum = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


# One thread (NumPy's BLAS and torch): on a shared 2-core CPU multi-threaded OpenBLAS spin-waits on
# the skinny weight-gradient products of the convolutions (measured ~20× slower per epoch), and the
# PyTorch twin on one thread too makes the speed comparison one of implementations, not core counts.
@task("4.2", "CNN from scratch in NumPy", datasets=("mnist",), headline="test_accuracy", image_dataset=True,
      threads=1)
def scratch_cnn(ctx):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import confusion_matrix

    from scratch import predict as scratch_predict
    from utils.data import train_val_split
    from utils.plotting import confusion_matrix_plot, plt
    from utils.report import compare, mean_std, pct, spread, table
    from utils.train import predict

    ds = ctx.load_images("mnist", train_size=ctx.pick(tiny=600, quick=8000, hybrid=None, full=None))
    epochs = ctx.pick(tiny=1, quick=1, hybrid=2, full=5)
    batch_size, lr = 64, 2e-3
    (x_tr, y_tr), (x_val, y_val) = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=ctx.seed)
    as_np = lambda t: t.numpy()  # noqa: E731 - float32 images, int64 labels, shared memory
    train_np, val_np = (as_np(x_tr), as_np(y_tr)), (as_np(x_val), as_np(y_val))
    x_test, y_test = as_np(ds.x_test), as_np(ds.y_test)
    c, h, _ = ds.shape

    # NumPy training is the expensive part, so HYBRID trains one NumPy network and measures the
    # seed spread on the cheaper PyTorch twin; FULL trains NumPy networks on every seed too.
    numpy_seeds = ctx.seeds(ctx.pick(tiny=1, quick=1, hybrid=1, full=ctx.cfg.seeds))
    runs, twins = [], []
    for s in ctx.seeds():
        net = build_scratch_cnn(c, ds.num_classes, h, seed=s)
        twin = torch_twin(net)  # identical initial weights
        if s in numpy_seeds:
            if s == ctx.seed:
                # Check the hand-written backward passes against autograd on a real batch before training:
                # this network (max pooling) and the same one with average pooling.
                batch = train_np[0][:32], train_np[1][:32]
                gaps = twin_gradient_gap(net, twin, *batch)
                avg_net = build_scratch_cnn(c, ds.num_classes, h, pool="avg", seed=s)
                gaps_avg = twin_gradient_gap(avg_net, torch_twin(avg_net), *batch)
            hist = train_scratch(ctx, net, train_np, val_np, epochs=epochs, lr=lr, batch_size=batch_size, seed=s,
                                 description=f"NumPy CNN (seed {s})")
            pred = scratch_predict(net, x_test, batch_size=500).argmax(1)
            runs.append({"seed": s, "hist": hist, "pred": pred, "test_acc": float((pred == y_test).mean()),
                         "net": net})

        # The PyTorch twin: same start, same optimizer, schedule, batch size and epochs.
        opt = torch.optim.Adam(twin.parameters(), lr=lr)
        steps = epochs * -(-len(y_tr) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25,
                                                    cycle_momentum=False)
        t_steps = {"loss": [], "acc": []}

        def logged_loss(out, target):
            loss = F.cross_entropy(out, target)
            if out.requires_grad:  # a training batch (fit's validation pass runs without autograd)
                t_steps["loss"].append(loss.item())
                t_steps["acc"].append(float((out.argmax(1) == target).float().mean()))
            return loss

        res = ctx.fit(twin, (x_tr, y_tr), (x_val, y_val), epochs=epochs, optimizer=opt, scheduler=sched,
                      scheduler_per_batch=True, batch_size=batch_size, seed=s, loss_fn=logged_loss,
                      description=f"PyTorch twin (seed {s})")
        t_pred = predict(twin, ds.x_test, 1000).argmax(1).numpy()
        twins.append({"seed": s, "result": res, "steps": t_steps, "test_acc": float((t_pred == y_test).mean())})

    first, first_twin = runs[0], twins[0]
    hist, pred = first["hist"], first["pred"]
    diverged = hist["status"] == "diverged"
    acc_np = [r["test_acc"] for r in runs]
    acc_t = [r["test_acc"] for r in twins]
    sec_np = [float(np.mean(r["hist"]["epoch_seconds"])) if r["hist"]["epoch_seconds"] else float("nan") for r in runs]
    sec_t = [float(np.mean(r["result"].history["epoch_seconds"])) for r in twins]
    cm = confusion_matrix(y_test, pred, labels=range(ds.num_classes))
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    net = first["net"]

    # Curves: per-batch training loss and accuracy (smoothed), NumPy vs torch, and validation accuracy.
    t_steps = first_twin["steps"]
    steps_per_epoch = -(-len(y_tr) // batch_size)
    window = max(1, steps_per_epoch // 15)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("loss", "acc")):
        for steps, name, color in ((hist["step_" + key], "NumPy CNN", "#1f77b4"),
                                   (t_steps[key], "PyTorch twin", "#d62728")):
            at = np.arange(1, len(steps) + 1) / steps_per_epoch
            ax.plot(at, moving_average(steps, window), color=color, label=f"{name}, training batches")
        ax.set_xlabel("epoch")
    for val_acc, name, color, marker in ((hist["val_acc"], "NumPy CNN", "#1f77b4", "o"),
                                         (first_twin["result"].history["val_acc"], "PyTorch twin", "#d62728", "s")):
        axes[1].plot(range(1, len(val_acc) + 1), val_acc, marker, color=color, markersize=7,
                     markerfacecolor="none", markeredgewidth=1.5, label=f"{name}, validation (end of epoch)")
    axes[0].set_ylabel(f"loss (cross-entropy, mean of {window} batches)")
    axes[0].set_title("Training loss" + (" (NumPy run DIVERGED)" if diverged else ""))
    axes[1].set_ylabel(f"accuracy (fraction, mean of {window} batches)")
    axes[1].set_title("Accuracy")
    for ax in axes:
        ax.legend()
    fig.suptitle(f"NumPy CNN vs PyTorch twin (same initial weights) on {ds.label}: test accuracy "
                 f"{pct(first['test_acc'], 2)} vs {pct(first_twin['test_acc'], 2)}")
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(7, 6))
    confusion_matrix_plot(ax, cm, ds.classes, title=f"NumPy CNN confusion matrix, {ds.label} test set")
    ctx.save_figure(fig, "confusion_matrix")

    max_gap = max(*gaps.values(), *gaps_avg.values())
    check_verdict = ("float32 rounding level" if max_gap < 1e-3 else
                     "**larger than float32 rounding: a backward pass is wrong**")
    ctx.record(test_accuracy=float(np.mean(acc_np)), test_accuracy_per_seed=acc_np,
               seconds_per_epoch=float(np.mean(sec_np)), seconds_per_epoch_per_seed=sec_np,
               torch_twin={"test_accuracy": float(np.mean(acc_t)), "test_accuracy_per_seed": acc_t,
                           "seconds_per_epoch": float(np.mean(sec_t))},
               threads=torch.get_num_threads(),
               epochs=epochs, batch_size=batch_size, max_lr=lr, optimizer="scratch.Adam + one-cycle LR",
               train_examples=len(y_tr), val_examples=len(y_val), parameters=int(net.num_parameters()),
               architecture=" → ".join(repr(layer).split("(")[0] for layer in net.layers),
               per_class_accuracy=dict(zip(ds.classes, per_class.tolist())), confusion_matrix=cm,
               val_accuracy=hist["val_acc"], status_per_seed=[r["hist"]["status"] for r in runs],
               gradient_check_vs_torch={"max_pool_network": gaps, "avg_pool_network": gaps_avg})

    worst = np.argsort(per_class)[:2]
    speed = np.mean(sec_np) / np.mean(sec_t)
    if len(acc_np) == 1 and len(acc_t) > 1:
        # compare()'s rule (gap > sum of both spreads), taking the NumPy network's unmeasured spread
        # to equal its twin's: both compute the same function from the same kind of start.
        mean_t, sd_t = mean_std(acc_t)
        diff = acc_np[0] - mean_t
        real = abs(diff) > 2 * sd_t
        acc_note = (f"the NumPy network ({pct(acc_np[0], 2)}, one seed) was {abs(100 * diff):.2f} points "
                    f"{'above' if diff >= 0 else 'below'} the PyTorch twin's mean over {len(acc_t)} seeds "
                    f"({spread(acc_t, lambda v: pct(v, 2))}). Taking the NumPy network's seed spread to equal the "
                    f"twin's, the gap is {'larger' if real else 'smaller'} than the two spreads together "
                    f"(2 × {pct(sd_t, 2)}), so "
                    + ("it is likely real." if real else
                       "these runs show no real difference between the implementations.")
                    + f" The twin that started from the NumPy network's own weights reached {pct(acc_t[0], 2)}.")
    else:
        acc_note = compare(acc_np, acc_t, "NumPy", "PyTorch")
    rows = [("NumPy (scratch)", spread(acc_np), f"{np.mean(sec_np):.1f}"),
            ("PyTorch twin", spread(acc_t), f"{np.mean(sec_t):.1f}")]
    div_note = (f"\n**The NumPy run diverged** (loss NaN/inf) in seed(s) "
                f"{[r['seed'] for r in runs if r['hist']['status'] == 'diverged']}; its numbers are not meaningful.\n"
                if any(r["hist"]["status"] == "diverged" for r in runs) else "")
    ctx.write_analysis(f"""
A convolutional network written in NumPy only (scratch package: im2col convolutions, max pooling,
ReLU, linear layers, hand-written backward passes, scratch.Adam with a one-cycle learning rate):
conv 3×3 ({net.layers[0].out_channels}) → ReLU → max-pool 2 → conv 3×3 ({net.layers[3].out_channels}) → ReLU →
max-pool 2 → FC {net.layers[7].out_features} → ReLU → FC {ds.num_classes}, {net.num_parameters():,} parameters,
trained for {epochs} epoch(s) on {len(y_tr):,} {ds.label} images (batch {batch_size}, float32).
{div_note}
## Result
NumPy CNN test accuracy **{spread(acc_np, lambda v: pct(v, 2))}** on {len(y_test):,} test images, at
{np.mean(sec_np):.1f} s per epoch (training plus validation pass).

## Correctness check
Before training, one batch of 32 real images went through the NumPy network and an identical PyTorch
network (weights copied), and likewise for the same network with average instead of max pooling.
Largest relative differences, logits / gradients of all {len(gaps) - 1} parameter tensors: max-pool network
{gaps['logits']:.1e} / {max(v for k, v in gaps.items() if k != 'logits'):.1e}, average-pool network
{gaps_avg['logits']:.1e} / {max(v for k, v in gaps_avg.items() if k != 'logits'):.1e} — {check_verdict}.

## NumPy vs PyTorch (`curves.png`)
The PyTorch twin of each seed started from the same weights as that seed's NumPy network and used the same
optimizer, schedule, batch size and epochs (both on {torch.get_num_threads()} thread(s)); {len(acc_np)} NumPy
and {len(acc_t)} PyTorch run(s).

{table(["implementation", "test accuracy", "seconds / epoch"], rows)}

- Accuracy: {acc_note}
- Speed: the NumPy network took {speed:.1f}× as long per epoch as PyTorch
  ({np.mean(sec_np):.1f} s vs {np.mean(sec_t):.1f} s).

## Errors (`confusion_matrix.png`, NumPy network, seed {ctx.seed})
Per-class test accuracy ranged from {pct(per_class.min())} ({ds.classes[worst[0]]}) to {pct(per_class.max())}
({ds.classes[int(np.argmax(per_class))]}); the second weakest class was {ds.classes[worst[1]]} ({pct(per_class[worst[1]])}).
""")


# ------------------------------------------------------------------------------------ 4.9 helpers
# Image datasets whose classes survive a left-right mirror (clothing, CIFAR objects; digits do not).
MIRROR_SYMMETRIC = ("fashion-mnist", "cifar10")


def product_augmentation(*, flips: bool, shifts: bool, erasing: bool):
    """Whole-batch training augmentation for 4.9: random mirror images, random 2-pixel shifts and
    random erasing, each if asked for. Returns None when there is nothing to apply."""
    from utils.augment import compose, random_crop, random_erasing, random_hflip

    steps = []
    if shifts:
        steps.append(lambda x: random_crop(x, padding=2))
    if flips:
        steps.append(random_hflip)
    if erasing:
        steps.append(lambda x: random_erasing(x, p=0.5, area=(0.02, 0.15)))
    return compose(*steps) if steps else None


def fastest_thread_count(model, x, y, loss_fn, candidates) -> tuple[int, dict[int, float]]:
    """The intra-op thread count (of ``candidates``) with the fastest training step, and all timings.

    On a CPU shared with other jobs a second thread can make each step *slower*: every parallel
    region waits for the thread that was descheduled. So this is measured (median of 3 forward +
    backward passes after a warm-up), not assumed. Weights, buffers and gradients are restored.
    """
    import time

    import numpy as np
    import torch

    from utils.train import state_copy

    saved, before = state_copy(model), torch.get_num_threads()
    model.train()
    timings = {}
    try:
        for n in candidates:
            torch.set_num_threads(n)
            times = []
            for _ in range(4):
                t0 = time.perf_counter()
                loss_fn(model(x), y).backward()
                times.append(time.perf_counter() - t0)
                if len(times) == 2 and timings and times[1] > 2 * min(timings.values()):
                    break  # clearly slower already: do not waste more time measuring it
            timings[n] = float(np.median(times[1:]))
    finally:
        model.zero_grad(set_to_none=True)
        model.load_state_dict(saved)
        torch.set_num_threads(before)
    return min(timings, key=timings.get), timings


def inference_latency(model, x, batch_sizes=(1, 16, 256), *, warmup: int = 5, repeats: int = 30,
                      single_repeats: int | None = None, max_seconds: float = 3.0) -> dict[int, dict[str, float]]:
    """Median forward-pass time of ``model`` (eval mode, no autograd) for each batch size.

    Each batch size is warmed up ``warmup`` times (allocator, kernel selection) before
    ``repeats`` timed calls (``single_repeats`` for batch 1, which is cheap and noisy), cut short
    after ``max_seconds`` once 5 calls are timed; the median resists the outliers other processes
    cause on a shared CPU. Returns {batch: {"ms_per_batch", "ms_per_image", "images_per_second", "calls"}}.
    """
    import time

    import numpy as np
    import torch

    model.eval()
    out = {}
    with torch.inference_mode():
        for bs in batch_sizes:
            xb = x[:bs].contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x[:bs]
            for _ in range(warmup):
                model(xb)
            n = single_repeats if (bs == 1 and single_repeats) else repeats
            times = []
            start = time.perf_counter()
            for _ in range(n):
                t0 = time.perf_counter()
                model(xb)
                times.append(time.perf_counter() - t0)
                if len(times) >= 5 and time.perf_counter() - start > max_seconds:
                    break
            med = float(np.median(times))
            out[bs] = {"ms_per_batch": 1000 * med, "ms_per_image": 1000 * med / len(xb),
                       "images_per_second": len(xb) / med, "calls": len(times)}
    return out


@task("4.9", "Product image classification (Fashion-MNIST)", datasets=("fashion-mnist",),
      headline="test_accuracy", image_dataset=True)
def product_classification(ctx):
    import numpy as np
    import torch
    import torch.nn.functional as F
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    from sklearn.metrics import confusion_matrix

    from models import ProductClassifier, count_parameters
    from utils.data import train_val_split
    from utils.plotting import confusion_matrix_plot, mistakes_figure, plot_history, plt
    from utils.report import most_confused, pct, table
    from utils.train import predict

    ds = ctx.load_images("fashion-mnist", train_size=ctx.pick(tiny=600, quick=10000, hybrid=None, full=None),
                         test_size=ctx.pick(tiny=300, quick=2000, hybrid=None, full=None))
    # HYBRID is tuned to reach 93% quickly on a CPU: one conv per block, mirror images only (random
    # shifts slowed convergence in short schedules). FULL buys the last points with more compute:
    # wider, two convs per block, longer, with shifts and erasing against the over-fitting that brings.
    epochs = ctx.pick(tiny=1, quick=2, hybrid=10, full=30)
    width = ctx.pick(tiny=8, quick=32, hybrid=32, full=64)
    convs_per_block = ctx.pick(tiny=1, quick=1, hybrid=1, full=2)
    shifts = erasing = ctx.mode == "full"
    flips = ds.name in MIRROR_SYMMETRIC
    batch_size, max_lr, weight_decay, smoothing = 256, 3e-3, 5e-4, 0.1
    train, val = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=ctx.seed)
    c, h, _ = ds.shape
    model = ProductClassifier(c, ds.num_classes, h, width=width, convs_per_block=convs_per_block).to(ctx.device)
    # NHWC: the CPU (oneDNN) convolution kernels are faster on channels-last tensors.
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=weight_decay)
    steps = epochs * -(-len(train[1]) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps, pct_start=0.25)
    augment = product_augmentation(flips=flips, shifts=shifts, erasing=erasing)

    def loss_fn(out, target):
        return F.cross_entropy(out, target, label_smoothing=smoothing)

    # Thread count: measured before training and again after every epoch, because the other jobs on a
    # shared CPU come and go (see fastest_thread_count).
    threads_before = torch.get_num_threads()
    candidates = sorted({1, threads_before})
    probes: list[dict[int, float]] = []
    probe = ctx.pick(tiny=32, quick=batch_size, hybrid=batch_size, full=batch_size)
    probe_x = train[0][:probe].to(ctx.device).contiguous(memory_format=torch.channels_last)
    probe_y = train[1][:probe].to(ctx.device)

    def choose_threads(*_):
        if ctx.device.type != "cpu" or len(candidates) == 1:
            return
        best, timings = fastest_thread_count(model, probe_x, probe_y, loss_fn, candidates)
        probes.append(timings)
        torch.set_num_threads(best)

    try:
        choose_threads()
        if probes:
            ctx.log("  threads: " + ", ".join(f"{n}: {1000 * t:.0f} ms/step" for n, t in probes[0].items())
                    + f" → starting with {torch.get_num_threads()}")
        result = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, scheduler=sched, scheduler_per_batch=True,
                         batch_size=batch_size, augment=augment, description="product CNN", loss_fn=loss_fn,
                         on_epoch_end=choose_threads)
        ctx.save_weights(model)
        logits = predict(model, ds.x_test, ctx.cfg.eval_batch_size, ctx.device)
        # Test-time augmentation where mirror images are valid inputs: average the two predictions.
        mirrored = predict(model, ds.x_test.flip(-1), ctx.cfg.eval_batch_size, ctx.device) if flips else None
        # Inference speed on the CPU, one image at a time (an online shop's request) and in batches,
        # with each thread count: on a shared CPU the best choice differs from training's.
        latency = {}
        for n in candidates:
            torch.set_num_threads(n)
            latency[n] = inference_latency(
                model.cpu(), ds.x_test, ctx.pick(tiny=(1, 64), quick=(1, 16, 256, 1000), hybrid=(1, 16, 256, 1000),
                                                 full=(1, 16, 256, 1000)),
                warmup=ctx.pick(tiny=2, quick=5, hybrid=10, full=10),
                repeats=ctx.pick(tiny=3, quick=10, hybrid=20, full=30),
                single_repeats=ctx.pick(tiny=10, quick=100, hybrid=300, full=500),
                max_seconds=ctx.pick(tiny=0.5, quick=1.5, hybrid=3.0, full=3.0))
    finally:
        torch.set_num_threads(threads_before)
    pred = logits.argmax(1).numpy()
    true = ds.y_test.numpy()
    test_acc = float((pred == true).mean())
    tta_acc = None
    if mirrored is not None:
        tta_pred = (torch.softmax(logits, 1) + torch.softmax(mirrored, 1)).argmax(1).numpy()
        tta_acc = float((tta_pred == true).mean())
    cm = confusion_matrix(true, pred, labels=range(ds.num_classes))
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    sizes = sorted(latency[candidates[0]])
    single_threads = min(candidates, key=lambda n: latency[n][1]["ms_per_image"])
    best_threads, best_bs = max(((n, b) for n in candidates for b in sizes),
                                key=lambda nb: latency[nb[0]][nb[1]]["images_per_second"])
    single, best = latency[single_threads][1], latency[best_threads][best_bs]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    plot_history(axes, result.history)
    axes[0].set_ylabel("loss (cross-entropy, label smoothing 0.1)")
    axes[0].set_title("Loss per epoch")
    axes[1].set_title("Accuracy per epoch" + (" (training batches augmented)" if augment else ""))
    fig.suptitle(f"Product CNN on {ds.label}: test accuracy {pct(test_acc, 2)}"
                 + (" — DIVERGED" if result.diverged else ""))
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(7, 6))
    confusion_matrix_plot(ax, cm, ds.classes, title=f"Confusion matrix, {ds.label} test set")
    ctx.save_figure(fig, "confusion_matrix")

    order = np.argsort(per_class)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh([ds.classes[i] for i in order], per_class[order], color="#1f77b4")
    ax.axvline(test_acc, color="#d62728", linestyle="--", label=f"all classes {pct(test_acc, 2)}")
    for y_pos, i in enumerate(order):
        ax.text(per_class[i] + 0.004, y_pos, pct(per_class[i]), va="center", ha="left", fontsize=7,
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))
    ax.set_xlim(max(0.0, per_class.min() - 0.1), 1.04)
    ax.invert_yaxis()  # worst class on top
    ax.set_xlabel("test accuracy of the class (fraction)")
    ax.set_title("Per-class test accuracy, worst first")
    ax.legend(loc="upper right")
    ctx.save_figure(fig, "per_class_accuracy")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for n, color in zip(candidates, ("#1f77b4", "#d62728", "#2ca02c")):
        axes[0].plot(sizes, [latency[n][b]["ms_per_image"] for b in sizes], "o-", color=color, label=f"{n} thread(s)")
        axes[1].plot(sizes, [latency[n][b]["images_per_second"] for b in sizes], "o-", color=color,
                     label=f"{n} thread(s)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("batch size (images, log scale)")
        ax.legend()
    axes[0].set_ylabel("time per image (ms, median, log scale)")
    axes[0].set_title("Latency per image")
    axes[1].set_ylabel("throughput (images / second, log scale)")
    axes[1].set_title("Throughput")
    fig.suptitle(f"CPU inference: batch 1 takes {single['ms_per_image']:.2f} ms/image with "
                 f"{single_threads} thread(s); best throughput {best['images_per_second']:,.0f} images/s")
    ctx.save_figure(fig, "inference_speed")

    probs = torch.softmax(logits, 1).numpy()
    wrong = np.flatnonzero(pred != true)
    shown = wrong[np.argsort(-probs[wrong, pred[wrong]])][:16]
    if len(shown):
        fig = mistakes_figure(ds.to_display(ds.x_test[shown]), true[shown], pred[shown], probs[shown, pred[shown]],
                              ds.classes, f"Most confident mistakes (true→predicted, confidence); "
                                          f"{len(wrong)} errors in {len(true)}")
        ctx.save_figure(fig, "confident_mistakes")

    ti, pi, n_confused = most_confused(cm)
    h_ = result.history
    train_seconds = result.seconds
    # Thread choices per epoch: the probe before epoch 1 and after each epoch but the last.
    chosen = [min(t, key=t.get) for t in probes[:len(h_["train_loss"])]]
    if probes:
        thread_note = ("Threads were chosen by a timing probe (forward + backward pass of one batch) before "
                       "each epoch; before the first it measured "
                       + ", ".join(f"{1000 * t:.0f} ms with {n} thread(s)" for n, t in probes[0].items())
                       + ". Epochs trained with " + ", ".join(f"{n} thread(s): {chosen.count(n)}" for n in candidates)
                       + ".")
    else:
        thread_note = f"Training used {threads_before} thread(s)."
    ctx.record(test_accuracy=test_acc, test_accuracy_flip_tta=tta_acc,
               per_class_accuracy=dict(zip(ds.classes, per_class.tolist())),
               latency_ms_per_image=single["ms_per_image"], latency_threads=single_threads,
               images_per_second=best["images_per_second"], images_per_second_batch=best_bs,
               images_per_second_threads=best_threads,
               latency_by_threads_and_batch={str(n): {str(b): v for b, v in lat.items()} for n, lat in latency.items()},
               test_loss=float(F.cross_entropy(logits, ds.y_test)), confusion_matrix=cm,
               most_confused={"true": ds.classes[ti], "predicted": ds.classes[pi], "count": n_confused},
               epochs=len(h_["train_loss"]), train_status=result.status, train_seconds=train_seconds,
               epoch_seconds=h_["epoch_seconds"], val_accuracy=h_["val_acc"], parameters=count_parameters(model),
               width=width, batch_size=batch_size, max_lr=max_lr, weight_decay=weight_decay,
               convs_per_block=convs_per_block, label_smoothing=smoothing,
               augmentation={"hflip": flips, "shifts": shifts, "erasing": erasing},
               threads_per_epoch=chosen,
               thread_probes_seconds_per_step=[{str(n): t for n, t in p.items()} for p in probes],
               train_examples=len(train[1]), val_examples=len(val[1]))

    bar = ctx.pick(tiny=None, quick=None, hybrid=0.93, full=0.945)
    bar_note = ""
    if bar is not None:
        verdict = "meets" if test_acc >= bar else "**misses**"
        bar_note = f" This {verdict} the {ctx.mode.upper()} target of {pct(bar, 1)}."
    aug_parts = [name for name, used in (("random 2-pixel shifts", shifts),
                                         ("horizontal flips", flips),
                                         ("random erasing", erasing)) if used]
    aug_text = ("whole-batch augmentation: " + ", ".join(aug_parts)) if aug_parts else "no augmentation"
    gap = h_["train_acc"][-1] - h_["val_acc"][-1] if h_["val_acc"] else float("nan")
    if gap < 0:
        gap_note = ("validation accuracy is higher because training accuracy is measured with dropout on"
                    + (" on augmented batches" if augment else "")
                    + ", averaged over an epoch in which the weights were still improving.")
    elif h_["val_loss"] and int(np.argmin(h_["val_loss"])) + 1 < len(h_["val_loss"]):
        best_ep = int(np.argmin(h_["val_loss"])) + 1
        gap_note = (f"validation loss was lowest at epoch {best_ep} and higher afterwards "
                    f"({h_['val_loss'][best_ep - 1]:.4f} → {h_['val_loss'][-1]:.4f}), the start of over-fitting.")
    else:
        gap_note = "validation loss was still falling at the last epoch, so the gap had not yet become over-fitting."
    if best_bs == 1:
        speed_note = "batching did not raise throughput in this measurement."
    else:
        speed_note = (f"the highest throughput was **{best['images_per_second']:,.0f} images/s** (batch {best_bs}, "
                      f"{best_threads} thread(s)), {best['images_per_second'] / single['images_per_second']:.1f}× the "
                      f"single-image rate.")
    if len(candidates) > 1:
        many = candidates[-1]
        ratios = {b: latency[many][b]["ms_per_image"] / latency[1][b]["ms_per_image"] for b in sizes}
        helped = [str(b) for b in sizes if ratios[b] < 1]
        hurt = [str(b) for b in sizes if ratios[b] >= 1]
        why = (" (possible causes: a small batch gives too little work to split, so starting and joining threads "
               "costs more than it saves, and any other program on the CPU makes every parallel step wait for the "
               "thread it interrupted)")
        if not hurt:
            verdict = "the extra threads helped at every batch size."
        elif not helped:
            verdict = "one thread was faster at every batch size" + why + "."
        else:
            verdict = (f"the extra threads helped at batch {', '.join(helped)} and slowed batch {', '.join(hurt)}"
                       + why + ".")
        speed_note += (f" With {many} threads instead of 1 the time per image was "
                       + ", ".join(f"{ratios[b]:.2f}× at batch {b}" for b in sizes) + ": " + verdict)
    tta_note = ""
    if tta_acc is not None:
        tta_note = (f" Averaging each prediction with the prediction for the mirrored image (test-time augmentation, "
                    f"twice the inference cost) gave {pct(tta_acc, 2)} ({100 * (tta_acc - test_acc):+.2f} points; one "
                    f"seed, so a change of a few tenths of a point may be noise).")
    rows = [(ds.classes[i], pct(per_class[i]), int(cm[i].sum())) for i in order]
    lat_rows = [(b, *(f"{latency[n][b]['ms_per_image']:.3f} ms / {latency[n][b]['images_per_second']:,.0f}"
                      for n in candidates)) for b in sizes]
    ctx.write_analysis(f"""
## Model and training
Three convolution blocks ({convs_per_block} × (3×3 conv → batch norm → ReLU) → 2×2 max-pool; {width}, {2 * width},
{4 * width} channels) → FC {model.classifier[1].out_features} → batch norm → ReLU → dropout → linear:
{count_parameters(model):,} parameters, channels-last memory layout. AdamW (weight decay {weight_decay}) with a
one-cycle learning rate peaking at {max_lr}, batch {batch_size}, cross-entropy with label smoothing {smoothing},
{aug_text}.
{len(h_['train_loss'])} epoch(s) on {len(train[1]):,} images took {train_seconds:.0f} s
({np.mean(h_['epoch_seconds']):.1f} s per epoch on {ctx.device.type.upper()}){"; **training diverged**" if result.diverged else ""}.
{thread_note}

## Result
**Test accuracy {pct(test_acc, 2)}** on {len(true):,} {ds.label} test images (one seed; the seed-to-seed
spread of this recipe was not measured here).{bar_note}{tta_note}
At the last epoch training accuracy (on {"augmented " if augment else ""}batches, dropout on) was {pct(h_['train_acc'][-1])} and
validation accuracy {pct(h_['val_acc'][-1]) if h_['val_acc'] else 'n/a'} (train − validation {100 * gap:+.1f}
points): {gap_note}

## Per class (`per_class_accuracy.png`, `confusion_matrix.png`, `confident_mistakes.png`)
The weakest class was **{ds.classes[order[0]]}** ({pct(per_class[order[0]])}), the strongest
{ds.classes[order[-1]]} ({pct(per_class[order[-1]])}). The most frequent confusion was {ds.classes[ti]} predicted
as {ds.classes[pi]} ({n_confused} of {cm[ti].sum()} test images).

{table(["class", "test accuracy", "test images"], rows)}

## Inference speed (`inference_speed.png`)
Median of repeated forward passes after warm-up, CPU, measured with {" and ".join(map(str, candidates))} thread(s)
(other programs running at the same time slow these numbers down). One image at a time took
**{single['ms_per_image']:.2f} ms** ({single_threads} thread(s)); {speed_note}

{table(["batch size", *(f"{n} thread(s): time per image / images per s" for n in candidates)], lat_rows)}
""")
