"""Functional core: each op is a `*_forward(...) -> (out, cache)` and a
`*_backward(dout, cache) -> gradients` pair, in the style of cs231n's layers.py.

Layouts follow PyTorch so weights can be copied across unchanged:
    linear weight   (out_features, in_features)        out = x Wᵀ + b
    conv2d weight   (F, C, kh, kw), images (N, C, H, W)
    norm gamma/beta (C,) for batch norm, normalized_shape for layer norm
    (the RNN, in torch's layout too, is in rnn.py; activations in activations.py)
Caches are NamedTuples (LinearCache, ConvCache, MaxPoolCache, AvgPoolCache, BatchNormCache,
LayerNormCache),
so a backward pass reads its fields by name.
Every function preserves the dtype of its inputs (float32 or float64).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .im2col import (add_window_offset, col2im, conv_output_size, im2col, pad_images,
                     unpad_images, windows)


def as_pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """(v, v) for an int, else the pair itself (kernel sizes may be given either way)."""
    return (value, value) if isinstance(value, (int, np.integer)) else tuple(value)


# --------------------------------------------------------------------------- caches

class LinearCache(NamedTuple):
    x: np.ndarray                        # (N, in) input
    weight: np.ndarray                   # (out, in)
    has_bias: bool


class ConvCache(NamedTuple):
    cols: np.ndarray                     # (N, C*kh*kw, Ho*Wo) im2col matrix of the padded input
    weight: np.ndarray                   # (F, C, kh, kw)
    padded_shape: tuple[int, int, int, int]  # (N, C, H + 2p, W + 2p)
    stride: int
    padding: int
    has_bias: bool


class MaxPoolCache(NamedTuple):
    argmax: np.ndarray                   # (N, C, Ho, Wo) index of each window's maximum in kh*kw order
    padded_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: int
    padding: int


class AvgPoolCache(NamedTuple):
    padded_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: int
    padding: int


class BatchNormCache(NamedTuple):
    x_hat: np.ndarray                    # (x - μ) / √(σ² + ε), shape of x
    gamma: np.ndarray                    # (C,)
    inv_std: np.ndarray                  # (C,) 1 / √(σ² + ε)
    axes: tuple[int, ...]                # batch and spatial axes: the statistics are per channel
    shape: tuple[int, ...]               # how a (C,) array broadcasts over x
    training: bool                       # batch statistics (True) or the running ones


class LayerNormCache(NamedTuple):
    x_hat: np.ndarray                    # (x - μ) / √(σ² + ε), shape of x
    gamma: np.ndarray                    # normalized_shape
    inv_std: np.ndarray                  # 1 / √(σ² + ε) per sample, broadcastable against x
    axes: tuple[int, ...]                # the normalised trailing axes


# --------------------------------------------------------------------------- linear

def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None):
    """Affine map.

    x: (N, in) (or (..., in)); weight: (out, in) (torch layout); bias: (out,) or None.
    Returns out: (N, out) (or (..., out)), cache.
    """
    out = x @ weight.T  # y = x Wᵀ + b
    if bias is not None:
        out = out + bias
    return out, LinearCache(x, weight, bias is not None)


def linear_backward(dout: np.ndarray, cache: LinearCache):
    """dout: (N, out). Returns dx (N, in), dweight (out, in), dbias (out,) or None."""
    x, weight, has_bias = cache
    dout_2d = dout.reshape(-1, dout.shape[-1])
    dx = dout @ weight                                            # ∂L/∂x = δ W
    dweight = dout_2d.T @ x.reshape(-1, x.shape[-1])              # ∂L/∂W = δᵀ x
    dbias = dout_2d.sum(axis=0) if has_bias else None             # ∂L/∂b = Σₙ δₙ
    return dx, dweight, dbias


# --------------------------------------------------------------------------- conv2d

def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                   stride: int = 1, padding: int = 0):
    """2-D cross-correlation (what torch.nn.functional.conv2d computes).

    x: (N, C, H, W); weight: (F, C, kh, kw); bias: (F,) or None.
    Returns out: (N, F, Ho, Wo) with Ho = (H + 2p - kh)//s + 1 (same for Wo), and a ConvCache.
    The whole convolution is one batched matrix multiply on the im2col matrix.
    """
    n, c, h, w = x.shape
    f, c_w, kh, kw = weight.shape
    if c != c_w:
        raise ValueError(f"input has {c} channels but weight expects {c_w}")
    ho = conv_output_size(h, kh, stride=stride, padding=padding)
    wo = conv_output_size(w, kw, stride=stride, padding=padding)
    x_padded = pad_images(x, padding)
    cols = im2col(x_padded, (kh, kw), stride)                     # (N, C*kh*kw, Ho*Wo)
    weight_matrix = weight.reshape(f, c * kh * kw)
    out = np.matmul(weight_matrix, cols)                          # y[n] = W · cols[n]
    out = out.reshape(n, f, ho, wo)
    if bias is not None:
        out += bias.reshape(1, f, 1, 1)
    return out, ConvCache(cols, weight, x_padded.shape, stride, padding, bias is not None)


def conv2d_backward(dout: np.ndarray, cache: ConvCache):
    """dout: (N, F, Ho, Wo). Returns dx (N, C, H, W), dweight (F, C, kh, kw), dbias (F,) or None."""
    n, f = dout.shape[:2]
    weight = cache.weight
    dout_matrix = dout.reshape(n, f, -1)                          # (N, F, Ho*Wo)
    weight_matrix = weight.reshape(f, -1)
    # ∂L/∂W = Σₙ δ[n] · cols[n]ᵀ: a batched matmul then a sum over the small (N, F, K)
    # result; tensordot over (n, pixel) would first copy δ into a transposed layout (~50x slower)
    dweight = np.matmul(dout_matrix, cache.cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    dbias = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None  # ∂L/∂b_f = Σ δ[:, f]
    dcols = np.matmul(weight_matrix.T, dout_matrix)               # ∂L/∂cols[n] = Wᵀ δ[n]
    dx_padded = col2im(dcols, cache.padded_shape, weight.shape[2:], cache.stride)
    dx = np.ascontiguousarray(unpad_images(dx_padded, cache.padding))
    return dx, dweight, dbias


# --------------------------------------------------------------------------- pooling

def max_pool2d_forward(x: np.ndarray, kernel_size: int | tuple[int, int],
                       stride: int | None = None, padding: int = 0):
    """Max pooling. x: (N, C, H, W) -> out (N, C, Ho, Wo), cache.

    stride defaults to the kernel size (as torch); padding pads with -inf.
    Ties go to the first maximum in row-major window order, as in torch.
    """
    kh, kw = as_pair(kernel_size)
    stride = kh if stride is None else stride
    n, c, h, w = x.shape
    ho = conv_output_size(h, kh, stride=stride, padding=padding)
    wo = conv_output_size(w, kw, stride=stride, padding=padding)
    x_padded = pad_images(x, padding, value=-np.inf)
    flat_windows = windows(x_padded, (kh, kw), stride).reshape(n, c, ho, wo, kh * kw)
    argmax = flat_windows.argmax(axis=-1)                         # index into kh*kw window
    out = np.take_along_axis(flat_windows, argmax[..., None], axis=-1)[..., 0]
    return out, MaxPoolCache(argmax, x_padded.shape, (kh, kw), stride, padding)


def max_pool2d_backward(dout: np.ndarray, cache: MaxPoolCache):
    """dout: (N, C, Ho, Wo). Returns dx (N, C, H, W): each window's gradient goes to its argmax."""
    argmax, padded_shape, (kh, kw), stride, padding = cache
    dx_padded = np.zeros(padded_shape, dtype=dout.dtype)
    for k in range(kh * kw):
        # one vectorised strided add per kernel offset; overlapping windows accumulate
        routed = np.where(argmax == k, dout, 0)
        add_window_offset(dx_padded, routed, divmod(k, kw), dout.shape[2:], stride)
    return np.ascontiguousarray(unpad_images(dx_padded, padding))


def avg_pool2d_forward(x: np.ndarray, kernel_size: int | tuple[int, int],
                       stride: int | None = None, padding: int = 0):
    """Average pooling. x: (N, C, H, W) -> out (N, C, Ho, Wo), cache.

    Zero padding counts towards the average (torch's count_include_pad=True).
    """
    kh, kw = as_pair(kernel_size)
    stride = kh if stride is None else stride
    x_padded = pad_images(x, padding)
    out = windows(x_padded, (kh, kw), stride).mean(axis=(-2, -1))  # y = (1/k²) Σ_window x
    return out.astype(x.dtype, copy=False), AvgPoolCache(x_padded.shape, (kh, kw), stride, padding)


def avg_pool2d_backward(dout: np.ndarray, cache: AvgPoolCache):
    """dout: (N, C, Ho, Wo). Returns dx (N, C, H, W)."""
    padded_shape, (kh, kw), stride, padding = cache
    dx_padded = np.zeros(padded_shape, dtype=dout.dtype)
    share = dout / (kh * kw)                                      # each input in a window gets δ/k²
    for di in range(kh):
        for dj in range(kw):
            add_window_offset(dx_padded, share, (di, dj), dout.shape[2:], stride)
    return np.ascontiguousarray(unpad_images(dx_padded, padding))


# --------------------------------------------------------------------------- flatten

def flatten_forward(x: np.ndarray):
    """x: (N, d1, ..., dk) -> out (N, d1*...*dk), cache."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout: np.ndarray, cache):
    """dout: (N, D) -> dx with the original input shape."""
    return dout.reshape(cache)


# --------------------------------------------------------------------------- dropout

def dropout_forward(x: np.ndarray, p: float, training: bool = True,
                    rng: np.random.Generator | None = None, mask: np.ndarray | None = None):
    """Inverted dropout: zero each element with probability p, scale survivors by 1/(1-p).

    x: any shape. In eval mode (training=False) or with p == 0 it is the identity.
    `mask`, if given, is the keep mask (bool or 0/1, shape of x) used instead of
    drawing one from `rng` - for gradient checks and reproducible tests.
    Returns out (shape of x), cache (the scaled mask, or None for identity).
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x, None
    if p == 1:
        scaled_mask = np.zeros_like(x)
    else:
        if mask is None:
            rng = np.random.default_rng() if rng is None else rng
            mask = rng.random(x.shape) >= p                       # keep with probability 1 - p
        # scaling at train time keeps E[out] = x, so eval needs no rescaling
        scaled_mask = mask.astype(x.dtype) / x.dtype.type(1 - p)
    return x * scaled_mask, scaled_mask


def dropout_backward(dout: np.ndarray, cache):
    """dx = dout * scaled_mask (identity if forward was)."""
    return dout if cache is None else dout * cache


# --------------------------------------------------------------------------- batch norm

def _batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    # normalise each channel (axis 1) over every other axis
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)                         # broadcast (C,) over x
    if training:
        count = x.size // x.shape[1]
        if count == 1:  # σ² would be 0 and x̂ = 0 for every input: torch refuses, and so does this
            raise ValueError("Expected more than 1 value per channel when training, "
                             f"got input size {tuple(x.shape)}")
        mean = x.mean(axis=axes)                                  # μ = (1/m) Σ x
        centered = x - mean.reshape(shape)
        var = (centered * centered).mean(axis=axes)               # σ² = (1/m) Σ (x - μ)²  (biased)
        if running_mean is not None:
            # torch's convention: r ← (1 - momentum) r + momentum · batch statistic,
            # with the unbiased variance m/(m-1) σ² for the running variance
            unbiased = var * (count / (count - 1))
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * unbiased
    else:
        centered = x - running_mean.reshape(shape)
        var = running_var
    inv_std = 1.0 / np.sqrt(var + eps)                            # 1/√(σ² + ε)
    x_hat = centered * inv_std.reshape(shape)                     # x̂ = (x - μ)/√(σ² + ε)
    out = gamma.reshape(shape) * x_hat + beta.reshape(shape)     # y = γ x̂ + β
    return out.astype(x.dtype, copy=False), BatchNormCache(x_hat, gamma, inv_std, axes, shape, training)


def _batchnorm_backward(dout, cache: BatchNormCache):
    x_hat, gamma, inv_std, axes, shape, training = cache
    dbeta = dout.sum(axis=axes)                                   # ∂L/∂β = Σ δ
    dgamma = (dout * x_hat).sum(axis=axes)                        # ∂L/∂γ = Σ δ x̂
    dx_hat = dout * gamma.reshape(shape)
    if not training:
        # running statistics are constants: a per-channel affine map
        return dx_hat * inv_std.reshape(shape), dgamma, dbeta
    count = dout.size // dout.shape[1]
    # ∂L/∂x = (1/(m√(σ²+ε))) (m ∂x̂ - Σ ∂x̂ - x̂ Σ ∂x̂·x̂), μ and σ² depending on x
    dx = (inv_std / count).reshape(shape) * (
        count * dx_hat
        - dx_hat.sum(axis=axes).reshape(shape)
        - x_hat * (dx_hat * x_hat).sum(axis=axes).reshape(shape)
    )
    return dx, dgamma, dbeta


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      running_mean: np.ndarray | None, running_var: np.ndarray | None,
                      training: bool = True, momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalisation for x: (N, D); gamma, beta, running stats: (D,).

    Train mode normalises with batch statistics and UPDATES running_mean /
    running_var IN PLACE (torch semantics: momentum 0.1, unbiased running var);
    pass None for both to skip tracking. Eval mode uses the running statistics.
    Like torch, train mode raises ValueError when a channel has a single value (N = 1).
    Returns out (N, D), cache.
    """
    return _batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)


def batchnorm_backward(dout: np.ndarray, cache):
    """dout: (N, D). Returns dx (N, D), dgamma (D,), dbeta (D,)."""
    return _batchnorm_backward(dout, cache)


def spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                              running_mean: np.ndarray | None, running_var: np.ndarray | None,
                              training: bool = True, momentum: float = 0.1, eps: float = 1e-5):
    """Batch norm for images, x: (N, C, H, W); per-channel statistics over (N, H, W).

    Parameters and running statistics are (C,); see `batchnorm_forward`.
    """
    return _batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)


def spatial_batchnorm_backward(dout: np.ndarray, cache):
    """dout: (N, C, H, W). Returns dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    return _batchnorm_backward(dout, cache)


# --------------------------------------------------------------------------- layer norm

def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5):
    """Layer normalisation over the trailing gamma.ndim axes (torch's normalized_shape).

    x: (N, ..., *normalized_shape); gamma, beta: normalized_shape. Same in train and eval.
    Returns out (shape of x), cache.
    """
    axes = tuple(range(x.ndim - gamma.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)                       # μ per sample
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)    # σ² per sample (biased)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = centered * inv_std                                    # x̂ = (x - μ)/√(σ² + ε)
    out = gamma * x_hat + beta                                    # y = γ x̂ + β
    return out.astype(x.dtype, copy=False), LayerNormCache(x_hat, gamma, inv_std, axes)


def layernorm_backward(dout: np.ndarray, cache: LayerNormCache):
    """dout: shape of x. Returns dx (shape of x), dgamma, dbeta (normalized_shape)."""
    x_hat, gamma, inv_std, axes = cache
    batch_axes = tuple(range(dout.ndim - gamma.ndim))
    dbeta = dout.sum(axis=batch_axes)                             # ∂L/∂β = Σₙ δ
    dgamma = (dout * x_hat).sum(axis=batch_axes)                  # ∂L/∂γ = Σₙ δ x̂
    dx_hat = dout * gamma
    count = gamma.size
    # same form as batch norm, with statistics taken over features instead of the batch
    dx = (inv_std / count) * (
        count * dx_hat
        - dx_hat.sum(axis=axes, keepdims=True)
        - x_hat * (dx_hat * x_hat).sum(axis=axes, keepdims=True)
    )
    return dx, dgamma, dbeta
