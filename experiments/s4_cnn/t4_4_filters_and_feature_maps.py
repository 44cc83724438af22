"""4.4 Filters and feature maps of the trained CNN: what the 3×3 filters of each conv layer look like,
whether training made the first layer more edge-like than its random start (tested against many random
initialisations, not one), and the feature maps two test images produce in every conv layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator
import torch
import torch.nn as nn

from experiments.common.small_cnn import trained_cnn
from experiments.s4_cnn._shared import conv_activations
from models import SmallCNN
from utils.plotting import colorbar_beside, image_grid, plt
from utils.report import ALPHA, describe_accuracy, pct, table

BUDGET = {  # train_size / epochs: only used when 4.3's weights are not there to reuse
    "tiny": {"train_size": 600, "epochs": 1, "probe_images": 200, "random_inits": 200},
    "quick": {"train_size": 5000, "epochs": 2, "probe_images": 500, "random_inits": 1000},
    "hybrid": {"train_size": 20000, "epochs": 4, "probe_images": 1000, "random_inits": 1000},
    "full": {"train_size": None, "epochs": 8, "probe_images": 1000, "random_inits": 1000},
}
TEMPLATES = {"vertical edge": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
             "horizontal edge": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
             "diagonal edge ↘": [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
             "diagonal edge ↗": [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],
             "spot (Laplacian)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
             "brightness (uniform)": [[1, 1, 1], [1, 1, 1], [1, 1, 1]]}
SHORT = {"vertical edge": "vert. edge", "horizontal edge": "horiz. edge", "diagonal edge ↘": "diag. ↘",
         "diagonal edge ↗": "diag. ↗", "spot (Laplacian)": "spot", "brightness (uniform)": "uniform"}
EDGE_DC = 0.2      # |sum of weights| / sum of |weights| below this: a flat region gives almost no response
MATCH_COS = 0.8    # |cosine| with a template at or above this: the filter "is" that template
SHOWN_CONV2, CHANNELS_SHOWN = 16, 3
WEIGHT_LABEL = "weight (red +, blue −)"


@dataclass
class Result:
    dataset: str
    network: str                      # which network, and why
    test_accuracy: float
    test_examples: int
    conv1: np.ndarray                 # (32, 3, 3) trained first-layer filters, summed over input channels
    in_channels: int
    conv1_change: float               # ‖w − w_init‖ / ‖w_init‖ of conv1: how far training moved the filters
    stats: dict[str, dict]            # "trained" / "random init" -> per-filter template, |cos|, dc ratio, counts
    null_edge_like: np.ndarray        # edge-like count of each random initialisation
    null_matched: np.ndarray          # template-match count of each random initialisation
    conv2_filters: list[int]          # the SHOWN_CONV2 conv2 filters with the largest weight norm
    conv2_channels: list[list[int]]   # for each, its CHANNELS_SHOWN input channels of largest weight norm
    conv2_tiles: np.ndarray           # (SHOWN_CONV2, CHANNELS_SHOWN, 3, 3) those weights
    conv2_share: list[float]          # share of each shown filter's squared norm its shown channels carry
    conv2_shape: list[int]
    samples: list[dict]               # index, class, predicted
    sample_images: np.ndarray         # (2, H, W[, 3]) in [0, 1]
    maps: list[np.ndarray]            # per conv layer: (2, C, H, W) feature maps after ReLU
    layer_stats: dict[str, dict]


def filter_stats(filters: torch.Tensor) -> dict:
    """Best template (by |cosine|, sign ignored: a negated edge detector finds the same edge with the
    opposite polarity), |cosine|, DC ratio and the two counts for (F, 3, 3) filters."""
    names = list(TEMPLATES)
    t = torch.tensor([TEMPLATES[n] for n in names], dtype=torch.float32).flatten(1)
    f = filters.flatten(1)
    cos = ((f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)) @ (t / t.norm(dim=1, keepdim=True)).T).abs()
    best = cos.max(1)
    dc = f.sum(1).abs() / f.abs().sum(1).clamp_min(1e-12)
    templates = [names[i] for i in best.indices.tolist()]
    matched = [n for n, v in zip(templates, best.values.tolist()) if v >= MATCH_COS]
    return {"best_template": templates, "best_abs_cos": best.values.tolist(), "dc_ratio": dc.tolist(),
            "edge_like": int((dc < EDGE_DC).sum()), "matched": len(matched),
            "matched_by_template": {n: matched.count(n) for n in names if n in matched}}


def null_counts(shape, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Edge-like and template-match counts of ``n`` random conv1 initialisations (PyTorch's default init is
    uniform and symmetric; both measures ignore scale), summed over input channels like the trained filters."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand((n, *shape), generator=g).mul_(2).sub_(1).sum(2)           # (n, F, 3, 3)
    names = list(TEMPLATES)
    t = torch.tensor([TEMPLATES[k] for k in names], dtype=torch.float32).flatten(1)
    f = w.flatten(2)
    cos = ((f / f.norm(dim=2, keepdim=True)) @ (t / t.norm(dim=1, keepdim=True)).T).abs().amax(2)
    dc = f.sum(2).abs() / f.abs().sum(2)
    return (dc < EDGE_DC).sum(1).numpy(), (cos >= MATCH_COS).sum(1).numpy()


def against_null(value: float, null: np.ndarray) -> dict:
    """Where ``value`` lies in a null distribution: mean, 95% range and two-sided Monte-Carlo p-value."""
    n = len(null)
    p = min(1.0, 2 * min((1 + (null >= value).sum()) / (n + 1), (1 + (null <= value).sum()) / (n + 1)))
    lo, hi = np.percentile(null, [2.5, 97.5])
    side = "tie" if p >= ALPHA else "above" if value > null.mean() else "below"
    return {"value": float(value), "mean": float(null.mean()), "lo": float(lo), "hi": float(hi), "p": float(p),
            "side": side, "n": n}


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("mnist", train_size=b.train_size)
    model, network, init_seed = trained_cnn(ctx, ds, epochs=b.epochs)
    _, test_acc = ctx.evaluate(model, ds.x_test, ds.y_test)
    c, h, _ = ds.shape
    torch.manual_seed(init_seed)  # the trained network's own initial weights
    untrained = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    w1, w1_init = convs[0].weight.detach().cpu(), untrained.features[0].weight.detach()
    moved = float((w1 - w1_init).norm() / w1_init.norm())
    stats = {"trained": filter_stats(w1.sum(1)), "random init": filter_stats(w1_init.sum(1))}
    null_edge, null_match = null_counts(tuple(w1.shape), b.random_inits, ctx.seed)

    w2 = convs[1].weight.detach().cpu()
    top = w2.flatten(1).norm(dim=1).argsort(descending=True)[:SHOWN_CONV2]
    tile_norm = w2[top].pow(2).sum((2, 3))                                     # (shown, in)
    chans = tile_norm.argsort(1, descending=True)[:, :CHANNELS_SHOWN]
    tiles = torch.stack([w2[o, ch] for o, ch in zip(top.tolist(), chans)])
    share = (tile_norm.gather(1, chans).sum(1) / tile_norm.sum(1)).tolist()

    y = ds.y_test.numpy()
    samples = [int(np.flatnonzero(y == cl)[0]) for cl in np.unique(y)[:2]]
    probe = ds.x_test[: b.probe_images].to(ctx.device)
    with torch.no_grad():
        batch_maps = conv_activations(model, probe)
        sample_maps = conv_activations(model, ds.x_test[samples].to(ctx.device))
        pred = model(ds.x_test[samples].to(ctx.device)).argmax(1).tolist()
    layer_stats = {f"conv{i}": {"channels": a.shape[1], "map_size": list(a.shape[2:]),
                                "zero_fraction": float((a == 0).float().mean()),
                                "dead_channels": int((a.amax(dim=(0, 2, 3)) == 0).sum()),
                                "mean_activation": float(a.mean()), "probe_images": len(probe)}
                   for i, a in enumerate(batch_maps, start=1)}
    edge = against_null(stats["trained"]["edge_like"], null_edge)
    match = against_null(stats["trained"]["matched"], null_match)
    source = "reused 4.3" if network.startswith("the network is task 4.3's") else "trained here"
    ctx.record(network=network, weights_source=source, weights_detail=network, model_test_accuracy=test_acc, test_examples=len(y), conv1_relative_change=moved,
               edge_like_filters={"trained": stats["trained"]["edge_like"], "untrained": stats["random init"]["edge_like"],
                                  "random_init_mean": edge["mean"], "random_init_95": [edge["lo"], edge["hi"]],
                                  "p_value": edge["p"]},
               template_matches={"trained": match["value"], "untrained": stats["random init"]["matched"],
                                 "random_init_mean": match["mean"], "p_value": match["p"]},
               verdict=verdict(edge), conv1_filters=stats, feature_maps=layer_stats,
               conv2_shown={"filters": top.tolist(), "input_channels": chans.tolist(), "norm_share": share},
               sample_images=[{"index": i, "class": ds.classes[y[i]], "predicted": ds.classes[p]}
                              for i, p in zip(samples, pred)])
    rnd = lambda t: np.round(t.detach().cpu().double().numpy(), 4)  # noqa: E731  (compact result.json)
    return Result(ds.label, network, test_acc, len(y), rnd(w1.sum(1)), c, moved, stats, null_edge, null_match, top.tolist(),
                  chans.tolist(), rnd(tiles), share, list(w2.shape),
                  [{"index": i, "class": ds.classes[y[i]], "predicted": ds.classes[p]} for i, p in zip(samples, pred)],
                  ds.to_display(ds.x_test[samples]), [rnd(m) for m in sample_maps], layer_stats)


def verdict(edge: dict) -> str:
    return {"tie": "trained conv1 ≈ random init in edge-like filters (tie)",
            "above": "trained conv1 more edge-like than random init",
            "below": "trained conv1 less edge-like than random init"}[edge["side"]]


def draw(ctx, r: Result) -> None:
    f, st = r.conv1, r.stats["trained"]
    ncols = 8
    nrows = int(np.ceil(len(f) / ncols))
    lim = np.abs(f).max()
    # Fixed spacing, not layout="constrained": on a grid of dozens of small axes the layout solver
    # took two thirds of the figure's drawing time (3.5 s of 5 s), and a grid needs no solving.
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 1.9 * nrows + 0.6), squeeze=False,
                             gridspec_kw={"hspace": 0.5, "wspace": 0.1, "left": 0.01, "right": 0.9, "bottom": 0.02,
                                          "top": 1 - 0.75 / (1.9 * nrows + 0.6)})
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(f):
            im = ax.imshow(f[k], cmap="RdBu_r", vmin=-lim, vmax=lim)
            edge = "edge-like" if st["dc_ratio"][k] < EDGE_DC else "not edge-like"
            ax.set_title(f"#{k}: {SHORT[st['best_template'][k]]} {st['best_abs_cos'][k]:.2f}\n{edge}", fontsize=8)
    colorbar_beside(fig, im, (0.92, 0.25, 0.012, 0.5), WEIGHT_LABEL)
    fig.suptitle(f"conv1 of the CNN trained on {r.dataset}: all {len(f)} 3×3 filters"
                 f"{' (summed over RGB)' if r.in_channels > 1 else ''}; title: closest template, its |cosine|, and "
                 f"whether the weights nearly cancel (edge-like)", fontsize=10)
    ctx.save_figure(fig, "conv1_filters")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for ax, null, key, what in ((axes[0], r.null_edge_like, "edge_like", f"edge-like filters (DC ratio < {EDGE_DC})"),
                                (axes[1], r.null_matched, "matched", f"filters within |cos| ≥ {MATCH_COS} of a template")):
        bins = np.arange(min(null.min(), r.stats["trained"][key]) - 0.5, max(null.max(), r.stats["trained"][key]) + 1.5)
        ax.hist(null, bins=bins, color="#1f77b4", alpha=0.7, label=f"{len(null)} random initialisations")
        ax.axvline(r.stats["trained"][key], color="#d62728", lw=2.5, label="trained network")
        ax.set_xlabel(f"{what}, of {len(r.conv1)}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts of filters: no 7.5 ticks
        ax.set_ylabel("random initialisations (count)")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"conv1 after training on {r.dataset} vs the same count at random initialisation")
    ctx.save_figure(fig, "conv1_vs_random_init")

    lim2 = np.abs(r.conv2_tiles).max()
    half = SHOWN_CONV2 // 2
    height = 1.45 * half + 0.8
    fig, axes = plt.subplots(half, 2 * CHANNELS_SHOWN + 1, figsize=(10, height),  # fixed spacing, as conv1's
                             gridspec_kw={"width_ratios": [1] * CHANNELS_SHOWN + [0.35] + [1] * CHANNELS_SHOWN,
                                          "hspace": 0.3, "wspace": 0.08, "right": 0.86, "bottom": 0.02,
                                          "top": 1 - 0.8 / height})
    for idx, (o, chans, tiles, share) in enumerate(zip(r.conv2_filters, r.conv2_channels, r.conv2_tiles, r.conv2_share)):
        row, block = idx % half, idx // half
        for j, (ch, tile) in enumerate(zip(chans, tiles)):
            ax = axes[row, block * (CHANNELS_SHOWN + 1) + j]
            im = ax.imshow(tile, cmap="RdBu_r", vmin=-lim2, vmax=lim2)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(f"← conv1 map {ch}", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"conv2 #{o}\n({share:.0%} of norm²)", fontsize=7.5)
    for ax in axes[:, CHANNELS_SHOWN]:
        ax.axis("off")
    colorbar_beside(fig, im, (0.89, 0.3, 0.02, 0.4), WEIGHT_LABEL)
    fig.suptitle(f"conv2 of the CNN trained on {r.dataset}: the {SHOWN_CONV2} of {r.conv2_shape[0]} filters with the "
                 f"largest weight norm,\neach shown on "
                 f"its {CHANNELS_SHOWN} strongest of {r.conv2_shape[1]} input channels (3×3 tiles)", fontsize=10)
    ctx.save_figure(fig, "conv2_filters")

    for si, s in enumerate(r.samples):
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.8), layout="constrained",
                                 gridspec_kw={"width_ratios": [0.7, 2.0, 1.55]})
        image_grid(axes[0], r.sample_images[si:si + 1], ncols=1, title=f"input: {s['class']}\n(predicted {s['predicted']})")
        for li, (ax, maps) in enumerate(zip(axes[1:], r.maps), start=1):
            m = maps[si]
            peaks = m.max(axis=(1, 2), keepdims=True)
            image_grid(ax, m / np.maximum(peaks, 1e-12), ncols=8,
                       title=f"conv{li} + ReLU: {m.shape[0]} maps of {m.shape[1]}×{m.shape[2]}\n(each scaled to its own "
                             f"peak; all-zero maps, here {int((peaks == 0).sum())}, stay black)")
        fig.suptitle(f"Feature maps of the trained CNN for one {r.dataset} test image (channel order, row by row)",
                     fontsize=11)
        ctx.save_figure(fig, f"feature_maps_{si + 1}")


def _null_sentence(tr: int, nul: dict, what: str, n_filters: int) -> str:
    where = (f"within the range of chance (two-sided p = {nul['p']:.2f})" if nul["side"] == "tie" else
             f"{nul['side']} that range (two-sided p = {nul['p']:.3f})")
    return (f"{what}: **{tr} of {n_filters}** trained, against {nul['mean']:.1f} on average over {nul['n']} random "
            f"initialisations (95% of them between {nul['lo']:.0f} and {nul['hi']:.0f}), so the trained count is {where}.")


def write_up(r: Result) -> str:
    tr, un = r.stats["trained"], r.stats["random init"]
    n = len(r.conv1)
    edge, match = against_null(tr["edge_like"], r.null_edge_like), against_null(tr["matched"], r.null_matched)
    if edge["side"] == "tie":
        reading = ("Training did **not** make the first layer measurably more edge-like than its random start: in "
                   "3×3 filters, weights that nearly cancel are common by chance alone. The textbook picture of "
                   "first layers learning edge detectors is not visible in this measure for this network.")
    elif edge["side"] == "above":
        reading = "Training made the first layer more edge-like than random initialisations are, as the textbook describes."
        if match["side"] == "tie":
            reading += (" They are edge-like in the zero-sum sense only: no more of them resemble the hand-made Sobel "
                        "or Laplacian kernels than chance gives.")
    else:
        reading = (f"Training made the first layer *less* edge-like than chance, against the textbook picture: the "
                   f"trained weights cancel less (mean DC ratio {np.mean(tr['dc_ratio']):.2f} against "
                   f"{np.mean(un['dc_ratio']):.2f} at initialisation), so more filters also respond to flat brightness.")
    templates_text = (f"Filters within |cosine| ≥ {MATCH_COS} of a hand-made template (Sobel in four orientations, "
                      f"Laplacian spot, uniform)")
    by_template = ", ".join(f"{k} {v}" for k, v in sorted(tr["matched_by_template"].items(), key=lambda x: -x[1])) or "none"
    shares = r.conv2_share
    rest = (f"; the other {r.conv2_shape[1] - CHANNELS_SHOWN} channels carry the remaining "
            f"{1 - max(shares):.0%}–{1 - min(shares):.0%}")
    rows = [(k, s["channels"], f"{s['map_size'][0]}×{s['map_size'][1]}", pct(s["zero_fraction"]), s["dead_channels"],
             f"{s['mean_activation']:.3f}") for k, s in r.layer_stats.items()]
    l1, l2 = r.layer_stats["conv1"], r.layer_stats["conv2"]
    sparser = "sparser" if l2["zero_fraction"] > l1["zero_fraction"] else "not sparser"
    return f"""
## Which network
{r.network[0].upper() + r.network[1:]}. Its test accuracy here: {describe_accuracy(r.test_accuracy, r.test_examples)}
on {r.dataset}.

## First layer (`conv1_filters.png`, `conv1_vs_random_init.png`)
A filter is called edge-like when its weights (summed over input channels) nearly cancel: |sum| < {EDGE_DC:.0%} of the
sum of |weights|, so a flat region gives almost no response and only intensity changes do.
- {_null_sentence(tr['edge_like'], edge, 'Edge-like filters', n)} (This network's own initial filters had
  {un['edge_like']}; training moved the conv1 weights by {r.conv1_change:.0%} of their initial norm.)
- {_null_sentence(tr['matched'], match, templates_text, n)}
  Trained matches by template: {by_template}.

{reading}

## Second layer (`conv2_filters.png`)
conv2 has {r.conv2_shape[0]} filters, each with one 3×3 tile per conv1 map ({r.conv2_shape[1]}), so
{r.conv2_shape[0] * r.conv2_shape[1]} tiles in all. The figure shows the {len(r.conv2_filters)} filters with the largest weight
norm, each on the {CHANNELS_SHOWN} input maps it weights most; those {CHANNELS_SHOWN} of {r.conv2_shape[1]} channels carry
{min(shares):.0%}–{max(shares):.0%} of each shown filter's squared norm (an even spread would give
{CHANNELS_SHOWN / r.conv2_shape[1]:.0%}){rest}.

## Feature maps (`feature_maps_1.png`, `feature_maps_2.png`)
Measured on {l1['probe_images']} test images (after ReLU):

{table(["layer", "channels", "map size", "zeros (ReLU off)", "channels never active", "mean activation"], rows)}

conv2 maps are at half the resolution of conv1's (after pooling) and {sparser} ({pct(l2['zero_fraction'])} zeros
against {pct(l1['zero_fraction'])} in conv1).
"""
