"""save_figure: the crop keeps what lies outside the axes; uncropped, the canvas is the figure's size."""
from __future__ import annotations

from PIL import Image

import config
from utils.plotting import plt, save_figure


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
