"""One figure style for the whole project, and headless, atomic saving.

Tasks build figures with ``plt.subplots`` as usual (after ``from utils.plotting import plt``,
which selects the headless Agg backend and the house style) and hand them to
``ctx.save_figure(fig, "name")``, which adds the footer and writes a 300-dpi PNG atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

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


def save_figure(fig, path: Path, footer: str = "") -> Path:
    """Add the footer, write ``fig`` as a PNG atomically, and close it."""
    path = Path(path).with_suffix(".png")
    if footer:
        # Below the axes (negative y); bbox="tight" grows the canvas to include it.
        fig.text(0.995, -0.01, footer, ha="right", va="top", fontsize=6.5, color="0.4")
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=DPI, format="png", pad_inches=0.12)
    finally:
        plt.close(fig)
    return path


def image_grid(ax, images, labels=None, ncols: int = 8, cmap: str = "gray", title: str | None = None):
    """Tile ``images`` (N, H, W) or (N, H, W, 3) in [0, 1] into one axes, labels under each."""
    import numpy as np

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
    import numpy as np

    rows = max(1, int(np.ceil(len(images) / ncols)))
    fig, ax = plt.subplots(figsize=(1.2 * ncols, 1.2 * rows + 0.8))
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.04, top=0.9)  # the grid fills the width
    labels = [f"{class_names[t][:7]}→{class_names[p][:7]} {c:.2f}" for t, p, c in zip(true, pred, confidence)]
    image_grid(ax, images, labels, ncols=ncols, title=title)
    return fig


def confusion_matrix_plot(ax, cm, class_names, title: str = "Confusion matrix (test set)"):
    """Row-normalised confusion matrix with counts annotated."""
    import numpy as np

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


def plot_history(axes, history: dict, label: str = "", stop_epoch: int | None = None, color=None):
    """Loss on axes[0] and accuracy on axes[1] (if given) from a fit() history."""
    from matplotlib.ticker import MaxNLocator

    epochs = range(1, len(history["train_loss"]) + 1)
    pre = f"{label} " if label else ""
    axes[0].plot(epochs, history["train_loss"], color=color, label=f"{pre}train")
    if history.get("val_loss"):
        axes[0].plot(epochs, history["val_loss"], color=color, linestyle="--", label=f"{pre}validation")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss (cross-entropy)")
    if len(axes) > 1 and history.get("train_acc"):
        axes[1].plot(epochs, history["train_acc"], color=color, label=f"{pre}train")
        if history.get("val_acc"):
            axes[1].plot(epochs, history["val_acc"], color=color, linestyle="--", label=f"{pre}validation")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("accuracy (fraction)")
    if stop_epoch is not None:
        for ax in axes:
            ax.axvline(stop_epoch, color=color or "k", linestyle=":", alpha=0.8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
