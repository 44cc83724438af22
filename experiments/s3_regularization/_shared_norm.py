"""Helpers of 3.7 (normalization): the normalization layers, the CNN they sit in, batch norm's internals, and
the parts of the analysis that read the learning-rate sweep and the late-epoch comparisons."""
from __future__ import annotations

import math

import numpy as np
import torch

from utils.history import History
from utils.report import pct

NAMES = {"none": "no normalization", "batch": "batch norm", "layer": "layer norm", "instance": "instance norm",
         "group": "group norm"}
COLORS = {"none": "#7f7f7f", "batch": "#1f77b4", "layer": "#2ca02c", "instance": "#ff7f0e", "group": "#9467bd"}
NORMS = ("none", "batch", "layer", "instance", "group")


def norm_layer(kind: str, channels: int, groups: int = 4) -> torch.nn.Module:
    """The normalization of 3.7 for a (N, C, H, W) feature map. Batch norm: each channel over the batch and
    positions (running statistics for eval); layer norm: each image over all channels and positions
    (GroupNorm with one group); instance norm: each channel of each image over its positions; group norm:
    groups of channels of each image. The last three behave the same in training and evaluation."""
    nn = torch.nn
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(min(groups, channels), channels)
    raise ValueError(f"unknown normalization {kind!r}; choose from {', '.join(NORMS)}")


def norm_cnn(kind: str, in_channels: int, num_classes: int, channels=(8, 16, 32), seed: int = 0):
    """(conv 3×3 → norm → ReLU → max-pool) per entry of ``channels``, then global average pooling and a linear
    read-out of the last channels. The seed fixes the conv and linear weights, which are drawn in the same
    order for every ``kind``: the variants of a seed start alike."""
    nn = torch.nn
    torch.manual_seed(seed)
    layers, width = [], in_channels
    for c in channels:
        layers += [nn.Conv2d(width, c, 3, padding=1), norm_layer(kind, c), nn.ReLU(), nn.MaxPool2d(2)]
        width = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


def batch_norm_internals(model, x_all, x_batch, batch_sizes, x_eval, y_eval) -> dict:
    """What the batch-norm layers of ``model`` do in training vs evaluation mode.

    Per channel (all BN layers, concatenated), compares the statistics of the layer's input over all of
    ``x_all`` (the population), over the one mini-batch ``x_batch``, and the running estimates the layer
    keeps; then the network's outputs on the same inputs in train mode (batch statistics) and eval mode
    (running statistics), and validation accuracy when predicting in train mode with each batch size
    (clipped to the data: a size larger than ``x_eval`` is skipped). Probes run on copies.
    """
    import copy

    def probe():
        net = copy.deepcopy(model).cpu()
        bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        seen = {i: [] for i in range(len(bns))}
        for i, bn in enumerate(bns):
            bn.register_forward_hook(lambda m, inp, out, i=i: seen[i].append(inp[0].detach()))
        return net, seen

    def stats(tensors):
        t = tensors[-1]
        dims = [d for d in range(t.dim()) if d != 1]
        return t.mean(dims), t.var(dims, unbiased=False)

    def population(net, seen):
        """Per-channel mean and variance of each BN input over all of x_all, in chunks (bounded memory)."""
        sums = {i: 0.0 for i in seen}
        squares = {i: 0.0 for i in seen}
        count = {i: 0 for i in seen}
        for chunk in x_all.split(1000):
            net(chunk)
            for i, found in seen.items():
                t = found.pop()
                dims = [d for d in range(t.dim()) if d != 1]
                sums[i] = sums[i] + t.sum(dims)
                squares[i] = squares[i] + (t.double() ** 2).sum(dims)
                count[i] += t.numel() // t.shape[1]
        return [(sums[i] / count[i], (squares[i] / count[i] - (sums[i] / count[i]).double() ** 2).float())
                for i in seen]

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    running_mean = torch.cat([b.running_mean.detach().cpu() for b in bns])
    running_var = torch.cat([b.running_var.detach().cpu() for b in bns])
    other = torch.cat([x_batch[:1], x_all[-(len(x_batch) - 1):]]) if len(x_batch) > 1 else x_batch
    sizes = [bs for bs in batch_sizes if bs <= len(x_eval)]
    with torch.no_grad():
        net, seen = probe()
        net.eval()
        pop = population(net, seen)
        eval_logits = net(x_batch)
        same_eval = float((net(other)[0] - eval_logits[0]).abs().max())
        eval_acc = float((net(x_eval).argmax(1) == y_eval).float().mean())
        net, seen = probe()      # a fresh copy: train-mode passes also move the copy's running estimates
        net.train()
        train_logits = net(x_batch)
        batch = [stats(seen[i]) for i in seen]
        same_train = float((net(other)[0] - train_logits[0]).abs().max())
        by_size = {}
        for bs in sizes:
            n = len(x_eval) // bs * bs
            preds = torch.cat([net(x_eval[i:i + bs]).argmax(1) for i in range(0, n, bs)])
            by_size[bs] = float((preds == y_eval[:n]).float().mean())
    pop_mean, pop_var = torch.cat([m for m, _ in pop]), torch.cat([v for _, v in pop])
    batch_mean, batch_var = torch.cat([m for m, _ in batch]), torch.cat([v for _, v in batch])

    def rel(a, b):
        return float(((a - b).abs() / b.abs().clamp_min(1e-8)).mean())

    return {
        "population_mean": pop_mean.numpy(), "population_var": pop_var.numpy(),
        "running_mean": running_mean.numpy(), "running_var": running_var.numpy(),
        "batch_mean": batch_mean.numpy(), "batch_var": batch_var.numpy(), "batch_size": len(x_batch),
        "channels": [int(b.num_features) for b in bns],
        "running_vs_population_mean_abs_error": float((running_mean - pop_mean).abs().mean()),
        "batch_vs_population_mean_abs_error": float((batch_mean - pop_mean).abs().mean()),
        "running_vs_population_var_rel_error": rel(running_var, pop_var),
        "batch_vs_population_var_rel_error": rel(batch_var, pop_var),
        "train_vs_eval_logit_mean_abs_diff": float((train_logits - eval_logits).abs().mean()),
        "train_vs_eval_prediction_agreement": float((train_logits.argmax(1) == eval_logits.argmax(1)).float().mean()),
        "same_example_other_batch_logit_change": {"train_mode": same_train, "eval_mode": same_eval},
        "eval_mode_accuracy": eval_acc, "train_mode_accuracy_by_batch_size": by_size,
        "batch_sizes": list(by_size), "train_mode_accuracy": list(by_size.values()),
        "eval_examples": len(x_eval),
    }


def tolerance_text(r) -> tuple[str, str]:
    """(each network's highest learning rate that still trained, what the sweep shows against no normalization)."""
    def at_tol(k):
        lr = r.tolerated(k)
        return f"{NAMES[k]} {lr:g} ({pct(np.mean(r.sweep[k][f'{lr:g}']))})" if lr else f"{NAMES[k]}: none of them"

    tol = "; ".join(at_tol(k) for k in NORMS)
    none_fails = next((lr for lr in r.lrs if r.failed("none", lr)), None)
    trained = [k for k in NORMS if k != "none" and r.tolerated(k)]
    if none_fails == r.lrs[0]:
        n_ep = r.epochs if r.lrs[0] == r.base_lr else r.sweep_epochs
        high = (f"No normalization did not train at any learning rate tried: it was still at chance after {n_ep} "
                f"epochs even at lr {r.lrs[0]:g}, so this sweep shows no upper limit for it, only that it had not "
                f"started; {', '.join(NAMES[k] for k in trained) or 'no normalized network'} trained at lr "
                f"{r.lrs[0]:g}.")
    elif none_fails is None:
        high = (f"No normalization trained at every learning rate tried (up to {r.lrs[-1]:g}), so this sweep does not "
                f"reach the point where normalization is needed.")
    else:
        lab = f"{none_fails:g}"
        ok = [k for k in NORMS if k != "none" and not r.failed(k, none_fails)]
        reached = ", ".join(f"{NAMES[k]} still reached {pct(np.mean(r.sweep[k][lab]))}" for k in ok)
        state = r.state["none"][lab][0]
        high = (f"At lr {lab} no normalization {'was ' if state != 'diverged' else ''}{state}"
                + (f", while {reached}" if ok else ", and so did every normalized network") + ". "
                + (f"{', '.join(NAMES[k] for k in ok).capitalize()} tolerated a higher learning rate than no "
                   f"normalization, as the textbook expects." if ok else ""))
        late = [NAMES[k] for k in NORMS if k != "none" and r.failed(k, none_fails)]
        if late and ok:
            high += f" {', '.join(late).capitalize()} did not: it failed at the same learning rate as no normalization."
    return tol, high


def fell_behind_text(r) -> str:
    """A sentence on normalized networks that led after epoch 1 but ended behind no normalization ("" if none)."""
    behind = [k for k, c in r.test_comparison.items() if c.winner == NAMES["none"]]
    late_text = ""
    if behind:
        late_text = ("This goes against the textbook picture of normalization as a uniform speed-up: "
                     + "; ".join(f"{NAMES[k]} led no normalization after epoch 1 ({pct(np.mean(r.first_epoch[k]))} vs "
                                 f"{pct(np.mean(r.first_epoch['none']))}) but fell behind by epoch {r.epochs} "
                                 f"({pct(r.histories[k].final('val_acc'))} vs "
                                 f"{pct(r.histories['none'].final('val_acc'))} "
                                 f"on validation)" if r.first_comparison[k].winner == NAMES[k] else
                                 f"{NAMES[k]} ended behind no normalization" for k in behind)
                     + "." + (" The two that fell behind are the two that pool their statistics over all (layer) or "
                              "groups of (group) channels of an image; batch and instance norm, which normalise each "
                              "channel on its own, did not." if set(behind) == {"layer", "group"} else ""))
    return late_text


def run_state(h: History, num_classes: int) -> str:
    """"diverged" (NaN/inf loss), "stuck at chance" (training loss no better than guessing, or validation
    accuracy below 1.5× chance) or "trained"."""
    if h.diverged:
        return "diverged"
    if h.final("train_loss") >= math.log(num_classes) or h.final("val_acc") < 1.5 / num_classes:
        return "stuck at chance"
    return "trained"
