"""Elementwise activation functions, their derivatives, and forward/backward pairs.

For every activation `name` this module exposes
    name(x, ...)          -> f(x)
    name_grad(x, ...)     -> f'(x), elementwise (used e.g. for plotting)
    name_forward(x, ...)  -> (out, cache)
    name_backward(dout, cache) -> dx = dout * f'(x)
All functions are vectorised and keep the input's dtype.
Definitions (including softplus's `threshold` and gelu's exact erf form)
follow torch.nn.functional so results can be compared directly.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.special import erf, expit

# Python floats, so float32 inputs stay float32 (NumPy 2 promotes on np.float64 scalars).
_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # σ(x) = 1 / (1 + e^{-x}); expit never overflows for large |x|
    return expit(x)


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    s = expit(x)
    return s * (1 - s)  # σ'(x) = σ(x)(1 - σ(x))


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_grad(x: np.ndarray) -> np.ndarray:
    t = np.tanh(x)
    return 1 - t * t  # tanh'(x) = 1 - tanh²(x)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)  # max(0, x)


def relu_grad(x: np.ndarray) -> np.ndarray:
    # subgradient 0 at x = 0, as torch
    return (x > 0).astype(x.dtype)


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    return np.where(x > 0, x, negative_slope * x)  # x if x > 0 else a·x


def leaky_relu_grad(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    return np.where(x > 0, 1.0, negative_slope).astype(x.dtype)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    # x if x > 0 else α(e^x - 1); expm1 on min(x, 0) avoids overflow and keeps precision near 0
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_grad(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    # 1 if x > 0 else α e^x
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)


def gelu(x: np.ndarray) -> np.ndarray:
    # exact GELU: x Φ(x) = ½ x (1 + erf(x / √2)), torch's default (approximate='none')
    return 0.5 * x * (1 + erf(x / _SQRT_2))


def gelu_grad(x: np.ndarray) -> np.ndarray:
    cdf = 0.5 * (1 + erf(x / _SQRT_2))
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return cdf + x * pdf  # d/dx x Φ(x) = Φ(x) + x φ(x)


def softplus(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    # (1/β) log(1 + e^{βx}); torch returns x itself where βx > threshold
    bx = beta * x
    return np.where(bx > threshold, x, np.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)


def softplus_grad(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    bx = beta * x
    return np.where(bx > threshold, 1.0, expit(bx)).astype(x.dtype)  # σ(βx)


def silu(x: np.ndarray) -> np.ndarray:
    return x * expit(x)  # x σ(x)


def silu_grad(x: np.ndarray) -> np.ndarray:
    s = expit(x)
    return s * (1 + x * (1 - s))  # σ(x) + x σ(x)(1 - σ(x))


# name -> (function, derivative). Extra keyword parameters (negative_slope,
# alpha, beta, threshold) are passed to both.
ACTIVATIONS: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "elu": (elu, elu_grad),
    "gelu": (gelu, gelu_grad),
    "softplus": (softplus, softplus_grad),
    "silu": (silu, silu_grad),
}


def activation_forward(x: np.ndarray, name: str, **params) -> tuple[np.ndarray, tuple]:
    """Apply activation `name` (a key of ACTIVATIONS) to x of any shape.

    Returns (out, cache) with out.shape == x.shape.
    """
    fn, _ = ACTIVATIONS[name]
    return fn(x, **params), (x, name, params)


def activation_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dx = dout * f'(x) (chain rule for an elementwise map); same shape as x."""
    x, name, params = cache
    _, grad_fn = ACTIVATIONS[name]
    return dout * grad_fn(x, **params)


def sigmoid_forward(x):
    """(out, cache) = (σ(x), cache); any shape."""
    return activation_forward(x, "sigmoid")


def tanh_forward(x):
    """(out, cache) = (tanh(x), cache); any shape."""
    return activation_forward(x, "tanh")


def relu_forward(x):
    """(out, cache) = (max(0, x), cache); any shape."""
    return activation_forward(x, "relu")


def leaky_relu_forward(x, negative_slope: float = 0.01):
    """(out, cache) = (leaky_relu(x), cache); any shape."""
    return activation_forward(x, "leaky_relu", negative_slope=negative_slope)


def elu_forward(x, alpha: float = 1.0):
    """(out, cache) = (elu(x), cache); any shape."""
    return activation_forward(x, "elu", alpha=alpha)


def gelu_forward(x):
    """(out, cache) = (gelu(x), cache), exact erf form; any shape."""
    return activation_forward(x, "gelu")


def softplus_forward(x, beta: float = 1.0, threshold: float = 20.0):
    """(out, cache) = (softplus(x), cache); any shape."""
    return activation_forward(x, "softplus", beta=beta, threshold=threshold)


def silu_forward(x):
    """(out, cache) = (x σ(x), cache); any shape."""
    return activation_forward(x, "silu")


# Every backward is the same chain rule; the cache records which f' to use.
sigmoid_backward = tanh_backward = relu_backward = leaky_relu_backward = activation_backward
elu_backward = gelu_backward = softplus_backward = silu_backward = activation_backward
