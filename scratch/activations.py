"""Elementwise activation functions. Each is defined ONCE, below, as a pair of NumPy
functions f and f' registered with `_define`; everything else is derived from that entry:

    ACTIVATIONS[name]               its ActivationSpec; unpacks as the pair (f, f'):
                                        fn, grad_fn = ACTIVATIONS["elu"]
    name(x, ...)                    f(x)        e.g. relu(x), leaky_relu(x, negative_slope=0.2)
    name_grad(x, ...)               f'(x), elementwise (used e.g. for plotting)
    name_forward(x, ...)            (out, cache)
    name_backward(dout, cache)      dx = dout * f'(x)
    activation_forward(x, name, ...), activation_backward(dout, cache)   the same, by name
    scratch.layers.<LayerName>      one Layer class per activation, named as in torch.nn

Keyword parameters (negative_slope, alpha, beta, threshold) and their defaults are stated
once, in `_define`, with torch's defaults. All functions are vectorised and keep the
input's dtype. Definitions (softplus's `threshold`, gelu's exact erf form) follow
torch.nn.functional so results can be compared directly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np
from scipy.special import erf, expit

ArrayFn = Callable[..., np.ndarray]

# Python floats, so float32 inputs stay float32 (NumPy 2 promotes on np.float64 scalars).
_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class ActivationCache(NamedTuple):
    """What an activation's backward needs: the input and the f' to evaluate there."""
    x: np.ndarray
    spec: "ActivationSpec"
    params: dict[str, float]


@dataclass(frozen=True, eq=False)
class ActivationSpec:
    """One activation: f, f' and its keyword parameters with their (torch) defaults.

    Calling the spec evaluates f; `grad` evaluates f'; `forward`/`backward` are the
    cs231n-style pair. Parameters may be passed by keyword or, after x, by position.
    """
    name: str                   # key of ACTIVATIONS, e.g. "leaky_relu"
    layer_name: str             # torch.nn class name, also the scratch.layers class, e.g. "LeakyReLU"
    equation: str               # f in words, for docstrings and figure labels
    f: ArrayFn                  # f(x, **params)
    df: ArrayFn                 # f'(x, **params)
    params: dict[str, float] = field(default_factory=dict)

    def bind(self, args: tuple = (), kwargs: dict[str, Any] | None = None) -> dict[str, float]:
        """Every parameter's value: positional args in declaration order, then keywords, then defaults."""
        kwargs = dict(kwargs or {})
        names = list(self.params)
        if len(args) > len(names):
            raise TypeError(f"{self.name} takes {len(names)} parameter(s) {names}, got {len(args)}")
        for name, value in zip(names, args):
            if name in kwargs:
                raise TypeError(f"{self.name} got {name!r} twice")
            kwargs[name] = value
        unknown = set(kwargs) - set(names)
        if unknown:
            raise TypeError(f"{self.name} has no parameter(s) {sorted(unknown)}; it takes {names}")
        return {**self.params, **kwargs}

    def __call__(self, x: np.ndarray, *args, **kwargs) -> np.ndarray:
        """f(x)."""
        return self.f(x, **self.bind(args, kwargs))

    def grad(self, x: np.ndarray, *args, **kwargs) -> np.ndarray:
        """f'(x), elementwise."""
        return self.df(x, **self.bind(args, kwargs))

    def forward(self, x: np.ndarray, *args, **kwargs) -> tuple[np.ndarray, ActivationCache]:
        """(f(x), cache); any shape."""
        params = self.bind(args, kwargs)
        return self.f(x, **params), ActivationCache(x, self, params)

    @staticmethod
    def backward(dout: np.ndarray, cache: ActivationCache) -> np.ndarray:
        """dx = dout * f'(x): the chain rule for an elementwise map; same shape as x."""
        return dout * cache.spec.df(cache.x, **cache.params)

    def __iter__(self):
        # `fn, grad_fn = ACTIVATIONS[name]`: the pair, with default parameters
        return iter((self.__call__, self.grad))

    def __reduce__(self):
        # copies and pickles refer to the registered spec (its functions are module-level)
        return (_registered, (self.name,))

    def __repr__(self) -> str:
        return f"<activation {self.name}: {self.equation}>"


ACTIVATIONS: dict[str, ActivationSpec] = {}


def _define(name: str, layer_name: str, equation: str, f: ArrayFn, df: ArrayFn,
            **params: float) -> None:
    ACTIVATIONS[name] = ActivationSpec(name, layer_name, equation, f, df, params)


def _registered(name: str) -> ActivationSpec:
    return ACTIVATIONS[name]


# --------------------------------------------------------------------------- the definitions

def _sigmoid(x):
    return expit(x)                                  # σ(x) = 1 / (1 + e^{-x}); expit never overflows


def _sigmoid_grad(x):
    s = expit(x)
    return s * (1 - s)                               # σ'(x) = σ(x)(1 - σ(x))


_define("sigmoid", "Sigmoid", "σ(x) = 1 / (1 + e^(-x))", _sigmoid, _sigmoid_grad)


def _tanh_grad(x):
    t = np.tanh(x)
    return 1 - t * t                                 # tanh'(x) = 1 - tanh²(x)


_define("tanh", "Tanh", "tanh(x)", np.tanh, _tanh_grad)


def _relu(x):
    return np.maximum(x, 0)                          # max(0, x)


def _relu_grad(x):
    return (x > 0).astype(x.dtype)                   # 1 if x > 0 else 0 (subgradient 0 at 0, as torch)


_define("relu", "ReLU", "max(0, x)", _relu, _relu_grad)


def _leaky_relu(x, negative_slope):
    return np.where(x > 0, x, negative_slope * x)    # x if x > 0 else a·x


def _leaky_relu_grad(x, negative_slope):
    return np.where(x > 0, 1.0, negative_slope).astype(x.dtype)  # 1 if x > 0 else a


_define("leaky_relu", "LeakyReLU", "x if x > 0 else a·x", _leaky_relu, _leaky_relu_grad,
        negative_slope=0.01)


def _elu(x, alpha):
    # x if x > 0 else α(e^x - 1); expm1 on min(x, 0) avoids overflow and keeps precision near 0
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _elu_grad(x, alpha):
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)  # 1 if x > 0 else α e^x


_define("elu", "ELU", "x if x > 0 else α(e^x - 1)", _elu, _elu_grad, alpha=1.0)


def _gelu(x):
    # exact GELU: x Φ(x) = ½ x (1 + erf(x / √2)), torch's default (approximate='none')
    return 0.5 * x * (1 + erf(x / _SQRT_2))


def _gelu_grad(x):
    cdf = 0.5 * (1 + erf(x / _SQRT_2))               # Φ(x)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)       # φ(x) = e^{-x²/2} / √(2π)
    return cdf + x * pdf                             # d/dx x Φ(x) = Φ(x) + x φ(x)


_define("gelu", "GELU", "x Φ(x)", _gelu, _gelu_grad)


def _softplus(x, beta, threshold):
    # (1/β) log(1 + e^{βx}); torch returns x itself where βx > threshold
    bx = beta * x
    return np.where(bx > threshold, x, np.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)


def _softplus_grad(x, beta, threshold):
    bx = beta * x
    return np.where(bx > threshold, 1.0, expit(bx)).astype(x.dtype)  # σ(βx), 1 past the threshold


_define("softplus", "Softplus", "(1/β) log(1 + e^(βx))", _softplus, _softplus_grad,
        beta=1.0, threshold=20.0)


def _silu(x):
    return x * expit(x)                              # x σ(x)


def _silu_grad(x):
    s = expit(x)
    return s * (1 + x * (1 - s))                     # σ(x) + x σ(x)(1 - σ(x))


_define("silu", "SiLU", "x σ(x)", _silu, _silu_grad)


# --------------------------------------------------------------------------- derived forms

def activation_forward(x: np.ndarray, name: str, **params) -> tuple[np.ndarray, ActivationCache]:
    """Apply activation `name` (a key of ACTIVATIONS) to x of any shape.

    Returns (out, cache) with out.shape == x.shape.
    """
    return ACTIVATIONS[name].forward(x, **params)


activation_backward = ActivationSpec.backward

# The module-level functional forms listed in the docstring, for every registered activation:
# relu, relu_grad, relu_forward, relu_backward, leaky_relu, ...
for _spec in ACTIVATIONS.values():
    globals().update({_spec.name: _spec, f"{_spec.name}_grad": _spec.grad,
                      f"{_spec.name}_forward": _spec.forward,
                      f"{_spec.name}_backward": activation_backward})
del _spec
