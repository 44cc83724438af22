"""Finite-difference gradient checking (cs231n style), for float64 inputs.

    numerical_gradient(f, x)       central differences of a scalar (or dout-weighted) f
    relative_error(a, b)           max_i |a_i - b_i| / max(|a_i| + |b_i|, tiny)
    check_layer(layer, x)          {'x': err, 'weight': err, ...} for a Layer or a
                                   functional forward/backward pair
    check_loss(loss_fn, pred, y)   {'pred': err}
    check_all_layers(rng)          one row per op of the package, all in float64
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from . import activations as act
from . import functional as F
from . import losses
from .layers import (Activation, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Layer, LayerNorm,
                     Linear, MaxPool2d)
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward

TINY = 1e-8


def numerical_gradient(f: Callable[[np.ndarray], np.ndarray | float], x: np.ndarray,
                       eps: float = 1e-6, dout: np.ndarray | None = None,
                       order: int = 2) -> np.ndarray:
    """Central-difference gradient of f at x, element by element.

    order=2: ∂f/∂x_i ≈ (f(x + h e_i) - f(x - h e_i)) / 2h                 error O(h²)
    order=4: ∂f/∂x_i ≈ (8[f(x+h) - f(x-h)] - [f(x+2h) - f(x-2h)]) / 12h  error O(h⁴)
    f(x) is called with x perturbed IN PLACE (so closures over x or over arrays that
    alias it also see the change); x is restored afterwards. If f returns an array,
    `dout` (same shape) turns it into the scalar Σ f(x)·dout, whose gradient is the
    vector-Jacobian product a backward pass computes.
    """
    if order not in (2, 4):
        raise ValueError("order must be 2 or 4")

    def central(index, original, step):
        # f(x + step e_i) - f(x - step e_i), and the step actually taken (x ± step is rounded)
        x[index] = original + step
        upper, f_plus = x[index], np.array(f(x), dtype=np.float64)
        x[index] = original - step
        lower, f_minus = x[index], np.array(f(x), dtype=np.float64)
        x[index] = original
        # Differencing outputs before weighting by dout keeps outputs that x_i does not
        # touch exactly cancelled, instead of adding their round-off.
        difference = f_plus - f_minus
        weighted = np.sum(difference * dout) if dout is not None else float(difference)
        return weighted, upper - lower

    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        near, near_width = central(index, original, eps)
        if order == 2:
            grad[index] = near / near_width
        else:
            far, _ = central(index, original, 2 * eps)
            grad[index] = (8 * near - far) / (6 * near_width)  # 6·(2h) = 12h
    return grad


def relative_error(a: np.ndarray, b: np.ndarray, tiny: float = TINY) -> float:
    """max over elements of |a - b| / max(|a| + |b|, tiny) (cs231n's rel_error)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), tiny)))


def _check_layer_object(layer: Layer, x: np.ndarray, dout, eps, order, rng,
                        training) -> dict[str, float]:
    # Layers that draw random numbers (Dropout) replay the same stream on every call,
    # so all finite-difference evaluations see the same mask.
    layer_rng = getattr(layer, "rng", None)
    rng_state = copy.deepcopy(layer_rng.bit_generator.state) if layer_rng is not None else None

    def run(_=None):
        if layer_rng is not None:
            layer_rng.bit_generator.state = copy.deepcopy(rng_state)
        return layer.forward(x, training)

    out = run()
    if dout is None:
        dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    analytic = {"x": dx, **{name: grad.copy() for name, grad in layer.grads.items()}}
    errors = {"x": relative_error(dx, numerical_gradient(run, x, eps, dout, order))}
    for name, param in layer.params.items():
        errors[name] = relative_error(analytic[name],
                                      numerical_gradient(run, param, eps, dout, order))
    return errors


def _check_functional(forward, backward, inputs: dict[str, np.ndarray], dout, eps, order,
                      rng, kwargs) -> dict[str, float]:
    names, arrays = list(inputs), list(inputs.values())

    def run(_=None):
        return forward(*arrays, **kwargs)[0]

    out = run()
    if dout is None:
        dout = rng.standard_normal(np.shape(out))
    grads = backward(dout, forward(*arrays, **kwargs)[1])
    if not isinstance(grads, tuple):
        grads = (grads,)
    errors = {}
    for name, array, grad in zip(names, arrays, grads):
        if grad is not None:
            errors[name] = relative_error(grad, numerical_gradient(run, array, eps, dout, order))
    return errors


def check_layer(layer_or_forward, inputs, backward: Callable | None = None,
                dout: np.ndarray | None = None, eps: float = 1e-6, order: int = 2,
                rng: np.random.Generator | int | None = None, **kwargs) -> dict[str, float]:
    """Relative errors between analytic and numerical gradients.

    Layer object: `inputs` is the input array x; returns {'x': ..., <param>: ...} for
    every entry of layer.params (forward runs with kwargs.get('training', True)).
    Functional pair: `layer_or_forward(*inputs.values(), **kwargs) -> (out, cache)` and
    `backward(dout, cache)` returning gradients in the order of the `inputs` dict
    (name -> array); returns {name: error} (inputs whose gradient is None are skipped).
    dout defaults to a standard-normal array of the output's shape.
    """
    rng = np.random.default_rng(rng)
    if isinstance(layer_or_forward, Layer):
        training = kwargs.pop("training", True)
        return _check_layer_object(layer_or_forward, inputs, dout, eps, order, rng, training)
    if backward is None:
        raise ValueError("a forward function needs its backward function")
    return _check_functional(layer_or_forward, backward, inputs, dout, eps, order, rng, kwargs)


def check_loss(loss_fn: Callable, pred: np.ndarray, target: np.ndarray, eps: float = 1e-6,
               order: int = 2, **kwargs) -> dict[str, float]:
    """{'pred': relative error} of loss_fn(pred, target, **kwargs) -> (loss, dpred)."""
    _, dpred = loss_fn(pred, target, **kwargs)
    numeric = numerical_gradient(lambda p: loss_fn(p, target, **kwargs)[0], pred, eps,
                                 order=order)
    return {"pred": relative_error(dpred, numeric)}


def _away_from_zero(rng, shape, margin=0.1):
    # |x| ≥ margin keeps kinks (relu at 0, |x| at 0, ...) far outside the ±eps probe
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(margin, 2.0, size=shape)


def _distinct(rng, shape):
    # a permutation of well-spaced values: no near-ties inside any pooling window
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 - 1.0


def check_all_layers(rng: np.random.Generator | int | None = 0, eps: float = 3e-4,
                     order: int = 4) -> list[dict]:
    """Gradient-check every op of the package in float64.

    Returns one dict per op: {'name', 'max_rel_error', 'errors' (per input/parameter),
    'input_shape'}. The elementwise relative error is sensitive wherever a gradient entry
    happens to be tiny, so the default uses the 4th-order stencil with h = 3e-4
    (truncation ~h⁴ ≈ 1e-14, round-off ~1e-16/h ≈ 3e-13); inputs are kept ≥ 0.1 away
    from kinks (relu, |x|, max ties), far outside the ±2h probe.
    """
    rng = np.random.default_rng(rng)
    f64 = np.float64
    options = {"eps": eps, "order": order}
    results = []

    def record(name, errors, input_shape):
        results.append({"name": name, "max_rel_error": max(errors.values()),
                        "errors": errors, "input_shape": tuple(input_shape)})

    def layer_check(layer, x):
        return check_layer(layer, x, rng=rng, **options)

    def function_check(forward, backward, inputs, **kwargs):
        return check_layer(forward, inputs, backward, rng=rng, **options, **kwargs)

    def loss_check(loss_fn, pred, target, **kwargs):
        return check_loss(loss_fn, pred, target, **options, **kwargs)

    def randomise(layer):
        for param in layer.params.values():
            param[...] = rng.standard_normal(param.shape)
        return layer

    x = rng.standard_normal((4, 5))
    record("linear", layer_check(Linear(5, 3, rng=rng, dtype=f64), x), x.shape)
    x = rng.standard_normal((2, 3, 7, 6))  # non-square, odd size with stride 2
    conv = Conv2d(3, 4, 3, stride=2, padding=1, rng=rng, dtype=f64)
    record("conv2d (stride 2, padding 1)", layer_check(conv, x), x.shape)
    x = _distinct(rng, (2, 3, 7, 6))
    record("maxpool2d (k3, s2)", layer_check(MaxPool2d(3, stride=2), x), x.shape)
    x = rng.standard_normal((2, 3, 7, 6))
    record("avgpool2d (k3, s2, p1)", layer_check(AvgPool2d(3, stride=2, padding=1), x), x.shape)

    activation_params = {"leaky_relu": {"negative_slope": 0.1}, "elu": {"alpha": 1.3}}
    for name in act.ACTIVATIONS:
        x = _away_from_zero(rng, (3, 4))
        record(name, layer_check(Activation(name, **activation_params.get(name, {})), x), x.shape)

    logits, labels = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    record("softmax_cross_entropy", loss_check(losses.softmax_cross_entropy, logits, labels),
           logits.shape)
    probs, targets = rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0, 1, (4, 3))
    record("bce", loss_check(losses.bce, probs, targets), probs.shape)
    logits, targets = rng.standard_normal((4, 3)), rng.integers(0, 2, (4, 3)).astype(f64)
    record("bce_with_logits", loss_check(losses.bce_with_logits, logits, targets), logits.shape)
    target = rng.standard_normal((4, 3))
    pred = target + _away_from_zero(rng, (4, 3))
    record("mse", loss_check(losses.mse, pred, target), pred.shape)
    target = rng.standard_normal((4, 3))
    pred = target + _away_from_zero(rng, (4, 3))
    record("mae", loss_check(losses.mae, pred, target), pred.shape)
    # differences on both sides of delta, none within 0.1 of a kink
    diff = rng.choice([-1, 1], (4, 3)) * np.where(rng.random((4, 3)) < 0.5,
                                                  rng.uniform(0.1, 0.9, (4, 3)),
                                                  rng.uniform(1.1, 2.5, (4, 3)))
    record("huber (delta 1)", loss_check(losses.huber, target + diff, target, delta=1.0),
           diff.shape)

    n, d, h, steps = 3, 4, 5, 4
    inputs = {"x": rng.standard_normal((n, d)), "prev_h": rng.standard_normal((n, h)),
              "weight_ih": rng.standard_normal((h, d)) * 0.5,
              "weight_hh": rng.standard_normal((h, h)) * 0.5, "bias": rng.standard_normal(h)}
    record("rnn_step", function_check(rnn_step_forward, rnn_step_backward, inputs), (n, d))
    inputs = {"x": rng.standard_normal((n, steps, d)), "h0": rng.standard_normal((n, h)),
              "weight_ih": rng.standard_normal((h, d)) * 0.5,
              "weight_hh": rng.standard_normal((h, h)) * 0.5, "bias": rng.standard_normal(h)}
    record("rnn_sequence (BPTT, T=4)", function_check(rnn_forward, rnn_backward, inputs),
           (n, steps, d))

    x = rng.standard_normal((6, 4)) * 2 + 1
    record("batchnorm1d (train)", layer_check(randomise(BatchNorm1d(4, dtype=f64)), x), x.shape)
    x = rng.standard_normal((3, 2, 4, 3)) * 2 + 1
    record("batchnorm2d (train)", layer_check(randomise(BatchNorm2d(2, dtype=f64)), x), x.shape)
    x = rng.standard_normal((4, 6)) * 2 + 1
    record("layernorm", layer_check(randomise(LayerNorm(6, dtype=f64)), x), x.shape)

    x = rng.standard_normal((4, 5))
    mask = rng.random((4, 5)) >= 0.4
    record("dropout (p 0.4, fixed mask)",
           function_check(F.dropout_forward, F.dropout_backward, {"x": x}, p=0.4, training=True,
                          mask=mask), x.shape)
    return results
