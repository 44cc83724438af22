"""Section 4: convolutional networks."""
from __future__ import annotations

from experiments.registry import task


def train_small_cnn(ctx, ds, *, epochs: int, lr: float = 3e-3, seed: int | None = None,
                    batch_size: int | None = None, **model_kwargs):
    """Train models.SmallCNN on ``ds`` with Adam + one-cycle LR; return (model, fit result, val split).

    Shared by 4.3 and the tasks that inspect its trained network (4.4, 4.5) or vary it (4.6).
    ``seed`` (default: the run's) fixes the split, the initial weights and the batch order, so the
    models of one comparison at one seed start from the same weights; ``batch_size`` defaults to the preset's.
    """
    import torch

    from models import SmallCNN
    from utils.data import train_val_split

    if seed is not None:
        torch.manual_seed(seed)
    seed = ctx.seed if seed is None else seed
    train, val = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=seed)
    c, h, _ = ds.shape
    model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h, **model_kwargs).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batch_size = batch_size or ctx.cfg.batch_size
    steps = epochs * -(-len(train[1]) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
    result = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, scheduler=sched,
                     scheduler_per_batch=True, description="CNN", seed=seed, batch_size=batch_size)
    return model, result, val


@task("4.3", "PyTorch CNN on MNIST", datasets=("mnist",), headline="test_accuracy", image_dataset=True)
def pytorch_cnn(ctx):
    import numpy as np
    import torch
    from sklearn.metrics import classification_report, confusion_matrix

    from models import count_parameters
    from utils.plotting import confusion_matrix_plot, mistakes_figure, plot_history, plt
    from utils.report import most_confused, pct, table
    from utils.train import predict

    ds = ctx.load_images("mnist", train_size=ctx.pick(tiny=600, quick=None, hybrid=None, full=None))
    epochs = ctx.pick(tiny=1, quick=2, hybrid=8, full=15)
    model, result, val = train_small_cnn(ctx, ds, epochs=epochs)
    ctx.save_weights(model)

    logits = predict(model, ds.x_test, ctx.cfg.eval_batch_size, ctx.device)
    pred = logits.argmax(1).numpy()
    true = ds.y_test.numpy()
    test_acc = float((pred == true).mean())
    cm = confusion_matrix(true, pred, labels=range(ds.num_classes))
    report = classification_report(true, pred, labels=range(ds.num_classes), target_names=list(ds.classes),
                                   output_dict=True, zero_division=0)
    per_class = {c: report[c] for c in ds.classes}

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    plot_history(axes, result.history)
    axes[0].set_title("Loss per epoch")
    axes[1].set_title("Accuracy per epoch")
    fig.suptitle(f"SmallCNN on {ds.label}: test accuracy {pct(test_acc, 2)}")
    ctx.save_figure(fig, "curves")

    fig, ax = plt.subplots(figsize=(7, 6))
    confusion_matrix_plot(ax, cm, ds.classes, title=f"Confusion matrix, {ds.label} test set")
    ctx.save_figure(fig, "confusion_matrix")

    wrong = np.flatnonzero(pred != true)
    shown = wrong[:32]
    probs = torch.softmax(logits, 1).numpy()
    if len(shown):
        fig = mistakes_figure(ds.to_display(ds.x_test[shown]), true[shown], pred[shown], probs[shown, pred[shown]],
                              ds.classes, f"Misclassified test images (true→predicted, confidence): "
                                          f"{len(wrong)} of {len(true)}")
        ctx.save_figure(fig, "misclassified")

    # Analysis from the numbers: weakest classes, most frequent confusion, over-fitting signal.
    ti, pi, n_confused = most_confused(cm)
    recalls = sorted(((report[c]["recall"], c) for c in ds.classes))
    h = result.history
    gap = h["train_acc"][-1] - h["val_acc"][-1]
    val_min_epoch = int(np.argmin(h["val_loss"])) + 1
    ctx.record(test_accuracy=test_acc, test_loss=float(torch.nn.functional.cross_entropy(logits, ds.y_test)),
               epochs=len(h["train_loss"]), train_examples=len(ds.y_train) - len(val[1]), val_examples=len(val[1]),
               parameters=count_parameters(model), per_class=per_class,
               confusion_matrix=cm, most_confused={"true": ds.classes[ti], "predicted": ds.classes[pi], "count": n_confused},
               final_train_accuracy=h["train_acc"][-1], final_val_accuracy=h["val_acc"][-1],
               epoch_seconds=h["epoch_seconds"])
    if gap >= 0:
        gap_note = f"training accuracy is {100 * gap:.1f} percentage points above validation."
    else:
        gap_note = (f"validation accuracy is {-100 * gap:.1f} points *above* training accuracy, because training "
                    f"accuracy is averaged over the epoch while the weights were still improving and with dropout on.")
    if val_min_epoch < len(h["val_loss"]):
        fit_note = (f"Validation loss was lowest at epoch {val_min_epoch} of {len(h['val_loss'])} and rose "
                    f"afterwards ({h['val_loss'][val_min_epoch - 1]:.4f} → {h['val_loss'][-1]:.4f}): the start of over-fitting.")
    else:
        fit_note = (f"Validation loss was still falling at the last epoch ({h['val_loss'][-1]:.4f}), so the "
                    f"network had not begun to over-fit; more epochs would likely help.")
    rows = [(c, pct(report[c]["precision"]), pct(report[c]["recall"]), f"{report[c]['f1-score']:.3f}", int(report[c]["support"]))
            for c in ds.classes]
    ctx.write_analysis(f"""
## Result
The CNN ({count_parameters(model):,} parameters: conv 32 → pool → conv 64 → pool → FC 128 → {ds.num_classes})
trained for {len(h['train_loss'])} epochs ({sum(h['epoch_seconds']):.1f} s) reached **{pct(test_acc, 2)} test accuracy**
on {len(true):,} {ds.label} test images.

## Curves (`curves.png`)
Final training accuracy {pct(h['train_acc'][-1])} vs validation {pct(h['val_acc'][-1])}: {gap_note} {fit_note}

## Errors (`confusion_matrix.png`, `misclassified.png`)
{len(wrong)} test images were misclassified. The most frequent confusion was **{ds.classes[ti]} taken for
{ds.classes[pi]}** ({n_confused} images). The classes with the lowest recall were {recalls[0][1]} ({pct(recalls[0][0])})
and {recalls[1][1]} ({pct(recalls[1][0])}); the highest was {recalls[-1][1]} ({pct(recalls[-1][0])}).

{table(["class", "precision", "recall", "F1", "test images"], rows)}
""")


# ----------------------------------------------------------------------------- helpers of 4.1–4.8
def conv_output_size(n: int, kernel: int, padding: int = 0, stride: int = 1, dilation: int = 1) -> int:
    """Side of a convolution's (or pooling window's) output: ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1."""
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def hand_made_kernels() -> dict[str, tuple[list[list[float]], str]]:
    """The classic kernels of 4.1 by name: (weights as rows, what they pick out)."""
    binomial = [1, 4, 6, 4, 1]
    return {
        "Sobel x": ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "vertical edges"),
        "Sobel y": ([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "horizontal edges"),
        "Laplacian": ([[0, 1, 0], [1, -4, 1], [0, 1, 0]], "edges, all directions"),
        "box blur 5×5": ([[1 / 25] * 5 for _ in range(5)], "blur: local mean"),
        "Gaussian blur 5×5": ([[a * b / 256 for b in binomial] for a in binomial], "blur: weighted mean"),
        "sharpen": ([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], "image − Laplacian"),
    }


def apply_kernels(images, kernels):
    """Filter every (N, 1, H, W) image with every 2-D kernel in one conv2d call -> (N, K, H, W).

    Kernels are zero-padded, centred, to one odd size (which leaves each operation unchanged) and the
    images are reflect-padded, so outputs keep the input size without dark borders. Like every deep
    learning library, conv2d computes cross-correlation (the kernel is not flipped).
    """
    import torch
    import torch.nn.functional as F

    size = max(len(k) for k in kernels)
    weight = torch.zeros(len(kernels), 1, size, size)
    for i, k in enumerate(kernels):
        t = torch.as_tensor(k, dtype=torch.float32)
        o = (size - t.shape[0]) // 2
        weight[i, 0, o:o + t.shape[0], o:o + t.shape[1]] = t
    return F.conv2d(F.pad(images, (size // 2,) * 4, mode="reflect"), weight)


def shift_images(x, dy, dx, fill: float):
    """Translate each image of a (N, C, H, W) batch by its own whole-pixel (dy[i], dx[i]).

    Positive dy moves content down, positive dx right; content leaving the frame is dropped and
    the uncovered border takes the value ``fill`` (no wrap-around, unlike torch.roll).
    """
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    dy = torch.as_tensor(dy, device=x.device).long().expand(n)
    dx = torch.as_tensor(dx, device=x.device).long().expand(n)
    m = int(max(dy.abs().max(), dx.abs().max()))
    if m == 0:
        return x.clone()
    padded = F.pad(x, (m,) * 4, value=fill)
    rows = (m - dy).view(n, 1) + torch.arange(h, device=x.device)
    cols = (m - dx).view(n, 1) + torch.arange(w, device=x.device)
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * m))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def layer_geometry(layers) -> list[tuple[str, int, int, int, int]]:
    """(name, kernel, stride, padding, dilation) of the conv and pooling layers of a Sequential.

    Activations and batch norm act pixel by pixel and leave the receptive field alone, so they are skipped.
    """
    import torch.nn as nn

    def first(v):
        return v[0] if isinstance(v, tuple) else v

    geometry, counts = [], {"conv": 0, "pool": 0}
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            kind = "conv"
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "pool"
        else:
            continue
        counts[kind] += 1
        stride = first(layer.stride) or first(layer.kernel_size)
        geometry.append((f"{kind}{counts[kind]}", first(layer.kernel_size), stride, first(layer.padding),
                         first(getattr(layer, "dilation", 1))))
    return geometry


def receptive_fields(geometry) -> list[dict]:
    """The theoretical receptive field after each layer of (name, kernel, stride, padding, dilation).

    jump = distance in input pixels between neighbouring output units (product of strides);
    rf = input pixels one unit sees, r_out = r_in + d·(k − 1)·jump_in;
    start = input coordinate of the centre of unit 0's field, start_out = start_in + (d·(k − 1)/2 − p)·jump_in.
    """
    jump, rf, start = 1, 1, 0.0
    rows = []
    for name, k, s, p, d in geometry:
        rf += d * (k - 1) * jump
        start += (d * (k - 1) / 2 - p) * jump
        jump *= s
        rows.append({"layer": name, "kernel": k, "stride": s, "padding": p, "dilation": d,
                     "jump": jump, "rf": rf, "start": start})
    return rows


def trained_cnn(ctx, ds, *, epochs: int):
    """4.3's trained SmallCNN when its saved weights fit ``ds`` (same dataset and image shape), else one trained here.

    Returns (model in eval mode, a dict saying which happened and why).
    """
    from experiments.registry import get_task
    from models import SmallCNN
    from utils.results import read_json

    c, h, _ = ds.shape
    state = ctx.load_weights("4.3")
    info = read_json(ctx.results_dir / get_task("4.3").dirname / "metrics.json") or {}
    if state is None:
        reason = "no saved 4.3 weights in this results folder"
    elif info.get("status") != "done" or info.get("dataset") != [ds.name]:
        reason = f"4.3's weights were trained on {info.get('dataset')}, not {ds.name}"
    else:
        model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h)
        try:
            model.load_state_dict(state)
        except RuntimeError:
            reason = f"4.3's weights do not fit a {c}×{h}×{h}, {ds.num_classes}-class SmallCNN"
        else:
            ctx.log(f"  using 4.3's trained weights ({info.get('mode')} mode, test accuracy {info.get('test_accuracy')})")
            return model.to(ctx.device).eval(), {
                "source": "reused 4.3", "detail": f"weights saved by task 4.3 ({info.get('mode')} mode, "
                f"{info.get('epochs')} epochs on {info.get('train_examples')} images)"}
    ctx.log(f"  {reason}: training a SmallCNN here ({epochs} epoch(s) on {len(ds.y_train)} images)")
    model, result, _ = train_small_cnn(ctx, ds, epochs=epochs)
    return model.eval(), {"source": "trained here", "detail": f"{reason}, so a SmallCNN was trained here for "
                          f"{epochs} epoch(s) on {len(ds.y_train)} images ({result.seconds:.0f} s)"}


def conv_activations(model, x) -> list:
    """Feature maps after each conv block's ReLU in ``model.features``: [(N, C, H, W), ...]."""
    import torch.nn as nn

    maps, out = [], x
    for layer in model.features:
        out = layer(out)
        if isinstance(layer, nn.ReLU):
            maps.append(out.clone())  # ReLU is in-place; keep a copy of what it produced
    return maps


def input_gradient_map(prefix, x, unit=None):
    """Mean |∂(one output unit)/∂(input pixel)| over a batch: (H, W).

    The unit is the spatial centre of ``prefix(x)`` summed over channels (or, for a (N, classes)
    output, each image's top logit). Pixels outside the unit's receptive field get exactly zero.
    """
    import torch

    x = x.clone().requires_grad_(True)
    out = prefix(x)
    if out.ndim == 4:
        i, j = unit if unit is not None else (out.shape[2] // 2, out.shape[3] // 2)
        target = out[:, :, i, j].sum()
    else:
        target = out.gather(1, out.argmax(1, keepdim=True)).sum()
    (grad,) = torch.autograd.grad(target, x)
    return grad.abs().mean(dim=(0, 1)).detach().cpu()


def gradient_extent(heat, centre: tuple[float, float], threshold: float = 0.01, mass: float = 0.9,
                    inner_side: int | None = None) -> dict:
    """Empirical receptive-field sizes from a gradient map.

    extent: side of the bounding box of pixels above ``threshold`` × peak (the 'non-negligible' region);
    mass_side: side of the smallest square around ``centre`` holding ``mass`` of the total |gradient|;
    inner_share (with ``inner_side``): share of the |gradient| inside the central square of that side.
    """
    import torch

    h, w = heat.shape
    live = torch.nonzero(heat > threshold * heat.max())
    top, left = live.min(0).values.tolist()
    bottom, right = live.max(0).values.tolist()
    ys = torch.arange(h, dtype=torch.float32).view(h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, w)
    cheb = torch.maximum((ys - centre[0]).abs(), (xs - centre[1]).abs())  # square "radius" of each pixel
    order = torch.argsort(cheb.flatten())
    cum = torch.cumsum(heat.flatten()[order], 0) / heat.sum()
    crossing = min(int(torch.searchsorted(cum, torch.tensor(mass))), len(cum) - 1)  # guard float round-off
    radius = float(cheb.flatten()[order][crossing])
    found = {"extent": int(max(bottom - top, right - left) + 1), "box": [top, left, bottom, right],
             "mass_side": int(round(2 * radius + 1))}
    if inner_side is not None:
        found["inner_share"] = float(heat[cheb <= (inner_side - 1) / 2].sum() / heat.sum())
    return found


def beyond_spread(a, b) -> bool | None:
    """Whether the per-seed results ``a`` and ``b`` differ by more than their summed standard deviations
    (the rule of utils.report.compare); None with a single seed, where no spread was measured."""
    from utils.report import mean_std

    if len(a) < 2 or len(b) < 2:
        return None
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return abs(ma - mb) > sa + sb


def recording_cross_entropy():
    """Cross-entropy that also keeps every training step's loss: (loss_fn, list of losses).

    Training outputs carry gradients and evaluation outputs do not, which tells the two calls apart.
    """
    import torch.nn.functional as F

    steps: list[float] = []

    def loss_fn(out, y):
        loss = F.cross_entropy(out, y)
        if out.requires_grad:
            steps.append(float(loss.detach()))
        return loss

    return loss_fn, steps


@task("4.1", "Convolution and pooling, seen", datasets=("fashion-mnist", "sklearn sample photos"),
      headline="formula_matches_torch", image_dataset=True, threads=1)
def convolution_and_pooling(ctx):
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from sklearn.datasets import load_sample_images

    from utils.plotting import plt
    from utils.report import table

    # Real images: scikit-learn's two bundled photos (grey, halved to 213×320) and two dataset images.
    photos = load_sample_images()
    ctx.use_dataset("sklearn sample photos", note="china.jpg and flower.jpg bundled with scikit-learn, "
                    "converted to grey and halved in size")
    grey = torch.tensor(np.stack(photos.images), dtype=torch.float32).matmul(torch.tensor([0.299, 0.587, 0.114])) / 255
    grey = F.avg_pool2d(grey.unsqueeze(1), 2)
    ds = ctx.load_images("fashion-mnist", train_size=ctx.pick(tiny=200, quick=1000, hybrid=1000, full=1000),
                         test_size=ctx.pick(tiny=100, quick=500, hybrid=500, full=500))
    first_of_class = [int(np.flatnonzero(ds.y_test.numpy() == c)[0]) for c in np.unique(ds.y_test.numpy())[:2]]
    small = torch.tensor(ds.to_display(ds.x_test[first_of_class]))
    small = (small.mean(-1) if small.ndim == 4 else small).unsqueeze(1)  # grey (N, 1, H, W) in [0, 1]
    names = ["china photo", "flower photo"] + [f"{ds.name}: {ds.classes[int(ds.y_test[i])]}" for i in first_of_class]
    images = [grey[0:1], grey[1:2], small[0:1], small[1:2]]

    # --- hand-made kernels on every image
    kernels = hand_made_kernels()
    weights = [k for k, _ in kernels.values()]
    laplacian = [kernels["Laplacian"][0]]
    filtered = [apply_kernels(img, weights)[0] for img in images]  # each (K, H, W)
    effects = {}
    for name, img, out in zip(names, images, filtered):
        detail_in = float(apply_kernels(img, laplacian).std())  # high-frequency content of the input
        row = {}
        for (kname, (_, _)), o in zip(kernels.items(), out):
            row[kname] = {"mean_abs_response": float(o.abs().mean()), "mean_brightness": float(o.mean()),
                          "detail_ratio": float(apply_kernels(o[None, None], laplacian).std()) / detail_in}
        row["input"] = {"mean_brightness": float(img.mean())}
        effects[name] = row

    fig, axes = plt.subplots(len(images) + 1, len(kernels) + 1, figsize=(15, 10.5),
                             gridspec_kw={"height_ratios": [0.8] + [1] * len(images)})
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, "kernel weights\n(red +, blue −)", ha="center", va="center", fontsize=10)
    for col, (kname, (w, what)) in enumerate(kernels.items(), start=1):
        ax = axes[0, col]
        w = np.array(w)
        lim = np.abs(w).max()
        ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
        for (r, c), v in np.ndenumerate(w):
            ax.text(c, r, f"{v:g}" if len(w) == 3 else f"{v:.2f}".lstrip("0"), ha="center", va="center",
                    fontsize=8 if len(w) == 3 else 5.5, color="white" if abs(v) > 0.6 * lim else "black")
        ax.set_title(f"{kname}\n{what}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    edge_kernels = {"Sobel x", "Sobel y", "Laplacian"}
    for r, (name, img, out) in enumerate(zip(names, images, filtered), start=1):
        axes[r, 0].imshow(img[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(name, fontsize=9)
        for col, (kname, o) in enumerate(zip(kernels, out), start=1):
            if kname in edge_kernels:  # signed responses: show the strength |response|, bright = strong edge
                shown = o.abs()
                axes[r, col].imshow(shown.numpy(), cmap="gray", vmin=0, vmax=float(torch.quantile(shown.flatten(), 0.99)))
                label = f"mean |resp.| {effects[name][kname]['mean_abs_response']:.3f}"
            else:
                axes[r, col].imshow(o.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                label = f"detail ×{effects[name][kname]['detail_ratio']:.2f}"
            axes[r, col].set_xlabel(label, fontsize=7.5)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    axes[1, 0].set_title("input")
    fig.suptitle("Hand-made 2-D convolution kernels applied to real images (edges: |response|; "
                 "'detail ×' = high-frequency content relative to the input)", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "kernels_on_images")

    # --- output size: the formula against the shapes torch actually produces
    cases = [  # (input n, kernel k, padding p, stride s, dilation d, layer)
        (28, 3, 0, 1, 1, "conv"), (28, 3, 1, 1, 1, "conv"), (28, 5, 2, 1, 1, "conv"), (28, 5, 0, 1, 1, "conv"),
        (28, 3, 1, 2, 1, "conv"), (28, 3, 0, 3, 1, "conv"), (27, 3, 1, 2, 1, "conv"), (28, 3, 2, 1, 2, "conv"),
        (32, 7, 3, 2, 1, "conv"), (224, 11, 2, 4, 1, "conv"), (28, 2, 0, 2, 1, "max pool"),
        (7, 2, 0, 2, 1, "max pool"), (14, 3, 1, 2, 1, "avg pool")]
    size_rows = []
    for n, k, p, s, d, kind in cases:
        if kind == "conv":
            layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
        elif kind == "max pool":
            layer = nn.MaxPool2d(k, stride=s, padding=p)
        else:
            layer = nn.AvgPool2d(k, stride=s, padding=p)
        with torch.no_grad():
            actual = layer(torch.zeros(1, 1, n, n)).shape[-1]
        size_rows.append({"layer": kind, "n": n, "k": k, "p": p, "s": s, "d": d,
                          "formula": conv_output_size(n, k, p, s, d), "torch": int(actual)})
    all_match = all(r["formula"] == r["torch"] for r in size_rows)

    sample = small[0:1]
    settings = [(3, 0, 1), (3, 1, 1), (3, 1, 2), (3, 0, 3), (5, 0, 1), (5, 2, 2)]
    fig, axes = plt.subplots(1, len(settings) + 1, figsize=(15, 3.1), sharex=True, sharey=True)
    side = sample.shape[-1]
    axes[0].imshow(sample[0, 0].numpy(), cmap="gray", vmin=0, vmax=1, extent=(0, side, side, 0))
    axes[0].set_title(f"input {side}×{side}")
    for ax, (k, p, s) in zip(axes[1:], settings):
        kernel = torch.full((1, 1, k, k), 1.0 / (k * k))  # a blur, so the output still looks like the input
        out = F.conv2d(sample, kernel, padding=p, stride=s)[0, 0]
        m = out.shape[-1]
        ax.imshow(out.numpy(), cmap="gray", vmin=0, vmax=1, extent=(0, m, m, 0))
        ax.set_title(f"k={k}, p={p}, s={s} → {m}×{m}\n⌊({side}+{2 * p}−{k})/{s}⌋+1 = {conv_output_size(side, k, p, s)}",
                     fontsize=8.5)
    for ax in axes:
        ax.set_xlim(0, side)
        ax.set_ylim(side, 0)
        ax.set_xlabel("output column (pixels)")
        ax.grid(False)
    axes[0].set_ylabel("row (pixels)")
    fig.suptitle("Output size = ⌊(n + 2p − k) / s⌋ + 1: the same image through convolutions with different "
                 "kernel k, padding p and stride s (drawn one output pixel per unit)", fontsize=10.5)
    fig.tight_layout()
    ctx.save_figure(fig, "output_size")

    # --- max vs average pooling
    edges = apply_kernels(grey[0:1], [kernels["Sobel x"][0], kernels["Sobel y"][0]]).pow(2).sum(1, keepdim=True).sqrt()
    pool_inputs = {"china photo": grey[0:1], "edge strength of the china photo (Sobel)": edges,
                   names[2]: small[0:1]}
    pooled = {name: {(kind, k): (F.max_pool2d if kind == "max" else F.avg_pool2d)(x, k)
                     for k in (2, 4) for kind in ("max", "avg")} for name, x in pool_inputs.items()}
    pool_stats = {}
    for name, x in pool_inputs.items():
        pool_stats[name] = {f"{kind}_{k}x{k}": {"mean": float(o.mean()), "peak": float(o.max())}
                            for (kind, k), o in pooled[name].items()}
        pool_stats[name]["input"] = {"mean": float(x.mean()), "peak": float(x.max())}
    fig, axes = plt.subplots(len(pool_inputs), 5, figsize=(15, 8.5))
    for r, (name, x) in enumerate(pool_inputs.items()):
        vmax = float(torch.quantile(x.flatten(), 0.995))
        axes[r, 0].imshow(x[0, 0].numpy(), cmap="gray", vmin=0, vmax=vmax)
        axes[r, 0].set_title(f"input {x.shape[-2]}×{x.shape[-1]}", fontsize=9)
        axes[r, 0].set_ylabel(name if len(name) < 25 else name.replace(" of the", "\nof the"), fontsize=9)
        axes[r, 0].set_xlabel(f"mean {pool_stats[name]['input']['mean']:.3f}", fontsize=8)
        for col, ((kind, k), o) in enumerate(pooled[name].items(), start=1):
            st = pool_stats[name][f"{kind}_{k}x{k}"]
            axes[r, col].imshow(o[0, 0].numpy(), cmap="gray", vmin=0, vmax=vmax)
            axes[r, col].set_title(f"{kind} pool {k}×{k}, stride {k} → {o.shape[-2]}×{o.shape[-1]}", fontsize=9)
            axes[r, col].set_xlabel(f"mean {st['mean']:.3f}, peak {st['peak']:.3f}", fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    fig.suptitle("Max vs average pooling (same grey scale within a row; 'mean' is the mean pixel value)", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "pooling")

    # A 4×4 patch of real pixel values and both 2×2 poolings of it, written out: the patch where the
    # two poolings disagree most (a thin edge beside flat background).
    e = edges[0, 0]
    disagreement = F.max_pool2d(edges, 4, 1) - F.avg_pool2d(edges, 4, 1)
    i, j = divmod(int(disagreement[0, 0].argmax()), e.shape[-1] - 3)
    patch = e[i:i + 4, j:j + 4] / e.max()
    patch_max, patch_avg = F.max_pool2d(patch[None, None], 2)[0, 0], F.avg_pool2d(patch[None, None], 2)[0, 0]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), gridspec_kw={"width_ratios": [2, 1, 1]})
    for ax, values, title in ((axes[0], patch, f"4×4 patch of the edge map (rows {i}–{i + 3}, cols {j}–{j + 3})"),
                              (axes[1], patch_max, "max pool 2×2"), (axes[2], patch_avg, "average pool 2×2")):
        ax.imshow(values.numpy(), cmap="Greys", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(values.numpy()):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=10, color="white" if v > 0.55 else "black")
        ax.set_xticks(range(values.shape[1]))
        ax.set_yticks(range(values.shape[0]))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        ax.set_title(title, fontsize=9.5)
        ax.grid(False)
    for r in (1.5,):
        axes[0].axhline(r, color="tab:red", lw=2)
        axes[0].axvline(r, color="tab:red", lw=2)
    fig.suptitle("Pooling by numbers: edge strength (relative to the map's peak) in the red 2×2 windows", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "pooling_numbers")

    # --- analysis from the numbers
    ctx.record(kernel_effects=effects, output_size_table=size_rows, formula_matches_torch=all_match,
               pooling=pool_stats, pooling_example={"patch": patch, "max": patch_max, "avg": patch_avg})
    lines = []
    for name in names:
        ef = effects[name]
        sx, sy = ef["Sobel x"]["mean_abs_response"], ef["Sobel y"]["mean_abs_response"]
        ratio = max(sx, sy) / min(sx, sy)
        orient = ("about equal" if ratio < 1.1 else
                  f"{'vertical' if sx > sy else 'horizontal'} edges dominate, ×{ratio:.2f}")
        lines.append(f"| {name} | {sx:.3f} / {sy:.3f} ({orient}) | "
                     f"×{ef['box blur 5×5']['detail_ratio']:.2f} / ×{ef['Gaussian blur 5×5']['detail_ratio']:.2f} | "
                     f"×{ef['sharpen']['detail_ratio']:.2f} | {ef['input']['mean_brightness']:.3f} → "
                     f"{ef['Gaussian blur 5×5']['mean_brightness']:.3f} / {ef['sharpen']['mean_brightness']:.3f} |")
    box_stronger = sum(effects[n]["box blur 5×5"]["detail_ratio"] < effects[n]["Gaussian blur 5×5"]["detail_ratio"]
                       for n in names)
    blur_note = (f"the 5×5 box blur removed more detail than the 5×5 Gaussian on {box_stronger} of {len(names)} images "
                 f"(the Gaussian weights the centre more, so it keeps more of the finest structure).")
    e_name = "edge strength of the china photo (Sobel)"
    ps = pool_stats[e_name]
    ims = pool_stats["china photo"]
    size_table = table(["layer", "n", "k", "p", "s", "d", "formula ⌊(n+2p−d(k−1)−1)/s⌋+1", "torch output"],
                       [(r["layer"], r["n"], r["k"], r["p"], r["s"], r["d"], r["formula"], r["torch"]) for r in size_rows])
    mismatch = [r for r in size_rows if r["formula"] != r["torch"]]
    ctx.write_analysis(f"""
## Hand-made kernels (`kernels_on_images.png`)
Six kernels were applied by `conv2d` to two real photos (scikit-learn's china.jpg and flower.jpg, grey) and two
{ds.label} images. "detail" is the standard deviation of the Laplacian of the output relative to that of the input
(a measure of fine, high-frequency content).

| image | mean abs. response Sobel x / Sobel y | detail after box / Gaussian blur | detail after sharpen | mean brightness input → blur / sharpen |
|---|---|---|---|---|
{chr(10).join(lines)}

- The edge kernels sum to zero, so flat regions give zero and only intensity *changes* respond; Sobel x and y
  split the edges by orientation (see the table for which dominates each image).
- The blurs (weights summing to 1) keep the mean brightness and remove fine detail; {blur_note}
- Sharpening (also summing to 1) keeps the brightness but multiplies the fine detail (factors above).

## Output size (`output_size.png`)
Output side = ⌊(n + 2p − d·(k−1) − 1)/s⌋ + 1 (d = dilation, 1 for ordinary convolutions). Every row below was
checked against the shape torch produced: {'all ' + str(len(size_rows)) + ' match' if all_match else f'{len(mismatch)} rows differ: {mismatch}'}.
Padding p = (k−1)/2 with stride 1 keeps the size ("same" padding); stride s divides it by about s.

{size_table}

## Max vs average pooling (`pooling.png`, `pooling_numbers.png`)
On the Sobel edge-strength map of the china photo, 2×2 max pooling kept the peak response
({ps['max_2x2']['peak']:.3f} of {ps['input']['peak']:.3f}) and raised the mean from {ps['input']['mean']:.3f} to
{ps['max_2x2']['mean']:.3f}, while 2×2 average pooling kept the mean ({ps['avg_2x2']['mean']:.3f}) and lowered the
peak to {ps['avg_2x2']['peak']:.3f}; with 4×4 windows the peak fell to {ps['avg_4x4']['peak']:.3f} under average
pooling against {ps['max_4x4']['peak']:.3f} under max pooling. Max pooling reports *whether* a feature occurs in a
window (thin edges survive), average pooling *how much* of it there is on average (thin edges fade). On the photo
itself the mean brightness moved from {ims['input']['mean']:.3f} to {ims['max_2x2']['mean']:.3f} (max) and
{ims['avg_2x2']['mean']:.3f} (average). `pooling_numbers.png` writes out one 4×4 patch of the edge map and both
2×2 poolings of it.
""")


def edge_templates() -> dict[str, list[list[float]]]:
    """3×3 templates a first-layer filter is compared with (4.4)."""
    return {"vertical edge": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
            "horizontal edge": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
            "diagonal edge ↘": [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
            "diagonal edge ↗": [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],
            "spot (Laplacian)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
            "brightness (uniform)": [[1, 1, 1], [1, 1, 1], [1, 1, 1]]}


def match_templates(filters, templates):
    """Best-matching template of each (F, 3, 3) filter by |cosine similarity| (sign ignored: a negated
    edge detector finds the same edge with the opposite polarity). Returns (names, |cos| of the best)."""
    import torch

    names = list(templates)
    t = torch.tensor([templates[n] for n in names], dtype=torch.float32).flatten(1)
    t = t / t.norm(dim=1, keepdim=True)
    f = filters.flatten(1)
    f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = (f @ t.T).abs()
    best = cos.max(1)
    return [names[i] for i in best.indices.tolist()], best.values


def weight_mosaic(w):
    """(out, in, k, k) weights -> one 2-D array of k×k tiles (rows: output channel, columns: input channel),
    with NaN gutters between tiles so they stay apart."""
    import numpy as np

    o, i, k, _ = w.shape
    canvas = np.full((o * (k + 1) - 1, i * (k + 1) - 1), np.nan)
    for r in range(o):  # one slice assignment per output filter, not per pixel
        canvas[r * (k + 1): r * (k + 1) + k] = np.pad(w[r].transpose(1, 0, 2), ((0, 0), (0, 0), (0, 1)),
                                                      constant_values=np.nan).reshape(k, -1)[:, :-1]
    return canvas


@task("4.4", "Filters and feature maps of the trained CNN", datasets=("mnist",), headline="edge_like_filters.trained",
      image_dataset=True, threads=1)
def filters_and_feature_maps(ctx):
    import numpy as np
    import torch
    import torch.nn as nn

    from models import SmallCNN
    from utils.plotting import image_grid, plt
    from utils.report import pct, table

    ds = ctx.load_images("mnist", train_size=ctx.pick(tiny=600, quick=5000, hybrid=20000, full=None))
    model, weights = trained_cnn(ctx, ds, epochs=ctx.pick(tiny=1, quick=2, hybrid=4, full=8))
    _, test_acc = ctx.evaluate(model, ds.x_test, ds.y_test)
    c, h, _ = ds.shape
    torch.manual_seed(ctx.seed)
    untrained = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h).eval()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]

    # First-layer filters: summed over input channels (one 3×3 luminance filter each), compared with templates.
    templates = edge_templates()
    first = {"trained": convs[0].weight.detach().cpu().sum(1),
             "untrained": next(m for m in untrained.features if isinstance(m, nn.Conv2d)).weight.detach().sum(1)}
    filter_stats = {}
    for name, f in first.items():
        best, cos = match_templates(f, templates)
        dc = (f.sum((1, 2)).abs() / f.abs().sum((1, 2)).clamp_min(1e-12))  # 0: ignores flat regions entirely
        matched = [b for b, v in zip(best, cos.tolist()) if v >= 0.8]
        filter_stats[name] = {"best_template": best, "best_abs_cos": cos.tolist(), "dc_ratio": dc.tolist(),
                              "edge_like": int((dc < 0.2).sum()), "matched_0.8": len(matched),
                              "matched_by_template": {t: matched.count(t) for t in templates if t in matched}}
    f = first["trained"].numpy()
    n_filters = len(f)
    ncols = 8
    nrows = int(np.ceil(n_filters / ncols))
    lim = np.abs(f).max()
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 1.9 * nrows + 0.6), layout="constrained")
    short = {"vertical edge": "vert. edge", "horizontal edge": "horiz. edge", "diagonal edge ↘": "diag. ↘",
             "diagonal edge ↗": "diag. ↗", "spot (Laplacian)": "spot", "brightness (uniform)": "uniform"}
    st = filter_stats["trained"]
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n_filters:
            continue
        im = ax.imshow(f[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"#{k}: {short[st['best_template'][k]]}\n|cos| {st['best_abs_cos'][k]:.2f}", fontsize=8)
    fig.colorbar(im, ax=axes, fraction=0.02, pad=0.02, label="weight (red +, blue −)")
    fig.suptitle(f"conv1: all {n_filters} trained 3×3 filters ({'summed over RGB, ' if c > 1 else ''}one colour scale); "
                 f"title: best template and its |cosine similarity|", fontsize=10.5)
    ctx.save_figure(fig, "conv1_filters")

    w2 = convs[1].weight.detach().cpu().numpy()
    lim2 = np.abs(w2).max()
    fig, ax = plt.subplots(figsize=(8, 11), layout="constrained")
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    im = ax.imshow(weight_mosaic(w2), cmap=cmap, vmin=-lim2, vmax=lim2, interpolation="nearest")
    k2 = w2.shape[-1]
    ax.set_xticks(np.arange(0, w2.shape[1], 4) * (k2 + 1) + 1, np.arange(0, w2.shape[1], 4))
    ax.set_yticks(np.arange(0, w2.shape[0], 4) * (k2 + 1) + 1, np.arange(0, w2.shape[0], 4))
    ax.set_xlabel("input channel (a conv1 feature map)")
    ax.set_ylabel("output channel (conv2 filter)")
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="weight")
    ax.set_title(f"conv2: all {w2.shape[0]} filters × {w2.shape[1]} input channels, each tile 3×3")
    ctx.save_figure(fig, "conv2_filters")

    # Feature maps for sample test images, every conv layer (after ReLU).
    y = ds.y_test.numpy()
    samples = [int(np.flatnonzero(y == cl)[0]) for cl in np.unique(y)[:2]]
    probe = ds.x_test[: ctx.pick(tiny=200, quick=500, hybrid=1000, full=1000)].to(ctx.device)
    with torch.no_grad():
        batch_maps = conv_activations(model, probe)
        sample_maps = conv_activations(model, ds.x_test[samples].to(ctx.device))
        pred = model(ds.x_test[samples].to(ctx.device)).argmax(1).tolist()
    layer_stats = {}
    for li, a in enumerate(batch_maps, start=1):
        layer_stats[f"conv{li}"] = {"channels": a.shape[1], "map_size": list(a.shape[2:]),
                                    "zero_fraction": float((a == 0).float().mean()),
                                    "dead_channels": int((a.amax(dim=(0, 2, 3)) == 0).sum()),
                                    "mean_activation": float(a.mean())}
    for si, idx in enumerate(samples):
        maps = [m[si].cpu() for m in sample_maps]
        fig, axes = plt.subplots(1, 3, figsize=(15, 5.4), gridspec_kw={"width_ratios": [0.7, 2.0, 1.55]})
        image_grid(axes[0], ds.to_display(ds.x_test[idx:idx + 1]), ncols=1,
                   title=f"input: {ds.classes[y[idx]]}\n(predicted {ds.classes[pred[si]]})")
        for ax, m, li in zip(axes[1:], maps, range(1, 3)):
            peaks = m.amax(dim=(1, 2), keepdim=True)
            silent = int((peaks == 0).sum())
            image_grid(ax, (m / peaks.clamp_min(1e-12)).numpy(), ncols=8,
                       title=f"conv{li} + ReLU: {m.shape[0]} maps of {m.shape[1]}×{m.shape[2]}\n"
                             f"(each scaled to its own peak; all-zero maps, here {silent}, stay black)")
        fig.suptitle(f"Feature maps of the trained CNN for one {ds.label} test image (channel order, row by row)",
                     fontsize=11)
        ctx.save_figure(fig, f"feature_maps_{si + 1}")

    ctx.record(weights_source=weights["source"], weights_detail=weights["detail"], model_test_accuracy=test_acc,
               edge_like_filters={k: v["edge_like"] for k, v in filter_stats.items()},
               template_matches={k: v["matched_0.8"] for k, v in filter_stats.items()},
               conv1_filters=filter_stats, feature_maps=layer_stats,
               sample_images=[{"index": i, "class": ds.classes[y[i]], "predicted": ds.classes[p]} for i, p in zip(samples, pred)])
    tr, un = filter_stats["trained"], filter_stats["untrained"]
    diff = tr["edge_like"] - un["edge_like"]
    verdict = (f"{diff} more than the same network at initialisation ({un['edge_like']}): training made the first "
               f"layer more edge-like, as the textbook describes (one network each, so no spread is measured)"
               if diff > 0 else
               f"no more than the same network at initialisation ({un['edge_like']}): in this run training did not "
               f"make the first layer more edge-like than its random start, which contradicts the textbook picture")
    by_template = ", ".join(f"{n} {t}" for t, n in sorted(((t, n) for t, n in tr["matched_by_template"].items()),
                                                          key=lambda x: -x[1])) or "none"
    if tr["matched_0.8"] > un["matched_0.8"]:
        template_note = "Training pulled some filters towards the classic kernels."
    else:
        template_note = ("So the trained filters do not copy the hand-made kernels any more often than random ones "
                         "do: they are edge-like only in the weaker, zero-sum sense above. The textbook's clean edge "
                         "detectors are not visible in these 3×3 filters.")
    rows = [(f"conv{i}", s["channels"], f"{s['map_size'][0]}×{s['map_size'][1]}", pct(s["zero_fraction"]),
             s["dead_channels"], f"{s['mean_activation']:.3f}") for i, s in enumerate(layer_stats.values(), start=1)]
    ctx.write_analysis(f"""
## Which network
{weights['detail'][0].upper() + weights['detail'][1:]}. Its test accuracy here: **{pct(test_acc, 2)}** on
{len(ds.y_test)} {ds.label} images.

## Filters (`conv1_filters.png`, `conv2_filters.png`)
- Edge-like first-layer filters (weights summing to less than 20% of their absolute sum, so a flat region gives
  almost no response and only intensity changes do): **{tr['edge_like']} of {n_filters}**, {verdict}.
- Filters within |cosine| ≥ 0.8 of one of the hand-made templates (Sobel in four orientations, Laplacian spot,
  uniform): {tr['matched_0.8']} trained ({by_template}) vs {un['matched_0.8']} untrained. {template_note}
- conv2 filters mix all {w2.shape[1]} conv1 maps; a 3×3 tile per input channel is hard to read on its own, which is
  why the feature maps below say more about what the second layer does.

## Feature maps (`feature_maps_1.png`, `feature_maps_2.png`)
Measured on {len(probe)} test images (after ReLU):

{table(["layer", "channels", "map size", "zeros (ReLU off)", "channels never active", "mean activation"], rows)}

conv2 maps are at half the resolution of conv1's after pooling and {'sparser' if layer_stats['conv2']['zero_fraction'] > layer_stats['conv1']['zero_fraction'] else 'not sparser'}
({pct(layer_stats['conv2']['zero_fraction'])} zeros against {pct(layer_stats['conv1']['zero_fraction'])} in conv1).
""")


@task("4.5", "Receptive fields", datasets=("mnist",), headline="receptive_field.pool2", image_dataset=True, threads=1)
def receptive_fields_task(ctx):
    import numpy as np
    import torch
    import torch.nn as nn
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    from models import SmallCNN
    from utils.plotting import plt

    ds = ctx.load_images("mnist", train_size=ctx.pick(tiny=600, quick=5000, hybrid=20000, full=None))
    model, weights = trained_cnn(ctx, ds, epochs=ctx.pick(tiny=1, quick=2, hybrid=4, full=8))
    c, h, w = ds.shape
    torch.manual_seed(ctx.seed)
    nets = {"trained": model.cpu().eval(),
            "untrained": SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h).eval()}

    # Theory, from the layers themselves.
    theory = receptive_fields(layer_geometry(model.features))
    positions = [i for i, layer in enumerate(model.features) if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    probe = ds.x_test[: ctx.pick(tiny=64, quick=256, hybrid=512, full=512)]
    boxes, names = [], []
    with torch.no_grad():
        sizes = [model.features[: p + 1](probe[:1]).shape[-1] for p in positions]
    for row, side in zip(theory, sizes):
        centre = row["start"] + (side // 2) * row["jump"]  # the central unit's field centre, in input pixels
        half = (row["rf"] - 1) / 2
        boxes.append((centre, [max(0, int(centre - half)), min(w - 1, int(centre + half))]))
        names.append(row["layer"])
    names.append("output logit")
    boxes.append(((w - 1) / 2, [0, w - 1]))  # the fully connected classifier sees the whole image

    # Empirical: mean |∂ central unit / ∂ input| over the probe images, for each layer.
    heats, empirical, outside = {}, {}, {}
    for kind, net in nets.items():
        heats[kind], empirical[kind] = [], {}
        prefixes = [net.features[: p + 1] for p in positions] + [net]
        for name, prefix, (centre, (lo, hi)) in zip(names, prefixes, boxes):
            heat = input_gradient_map(prefix, probe)
            heats[kind].append(heat)
            # inner square: about half the field's side, with the field's parity so both share one centre
            side = hi - lo + 1
            inner = side // 2 + (side // 2 - side) % 2
            empirical[kind][name] = gradient_extent(heat, (centre, centre), inner_side=inner)
            empirical[kind][name]["inner_area_share"] = inner ** 2 / side ** 2
            inside = torch.zeros_like(heat, dtype=torch.bool)
            inside[lo:hi + 1, lo:hi + 1] = True
            outside[f"{kind}/{name}"] = float(heat[~inside].max() / heat.max()) if (~inside).any() else 0.0

    fig, axes = plt.subplots(2, len(names), figsize=(3.1 * len(names), 6.6), layout="constrained")
    norm = LogNorm(vmin=1e-3, vmax=1)
    cmap = plt.get_cmap("inferno").with_extremes(bad="black")
    for r, kind in enumerate(nets):
        for col, (name, heat, (centre, (lo, hi))) in enumerate(zip(names, heats[kind], boxes)):
            ax = axes[r, col]
            rel = (heat / heat.max()).numpy()
            im = ax.imshow(np.ma.masked_less_equal(rel, 0), cmap=cmap, norm=norm)
            top, left, bottom, right = empirical[kind][name]["box"]
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False, ec="white",
                                   lw=1.6, label="gradient > 1% of peak"))
            ax.add_patch(Rectangle((lo - 0.5, lo - 0.5), hi - lo + 1, hi - lo + 1, fill=False, ec="cyan", ls="--",
                                   lw=1.6, label="theoretical field"))
            rf = next((t["rf"] for t in theory if t["layer"] == name), w)
            ax.set_title(f"{kind}: {name}\ntheory {rf} px, measured {empirical[kind][name]['extent']} px", fontsize=9)
            ax.set_xlabel("input column (pixels)")
            ax.grid(False)
        axes[r, 0].set_ylabel("input row (pixels)")
    axes[0, 0].legend(loc="lower left", fontsize=6.5)
    fig.colorbar(im, ax=axes, fraction=0.02, label="|∂ unit / ∂ pixel| relative to peak (log)")
    fig.suptitle(f"Where the central unit of each layer looks: input gradients averaged over {len(probe)} test images",
                 fontsize=11)
    ctx.save_figure(fig, "receptive_fields")

    layers = [t["layer"] for t in theory]
    # Profiles across the field show its shape: flat (every pixel counts the same) or peaked at the centre.
    fig, axes = plt.subplots(1, len(names), figsize=(3.1 * len(names), 3.6), sharey=True, layout="constrained")
    columns = np.arange(w)
    for ax, name, (_, (lo, hi)), i in zip(axes, names, boxes, range(len(names))):
        ax.axvspan(lo - 0.5, hi + 0.5, color="0.88", label="theoretical field")
        for kind, color, style in (("trained", "#d62728", "-"), ("untrained", "#1f77b4", "--")):
            profile = heats[kind][i].sum(0)
            ax.plot(columns, profile / profile.max(), style, color=color, marker=".", ms=4, label=kind)
        ax.set_title(f"{name}: {empirical['trained'][name]['inner_share']:.0%} of trained |grad|\n"
                     f"in the central {empirical['trained'][name]['inner_area_share']:.0%} of the field", fontsize=8.5)
        ax.set_xlabel("input column (pixels)")
        ax.set_xlim(-0.5, w - 0.5)
    axes[0].set_ylabel("|gradient| summed over rows (relative to peak)")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Shape of each layer's receptive field: input-gradient profile through the central unit", fontsize=11)
    ctx.save_figure(fig, "rf_profiles")

    stacked = {n: receptive_fields([("conv", 3, 1, 1, 1)] * n)[-1]["rf"] for n in (1, 2, 3)}
    ctx.record(receptive_field={t["layer"]: t["rf"] for t in theory}, jump={t["layer"]: t["jump"] for t in theory},
               theoretical_table=theory, empirical_receptive_field=empirical,
               gradient_outside_theoretical_field=outside, weights_source=weights["source"],
               weights_detail=weights["detail"], probe_images=len(probe), stacked_3x3_rf=stacked)
    rows = [(t["layer"], t["kernel"], t["stride"], t["padding"], t["jump"], t["rf"],
             empirical["trained"][t["layer"]]["extent"], empirical["trained"][t["layer"]]["mass_side"],
             empirical["untrained"][t["layer"]]["extent"], empirical["untrained"][t["layer"]]["mass_side"])
            for t in theory]
    rows.append(("output logit (FC)", "–", "–", "–", "–", f"{w} (whole image)",
                 empirical["trained"]["output logit"]["extent"], empirical["trained"]["output logit"]["mass_side"],
                 empirical["untrained"]["output logit"]["extent"], empirical["untrained"]["output logit"]["mass_side"]))
    worst_outside = max(outside.values())
    last = layers[-1]
    eff_t, eff_u = empirical["trained"][last]["mass_side"], empirical["untrained"][last]["mass_side"]
    growth = ("larger than" if eff_t > eff_u else "the same as" if eff_t == eff_u else "smaller than")
    inner_t = empirical["trained"][last]["inner_share"]
    area_t = empirical["trained"][last]["inner_area_share"]
    if inner_t > 1.2 * area_t:
        concentration = (f"The influence is concentrated towards the centre: the central square covering {100 * area_t:.0f}% "
                         f"of the field's area holds {100 * inner_t:.0f}% of the gradient (the *effective* receptive "
                         f"field is smaller than the theoretical one, since central pixels reach the unit through more "
                         f"paths than pixels at the border).")
    else:
        concentration = (f"The influence is spread almost evenly: the central square covering {100 * area_t:.0f}% of the "
                         f"field's area holds {100 * inner_t:.0f}% of the gradient, so in a network this shallow the "
                         f"effective field is about the whole theoretical one; the textbook's 'effective field much "
                         f"smaller than the theoretical one' needs deeper stacks.")
    ctx.write_analysis(f"""
## Network
{weights['detail'][0].upper() + weights['detail'][1:]}; compared with the same architecture at initialisation.

## Theory
With jump j (input pixels between neighbouring units, the product of the strides so far), each layer with
kernel k grows the field by (k − 1)·j: r_out = r_in + (k − 1)·j_in, j_out = j_in·s.

| layer | kernel | stride | padding | jump | theoretical RF | trained: > 1% of peak | trained: 90% of gradient | untrained: > 1% | untrained: 90% |
|---|---|---|---|---|---|---|---|---|---|
{chr(10).join('| ' + ' | '.join(str(v) for v in r) + ' |' for r in rows)}

(sides in input pixels; a {h}×{w} input). Stacked 3×3 convolutions with stride 1 see {stacked[1]}, {stacked[2]} and
{stacked[3]} pixels after 1, 2 and 3 layers: two 3×3 layers cover a 5×5 field with 18 instead of 25 weights.

## Empirical (`receptive_fields.png`, `rf_profiles.png`)
The gradient of the central unit of each layer with respect to the input, averaged over {len(probe)} test images,
marks the pixels that unit depends on. The largest gradient found outside the theoretical field, relative to the
peak, was {worst_outside:.1e} (exactly zero means no pixel outside the field has any influence, as theory requires).
At {last} the non-negligible region (> 1% of the peak) spans {empirical['trained'][last]['extent']} px for the trained
network against a theoretical {theory[-1]['rf']} px, and 90% of the gradient mass lies within a {eff_t}-px square.
{concentration} Training left the 90%-mass field {growth} the untrained network's ({eff_t} vs {eff_u} px). The output logit, after the fully connected layer, depends on the whole image:
its > 1% region spans {empirical['trained']['output logit']['extent']} px of {w}.
""")


@task("4.6", "Max vs average pooling", datasets=("mnist",), headline="accuracy_under_shift.max.3", image_dataset=True,
      threads=1)
def max_vs_average_pooling(ctx):
    import numpy as np
    import torch

    from utils.plotting import plot_history, plt
    from utils.report import compare, mean_std, pct, spread, table
    from utils.train import predict

    ds = ctx.load_images("mnist", train_size=ctx.pick(tiny=600, quick=2500, hybrid=15000, full=None))
    epochs = ctx.pick(tiny=1, quick=3, hybrid=5, full=10)
    batch_size = ctx.pick(tiny=64, quick=64, hybrid=128, full=128)  # small data: more, smaller steps
    shifts = (0, 1, 2, 3)
    n_eval = min(len(ds.y_test), ctx.pick(tiny=300, quick=1000, hybrid=5000, full=10000))
    x_eval, y_eval = ds.x_test[:n_eval], ds.y_test[:n_eval]
    # Each test image moves along one of the four axis directions (the same draw for every model), and the
    # uncovered border is filled with the value of a blank pixel.
    axis_steps, arrows = torch.tensor([[0, 1], [0, -1], [1, 0], [-1, 0]]), "→←↓↑"
    direction = torch.randint(0, 4, (n_eval,), generator=torch.Generator().manual_seed(ctx.seed))
    directions = axis_steps[direction]  # (dy, dx) per image
    blank = float(ds.x_train.min())
    shifted = {d: shift_images(x_eval, d * directions[:, 0], d * directions[:, 1], blank) for d in shifts}

    pools = ("max", "avg")
    runs = {p: [] for p in pools}
    for s in ctx.seeds():
        for pool in pools:
            model, result, _ = train_small_cnn(ctx, ds, epochs=epochs, seed=s, pool=pool, batch_size=batch_size)
            preds = {d: predict(model, shifted[d], ctx.cfg.eval_batch_size, ctx.device).argmax(1) for d in shifts}
            runs[pool].append({
                "result": result,
                "accuracy": {d: float((preds[d] == y_eval).float().mean()) for d in shifts},
                "consistency": {d: float((preds[d] == preds[0]).float().mean()) for d in shifts}})

    def per_seed(pool, key, d):
        return [r[key][d] for r in runs[pool]]

    acc = {p: {d: mean_std(per_seed(p, "accuracy", d)) for d in shifts} for p in pools}
    cons = {p: {d: mean_std(per_seed(p, "consistency", d)) for d in shifts} for p in pools}
    drop = {p: [r["accuracy"][0] - r["accuracy"][shifts[-1]] for r in runs[p]] for p in pools}
    labels = {"max": "max pooling", "avg": "average pooling"}
    colors = {"max": "#d62728", "avg": "#1f77b4"}

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for p in pools:
        plot_history(axes, runs[p][0]["result"].history, label=labels[p], color=colors[p])
    axes[0].set_title("Loss per epoch (first seed)")
    axes[1].set_title("Accuracy per epoch (first seed)")
    fig.suptitle(f"SmallCNN with max vs average pooling on {len(ds.y_train)} {ds.label} images")
    ctx.save_figure(fig, "curves")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for p in pools:
        for ax, table_ in ((axes[0], acc), (axes[1], cons)):
            m = [table_[p][d][0] for d in shifts]
            e = [table_[p][d][1] for d in shifts]
            ax.errorbar(shifts, m, yerr=e if len(ctx.seeds()) > 1 else None, marker="o", capsize=3,
                        color=colors[p], label=labels[p])
    axes[0].set_ylabel("test accuracy (fraction)")
    axes[0].set_title("Accuracy on shifted test images")
    axes[1].set_ylabel("predictions unchanged by the shift (fraction)")
    axes[1].set_title("Consistency with the unshifted prediction")
    for ax in axes:
        ax.set_xlabel("shift (pixels, along a random axis direction)")
        ax.set_xticks(shifts)
        ax.legend()
    seeds_note = f"mean ± std over {len(ctx.seeds())} seeds" if len(ctx.seeds()) > 1 else "1 seed"
    fig.suptitle(f"Robustness to small translations, {n_eval} test images ({seeds_note})")
    ctx.save_figure(fig, "shift_robustness")

    fig, axes = plt.subplots(4, len(shifts), figsize=(1.6 * len(shifts) + 0.6, 7), layout="constrained")
    for d, col in zip(shifts, axes.T):
        shown = ds.to_display(shifted[d][:4])
        for i, ax in enumerate(col):
            ax.imshow(shown[i], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == 0:
                ax.set_title(f"shift {d} px", fontsize=9)
            if d == 0:
                ax.set_ylabel(f"image {i + 1}, moved {arrows[direction[i]]}", fontsize=8.5)
    fig.suptitle("Test images as the networks saw them", fontsize=10.5)
    ctx.save_figure(fig, "shift_examples")

    ctx.record(test_accuracy={p: float(np.mean(per_seed(p, "accuracy", 0))) for p in pools},
               accuracy_under_shift={p: {str(d): acc[p][d][0] for d in shifts} for p in pools},
               accuracy_under_shift_std={p: {str(d): acc[p][d][1] for d in shifts} for p in pools},
               accuracy_under_shift_per_seed={p: {str(d): per_seed(p, "accuracy", d) for d in shifts} for p in pools},
               prediction_consistency={p: {str(d): cons[p][d][0] for d in shifts} for p in pools},
               accuracy_drop_at_max_shift={p: float(np.mean(drop[p])) for p in pools},
               train_seconds={p: [r["result"].seconds for r in runs[p]] for p in pools},
               run_status={p: [r["result"].status for r in runs[p]] for p in pools},
               epochs=epochs, train_images=len(ds.y_train), eval_images=n_eval, seeds=ctx.seeds())
    rows = [(labels[p], *[spread(per_seed(p, "accuracy", d)) for d in shifts], pct(cons[p][shifts[-1]][0]))
            for p in pools]
    m_max, m_avg = float(np.mean(drop["max"])), float(np.mean(drop["avg"]))
    expectation = "the textbook expectation that max pooling tolerates small shifts better"
    if beyond_spread(drop["max"], drop["avg"]) is False:
        textbook = (f"The two drops are within the seed spread, so these runs do not support {expectation}: "
                    f"with stride-2 windows, a shift of 1–3 pixels moves features across window borders for both.")
    elif m_max < m_avg:
        textbook = f"This agrees with {expectation}" + (" (one seed, so it may be noise)." if len(ctx.seeds()) == 1 else ".")
    else:
        textbook = (f"This contradicts {expectation}: here average pooling lost less"
                    + (" (one seed, so it may be noise)" if len(ctx.seeds()) == 1 else "")
                    + ". With stride-2 windows neither pooling is truly shift-invariant.")
    k = shifts[-1]
    ctx.write_analysis(f"""
Two SmallCNNs identical except for the pooling layers (both 2×2, stride 2), trained for {epochs} epoch(s) on
{len(ds.y_train)} {ds.label} images with the same seed(s), initial weights and batches; {len(ctx.seeds())} seed(s).
Robustness: each of {n_eval} test images shifted by 0–{k} pixels along a random axis direction (the border filled
with blank pixels), accuracy measured at every shift.

{table(["pooling", *[f"accuracy, shift {d} px" for d in shifts], f"predictions unchanged at {k} px"], rows)}

- Unshifted accuracy: {compare(per_seed('max', 'accuracy', 0), per_seed('avg', 'accuracy', 0), 'max pooling', 'average pooling')}
- Accuracy lost at a {k}-pixel shift (unshifted minus shifted): max pooling {100 * m_max:.1f} points, average
  pooling {100 * m_avg:.1f} points. Smaller is better: {compare(drop['max'], drop['avg'], 'max pooling', 'average pooling', higher_is_better=False)}
- {textbook}

Curves: `curves.png` (first seed); robustness: `shift_robustness.png`; what a shift looks like: `shift_examples.png`.
""")


@task("4.7", "Batch-norm CNN vs plain CNN", datasets=("mnist",), headline="mean_val_accuracy_over_lrs.batch_norm",
      image_dataset=True, threads=1)
def batch_norm_vs_plain(ctx):
    import math

    import numpy as np
    import torch

    from models import SmallCNN
    from utils.data import train_val_split
    from utils.plotting import plt
    from utils.report import compare, mean_std, pct, spread

    ds = ctx.load_images("mnist", train_size=ctx.pick(tiny=400, quick=1100, hybrid=10000, full=30000))
    train, val = train_val_split(ds.x_train, ds.y_train, ctx.pick(tiny=0.25, quick=0.25, hybrid=0.1, full=0.1),
                                 seed=ctx.seed)
    epochs = ctx.pick(tiny=1, quick=2, hybrid=4, full=8)
    batch_size = ctx.pick(tiny=32, quick=32, hybrid=64, full=64)  # small subsets: more steps per epoch
    lrs = (0.003, 0.03, 0.3)  # SGD with momentum 0.9: slow, usual, and too high for a plain CNN
    kinds = {"plain": False, "batch_norm": True}
    labels = {"plain": "plain CNN", "batch_norm": "batch-norm CNN"}
    colors = {"plain": "#1f77b4", "batch_norm": "#d62728"}
    c, h, _ = ds.shape
    loss_threshold = 1.0

    runs = {k: {lr: [] for lr in lrs} for k in kinds}
    for s in ctx.seeds():
        for lr in lrs:
            for kind, bn in kinds.items():
                torch.manual_seed(s)  # same conv/linear initial weights with and without batch norm
                model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h, batch_norm=bn)
                opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
                loss_fn, step_losses = recording_cross_entropy()
                res = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, loss_fn=loss_fn, batch_size=batch_size,
                              seed=s, description=f"{labels[kind]}, lr {lr} (seed {s})")
                finite = [v if math.isfinite(v) else float("nan") for v in step_losses]
                smooth = np.convolve(np.nan_to_num(finite, nan=np.inf), np.ones(5) / 5, mode="valid")
                below = np.flatnonzero(smooth < loss_threshold)
                val_acc = res.history["val_acc"][-1] if res.history["val_acc"] and not res.diverged else None
                stalled = val_acc is not None and val_acc < 2.0 / ds.num_classes  # no better than ~chance
                runs[kind][lr].append({"result": res, "step_losses": finite, "val_acc": val_acc,
                                       "outcome": "diverged" if res.diverged else "stalled" if stalled else "trained",
                                       "steps_to_threshold": int(below[0]) + 5 if len(below) else None})

    def accs(kind, lr):  # a diverged run counts as chance accuracy, so it still weighs in the mean
        return [r["val_acc"] if r["val_acc"] is not None else 1.0 / ds.num_classes for r in runs[kind][lr]]

    loss_cap = 20.0  # y-axis top: exploding losses leave the plot instead of flattening the others
    fig, axes = plt.subplots(1, len(lrs), figsize=(4.2 * len(lrs), 4.1), sharey=True, layout="constrained")
    for ax, lr in zip(axes, lrs):
        for kind in kinds:
            r = runs[kind][lr][0]
            steps = np.arange(1, len(r["step_losses"]) + 1)
            tag = ("diverged (loss NaN)" if r["outcome"] == "diverged" else
                   f"{'stalled, ' if r['outcome'] == 'stalled' else ''}val acc {pct(r['val_acc'])}")
            ax.plot(steps, r["step_losses"], color=colors[kind], lw=1.2, label=f"{labels[kind]}: {tag}")
            if r["outcome"] == "diverged":  # the loss explodes off the scale: mark where it ended
                ax.axvline(len(steps), color=colors[kind], ls=":", lw=1)
                ax.annotate(f"→ NaN at step {len(steps)}", (len(steps), loss_cap), xytext=(-4, -12),
                            textcoords="offset points", ha="right", fontsize=7, color=colors[kind])
        ax.axhline(math.log(ds.num_classes), color="0.5", ls="--", lw=0.8, label=f"chance level (ln {ds.num_classes})")
        ax.set_yscale("log")
        ax.set_ylim(0.2, loss_cap)
        ax.set_title(f"SGD, learning rate {lr}")
        ax.set_xlabel(f"training step (batch of {batch_size})")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("training loss (cross-entropy, log scale)")
    fig.suptitle(f"Convergence with and without batch norm, {len(train[1])} {ds.label} images, {epochs} epoch(s) "
                 f"(first seed)")
    ctx.save_figure(fig, "loss_per_step")

    fig, ax = plt.subplots(figsize=(7, 4.3))
    for kind in kinds:
        stats = [mean_std(accs(kind, lr)) for lr in lrs]
        ax.errorbar(lrs, [m for m, _ in stats], yerr=[sd for _, sd in stats] if len(ctx.seeds()) > 1 else None,
                    marker="o", capsize=3, color=colors[kind], label=labels[kind])
        for lr in lrs:
            n_div = sum(r["outcome"] == "diverged" for r in runs[kind][lr])
            if n_div:
                ax.annotate(f"diverged ×{n_div}", (lr, 1.0 / ds.num_classes), textcoords="offset points",
                            xytext=(0, 8 if kind == "plain" else -14), ha="center", fontsize=7, color=colors[kind])
    ax.axhline(1.0 / ds.num_classes, color="0.5", ls="--", lw=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (SGD, momentum 0.9; log scale)")
    ax.set_ylabel("validation accuracy after training (fraction)")
    ax.set_ylim(0, 1)
    ax.set_title("Sensitivity to the learning rate" + (f" (mean ± std, {len(ctx.seeds())} seeds)" if len(ctx.seeds()) > 1 else ""))
    ax.legend()
    ctx.save_figure(fig, "lr_sensitivity")

    def key(lr):  # metrics keys for learning rates
        return f"{lr:g}"
    ctx.record(learning_rates=list(lrs), epochs=epochs, train_images=len(train[1]), val_images=len(val[1]),
               batch_size=batch_size, seeds=ctx.seeds(), loss_threshold=loss_threshold,
               final_val_accuracy={k: {key(lr): float(np.mean(accs(k, lr))) for lr in lrs} for k in kinds},
               final_val_accuracy_per_seed={k: {key(lr): accs(k, lr) for lr in lrs} for k in kinds},
               outcome={k: {key(lr): [r["outcome"] for r in runs[k][lr]] for lr in lrs} for k in kinds},
               steps_to_loss_threshold={k: {key(lr): [r["steps_to_threshold"] for r in runs[k][lr]] for lr in lrs}
                                        for k in kinds},
               train_seconds={k: {key(lr): [r["result"].seconds for r in runs[k][lr]] for lr in lrs} for k in kinds})

    def steps_text(kind, lr):
        found = [r["steps_to_threshold"] for r in runs[kind][lr]]
        missed = sum(v is None for v in found)
        if missed:
            return "not reached" if missed == len(found) else f"not reached in {missed} of {len(found)} runs"
        return f"{np.mean(found):.0f}"

    def acc_text(kind, lr):
        failed = [r["outcome"] for r in runs[kind][lr] if r["outcome"] != "trained"]
        return spread(accs(kind, lr)) + (f", {len(failed)} {'/'.join(sorted(set(failed)))}" if failed else "")

    rows = [(lr, *[acc_text(k, lr) for k in kinds], *[steps_text(k, lr) for k in kinds]) for lr in lrs]
    lines = [f"- lr {lr}: {compare(accs('batch_norm', lr), accs('plain', lr), 'batch norm', 'plain')}" for lr in lrs]
    # Convergence: steps (mean over seeds that got there) until the training loss first fell below the threshold.
    conv_parts, bn_faster = [], []
    for lr in lrs:
        reached = {k: [r["steps_to_threshold"] for r in runs[k][lr] if r["steps_to_threshold"] is not None]
                   for k in kinds}
        p_, b_ = reached["plain"], reached["batch_norm"]
        if p_ and b_:
            conv_parts.append(f"at lr {lr} batch norm needed {np.mean(b_):.0f} steps, the plain CNN {np.mean(p_):.0f}")
            bn_faster.append(np.mean(b_) < np.mean(p_))
        elif b_ or p_:
            conv_parts.append(f"at lr {lr} only the {'batch-norm' if b_ else 'plain'} CNN got there "
                              f"({np.mean(b_ or p_):.0f} steps)")
            bn_faster.append(bool(b_))
    if not conv_parts:
        convergence = f"Neither network's training loss fell below {loss_threshold} in this budget."
    else:
        verdict = ("faster every time, as the textbook says batch norm should" if all(bn_faster) else
                   "not faster every time, which departs from the textbook's 'batch norm speeds up training'")
        convergence = (f"Convergence (training loss below {loss_threshold}): {'; '.join(conv_parts)}. Batch norm was "
                       f"{verdict}.")
    # Sensitivity as the textbook means it: over how wide a range of learning rates does a network train well?
    # "Well" = within 10% (relative) of the best mean accuracy any run reached.
    best_any = max(np.mean(accs(k, lr)) for k in kinds for lr in lrs)
    usable = {k: [lr for lr in lrs if np.mean(accs(k, lr)) >= 0.9 * best_any] for k in kinds}
    mean_over_lrs = {k: float(np.mean([np.mean(accs(k, lr)) for lr in lrs])) for k in kinds}
    judged = (" (judged on one seed)" if len(ctx.seeds()) == 1 else
              f" (judged on the means of {len(ctx.seeds())} seeds; the comparisons above say which differences exceed "
              f"the seed spread)")
    if len(usable["batch_norm"]) > len(usable["plain"]):
        expectation = "This matches the textbook: batch norm trains well over a wider range of learning rates."
    elif len(usable["batch_norm"]) == len(usable["plain"]):
        expectation = ("By this measure the two are equally sensitive, which does not show the textbook's wider "
                       "usable learning-rate range for batch norm.")
    else:
        expectation = ("This contradicts the textbook claim that batch norm widens the range of usable learning "
                       "rates: here the plain CNN trained well at more of them.")
    ctx.record(usable_learning_rates=usable, mean_val_accuracy_over_lrs=mean_over_lrs)
    fails_high = all(r["outcome"] != "trained" for k in kinds for r in runs[k][lrs[-1]])
    high_note = (f" At lr {lrs[-1]} neither network trained (diverged or stalled), so batch norm did not rescue "
                 f"the highest learning rate in this budget." if fails_high else "")
    ctx.write_analysis(f"""
SmallCNN with and without batch norm after each convolution, trained with SGD (momentum 0.9, constant learning
rate, batch {batch_size}) for {epochs} epoch(s) on {len(train[1])} {ds.label} images, validated on {len(val[1])};
{len(ctx.seeds())} seed(s), the same initial conv/linear weights for both at each seed.

| learning rate | val accuracy, plain | val accuracy, batch norm | steps to loss < {loss_threshold}, plain | steps to loss < {loss_threshold}, batch norm |
|---|---|---|---|---|
{chr(10).join('| ' + ' | '.join(str(v) for v in r) + ' |' for r in rows)}

(a diverged run counts as chance accuracy, {pct(1.0 / ds.num_classes)}; "steps to loss < {loss_threshold}" uses a
5-step moving average of the training loss.)

{chr(10).join(lines)}

{convergence}

Sensitivity: learning rates at which a network reached at least 90% of the best accuracy seen in this task
({pct(best_any)}): plain CNN {', '.join(map(str, usable['plain'])) or 'none'}, batch norm
{', '.join(map(str, usable['batch_norm'])) or 'none'}; mean accuracy
over the {len(lrs)} learning rates {pct(mean_over_lrs['plain'])} plain vs {pct(mean_over_lrs['batch_norm'])} batch norm.
{expectation[:-1]}{judged}.{high_note}

Figures: `loss_per_step.png` (training loss per step at each learning rate, first seed), `lr_sensitivity.png`.
""")


@task("4.8", "Data augmentation", datasets=("fashion-mnist",), headline="generalisation_gap.augmented",
      image_dataset=True, threads=1)
def data_augmentation(ctx):
    import numpy as np
    import torch

    from models import SmallCNN
    from utils.augment import compose, random_affine, random_crop, random_erasing, random_hflip
    from utils.plotting import image_grid, plt
    from utils.report import compare, pct, spread

    n_small = ctx.pick(tiny=100, quick=300, hybrid=1000, full=2000)
    n_val = ctx.pick(tiny=100, quick=400, hybrid=5000, full=10000)
    ds = ctx.load_images("fashion-mnist", train_size=n_small + n_val,
                         test_size=ctx.pick(tiny=300, quick=1000, hybrid=None, full=None))
    epochs = ctx.pick(tiny=2, quick=12, hybrid=30, full=40)
    batch_size = 32
    train, val = (ds.x_train[:n_small], ds.y_train[:n_small]), (ds.x_train[n_small:], ds.y_train[n_small:])
    train_probe = (train[0][:500], train[1][:500])  # clean (un-augmented) training images to measure the fit
    c, h, _ = ds.shape
    # Mirroring turns one digit into another shape; clothing and CIFAR objects stay what they are.
    flip_ok = ds.name not in ("mnist", "digits")

    gallery = {"original": lambda x: x,
               "random crop (pad 3)": lambda x: random_crop(x, 3),
               "horizontal flip": lambda x: x.flip(-1),
               "rotation ±20°": lambda x: random_affine(x, degrees=20),
               "affine: shift, scale, shear": lambda x: random_affine(x, translate=0.1, scale=(0.85, 1.15), shear=15),
               "random erasing": lambda x: random_erasing(x, p=1.0),
               }
    policy_parts = [lambda x: random_crop(x, 2)] + ([random_hflip] if flip_ok else []) + \
        [lambda x: random_affine(x, degrees=10), lambda x: random_erasing(x, p=0.3)]
    policy = compose(*policy_parts)
    policy_text = ("random crop (pad 2), " + ("horizontal flip (p 0.5), " if flip_ok else "") +
                   "rotation ±10°, random erasing (p 0.3)")
    gallery[f"training policy: {policy_text}"] = policy

    torch.manual_seed(ctx.seed)
    sample = ds.x_test[:8]
    fig, axes = plt.subplots(len(gallery), 1, figsize=(8.5, 1.32 * len(gallery)))
    for ax, (name, fn) in zip(axes, gallery.items()):
        image_grid(ax, ds.to_display(fn(sample)), ncols=8)
        ax.set_title(name, fontsize=9, loc="left")
    fig.suptitle(f"Augmentations of the same 8 {ds.label} test images (each draws its own random parameters)",
                 fontsize=10.5)
    fig.tight_layout()
    ctx.save_figure(fig, "augmentation_gallery")

    runs = {"plain": [], "augmented": []}
    for s in ctx.seeds():
        for kind in runs:
            torch.manual_seed(s)  # same initial weights with and without augmentation
            # No dropout: augmentation is the only regulariser, so its effect is not mixed with another one.
            model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h, dropout=0.0)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            clean_train_acc = []

            def measure_fit(epoch, net, result, log=clean_train_acc):
                log.append(ctx.evaluate(net, *train_probe)[1])

            res = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, batch_size=batch_size, seed=s,
                          augment=policy if kind == "augmented" else None, on_epoch_end=measure_fit,
                          description=f"{kind} (seed {s})")
            test_acc = ctx.evaluate(model, ds.x_test, ds.y_test)[1]
            gaps = [t - v for t, v in zip(clean_train_acc, res.history["val_acc"])]
            runs[kind].append({"result": res, "clean_train_acc": clean_train_acc, "gap": gaps, "test_acc": test_acc,
                               "best_val_epoch": int(np.argmin(res.history["val_loss"])) + 1 if res.history["val_loss"] else None})

    colors = {"plain": "#1f77b4", "augmented": "#d62728"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for kind, rs in runs.items():
        r = rs[0]
        ep = np.arange(1, len(r["gap"]) + 1)
        hist = r["result"].history
        axes[0].plot(ep, hist["train_loss"][:len(ep)], color=colors[kind], label=f"{kind}: train (batches as trained on)")
        axes[0].plot(ep, hist["val_loss"], color=colors[kind], ls="--", label=f"{kind}: validation")
        axes[1].plot(ep, r["clean_train_acc"], color=colors[kind], label=f"{kind}: train (clean images)")
        axes[1].plot(ep, hist["val_acc"], color=colors[kind], ls="--", label=f"{kind}: validation")
        axes[2].plot(ep, r["gap"], color=colors[kind], marker="o", ms=3, label=kind)
    axes[0].set_ylabel("loss (cross-entropy)")
    axes[0].set_title("Loss")
    axes[1].set_ylabel("accuracy (fraction)")
    axes[1].set_title("Accuracy")
    axes[2].set_ylabel("train − validation accuracy (fraction)")
    axes[2].set_title("Generalisation gap")
    axes[2].axhline(0, color="0.5", lw=0.8)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(f"Training on only {n_small} {ds.label} images, with and without augmentation (first seed)")
    ctx.save_figure(fig, "overfitting")

    final = {k: {"gap": [r["gap"][-1] for r in rs], "val": [r["result"].history["val_acc"][-1] for r in rs],
                 "train": [r["clean_train_acc"][-1] for r in rs], "test": [r["test_acc"] for r in rs],
                 "val_loss": [r["result"].history["val_loss"][-1] for r in rs],
                 "best_val_epoch": [r["best_val_epoch"] for r in rs]} for k, rs in runs.items()}
    ctx.record(train_images=n_small, val_images=n_val, epochs=epochs, policy=policy_text, horizontal_flip=flip_ok,
               generalisation_gap={k: float(np.mean(v["gap"])) for k, v in final.items()},
               final_val_accuracy={k: float(np.mean(v["val"])) for k, v in final.items()},
               final_train_accuracy_clean={k: float(np.mean(v["train"])) for k, v in final.items()},
               test_accuracy={k: float(np.mean(v["test"])) for k, v in final.items()},
               per_seed=final, gap_per_epoch={k: [r["gap"] for r in rs] for k, rs in runs.items()},
               seeds=ctx.seeds())
    fp, fa = final["plain"], final["augmented"]
    smaller_gap = np.mean(fa["gap"]) < np.mean(fp["gap"])
    real = beyond_spread(fa["gap"], fp["gap"])
    if real is False:
        textbook = ("The gaps differ by less than the seed spread, so these runs do not confirm the textbook "
                    "expectation that augmentation reduces over-fitting.")
    elif smaller_gap:
        textbook = ("As expected, augmentation reduced over-fitting (a smaller gap)"
                    + ("; one seed, so this may be noise." if real is None else ", by more than the seed spread."))
    else:
        textbook = ("This contradicts the textbook expectation: augmentation did not reduce the gap"
                    + (" (one seed)." if real is None else ", by more than the seed spread."))
    if np.mean(fa["val"]) < np.mean(fp["val"]) and np.mean(fa["train"]) < np.mean(fp["train"]):
        textbook += (f" Validation accuracy was lower with augmentation ({pct(np.mean(fa['val']))} vs "
                     f"{pct(np.mean(fp['val']))}) and so was the clean training accuracy ({pct(np.mean(fa['train']))} vs "
                     f"{pct(np.mean(fp['train']))}): in {epochs} epochs the augmented network fit even its own images "
                     f"less well" + (", so part of the smaller gap is a lower fit rather than better generalisation."
                                     if smaller_gap else "."))
    elif np.mean(fa["val"]) >= np.mean(fp["val"]):
        textbook += " Augmentation also gave equal or better validation accuracy, so the smaller gap is real generalisation."
    last_best = {k: int(np.mean([e for e in v["best_val_epoch"] if e])) for k, v in final.items()}
    r0 = {k: rs[0]["result"].history["val_loss"] for k, rs in runs.items()}  # first seed's validation losses

    def onset_text(kind):
        best = int(np.argmin(r0[kind]))
        if best == len(r0[kind]) - 1:
            return f"the {kind} network's was still at its lowest in the last epoch ({r0[kind][-1]:.3f})"
        return (f"the {kind} network's was lowest at epoch {best + 1} ({r0[kind][best]:.3f}) and rose to "
                f"{r0[kind][-1]:.3f} by epoch {len(r0[kind])}")

    onset = f"Validation loss (first seed): {onset_text('plain')}; {onset_text('augmented')}."
    if any(int(np.argmin(v)) < len(v) - 1 for v in r0.values()):
        onset += " Validation loss rising while training loss still falls is the mark of over-fitting."
    ctx.write_analysis(f"""
SmallCNN without dropout (Adam, lr 1e-3, batch {batch_size}) trained for {epochs} epochs on only {n_small} {ds.label} images, with and without
augmentation ({policy_text}); validation on {n_val} other training images, {len(ctx.seeds())} seed(s), the same
initial weights for both. Training accuracy is measured on {len(train_probe[1])} clean (un-augmented) training images
after each epoch, so the gap compares like with like.

| | plain | augmented |
|---|---|---|
| train accuracy (clean), last epoch | {spread(fp['train'])} | {spread(fa['train'])} |
| validation accuracy, last epoch | {spread(fp['val'])} | {spread(fa['val'])} |
| generalisation gap (train − val) | {spread(fp['gap'])} | {spread(fa['gap'])} |
| test accuracy ({len(ds.y_test)} images) | {spread(fp['test'])} | {spread(fa['test'])} |
| validation loss, last epoch | {np.mean(fp['val_loss']):.3f} | {np.mean(fa['val_loss']):.3f} |
| epoch of lowest validation loss | {last_best['plain']} of {epochs} | {last_best['augmented']} of {epochs} |

- Gap: {compare(fa['gap'], fp['gap'], 'augmented', 'plain', higher_is_better=False)}
- Validation accuracy: {compare(fa['val'], fp['val'], 'augmented', 'plain')}
- {textbook}
- {onset}
{'' if flip_ok else '- Horizontal flips were left out of the policy: mirrored digits are different shapes.'}

Figures: `augmentation_gallery.png` (each augmentation on the same images), `overfitting.png` (curves and gap per
epoch, first seed).
""")
