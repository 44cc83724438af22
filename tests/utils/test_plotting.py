"""save_figure: the crop keeps what lies outside the axes; uncropped, the canvas is the figure's size; the title
names the mode."""
from __future__ import annotations

from PIL import Image

import config
from utils.plotting import name_the_mode, plt, save_figure


def _figure_with_a_legend_beside_the_axes():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beyond the figure's right edge
    return fig


def test_cropped_canvas_grows_to_hold_the_legend_and_the_footer(tmp_path):
    path = save_figure(_figure_with_a_legend_beside_the_axes(), tmp_path / "a", footer="task 0.0", dpi=50)
    width, height = Image.open(path).size
    assert width > 4 * 50 and height > 3 * 50 * 0.9       # legend on the right, footer below, margins trimmed
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # written atomically: no temporary left


def test_uncropped_canvas_is_the_figure_size(tmp_path):
    path = save_figure(_figure_with_a_legend_beside_the_axes(), tmp_path / "b", footer="task 0.0", dpi=50,
                       crop=False)
    assert Image.open(path).size == (4 * 50, 3 * 50)


def test_only_the_test_preset_skips_the_crop():
    assert [m for m, p in config.PRESETS.items() if not p.figure_crop] == ["tiny"]


def _titled(suptitle: str | None = None, *axes_titles: str):
    fig, axes = plt.subplots(1, max(1, len(axes_titles)), squeeze=False)
    for ax, title in zip(axes.flat, axes_titles):
        ax.set_title(title)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


def test_the_title_names_the_mode():
    # the suptitle is the title; the mode joins a closing parenthesis on its first line
    fig = _titled("Per-class accuracy, digits (200 test images)\nsecond line", "panel a", "panel b")
    name_the_mode(fig, "quick")
    assert fig.get_suptitle() == "Per-class accuracy, digits (200 test images; quick mode)\nsecond line"
    assert [ax.get_title() for ax in fig.axes] == ["panel a", "panel b"]
    # no suptitle: the first axes title; "Mode-collapse" is not the mode
    fig = _titled(None, "Mode-collapse check on digits", "other")
    name_the_mode(fig, "hybrid")
    assert [ax.get_title() for ax in fig.axes] == ["Mode-collapse check on digits (hybrid mode)", "other"]
    plt.close("all")


def test_a_stand_in_parenthesis_and_the_next_one_become_one():
    fig = _titled("Sensitivity, fashion-mnist (stand-in for mnist) (one seed)", "f(x) (log scale)")
    name_the_mode(fig, "quick")
    assert fig.get_suptitle() == "Sensitivity, fashion-mnist (stand-in for mnist; one seed; quick mode)"
    assert fig.axes[0].get_title() == "f(x) (log scale)"   # only a stand-in's parenthesis is merged
    fig = _titled("GAN on fashion-mnist (stand-in for mnist)")
    name_the_mode(fig, "quick")
    assert fig.get_suptitle() == "GAN on fashion-mnist (stand-in for mnist; quick mode)"
    plt.close("all")


def test_a_title_that_already_names_the_mode_is_left_alone():
    for fig in (_titled("Sweep on digits, 3 epochs, full mode; × = diverged"),
                _titled("Curves on digits", "loss (full mode)")):
        before = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
        name_the_mode(fig, "full")
        assert [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes] == before
    fig = _titled(None)  # nothing to amend
    name_the_mode(fig, "full")
    assert fig.get_suptitle() == "" and fig.axes[0].get_title() == ""
    plt.close("all")
