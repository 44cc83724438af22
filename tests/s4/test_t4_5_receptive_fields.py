"""4.5: the write-up from hand-built results (a tie and a real difference in the effective field)."""
from __future__ import annotations

import numpy as np

from experiments.s4_cnn._shared import layer_geometry, receptive_fields
from experiments.s4_cnn.t4_5_receptive_fields import Result, write_up
from models import SmallCNN
from utils.report import compare_errors


def _result(trained_sides, untrained_sides, *, outside=0.0, inner=0.58, mass=10) -> Result:
    theory = receptive_fields(layer_geometry(SmallCNN().features))
    names = [t["layer"] for t in theory] + ["output logit"]
    emp = {k: {n: {"extent": 10, "box": [9, 9, 18, 18], "mass_side": mass, "inner_share": inner,
                   "inner_area_share": 0.36} for n in names} for k in ("trained", "untrained")}
    cmp = compare_errors("trained", trained_sides, "untrained", untrained_sides, metric="90%-mass field side at pool2")
    return Result("digits", "the network is task 4.3's", 28, theory, names, [[13.5, 9, 18]] * 5,
                  {k: [np.ones((28, 28))] * 5 for k in emp}, emp, {"trained/pool2": outside}, 256,
                  {"1": 3, "2": 5, "3": 7}, cmp)


def test_write_up_tie_says_no_measurable_change():
    sides = np.array([10, 10, 9, 10] * 64)
    text = write_up(_result(sides, sides.copy()))
    assert "no measurable change" in text and "No measurable difference" in text
    assert "training made it" not in text
    assert "exactly zero" in text
    assert "not smaller than the theoretical one" in text  # 90% mass needs all 10 px


def test_write_up_names_a_real_change_and_a_smaller_effective_field():
    trained, untrained = np.full(256, 8), np.full(256, 10)
    trained[:20] = 9
    text = write_up(_result(trained, untrained, outside=1e-3, mass=8))
    assert "training made it smaller" in text and "256 test images" in text
    assert "1.0e-03 of the peak, where theory requires exactly zero" in text
    assert "effective* field (90% of the gradient) is 8 px, smaller than the theoretical 10 px" in text
