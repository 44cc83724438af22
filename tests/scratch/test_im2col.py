"""scratch.im2col: the output-size formula against torch, padding, window views, im2col against
an explicit loop, and col2im as its exact adjoint (what conv backward relies on)."""
import numpy as np
import pytest
import torch

from scratch.im2col import (add_window_offset, col2im, conv_output_size, im2col, pad_images,
                            unpad_images, windows)


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    (28, 3, 1, 1, 1), (28, 5, 2, 0, 1), (7, 7, 1, 0, 1), (1, 1, 1, 0, 1), (10, 3, 3, 2, 1),
    (9, 3, 1, 0, 2), (12, 2, 2, 1, 3), (5, 8, 1, 2, 1),
])
def test_conv_output_size_matches_torch(size, kernel, stride, padding, dilation):
    out = torch.nn.functional.conv2d(torch.zeros(1, 1, size, 1), torch.zeros(1, 1, kernel, 1),
                                     stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
    assert conv_output_size(size, kernel, stride=stride, padding=padding, dilation=dilation) == out.shape[2]


def test_conv_output_size_refuses_kernels_that_do_not_fit_and_is_keyword_only():
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(4, 5)
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(5, 3, dilation=3)
    with pytest.raises(TypeError):
        conv_output_size(5, 3, 2)


def test_pad_and_unpad(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    assert pad_images(x, 0) is x and unpad_images(x, 0) is x
    padded = pad_images(x, 2, value=-7.0)
    assert padded.shape == (2, 3, 8, 9)
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-7.0))
    np.testing.assert_array_equal(unpad_images(padded, 2), x)


def test_windows_is_a_strided_view(rng):
    x = rng.standard_normal((2, 2, 7, 6))
    view = windows(x, (3, 2), 2)
    assert view.shape == (2, 2, 3, 3, 3, 2) and np.shares_memory(view, x)
    for i in range(3):
        for j in range(3):
            np.testing.assert_array_equal(view[:, :, i, j], x[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 2])


@pytest.mark.parametrize("kernel, stride", [((3, 3), 1), ((2, 3), 2), ((1, 1), 3), ((4, 5), 1)])
def test_im2col_matches_a_loop_and_col2im_is_its_adjoint(rng, kernel, stride):
    n, c, h, w = 2, 3, 6, 5
    kh, kw = kernel
    x = rng.standard_normal((n, c, h, w))
    cols = im2col(x, kernel, stride)
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    expected = np.empty((n, c * kh * kw, ho * wo))
    for i in range(ho):
        for j in range(wo):  # row (c, di, dj) in C order, column i·Wo + j
            window = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            expected[:, :, i * wo + j] = window.reshape(n, -1)
    np.testing.assert_array_equal(cols, expected)
    assert cols.flags.c_contiguous
    # <im2col(x), c> = <x, col2im(c)> for every x and c: col2im is the transpose of im2col
    c_random = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(np.sum(cols * c_random), np.sum(x * col2im(c_random, x.shape, kernel, stride)),
                               rtol=1e-12)


def test_add_window_offset_matches_a_loop(rng):
    target = np.zeros((1, 2, 7, 7))
    values = rng.standard_normal((1, 2, 3, 3))
    add_window_offset(target, values, (1, 2), (3, 3), 2)
    expected = np.zeros_like(target)
    for i in range(3):
        for j in range(3):
            expected[:, :, 1 + 2 * i, 2 + 2 * j] += values[:, :, i, j]
    np.testing.assert_array_equal(target, expected)
