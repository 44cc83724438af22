"""Shared pieces of the scratch tests.

`torch_ref`  float64 leaf tensors, vector-Jacobian products via autograd, and the comparison
             every torch check uses (rtol 1e-10).
LAYER_CASES  one factory per layer class of scratch.layers (every activation included): a float64
             scratch layer with random shapes, its input, and the same map built in torch. Tests
             that take `case_name` are run once per entry (pytest_generate_tests below), so the
             sweeps and the mutation tests cover every layer; test_layers checks that no layer
             class is missing from the table.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch

from scratch import activations as act
from scratch.layers import (ACTIVATION_LAYERS, RNN, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d,
                            Dropout, Flatten, Layer, LayerNorm, Linear, MaxPool2d)

RTOL, ATOL = 1e-10, 1e-12
F64 = np.float64


@pytest.fixture(autouse=True)
def _one_torch_thread(single_torch_thread):
    """Tiny torch and NumPy ops alternate in every test here (see tests/conftest.py)."""


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


class TorchReference:
    @staticmethod
    def leaf(array, grad: bool = True) -> torch.Tensor:
        return torch.tensor(array, dtype=torch.float64, requires_grad=grad)

    @staticmethod
    def vjp(out: torch.Tensor, dout: np.ndarray, *tensors: torch.Tensor) -> list[np.ndarray]:
        """d<out, dout>/d tensor for each tensor, by autograd."""
        grads = torch.autograd.grad(out, tensors, torch.from_numpy(np.asarray(dout, dtype=F64)))
        return [g.numpy() for g in grads]

    @staticmethod
    def assert_close(ours, theirs, what: str = "") -> None:
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)

    def compare_case(self, case: "LayerCase", rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Forward output, dx and every parameter gradient of the scratch layer against torch.

        Failures name what differs: "[forward]", "[gradient x]", "[gradient weight]", ...
        Returns the scratch gradients {"x": dx, <param>: grad}.
        """
        x_t = self.leaf(case.x)
        out_t = case.torch_forward(x_t)
        out = case.layer.forward(case.x, case.training)
        assert out.shape == tuple(out_t.shape)
        self.assert_close(out, out_t.detach().numpy(), "[forward]")
        dout = rng.standard_normal(out.shape)
        ours = {"x": case.layer.backward(dout)}
        ours.update((name, grad.copy()) for name, grad in case.layer.grads.items())
        assert set(ours) == {"x", *case.torch_params}, "every parameter is compared"
        theirs = self.vjp(out_t, dout, x_t, *case.torch_params.values())
        for name, grad in zip(["x", *case.torch_params], theirs):
            self.assert_close(ours[name], grad, f"[gradient {name}]")
        for name, buffer in case.layer.buffers.items():  # batch norm's running statistics
            self.assert_close(buffer, getattr(case.torch_forward, name).numpy(), f"[{name}]")
        return ours


@pytest.fixture
def torch_ref() -> TorchReference:
    return TorchReference()


# --------------------------------------------------------------------------- every layer

@dataclass
class LayerCase:
    layer: Layer                                     # float64 scratch layer
    x: np.ndarray                                    # float64 input
    torch_forward: Callable[[torch.Tensor], torch.Tensor]
    torch_params: dict[str, torch.Tensor] = field(default_factory=dict)  # scratch name -> torch leaf
    training: bool = True


def _random_params(rng, module: torch.nn.Module) -> None:
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.from_numpy(rng.standard_normal(tuple(param.shape))))


def _linear(rng, n):
    d_in, d_out, bias = rng.integers(1, 7), rng.integers(1, 6), bool(rng.integers(2))
    module = torch.nn.Linear(d_in, d_out, bias=bias).double()
    _random_params(rng, module)
    shape = (n, d_in) if rng.random() < 0.75 else (n, rng.integers(1, 4), d_in)  # (..., in) too
    return LayerCase(Linear.from_torch(module, dtype=F64), rng.standard_normal(shape), module,
                     dict(module.named_parameters()))


def _conv2d(rng, n):
    c, f, padding, stride = rng.integers(1, 4), rng.integers(1, 4), rng.integers(0, 3), rng.integers(1, 4)
    h, w = rng.integers(1, 8, 2)
    kernel = (int(rng.integers(1, h + 2 * padding + 1)), int(rng.integers(1, w + 2 * padding + 1)))
    module = torch.nn.Conv2d(c, f, kernel, stride=stride, padding=padding,
                             bias=bool(rng.integers(2))).double()
    _random_params(rng, module)
    return LayerCase(Conv2d.from_torch(module, dtype=F64), rng.standard_normal((n, c, h, w)),
                     module, dict(module.named_parameters()))


def _pool(layer_cls, torch_cls):
    def make(rng, n):
        kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = int(rng.integers(0, min(kernel) // 2 + 1))      # torch: padding ≤ kernel / 2
        stride = int(rng.integers(1, 4))
        h, w = (int(rng.integers(max(k - 2 * padding, 1), 6)) for k in kernel)
        x = rng.standard_normal((n, rng.integers(1, 3), h, w))
        return LayerCase(layer_cls(kernel, stride, padding), x, torch_cls(kernel, stride, padding))
    return make


def _flatten(rng, n):
    x = rng.standard_normal((n, *rng.integers(1, 4, rng.integers(1, 4))))
    return LayerCase(Flatten(), x, torch.nn.Flatten())


def _dropout(rng, n):
    p, seed = float(rng.uniform(0.1, 0.7)), int(rng.integers(1 << 30))
    x = rng.standard_normal((n, *rng.integers(1, 5, 2)))
    # inverted dropout with the very mask the layer will draw (same generator state)
    keep = torch.from_numpy(np.random.default_rng(seed).random(x.shape) >= p)
    return LayerCase(Dropout(p, rng=seed), x, lambda t: t * keep / (1 - p))


def _batchnorm(layer_cls, torch_cls, spatial_dims):
    def make(rng, n):
        channels = int(rng.integers(1, 5))
        rest = tuple(rng.integers(1, 4, spatial_dims))
        training = bool(rng.random() < 0.7)
        if training and n * int(np.prod(rest)) < 3:
            # one value per channel is an error in training (tested in test_layers); with two,
            # x̂ = ±1 and ∂L/∂x is O(ε), too small for a finite-difference check to judge
            rest = (3,) * spatial_dims
            training = spatial_dims > 0  # (N < 3, C): eval mode
        module = torch_cls(channels).double().train(training)
        _random_params(rng, module)
        module.running_mean.copy_(torch.from_numpy(rng.standard_normal(channels)))
        module.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2, channels)))
        layer = layer_cls.from_torch(module, dtype=F64)
        x = rng.standard_normal((n, channels, *rest)) * 2 + 1
        return LayerCase(layer, x, module, dict(module.named_parameters()), training)
    return make


def _layernorm(rng, n):
    normalized = tuple(int(v) for v in rng.integers(2, 5, rng.integers(1, 3)))
    shape = (n, *rng.integers(1, 3, rng.integers(0, 2)), *normalized)
    module = torch.nn.LayerNorm(normalized).double()
    _random_params(rng, module)
    return LayerCase(LayerNorm.from_torch(module, dtype=F64), rng.standard_normal(shape) * 3 + 1,
                     module, dict(module.named_parameters()))


def _rnn(rng, n):
    d, h, steps = (int(v) for v in rng.integers(1, 5, 3))
    bias, sequences = bool(rng.integers(2)), bool(rng.integers(2))
    module = torch.nn.RNN(d, h, batch_first=True, bias=bias).double()
    _random_params(rng, module)
    layer = RNN.from_torch(module, return_sequences=sequences, dtype=F64)

    def forward(t):
        out, last = module(t)
        return out if sequences else last[0]

    params = {"weight_ih": module.weight_ih_l0, "weight_hh": module.weight_hh_l0}
    if bias:
        params["bias"] = module.bias_ih_l0  # torch's bias_hh gets the same gradient
    return LayerCase(layer, rng.standard_normal((n, steps, d)), forward, params)


ACTIVATION_PARAMS = {  # random non-default values of each activation's parameters
    "negative_slope": lambda rng: float(rng.uniform(0.02, 0.5)),
    "alpha": lambda rng: float(rng.uniform(0.5, 2.0)),
    "beta": lambda rng: float(rng.uniform(0.5, 3.0)),
    "threshold": lambda rng: float(rng.uniform(8.0, 20.0)),
}


def _activation(spec: act.ActivationSpec):
    def make(rng, n):
        params = {name: ACTIVATION_PARAMS[name](rng) for name in spec.params}
        shape = (n, *rng.integers(1, 5, rng.integers(0, 3)))
        # |x| ≥ 0.1: no kink (relu, leaky_relu, elu at 0) inside a finite-difference probe
        x = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 3.0, shape)
        layer = ACTIVATION_LAYERS[spec.layer_name](**params)
        return LayerCase(layer, x, getattr(torch.nn, spec.layer_name)(**params))
    return make


LAYER_CASES: dict[str, Callable[[np.random.Generator, int], LayerCase]] = {
    "linear": _linear,
    "conv2d": _conv2d,
    "maxpool2d": _pool(MaxPool2d, torch.nn.MaxPool2d),
    "avgpool2d": _pool(AvgPool2d, torch.nn.AvgPool2d),
    "flatten": _flatten,
    "dropout": _dropout,
    "batchnorm1d": _batchnorm(BatchNorm1d, torch.nn.BatchNorm1d, 0),
    "batchnorm1d_sequence": _batchnorm(BatchNorm1d, torch.nn.BatchNorm1d, 1),  # (N, C, L) input
    "batchnorm2d": _batchnorm(BatchNorm2d, torch.nn.BatchNorm2d, 2),
    "layernorm": _layernorm,
    "rnn": _rnn,
    **{spec.name: _activation(spec) for spec in act.ACTIVATIONS.values()},
}


def make_case(name: str, draw: int) -> LayerCase:
    """Draw `draw` of layer `name`: seeded by both, batch size 1 on draw 0, else 1 to 4."""
    rng = np.random.default_rng([draw, *name.encode()])
    return LAYER_CASES[name](rng, 1 if draw == 0 else int(rng.integers(1, 5)))


@pytest.fixture
def layer_cases() -> dict[str, Callable]:
    return LAYER_CASES


@pytest.fixture
def layer_case() -> Callable[[str, int], LayerCase]:
    """make_case(name, draw): a fresh, seeded LayerCase (two calls give identical layers)."""
    return make_case


@functools.cache
def mutation_draw(name: str) -> int:
    """The draw of layer `name` the mutation tests use: among draws 1..9, the first with the most
    parameters (bias included) and no gradient that is all but zero (an RNN over one step has
    ∂L/∂W_hh = 0, which would hide any error planted in it)."""
    best, most = None, -1
    for draw in range(1, 10):
        case = make_case(name, draw)
        out = case.layer.forward(case.x, case.training)
        dx = case.layer.backward(np.random.default_rng(0).standard_normal(out.shape))
        gradients = [dx, *case.layer.grads.values()]
        if len(case.layer.params) > most and all(np.abs(g).max() > 1e-2 for g in gradients):
            best, most = draw, len(case.layer.params)
    assert best is not None, f"no usable draw of {name}"
    return best


@pytest.fixture
def planted(case_gradient, monkeypatch):
    """(clean case, the same case with a 1 % error planted in one gradient of its backward, target)."""
    name, target = case_gradient
    mutated = make_case(name, mutation_draw(name))
    mutate_backward(monkeypatch, mutated.layer, target)
    return make_case(name, mutation_draw(name)), mutated, target


def pytest_generate_tests(metafunc):
    """`case_name` runs a test for every layer; `case_gradient` for every (layer, gradient) pair,
    the gradients being "x" and the parameters of the layer's mutation draw."""
    if "case_name" in metafunc.fixturenames:
        metafunc.parametrize("case_name", list(LAYER_CASES))
    if "case_gradient" in metafunc.fixturenames:
        pairs = [(name, target) for name in LAYER_CASES
                 for target in ("x", *make_case(name, mutation_draw(name)).layer.params)]
        metafunc.parametrize("case_gradient", pairs, ids=[f"{n}-{t}" for n, t in pairs])


def mutate_backward(monkeypatch, layer: Layer, target: str, factor: float = 1.01) -> None:
    """Make layer.backward return dx * factor (target "x") or scale one parameter's gradient."""
    original = layer.backward

    def backward(dout):
        dx = original(dout)
        if target == "x":
            return dx * factor
        layer.grads[target] *= factor
        return dx

    monkeypatch.setattr(layer, "backward", backward)
