"""4.1 Convolution and pooling, seen: hand-made kernels (edges, blur, sharpen) on real images, the
output-size formula against the shapes torch produces, and max vs average pooling, by picture and by number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from experiments.s4_cnn._shared import apply_kernels, hand_made_kernels
from scratch.im2col import conv_output_size
from utils.plotting import plt
from utils.report import table

BUDGET = {  # only two test images of the dataset are shown; the sizes bound what is loaded
    "tiny": {"train_size": 200, "test_size": 100},
    "quick": {"train_size": 1000, "test_size": 500},
    "hybrid": {"train_size": 1000, "test_size": 500},
    "full": {"train_size": 1000, "test_size": 500},
}
SIZE_CASES = [  # (input n, kernel k, padding p, stride s, dilation d, layer)
    (28, 3, 0, 1, 1, "conv"), (28, 3, 1, 1, 1, "conv"), (28, 5, 2, 1, 1, "conv"), (28, 5, 0, 1, 1, "conv"),
    (28, 3, 1, 2, 1, "conv"), (28, 3, 0, 3, 1, "conv"), (27, 3, 1, 2, 1, "conv"), (28, 3, 2, 1, 2, "conv"),
    (32, 7, 3, 2, 1, "conv"), (224, 11, 2, 4, 1, "conv"), (28, 2, 0, 2, 1, "max pool"),
    (7, 2, 0, 2, 1, "max pool"), (14, 3, 1, 2, 1, "avg pool")]
SETTINGS = [(3, 0, 1), (3, 1, 1), (3, 1, 2), (3, 0, 3), (5, 0, 1), (5, 2, 2)]  # (k, p, s) in output_size.png
EDGE_KERNELS = ("Sobel x", "Sobel y", "Laplacian")
EDGE_MAP = "edge strength of the china photo (Sobel)"


@dataclass
class Result:
    dataset: str
    names: list[str]                 # the four images: two photos, two dataset images
    images: list[np.ndarray]         # grey uint8 (H, W), exactly what was filtered (÷ 255)
    effects: dict[str, dict[str, dict[str, float]]]   # image -> kernel -> statistic
    size_rows: list[dict]            # output-size formula vs torch
    pool_stats: dict[str, dict[str, dict[str, float]]]
    patch_origin: list[int]          # row, column of the 4×4 edge-map patch written out
    patch: np.ndarray                # that patch, relative to the edge map's peak

    @property
    def matched(self) -> int:
        return sum(r["formula"] == r["torch"] for r in self.size_rows)


def as_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.tensor(img, dtype=torch.float32)[None, None] / 255


def edge_strength(grey: torch.Tensor) -> torch.Tensor:
    k = hand_made_kernels()
    return apply_kernels(grey, [k["Sobel x"][0], k["Sobel y"][0]]).pow(2).sum(1, keepdim=True).sqrt()


def pooled(x: torch.Tensor) -> dict[str, torch.Tensor]:
    return {f"{kind}_{k}x{k}": (F.max_pool2d if kind == "max" else F.avg_pool2d)(x, k)
            for k in (2, 4) for kind in ("max", "avg")}


def measure(ctx) -> Result:
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    ctx.use_dataset("sklearn sample photos", note="china.jpg and flower.jpg bundled with scikit-learn, "
                    "converted to grey and halved in size")
    grey = torch.tensor(np.stack(photos.images), dtype=torch.float32).matmul(torch.tensor([0.299, 0.587, 0.114]))
    grey = F.avg_pool2d(grey.unsqueeze(1), 2).round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
    ds = ctx.load_images("fashion-mnist", train_size=ctx.budget.train_size, test_size=ctx.budget.test_size)
    y = ds.y_test.numpy()
    first_of_class = [int(np.flatnonzero(y == c)[0]) for c in np.unique(y)[:2]]
    small = ds.to_display(ds.x_test[first_of_class])
    small = small.mean(-1) if small.ndim == 4 else small                  # grey (N, H, W) in [0, 1]
    images = [grey[0], grey[1]] + list(np.round(small * 255).astype(np.uint8))
    names = ["china photo", "flower photo"] + [f"{ds.name}: {ds.classes[y[i]]}" for i in first_of_class]

    kernels = hand_made_kernels()
    weights = [w for w, _ in kernels.values()]
    laplacian = [kernels["Laplacian"][0]]
    effects = {}
    for name, img in zip(names, images):
        x = as_tensor(img)
        detail_in = float(apply_kernels(x, laplacian).std())  # high-frequency content of the input
        row = {kname: {"mean_abs_response": float(o.abs().mean()), "mean_brightness": float(o.mean()),
                       "detail_ratio": float(apply_kernels(o[None, None], laplacian).std()) / detail_in}
               for kname, o in zip(kernels, apply_kernels(x, weights)[0])}
        row["input"] = {"mean_brightness": float(x.mean())}
        effects[name] = row

    size_rows = []
    for n, k, p, s, d, kind in SIZE_CASES:
        layer = (nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d) if kind == "conv" else
                 nn.MaxPool2d(k, stride=s, padding=p) if kind == "max pool" else nn.AvgPool2d(k, stride=s, padding=p))
        with torch.no_grad():
            actual = int(layer(torch.zeros(1, 1, n, n)).shape[-1])
        size_rows.append({"layer": kind, "n": n, "k": k, "p": p, "s": s, "d": d, "torch": actual,
                          "formula": conv_output_size(n, k, stride=s, padding=p, dilation=d)})

    photo = as_tensor(grey[0])
    edges = edge_strength(photo)
    pool_stats = {}
    for name, x in (("china photo", photo), (EDGE_MAP, edges), (names[2], as_tensor(images[2]))):
        pool_stats[name] = {key: {"mean": float(o.mean()), "peak": float(o.max())} for key, o in pooled(x).items()}
        pool_stats[name]["input"] = {"mean": float(x.mean()), "peak": float(x.max())}
    # The 4×4 patch where max and average pooling disagree most (a thin edge beside flat background).
    disagreement = F.max_pool2d(edges, 4, 1) - F.avg_pool2d(edges, 4, 1)
    i, j = divmod(int(disagreement[0, 0].argmax()), edges.shape[-1] - 3)
    patch = (edges[0, 0, i:i + 4, j:j + 4] / edges.max()).numpy().astype(np.float64)
    ok = all(r["formula"] == r["torch"] for r in size_rows)
    ctx.record(kernel_effects=effects, output_size_table=size_rows, formula_matches_torch=ok,
               formula_cases=len(size_rows), formula_cases_matched=sum(r["formula"] == r["torch"] for r in size_rows),
               pooling=pool_stats, pooling_example={"row": i, "column": j, "patch": patch,
                                 "max": patch.reshape(2, 2, 2, 2).max((1, 3)), "avg": patch.reshape(2, 2, 2, 2).mean((1, 3))})
    return Result(ds.label, names, images, effects, size_rows, pool_stats, [i, j], patch)


def _bare(ax):
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def draw(ctx, r: Result) -> None:
    kernels = hand_made_kernels()
    fig, axes = plt.subplots(len(r.images) + 1, len(kernels) + 1, figsize=(15, 10.5),
                             gridspec_kw={"height_ratios": [0.8] + [1] * len(r.images)})
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, "kernel weights\n(red +, blue −)", ha="center", va="center", fontsize=10)
    for col, (kname, (w, what)) in enumerate(kernels.items(), start=1):
        ax, w = axes[0, col], np.array(w)
        lim = np.abs(w).max()
        ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
        for (row, c), v in np.ndenumerate(w):
            ax.text(c, row, f"{v:g}" if len(w) == 3 else f"{v:.2f}".lstrip("0"), ha="center", va="center",
                    fontsize=8 if len(w) == 3 else 5.5, color="white" if abs(v) > 0.6 * lim else "black")
        ax.set_title(f"{kname}\n{what}", fontsize=9)
        _bare(ax)
    for row, (name, img) in enumerate(zip(r.names, r.images), start=1):
        axes[row, 0].imshow(img, cmap="gray", vmin=0, vmax=255)
        axes[row, 0].set_ylabel(name, fontsize=9)
        for col, (kname, o) in enumerate(zip(kernels, apply_kernels(as_tensor(img), [w for w, _ in kernels.values()])[0]),
                                         start=1):
            if kname in EDGE_KERNELS:  # signed responses: show the strength |response|, bright = strong edge
                shown = o.abs()
                axes[row, col].imshow(shown.numpy(), cmap="gray", vmin=0, vmax=float(torch.quantile(shown.flatten(), 0.99)))
                label = f"mean |resp.| {r.effects[name][kname]['mean_abs_response']:.3f}"
            else:
                axes[row, col].imshow(o.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                label = f"detail ×{r.effects[name][kname]['detail_ratio']:.2f}"
            axes[row, col].set_xlabel(label, fontsize=7.5)
        for ax in axes[row]:
            _bare(ax)
    axes[1, 0].set_title("input")
    fig.suptitle(f"Hand-made 2-D convolution kernels on two photos and two {r.dataset} images (edges: |response|; "
                 "'detail ×' = high-frequency content relative to the input)", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "kernels_on_images")

    sample = as_tensor(r.images[2])
    side = sample.shape[-1]
    fig, axes = plt.subplots(1, len(SETTINGS) + 1, figsize=(15, 3.1), sharex=True, sharey=True)
    axes[0].imshow(sample[0, 0].numpy(), cmap="gray", vmin=0, vmax=1, extent=(0, side, side, 0))
    axes[0].set_title(f"input {side}×{side}")
    for ax, (k, p, s) in zip(axes[1:], SETTINGS):
        out = F.conv2d(sample, torch.full((1, 1, k, k), 1.0 / (k * k)), padding=p, stride=s)[0, 0]  # a blur
        m = out.shape[-1]
        ax.imshow(out.numpy(), cmap="gray", vmin=0, vmax=1, extent=(0, m, m, 0))
        ax.set_title(f"k={k}, p={p}, s={s} → {m}×{m}\n⌊({side}+{2 * p}−{k})/{s}⌋+1 = "
                     f"{conv_output_size(side, k, stride=s, padding=p)}", fontsize=8.5)
    for ax in axes:
        ax.set_xlim(0, side)
        ax.set_ylim(side, 0)
        ax.set_xlabel("output column (pixels)")
        ax.grid(False)
    axes[0].set_ylabel("row (pixels)")
    fig.suptitle(f"Output size = ⌊(n + 2p − k) / s⌋ + 1: one {r.dataset} image through 'blur' convolutions with "
                 "kernel k, padding p and stride s (one output pixel per unit)", fontsize=10.5)
    fig.tight_layout()
    ctx.save_figure(fig, "output_size")

    photo = as_tensor(r.images[0])
    inputs = {"china photo": photo, EDGE_MAP: edge_strength(photo), r.names[2]: as_tensor(r.images[2])}
    fig, axes = plt.subplots(len(inputs), 5, figsize=(15, 8.5))
    for row, (name, x) in enumerate(inputs.items()):
        stats = r.pool_stats[name]
        vmax = float(torch.quantile(x.flatten(), 0.995))
        axes[row, 0].imshow(x[0, 0].numpy(), cmap="gray", vmin=0, vmax=vmax)
        axes[row, 0].set_title(f"input {x.shape[-2]}×{x.shape[-1]}", fontsize=9)
        axes[row, 0].set_ylabel(name.replace(" of the", "\nof the"), fontsize=9)
        axes[row, 0].set_xlabel(f"mean {stats['input']['mean']:.3f}", fontsize=8)
        for col, (key, o) in enumerate(pooled(x).items(), start=1):
            kind, k = key.split("_")
            axes[row, col].imshow(o[0, 0].numpy(), cmap="gray", vmin=0, vmax=vmax)
            axes[row, col].set_title(f"{kind} pool {k.replace('x', '×')}, stride {k[0]} → {o.shape[-2]}×{o.shape[-1]}",
                                     fontsize=9)
            axes[row, col].set_xlabel(f"mean {stats[key]['mean']:.3f}, peak {stats[key]['peak']:.3f}", fontsize=8)
        for ax in axes[row]:
            _bare(ax)
    fig.suptitle("Max vs average pooling (same grey scale within a row; 'mean' is the mean pixel value)", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "pooling")

    i, j = r.patch_origin
    patch = torch.tensor(r.patch, dtype=torch.float32)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), gridspec_kw={"width_ratios": [2, 1, 1]})
    for ax, values, title in ((axes[0], patch, f"4×4 patch of the edge map (rows {i}–{i + 3}, cols {j}–{j + 3})"),
                              (axes[1], F.max_pool2d(patch[None, None], 2)[0, 0], "max pool 2×2"),
                              (axes[2], F.avg_pool2d(patch[None, None], 2)[0, 0], "average pool 2×2")):
        ax.imshow(values.numpy(), cmap="Greys", vmin=0, vmax=1)
        for (row, c), v in np.ndenumerate(values.numpy()):
            ax.text(c, row, f"{v:.2f}", ha="center", va="center", fontsize=10, color="white" if v > 0.55 else "black")
        ax.set_xticks(range(values.shape[1]))
        ax.set_yticks(range(values.shape[0]))
        ax.set_xlabel("column (pixel)")
        ax.set_ylabel("row (pixel)")
        ax.set_title(title, fontsize=9.5)
        ax.grid(False)
    axes[0].axhline(1.5, color="tab:red", lw=2)
    axes[0].axvline(1.5, color="tab:red", lw=2)
    fig.suptitle("Pooling by numbers: edge strength of the china photo (relative to the map's peak) "
                 "in the red 2×2 windows", fontsize=11)
    fig.tight_layout()
    ctx.save_figure(fig, "pooling_numbers")


def _range(values, fmt="×{:.2f}") -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if np.isclose(lo, hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def write_up(r: Result) -> str:
    ef = r.effects
    lines = []
    for name in r.names:
        e = ef[name]
        sx, sy = e["Sobel x"]["mean_abs_response"], e["Sobel y"]["mean_abs_response"]
        ratio = max(sx, sy) / max(min(sx, sy), 1e-12)
        orient = "about equal" if ratio < 1.1 else f"{'vertical' if sx > sy else 'horizontal'} edges dominate, ×{ratio:.2f}"
        lines.append((name, f"{sx:.3f} / {sy:.3f} ({orient})",
                      f"×{e['box blur 5×5']['detail_ratio']:.2f} / ×{e['Gaussian blur 5×5']['detail_ratio']:.2f}",
                      f"×{e['sharpen']['detail_ratio']:.2f}",
                      f"{e['input']['mean_brightness']:.3f} → {e['Gaussian blur 5×5']['mean_brightness']:.3f} / "
                      f"{e['sharpen']['mean_brightness']:.3f}"))
    edge_mean = max(abs(ef[n][k]["mean_brightness"]) for n in r.names for k in EDGE_KERNELS)
    brightness_shift = max(abs(ef[n][k]["mean_brightness"] - ef[n]["input"]["mean_brightness"])
                           for n in r.names for k in ("box blur 5×5", "Gaussian blur 5×5", "sharpen"))
    blurred = _range([ef[n][k]["detail_ratio"] for n in r.names for k in ("box blur 5×5", "Gaussian blur 5×5")])
    box_stronger = sum(ef[n]["box blur 5×5"]["detail_ratio"] < ef[n]["Gaussian blur 5×5"]["detail_ratio"] for n in r.names)
    if box_stronger == len(r.names):
        blur_note = ("the 5×5 box blur removed more detail than the 5×5 Gaussian on every image: the Gaussian "
                     "weights the centre more, so it keeps more of the finest structure")
    elif box_stronger == 0:
        blur_note = "the 5×5 Gaussian removed more detail than the 5×5 box blur on every image"
    else:
        blur_note = (f"the 5×5 box blur removed more detail than the 5×5 Gaussian on {box_stronger} of "
                     f"{len(r.names)} images, so neither blur is the stronger one everywhere")
    ps, ims = r.pool_stats[EDGE_MAP], r.pool_stats["china photo"]
    rows = [(x["layer"], x["n"], x["k"], x["p"], x["s"], x["d"], x["formula"], x["torch"]) for x in r.size_rows]
    mismatch = [x for x in r.size_rows if x["formula"] != x["torch"]]
    check = (f"all {len(r.size_rows)} match exactly" if not mismatch else
             f"{len(mismatch)} of {len(r.size_rows)} differ: {mismatch}")
    i, j = r.patch_origin
    p = r.patch
    return f"""
## Hand-made kernels (`kernels_on_images.png`)
Six kernels were applied by `conv2d` to two real photos (scikit-learn's china.jpg and flower.jpg, grey, 213×320
pixels) and two {r.dataset} test images. "detail" is the standard deviation of the Laplacian of the output relative to
that of the input (a measure of fine, high-frequency content).

{table(["image", "mean abs. response Sobel x / Sobel y", "detail after box / Gaussian blur", "detail after sharpen",
        "mean brightness input → Gaussian blur / sharpen"], lines)}

- The edge kernels' weights sum to zero, so flat regions give zero: their mean signed response was at most
  {edge_mean:.3f} in absolute value on any image, while the mean absolute responses above are what the edges produce.
- The blurs and the sharpening kernel (weights summing to 1) moved the mean brightness by at most {brightness_shift:.3f}.
  The blurs cut the fine detail to {blurred} of the input's; {blur_note}. Sharpening multiplied it by {_range([ef[n]['sharpen']['detail_ratio'] for n in r.names])}.

## Output size (`output_size.png`)
Output side = ⌊(n + 2p − d·(k−1) − 1)/s⌋ + 1 (d = dilation, 1 for ordinary convolutions), computed by
`scratch.im2col.conv_output_size`. Each row was checked against the shape torch produced (exact integer equality):
{check}. Padding p = (k−1)/2 with stride 1 keeps the size (28 → {r.size_rows[1]['torch']} for k = 3, p = 1);
stride s divides it by about s (28 → {r.size_rows[4]['torch']} with s = 2).

{table(["layer", "n", "k", "p", "s", "d", "formula", "torch output"], rows)}

## Max vs average pooling (`pooling.png`, `pooling_numbers.png`)
On the Sobel edge-strength map of the china photo, 2×2 max pooling kept the peak response
({ps['max_2x2']['peak']:.3f} of {ps['input']['peak']:.3f}) and raised the mean from {ps['input']['mean']:.3f} to
{ps['max_2x2']['mean']:.3f}, while 2×2 average pooling kept the mean ({ps['avg_2x2']['mean']:.3f}) and lowered the
peak to {ps['avg_2x2']['peak']:.3f}; with 4×4 windows the peak fell to {ps['avg_4x4']['peak']:.3f} under average
pooling against {ps['max_4x4']['peak']:.3f} under max pooling. So max pooling reports *whether* a feature occurs in a
window (a thin edge survives at full strength), average pooling *how much* of it there is (a thin edge is diluted by
the background around it). On the photo itself the mean brightness moved from {ims['input']['mean']:.3f} to
{ims['max_2x2']['mean']:.3f} (max) and {ims['avg_2x2']['mean']:.3f} (average). `pooling_numbers.png` writes out the 4×4
patch of the edge map (rows {i}–{i + 3}, columns {j}–{j + 3}) where the two disagree most: its top-left 2×2 window pools
to {p[:2, :2].max():.2f} under max pooling and {p[:2, :2].mean():.2f} under average pooling.
"""
