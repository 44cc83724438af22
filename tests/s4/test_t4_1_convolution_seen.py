"""4.1: the output-size formula (scratch.im2col.conv_output_size) against torch, and the write-up."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from experiments.s4_cnn.t4_1_convolution_seen import EDGE_MAP, Result, write_up
from scratch.im2col import conv_output_size


@pytest.mark.parametrize("n", [7, 28, 31])
@pytest.mark.parametrize("k,p,s,d", [(1, 0, 1, 1), (3, 0, 1, 1), (3, 1, 1, 1), (3, 1, 2, 1), (5, 2, 3, 1),
                                     (3, 2, 1, 2), (5, 0, 2, 2), (2, 0, 2, 1), (7, 3, 2, 1)])
def test_output_size_formula_matches_torch_conv(n, k, p, s, d):
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    if d * (k - 1) + 1 > n + 2 * p:  # kernel larger than the padded input: our formula refuses it, as torch does
        with pytest.raises(ValueError, match="does not fit"):
            conv_output_size(n, k, stride=s, padding=p, dilation=d)
        with pytest.raises(RuntimeError):
            conv(torch.zeros(1, 1, n, n))
        return
    with torch.no_grad():
        out = conv(torch.zeros(1, 1, n, n))
    assert out.shape[-1] == conv_output_size(n, k, stride=s, padding=p, dilation=d)


def test_the_refused_case_is_really_exercised():
    assert 7 < 2 * (5 - 1) + 1  # (n=7, k=5, d=2, p=0) above: a 9-pixel kernel on a 7-pixel input
    with pytest.raises(ValueError):
        conv_output_size(7, 5, dilation=2)
    assert conv_output_size(9, 5, dilation=2) == 1  # just fits


@pytest.mark.parametrize("n,k,s,p", [(28, 2, 2, 0), (7, 2, 2, 0), (14, 3, 2, 1), (9, 3, 3, 0)])
def test_output_size_formula_matches_torch_pooling(n, k, s, p):
    for pool in (nn.MaxPool2d(k, s, p), nn.AvgPool2d(k, s, p)):
        assert pool(torch.zeros(1, 1, n, n)).shape[-1] == conv_output_size(n, k, stride=s, padding=p)


def test_output_size_known_cases():
    assert conv_output_size(28, 3, padding=1) == 28          # "same" padding
    assert conv_output_size(224, 11, stride=4, padding=2) == 55  # AlexNet conv1
    assert conv_output_size(224, 7, stride=2, padding=3) == 112  # ResNet stem


def _result(*, mismatch=False, box_detail=0.10, gauss_detail=0.13) -> Result:
    names = ["china photo", "flower photo", "digits: 0", "digits: 1"]
    kernels = {"Sobel x": (0.2, 0.0), "Sobel y": (0.1, 0.01), "Laplacian": (0.1, -0.02),
               "box blur 5×5": (0.5, 0.5), "Gaussian blur 5×5": (0.5, 0.5), "sharpen": (0.5, 0.5)}
    effects = {}
    for n in names:
        effects[n] = {k: {"mean_abs_response": a, "mean_brightness": m, "detail_ratio": 5.0} for k, (a, m) in kernels.items()}
        effects[n]["box blur 5×5"]["detail_ratio"] = box_detail
        effects[n]["Gaussian blur 5×5"]["detail_ratio"] = gauss_detail
        effects[n]["input"] = {"mean_brightness": 0.5}
    rows = [{"layer": "conv", "n": 28, "k": 3, "p": p, "s": s, "d": 1, "formula": f, "torch": f}
            for p, s, f in ((0, 1, 26), (1, 1, 28), (2, 1, 28), (0, 1, 24), (1, 2, 14))]
    if mismatch:
        rows[0]["torch"] = 25
    pools = {key: {"mean": 0.3, "peak": 3.0} for key in ("input", "max_2x2", "avg_2x2", "max_4x4", "avg_4x4")}
    return Result("digits", names, [np.zeros((4, 4), np.uint8)] * 4, effects, rows,
                  {EDGE_MAP: pools, "china photo": pools}, [3, 4], np.eye(4))


def test_write_up_reports_agreement_and_the_blur_ranking():
    text = write_up(_result())
    assert "all 5 match exactly" in text
    assert "box blur removed more detail than the 5×5 Gaussian on every image" in text
    assert "×0.10–×0.13" in text and "at most\n  0.020" in text


def test_write_up_reports_a_mismatch_and_a_reversed_blur_ranking():
    text = write_up(_result(mismatch=True, box_detail=0.2, gauss_detail=0.1))
    assert "1 of 5 differ" in text and "match exactly" not in text
    assert "Gaussian removed more detail than the 5×5 box blur on every image" in text
    assert _result(mismatch=True).matched == 4
