"""im2col / col2im built on NumPy stride tricks.

A convolution (or pooling) visits every `kh x kw` window of a padded image.
`sliding_window_view` exposes all those windows as a *view* (no copy), so the
only copy made is the final rearrangement into a column matrix, after which a
convolution is a single matrix multiply.

Layout convention (torch's): images are (N, C, H, W); kernels are (kh, kw).

Column layout used by `im2col`: (N, C * kh * kw, Ho * Wo), i.e. one
(C*kh*kw, Ho*Wo) matrix per image.  With a weight matrix W of shape
(F, C*kh*kw) the batched product `W @ cols` has shape (N, F, Ho*Wo), which is
already NCHW order - no transpose of the (large) output is needed.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv_output_size(size: int, kernel: int, *, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one axis: floor((size + 2p - d(k - 1) - 1) / s) + 1.

    The project's one copy of the formula (the NumPy layers and section 4's tables use it).
    """
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out <= 0:
        raise ValueError(
            f"kernel {kernel} with stride {stride} and padding {padding} "
            f"does not fit an input of size {size}"
        )
    return out


def pad_images(x: np.ndarray, padding: int, value: float = 0.0) -> np.ndarray:
    """Pad the two spatial axes of an (N, C, H, W) array by `padding` on each side.

    Writing into a preallocated array is noticeably faster than `np.pad`.
    Returns `x` itself (no copy) when padding == 0.
    """
    if padding == 0:
        return x
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * padding, w + 2 * padding), value, dtype=x.dtype)
    padded[:, :, padding:padding + h, padding:padding + w] = x
    return padded


def unpad_images(x_padded: np.ndarray, padding: int) -> np.ndarray:
    """Inverse of `pad_images`: crop `padding` from each side of the spatial axes."""
    if padding == 0:
        return x_padded
    return x_padded[:, :, padding:-padding, padding:-padding]


def windows(x_padded: np.ndarray, kernel: tuple[int, int], stride: int) -> np.ndarray:
    """All (kh, kw) windows of an already padded (N, C, Hp, Wp) array, as a view.

    Returns a read-only view of shape (N, C, Ho, Wo, kh, kw) where
    view[n, c, i, j] = x_padded[n, c, i*s : i*s + kh, j*s : j*s + kw].
    """
    kh, kw = kernel
    view = sliding_window_view(x_padded, (kh, kw), axis=(2, 3))
    return view[:, :, ::stride, ::stride]


def im2col(x_padded: np.ndarray, kernel: tuple[int, int], stride: int) -> np.ndarray:
    """Rearrange image windows into columns.

    Input:  x_padded (N, C, Hp, Wp), already padded.
    Output: cols (N, C*kh*kw, Ho*Wo), C-contiguous; row index = (c, di, dj)
            in C order, matching weight.reshape(F, C*kh*kw) for a
            (F, C, kh, kw) weight.
    """
    n, c = x_padded.shape[:2]
    kh, kw = kernel
    view = windows(x_padded, kernel, stride)              # (N, C, Ho, Wo, kh, kw)
    ho, wo = view.shape[2], view.shape[3]
    # (N, C, kh, kw, Ho, Wo): the one real copy of the im2col.
    cols = np.ascontiguousarray(view.transpose(0, 1, 4, 5, 2, 3))
    return cols.reshape(n, c * kh * kw, ho * wo)


def col2im(cols: np.ndarray, padded_shape: tuple[int, int, int, int],
           kernel: tuple[int, int], stride: int) -> np.ndarray:
    """Adjoint of `im2col`: scatter-add columns back onto the padded image.

    Input:  cols (N, C*kh*kw, Ho*Wo) (same layout as `im2col` returns), or
            already shaped (N, C, kh, kw, Ho, Wo).
    Output: (N, C, Hp, Wp) array where every window position receives the sum
            of the column entries that were read from it.

    Overlapping windows make this a sum, so it is done as one strided
    slice-add per kernel offset (kh*kw vectorised adds over the whole batch),
    which is much faster than `np.add.at`.
    """
    n, c, hp, wp = padded_shape
    kh, kw = kernel
    ho = (hp - kh) // stride + 1
    wo = (wp - kw) // stride + 1
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    image = np.zeros(padded_shape, dtype=cols.dtype)
    for di in range(kh):
        for dj in range(kw):
            # Kernel offset (di, dj) of output pixel (i, j) reads input pixel
            # (i*s + di, j*s + dj), so its gradient lands on this strided slice.
            image[:, :, di:di + stride * (ho - 1) + 1:stride,
                  dj:dj + stride * (wo - 1) + 1:stride] += cols[:, :, di, dj]
    return image


def add_window_offset(target: np.ndarray, values: np.ndarray, offset: tuple[int, int],
                      out_size: tuple[int, int], stride: int) -> None:
    """In place: target[:, :, di + i*s, dj + j*s] += values[:, :, i, j] for all (i, j).

    Used by pooling backward passes to route gradients from each kernel offset.
    """
    di, dj = offset
    ho, wo = out_size
    target[:, :, di:di + stride * (ho - 1) + 1:stride,
           dj:dj + stride * (wo - 1) + 1:stride] += values
