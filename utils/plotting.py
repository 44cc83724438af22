"""One figure style for the whole project, and headless, atomic saving.

Tasks build figures with ``plt.subplots`` as usual (after ``from utils.plotting import plt``,
which selects the headless Agg backend and the house style) and hand them to
``ctx.save_figure(fig, "name")``, which adds the footer and writes a PNG atomically at the preset's dpi.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib  # noqa: E402

matplotlib.use("Agg", force=True)
import matplotlib.pyplot as plt  # noqa: E402

from utils.results import atomic_path  # noqa: E402

DPI = 300
STYLE = {
    "figure.figsize": (7.0, 4.5),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "--",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
    "savefig.bbox": "tight",
    "axes.prop_cycle": matplotlib.cycler(color=[
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]),
}
plt.rcParams.update(STYLE)


_STANDIN_THEN_PARENTHESIS = re.compile(r"\((stand-in for [^()]*)\) \(")


def name_the_mode(fig, mode: str) -> None:
    """Make the figure's title say which mode made it, unless some title already says "<mode> mode".

    The title is the suptitle, else the first axes title; the mode joins its first line's closing
    parenthesis when there is one: "Per-class accuracy, digits (200 test images)" becomes
    "Per-class accuracy, digits (200 test images; quick mode)", "GAN training on digits" becomes
    "GAN training on digits (quick mode)". A figure with no title is left alone. A stand-in's
    parenthesis followed by another is merged with it: "fashion-mnist (stand-in for mnist; one seed)".
    """
    phrase = f"{mode} mode"
    suptitle = getattr(fig, "_suptitle", None)
    titles = [t for t in ([suptitle] if suptitle is not None else [])
              + [ax.title for ax in fig.axes] + [ax._left_title for ax in fig.axes] if t.get_text()]
    for t in titles:  # "mnist (stand-in for digits) (one seed)" reads "mnist (stand-in for digits; one seed)"
        t.set_text(_STANDIN_THEN_PARENTHESIS.sub(r"(\1; ", t.get_text()))
    if not titles or any(phrase in t.get_text().lower() for t in titles):
        return
    first, _, rest = titles[0].get_text().partition("\n")
    first = first[:-1] + f"; {phrase})" if first.endswith(")") else f"{first} ({phrase})"
    titles[0].set_text(first + ("\n" + rest if rest else ""))


def save_figure(fig, path: Path, footer: str = "", dpi: int = DPI, crop: bool = True, mode: str = "") -> Path:
    """Add the footer (and ``mode`` to the title: ``name_the_mode``), write ``fig`` as a PNG atomically, and close it.

    ``crop``: fit the canvas to what was drawn (bbox "tight": legends placed beside the axes and the
    footer are kept whole). It costs a second layout pass, about half the save; without it the
    canvas is the figure's own size (the test preset's choice)."""
    path = Path(path).with_suffix(".png")
    if mode:
        name_the_mode(fig, mode)
    if footer:
        # Below the axes (negative y), where the crop grows the canvas to include it; uncropped, on the bottom edge.
        fig.text(0.995, -0.01 if crop else 0.002, footer, ha="right", va="top" if crop else "bottom", fontsize=6.5,
                 color="0.4")
    try:
        with atomic_path(path, suffix=".png") as tmp:
            # zlib level 3 instead of PIL's 6: PNG encoding was 6% of drawing time; 35% less, files 7% larger
            with plt.rc_context({"savefig.bbox": "tight" if crop else "standard"}):
                fig.savefig(tmp, dpi=dpi, format="png", pad_inches=0.12, pil_kwargs={"compress_level": 3})
    finally:
        plt.close(fig)
    return path


def image_grid(ax, images, labels=None, ncols: int = 8, cmap: str = "gray", title: str | None = None):
    """Tile ``images`` (N, H, W) or (N, H, W, 3) in [0, 1] into one axes, labels under each."""

    images = np.asarray(images)
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    h, w = images.shape[1:3]
    pad = 2
    canvas_shape = (nrows * (h + pad) + pad, ncols * (w + pad) + pad) + images.shape[3:]
    canvas = np.full(canvas_shape, 0.5)  # mid-grey gutters separate dark and light images alike
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    ax.imshow(np.clip(canvas, 0, 1), cmap=cmap if canvas.ndim == 2 else None, vmin=0, vmax=1)
    ax.axis("off")
    if labels is not None:
        for i, lab in enumerate(labels):
            r, c = divmod(i, ncols)
            ax.text(pad + c * (w + pad) + w / 2, pad + r * (h + pad) + h + 0.5, str(lab),
                    ha="center", va="top", fontsize=5.5, color="black",
                    bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.7))
    if title:
        ax.set_title(title)
    return ax


def mistakes_figure(images, true, pred, confidence, class_names, title: str, ncols: int = 8):
    """A figure tiling misclassified images, each labelled 'true→predicted confidence'.

    images: (N, H, W) or (N, H, W, 3) in [0, 1]; true, pred: class indices; confidence: the
    predicted class's probability, one per image.
    """

    rows = max(1, int(np.ceil(len(images) / ncols)))
    fig, ax = plt.subplots(figsize=(1.2 * ncols, 1.2 * rows + 0.8))
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.04, top=0.9)  # the grid fills the width
    labels = [f"{class_names[t][:7]}→{class_names[p][:7]} {c:.2f}" for t, p, c in zip(true, pred, confidence)]
    image_grid(ax, images, labels, ncols=ncols, title=title)
    return fig


def confusion_matrix_plot(ax, cm, class_names, title: str = "Confusion matrix (test set)"):
    """Row-normalised confusion matrix with counts annotated."""

    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.grid(False)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    return ax


def plot_history(axes, history, label: str = "", stop_epoch: int | None = None, color=None,
                 loss_label: str = "loss (cross-entropy)"):
    """Loss on axes[0] and accuracy on axes[1] (if given) from a ``utils.history.History``.

    Train is solid, validation dashed; a diverged run ends in a × at its last finite loss.
    """
    from matplotlib.ticker import MaxNLocator

    unit = history.unit
    pre = f"{label} " if label else ""
    steps = range(1, len(history.train_loss) + 1)
    line, = axes[0].plot(steps, history.train_loss, color=color, label=f"{pre}train")
    color = line.get_color()
    if history.val_loss:
        axes[0].plot(range(1, len(history.val_loss) + 1), history.val_loss, color=color, linestyle="--",
                     label=f"{pre}validation")
    if history.diverged:
        mark_diverged(axes[0], history.train_loss, color=color)
    axes[0].set_xlabel(unit)
    axes[0].set_ylabel(loss_label)
    if len(axes) > 1 and history.train_acc:
        axes[1].plot(range(1, len(history.train_acc) + 1), history.train_acc, color=color, label=f"{pre}train")
        if history.val_acc:
            axes[1].plot(range(1, len(history.val_acc) + 1), history.val_acc, color=color, linestyle="--",
                         label=f"{pre}validation")
        axes[1].set_xlabel(unit)
        axes[1].set_ylabel("accuracy (fraction)")
    if stop_epoch is not None:
        for ax in axes:
            ax.axvline(stop_epoch, color=color, linestyle=":", alpha=0.8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return color


def history_figure(histories: dict, title: str, *, stops: dict | None = None, log_loss: bool = False,
                   loss_label: str = "loss (cross-entropy)"):
    """The two-panel loss | accuracy figure for one or more named histories; returns the figure.

    Each name gets one colour (train solid, validation dashed); ``stops`` maps a name to an
    epoch to mark with a dotted line (e.g. early stopping); diverged runs end in ×.
    """
    with_acc = any(h.train_acc for h in histories.values())
    fig, axes = plt.subplots(1, 2 if with_acc else 1, figsize=(11, 4.2) if with_acc else (7, 4.2), squeeze=False)
    axes = list(axes[0])
    for name, hist in histories.items():
        plot_history(axes, hist, label=name, stop_epoch=(stops or {}).get(name), loss_label=loss_label)
    if log_loss:
        axes[0].set_yscale("log")
    axes[0].set_title("loss")
    if with_acc:
        axes[1].set_title("accuracy")
    legend_outside(axes[-1], sources=axes)
    fig.suptitle(title)
    return fig


def moving_average(values, window: int):
    """Trailing mean over ``window`` points (shorter at the start), same length as ``values``."""
    csum = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))
    idx = np.arange(1, len(csum))
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def count_axis(values, what: str = "parameters") -> tuple[list[float], str]:
    """Counts scaled for a bar chart's axis, with the axis label: thousands below a million, else millions."""
    scale, unit = (1e3, "thousands") if max(values, default=0) < 1e6 else (1e6, "millions")
    return [v / scale for v in values], f"{what} ({unit})"


def legend_outside(ax, *, sources=None, **kwargs) -> None:
    """A legend to the right of ``ax``, so it never covers data; entries deduplicated.

    ``sources``: the axes whose lines to list (default: ``ax`` itself)."""

    seen: dict[str, object] = {}
    for src in (list(np.ravel(sources)) if sources is not None else [ax]):
        for h, lab in zip(*src.get_legend_handles_labels()):
            if not lab.startswith("_"):
                seen.setdefault(lab, h)
    if seen:
        ax.legend(list(seen.values()), list(seen.keys()), loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, **kwargs)


def mark_diverged(ax, values, x=None, color=None, label: str | None = None) -> None:
    """Draw × at the last finite point of a series that diverged (NaN/inf after it)."""
    import math

    xs = list(x) if x is not None else list(range(1, len(values) + 1))
    finite = [(xi, v) for xi, v in zip(xs, values) if v is not None and math.isfinite(v)]
    if finite:
        xi, v = finite[-1]
    else:  # diverged at once: put the mark at the first x, at the bottom of the axes
        xi, v = xs[0] if xs else 1, ax.get_ylim()[0]
    ax.plot([xi], [v], marker="x", markersize=9, markeredgewidth=2, color=color or "k", linestyle="none",
            label=label)


def sweep_plot(ax, xs, values, *, diverged=None, label: str | None = None, color=None, marker: str = "o"):
    """One line of a hyper-parameter sweep; points where ``diverged`` is true are drawn as ×
    (at the bottom of the axes when their value is not finite) and named in the legend."""
    import math

    diverged = list(diverged) if diverged is not None else [False] * len(xs)
    ok = [(x, v) for x, v, d in zip(xs, values, diverged) if not d and v is not None and math.isfinite(v)]
    line, = ax.plot([p[0] for p in ok], [p[1] for p in ok], marker=marker, color=color, label=label)
    bad = [(x, v) for x, v, d in zip(xs, values, diverged) if d or v is None or not math.isfinite(v)]
    if bad:
        low = ax.get_ylim()[0]
        ax.plot([p[0] for p in bad], [p[1] if p[1] is not None and math.isfinite(p[1]) else low for p in bad],
                marker="x", markersize=10, markeredgewidth=2, linestyle="none", color=line.get_color(),
                label=f"{label + ': ' if label else ''}diverged (×)")
    return line


def seed_band(ax, x, runs, *, label: str, color=None):
    """Mean line with a ±1 standard-deviation band over seeds; ``runs`` is (seeds, len(x)).
    With one seed it draws the line alone (no band is claimed where none was measured)."""

    runs = np.asarray(runs, dtype=float)
    if runs.ndim == 1:
        runs = runs[None]
    mean = np.nanmean(runs, axis=0)
    line, = ax.plot(x, mean, color=color, label=f"{label} (mean of {len(runs)} seeds)" if len(runs) > 1 else label)
    if len(runs) > 1:
        std = np.nanstd(runs, axis=0, ddof=1)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def colorbar_beside(fig, im, rect, label: str) -> None:
    """A colour bar in its own axes at ``rect`` (figure fraction), for figures laid out by hand."""
    cax = fig.add_axes(rect)
    cax.grid(False)  # the house style's grid would draw dashes across the colour scale
    fig.colorbar(im, cax=cax, label=label)
