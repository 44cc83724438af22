"""Sequential container and mini-batch training / evaluation helpers."""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import numpy as np

from .layers import Layer
from .losses import softmax_cross_entropy

LossFn = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


class Sequential:
    """Layers applied in order. Layer i's parameters are named "i.<param>" (as torch's
    nn.Sequential state_dict keys, e.g. "0.weight", "2.running_mean")."""

    def __init__(self, layers: Iterable[Layer]) -> None:
        self.layers = list(layers)
        self.training = True

    def train(self) -> "Sequential":
        self.training = True
        return self

    def eval(self) -> "Sequential":
        self.training = False
        return self

    def forward(self, x: np.ndarray, training: bool | None = None) -> np.ndarray:
        """Run every layer; `training` defaults to the mode set by train()/eval()."""
        training = self.training if training is None else training
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    __call__ = forward

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Backpropagate dloss/doutput through all layers (fills every layer's grads); returns dx."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, param, grad) for every trainable array, in a fixed order."""
        return [(f"{i}.{name}", param, layer.grads[name])
                for i, layer in enumerate(self.layers)
                for name, param in layer.params.items()]

    def param_arrays(self) -> list[np.ndarray]:
        """Parameter arrays (what an optimizer is built from), aligned with grad_arrays()."""
        return [param for _, param, _ in self.parameters()]

    def grad_arrays(self) -> list[np.ndarray]:
        """Gradient arrays (what optimizer.step takes), aligned with param_arrays()."""
        return [grad for _, _, grad in self.parameters()]

    def num_parameters(self) -> int:
        return sum(param.size for _, param, _ in self.parameters())

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Deep copies of all parameters and buffers, keyed "i.name"."""
        state = {}
        for i, layer in enumerate(self.layers):
            for name, array in {**layer.params, **layer.buffers}.items():
                state[f"{i}.{name}"] = array.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy values into the existing arrays (in place, so optimizers keep valid references)."""
        expected = set()
        for i, layer in enumerate(self.layers):
            for name, array in {**layer.params, **layer.buffers}.items():
                key = f"{i}.{name}"
                expected.add(key)
                if key not in state:
                    if strict:
                        raise KeyError(f"missing key {key!r} in state dict")
                    continue
                value = np.asarray(state[key])
                if value.shape != array.shape:
                    raise ValueError(f"{key}: expected shape {array.shape}, got {value.shape}")
                array[...] = value
        unexpected = set(state) - expected
        if strict and unexpected:
            raise KeyError(f"unexpected keys in state dict: {sorted(unexpected)}")

    def copy(self) -> "Sequential":
        """An independent deep copy (layers, parameters and rng states)."""
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index arrays covering range(n) in batches; shuffled when rng is given."""
    order = np.arange(n) if rng is None else rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train_epoch(model: Sequential, x: np.ndarray, y: np.ndarray, loss_fn: LossFn,
                optimizer, batch_size: int = 64, rng: np.random.Generator | int | None = None,
                schedule=None, start_step: int = 0) -> float:
    """One pass over (x, y) in shuffled mini-batches: forward, loss, backward, optimizer step.

    loss_fn(pred, target) -> (loss, dpred) (see scratch.losses). The optimizer must have
    been built from model.param_arrays(). If `schedule` (anything with lr_at(t)) is given,
    optimizer.lr is set to schedule.lr_at(start_step + i) before the i-th step of this epoch.
    Returns the mean training loss over samples.
    """
    rng = np.random.default_rng(rng)
    grads = model.grad_arrays()
    total, count = 0.0, 0
    for step, idx in enumerate(iterate_minibatches(len(x), batch_size, rng)):
        if schedule is not None:
            optimizer.lr = schedule.lr_at(start_step + step)
        pred = model.forward(x[idx], training=True)
        loss, dpred = loss_fn(pred, y[idx])
        model.backward(dpred)
        optimizer.step(grads)
        total += loss * len(idx)
        count += len(idx)
    return total / count


def predict(model: Sequential, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Model outputs in eval mode, computed in mini-batches and concatenated."""
    outputs = [model.forward(x[idx], training=False)
               for idx in iterate_minibatches(len(x), batch_size)]
    return np.concatenate(outputs, axis=0)


def accuracy(outputs: np.ndarray, labels: np.ndarray, threshold: float = 0.0) -> float:
    """Classification accuracy: argmax for (N, C>1) outputs, else (output > threshold) vs labels
    (threshold 0 suits logits, 0.5 suits probabilities)."""
    labels = np.asarray(labels)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        predicted = outputs.argmax(axis=1)
    else:
        predicted = (outputs.reshape(labels.shape) > threshold).astype(labels.dtype)
    return float((predicted == labels).mean())


def evaluate(model: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
             loss_fn: LossFn = softmax_cross_entropy, threshold: float = 0.0) -> tuple[float, float]:
    """(mean loss, accuracy) of the model in eval mode over (x, y), mini-batched.

    The loss is averaged per sample (each batch's mean weighted by its size); accuracy as
    in `accuracy` (meaningless for regression targets).
    """
    total, count, correct = 0.0, 0, 0.0
    for idx in iterate_minibatches(len(x), batch_size):
        pred = model.forward(x[idx], training=False)
        loss, _ = loss_fn(pred, y[idx])
        total += loss * len(idx)
        correct += accuracy(pred, y[idx], threshold) * len(idx)
        count += len(idx)
    return total / count, correct / count
