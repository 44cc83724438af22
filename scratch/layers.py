"""Layer classes wrapping the functional core, for use in `model.Sequential`.

Every layer has
    forward(x, training=True) -> out     (caches what backward needs)
    backward(dout) -> dx                 (writes parameter gradients into .grads)
    params: dict[str, ndarray]           trainable arrays, updated in place by optimizers
    grads:  dict[str, ndarray]           same keys and shapes as params
    buffers: dict[str, ndarray]          non-trainable state (batch-norm running stats)
`backward` OVERWRITES .grads (no accumulation; each layer is used once per
forward pass), always in place so references held elsewhere stay valid.

Weight layouts and parameter names are torch's: Linear.weight (out, in), Conv2d.weight
(F, C, kh, kw), RNN.weight_ih (H, D) and weight_hh (H, H). `from_torch(module)` class
methods build a layer from a torch module (weights copied, never transposed). The
activation layers (ReLU, Tanh, ...) are generated from activations.ACTIVATIONS.
"""
from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod

import numpy as np

from . import activations as act
from . import functional as F
from .rnn import rnn_backward, rnn_forward

RngLike = np.random.Generator | int | None

INITS = ("torch", "he", "he_normal", "xavier", "xavier_normal", "normal", "zeros")


def init_array(shape: tuple[int, ...], fan_in: int, fan_out: int, init: str = "torch",
               rng: RngLike = None, dtype=np.float32, scale: float = 0.01) -> np.ndarray:
    """A weight array initialised by scheme `init`.

    'torch'         U(±1/√fan_in): torch.nn.Linear/Conv2d default (Kaiming-uniform, a=√5)
    'he'            U(±√(6/fan_in)): Kaiming-uniform with ReLU gain √2
    'he_normal'     N(0, 2/fan_in)
    'xavier'        U(±√(6/(fan_in+fan_out))): Glorot-uniform
    'xavier_normal' N(0, 2/(fan_in+fan_out))
    'normal'        N(0, scale²)
    'zeros'         all zeros
    """
    rng = np.random.default_rng(rng)
    if init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        values = rng.uniform(-bound, bound, shape)
    elif init == "he":
        bound = math.sqrt(6.0 / fan_in)
        values = rng.uniform(-bound, bound, shape)
    elif init == "he_normal":
        values = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    elif init == "xavier":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-bound, bound, shape)
    elif init == "xavier_normal":
        values = rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), shape)
    elif init == "normal":
        values = rng.normal(0.0, scale, shape)
    elif init == "zeros":
        values = np.zeros(shape)
    else:
        raise ValueError(f"unknown init {init!r}; choose from {INITS}")
    return values.astype(dtype)


def _to_numpy(tensor, dtype) -> np.ndarray:
    """A torch tensor (or array-like) as a fresh NumPy array of `dtype`."""
    if hasattr(tensor, "detach"):
        tensor = tensor.detach().cpu().numpy()
    return np.array(tensor, dtype=dtype)


class Layer(ABC):
    """Base class holding params/grads/buffers; subclasses define forward and backward."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.cache = None

    @abstractmethod
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """Compute the output for input x, caching what backward needs."""

    @abstractmethod
    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Given dL/dout, store parameter gradients in self.grads and return dL/dx."""

    def __call__(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return self.forward(x, training)

    def _add_param(self, name: str, value: np.ndarray) -> None:
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    def _set_grad(self, name: str, value: np.ndarray) -> None:
        self.grads[name][...] = value  # in place: optimizers may hold the array

    def _set_grads(self, **grads: np.ndarray | None) -> None:
        """Store several gradients; None (no such parameter, e.g. a layer without bias) is skipped."""
        for name, value in grads.items():
            if value is not None:
                self._set_grad(name, value)

    def zero_grad(self) -> None:
        for grad in self.grads.values():
            grad.fill(0)

    def load_weights(self, **arrays: np.ndarray) -> None:
        """Copy arrays into params/buffers of the same name (in place, shapes must match)."""
        for name, value in arrays.items():
            target = self.params.get(name, self.buffers.get(name))
            if target is None:
                raise KeyError(f"{type(self).__name__} has no parameter or buffer {name!r}")
            value = _to_numpy(value, target.dtype)
            if value.shape != target.shape:
                raise ValueError(f"{name}: expected shape {target.shape}, got {value.shape}")
            target[...] = value

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Linear(Layer):
    """y = x Wᵀ + b. x: (N, in) -> (N, out). weight: (out, in) as torch; bias: (out,)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str = "torch", rng: RngLike = None, dtype=np.float32) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        self._add_param("weight", init_array((out_features, in_features), in_features,
                                             out_features, init, rng, dtype))
        if bias:
            bias_init = "torch" if init == "torch" else "zeros"  # torch draws the bias too
            self._add_param("bias", init_array((out_features,), in_features, out_features,
                                               bias_init, rng, dtype))

    @classmethod
    def from_torch(cls, module, dtype=np.float32) -> "Linear":
        """Copy a torch.nn.Linear (weight layouts agree, no transpose)."""
        layer = cls(module.in_features, module.out_features, bias=module.bias is not None,
                    init="zeros", dtype=dtype)
        layer.load_weights(**dict(module.named_parameters()))  # weight, and bias if the module has one
        return layer

    def forward(self, x, training=True):
        out, self.cache = F.linear_forward(x, self.params["weight"], self.params.get("bias"))
        return out

    def backward(self, dout):
        dx, dweight, dbias = F.linear_backward(dout, self.cache)
        self._set_grads(weight=dweight, bias=dbias)
        return dx


class Conv2d(Layer):
    """2-D convolution. x: (N, C, H, W) -> (N, F, Ho, Wo). weight: (F, C, kh, kw); bias: (F,)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int = 0, bias: bool = True, init: str = "torch",
                 rng: RngLike = None, dtype=np.float32) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        kh, kw = F.as_pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        fan_in, fan_out = in_channels * kh * kw, out_channels * kh * kw
        self._add_param("weight", init_array((out_channels, in_channels, kh, kw), fan_in,
                                             fan_out, init, rng, dtype))
        if bias:
            bias_init = "torch" if init == "torch" else "zeros"
            self._add_param("bias", init_array((out_channels,), fan_in, fan_out, bias_init,
                                               rng, dtype))

    @classmethod
    def from_torch(cls, module, dtype=np.float32) -> "Conv2d":
        """Copy a torch.nn.Conv2d (square stride/padding, groups=1, dilation=1)."""
        if module.groups != 1 or tuple(module.dilation) != (1, 1):
            raise ValueError("only groups=1, dilation=1 convolutions are supported")
        stride, padding = F.as_pair(module.stride), F.as_pair(module.padding)
        if stride[0] != stride[1] or padding[0] != padding[1]:
            raise ValueError("only equal stride/padding along H and W are supported")
        layer = cls(module.in_channels, module.out_channels, tuple(module.kernel_size),
                    stride=stride[0], padding=padding[0], bias=module.bias is not None,
                    init="zeros", dtype=dtype)
        layer.load_weights(**dict(module.named_parameters()))  # weight, and bias if the module has one
        return layer

    def forward(self, x, training=True):
        out, self.cache = F.conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                           self.stride, self.padding)
        return out

    def backward(self, dout):
        dx, dweight, dbias = F.conv2d_backward(dout, self.cache)
        self._set_grads(weight=dweight, bias=dbias)
        return dx


class _Pool2d(Layer):
    """Shared shell of the pooling layers: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to kernel_size."""

    _forward = staticmethod(F.max_pool2d_forward)
    _backward = staticmethod(F.max_pool2d_backward)

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | None = None,
                 padding: int = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, training=True):
        out, self.cache = self._forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout):
        return self._backward(dout, self.cache)


class MaxPool2d(_Pool2d):
    """Max pooling: each output is its window's maximum; the gradient goes to that element."""

    _forward = staticmethod(F.max_pool2d_forward)
    _backward = staticmethod(F.max_pool2d_backward)


class AvgPool2d(_Pool2d):
    """Average pooling: each output is its window's mean; the gradient is shared equally."""

    _forward = staticmethod(F.avg_pool2d_forward)
    _backward = staticmethod(F.avg_pool2d_backward)


class Flatten(Layer):
    """(N, d1, ..., dk) -> (N, d1*...*dk)."""

    def forward(self, x, training=True):
        out, self.cache = F.flatten_forward(x)
        return out

    def backward(self, dout):
        return F.flatten_backward(dout, self.cache)


class Dropout(Layer):
    """Inverted dropout with drop probability p; identity when training=False.

    Masks are drawn from `rng` (a Generator or seed) so runs are reproducible.
    """

    def __init__(self, p: float = 0.5, rng: RngLike = None) -> None:
        super().__init__()
        self.p = p
        self.rng = np.random.default_rng(rng)

    def forward(self, x, training=True):
        out, self.cache = F.dropout_forward(x, self.p, training, self.rng)
        return out

    def backward(self, dout):
        return F.dropout_backward(dout, self.cache)


class _BatchNorm(Layer):
    """Shared code of BatchNorm1d/2d: params weight (γ), bias (β); buffers running_mean/var."""

    _forward = staticmethod(F.batchnorm_forward)
    _backward = staticmethod(F.batchnorm_backward)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 dtype=np.float32) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self._add_param("weight", np.ones(num_features, dtype=dtype))
        self._add_param("bias", np.zeros(num_features, dtype=dtype))
        self.buffers["running_mean"] = np.zeros(num_features, dtype=dtype)
        self.buffers["running_var"] = np.ones(num_features, dtype=dtype)

    @classmethod
    def from_torch(cls, module, dtype=np.float32):
        """Copy a torch.nn.BatchNorm1d/2d (affine, tracking running stats)."""
        momentum = 0.1 if module.momentum is None else module.momentum
        layer = cls(module.num_features, eps=module.eps, momentum=momentum, dtype=dtype)
        layer.load_weights(weight=module.weight, bias=module.bias,
                           running_mean=module.running_mean, running_var=module.running_var)
        return layer

    def forward(self, x, training=True):
        out, self.cache = self._forward(
            x, self.params["weight"], self.params["bias"], self.buffers["running_mean"],
            self.buffers["running_var"], training, self.momentum, self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = self._backward(dout, self.cache)
        self._set_grad("weight", dgamma)
        self._set_grad("bias", dbeta)
        return dx


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, D) inputs (statistics over the batch)."""


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs (per-channel statistics over N, H, W)."""

    _forward = staticmethod(F.spatial_batchnorm_forward)
    _backward = staticmethod(F.spatial_batchnorm_backward)


class LayerNorm(Layer):
    """Layer norm over the trailing `normalized_shape` axes; params weight (γ), bias (β)."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 dtype=np.float32) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self._add_param("weight", np.ones(shape, dtype=dtype))
        self._add_param("bias", np.zeros(shape, dtype=dtype))

    @classmethod
    def from_torch(cls, module, dtype=np.float32) -> "LayerNorm":
        layer = cls(tuple(module.normalized_shape), eps=module.eps, dtype=dtype)
        layer.load_weights(weight=module.weight, bias=module.bias)
        return layer

    def forward(self, x, training=True):
        out, self.cache = F.layernorm_forward(x, self.params["weight"], self.params["bias"],
                                              self.eps)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = F.layernorm_backward(dout, self.cache)
        self._set_grad("weight", dgamma)
        self._set_grad("bias", dbeta)
        return dx


class Activation(Layer):
    """Elementwise activation by name (a key of activations.ACTIVATIONS), any input shape.

    Extra keyword arguments (negative_slope, alpha, beta, threshold) go to the function;
    the ones not given take torch's defaults. The named classes below (ReLU, LeakyReLU, ...)
    are this layer with the name fixed.
    """

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__()
        if name not in act.ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose from {list(act.ACTIVATIONS)}")
        self.spec = act.ACTIVATIONS[name]
        self.name, self.kwargs = name, self.spec.bind((), kwargs)

    def forward(self, x, training=True):
        out, self.cache = self.spec.forward(x, **self.kwargs)
        return out

    def backward(self, dout):
        return act.activation_backward(dout, self.cache)

    def __repr__(self) -> str:
        args = [f"{k}={v}" for k, v in self.kwargs.items()]
        if type(self) is Activation:
            args.insert(0, repr(self.name))
        return f"{type(self).__name__}({', '.join(args)})"


def _activation_layer(spec: act.ActivationSpec) -> type[Activation]:
    """The Layer class of one activation, named as torch's (LeakyReLU(negative_slope=0.01), ...)."""

    def __init__(self, *args, **kwargs):
        Activation.__init__(self, spec.name, **spec.bind(args, kwargs))

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
           for name, default in spec.params.items()])
    doc = f"{spec.equation}, elementwise, any input shape (torch.nn.{spec.layer_name})."
    return type(spec.layer_name, (Activation,),
                {"__init__": __init__, "__doc__": doc, "__module__": __name__,
                 "__qualname__": spec.layer_name})


# One class per activations.ACTIVATIONS entry: Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU,
# Softplus, SiLU.
ACTIVATION_LAYERS: dict[str, type[Activation]] = {
    spec.layer_name: _activation_layer(spec) for spec in act.ACTIVATIONS.values()}
globals().update(ACTIVATION_LAYERS)


class RNN(Layer):
    """Single-layer tanh RNN over batch-first sequences, h_t = tanh(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b).

    x: (N, T, D) -> (N, T, H) all hidden states (return_sequences=True) or (N, H)
    the last one. The initial state h0 is zeros. params in torch's layout:
    weight_ih (H, D), weight_hh (H, H), bias (H,) (torch's bias_ih + bias_hh; absent with
    bias=False). Default init draws everything from U(±1/√H) like torch.nn.RNN.
    """

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = True,
                 init: str = "torch", rng: RngLike = None, dtype=np.float32,
                 bias: bool = True) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.return_sequences = return_sequences
        # torch's RNN uses fan_in = hidden_size for every weight and bias
        self._add_param("weight_ih", init_array((hidden_size, input_size), hidden_size,
                                                hidden_size, init, rng, dtype))
        self._add_param("weight_hh", init_array((hidden_size, hidden_size), hidden_size,
                                                hidden_size, init, rng, dtype))
        if bias:
            self._add_param("bias", init_array((hidden_size,), hidden_size, hidden_size,
                                               "torch" if init == "torch" else "zeros", rng, dtype))

    @classmethod
    def from_torch(cls, module, return_sequences: bool = True, dtype=np.float32) -> "RNN":
        """Copy a single-layer, unidirectional torch.nn.RNN(nonlinearity='tanh') (no transposes)."""
        if module.num_layers != 1 or module.bidirectional or module.nonlinearity != "tanh":
            raise ValueError("only single-layer, unidirectional tanh RNNs are supported")
        layer = cls(module.input_size, module.hidden_size, return_sequences, init="zeros",
                    dtype=dtype, bias=module.bias)
        weights = {"weight_ih": module.weight_ih_l0, "weight_hh": module.weight_hh_l0}
        if module.bias:  # the two biases are always added together
            weights["bias"] = module.bias_ih_l0.detach() + module.bias_hh_l0.detach()
        layer.load_weights(**weights)
        return layer

    def forward(self, x, training=True):
        h0 = np.zeros((x.shape[0], self.hidden_size), dtype=x.dtype)
        bias = self.params.get("bias", 0)
        h, self.cache = rnn_forward(x, h0, self.params["weight_ih"], self.params["weight_hh"], bias)
        return h if self.return_sequences else h[:, -1]

    def backward(self, dout):
        if not self.return_sequences:
            # only the last state was used: the others get zero upstream gradient
            full = np.zeros(self.cache.h.shape, dtype=dout.dtype)
            full[:, -1] = dout
            dout = full
        dx, _, dweight_ih, dweight_hh, dbias = rnn_backward(dout, self.cache)
        self._set_grads(weight_ih=dweight_ih, weight_hh=dweight_hh,
                        bias=dbias if "bias" in self.params else None)
        return dx
