"""Helpers of section 1 too long to sit in their task module: the batched logic-gate networks of 1.1,
their chain-rule trace, the single-neuron baseline and the diagnosis of runs that got stuck."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from scratch import init_array

GATE_INPUTS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
GATE_TARGETS = {"AND": (0.0, 0.0, 0.0, 1.0), "OR": (0.0, 1.0, 1.0, 1.0), "XOR": (0.0, 1.0, 1.0, 0.0)}


class GateNets:
    """M independent 2-H-1 networks (ReLU hidden, sigmoid output, BCE), trained side by side.

    Parameters (float64): W1 (M, H, 2) [hidden j, input k], b1 (M, H), w2 (M, H), b2 (M,).
    For inputs X (N, 2):  z1 = X W1ᵀ + b1,  h = relu(z1),  z2 = h·w2 + b2,  p = σ(z2).
    Net r of each block of ``restarts`` is the network of seed (seed + r); with ``copies`` > 1 the
    block is repeated (one identical copy per gate, so all gates start from the same weights).
    """

    def __init__(self, width: int, restarts: int, seed: int, copies: int = 1):
        params: dict[str, list] = {}
        for r in range(restarts):
            rng = np.random.default_rng(seed + r)
            # torch's nn.Linear default, U(±1/√fan_in): fan_in 2 for the hidden layer, H for the output
            one = {"W1": init_array((width, 2), 2, width, "torch", rng, np.float64),
                   "b1": init_array((width,), 2, width, "torch", rng, np.float64),
                   "w2": init_array((width,), width, 1, "torch", rng, np.float64),
                   "b2": init_array((), width, 1, "torch", rng, np.float64)}
            for name, value in one.items():
                params.setdefault(name, []).append(value)
        self.params = {name: np.concatenate([np.stack(values)] * copies) for name, values in params.items()}

    @property
    def count(self) -> int:
        return len(self.params["b2"])

    def pre_activations(self, X):
        """z1 (M, N, H) for inputs X (N, 2)."""
        return np.einsum("nk,rjk->rnj", X, self.params["W1"]) + self.params["b1"][:, None, :]

    def forward(self, X):
        """p (M, N) for inputs X (N, 2), and the cache for backward."""
        z1 = self.pre_activations(X)
        h = np.maximum(z1, 0)
        z2 = np.einsum("rnj,rj->rn", h, self.params["w2"]) + self.params["b2"][:, None]
        p = expit(z2)
        return p, (X, z1, h, p)

    @staticmethod
    def loss(p, y):
        """Mean binary cross-entropy over the N inputs, one value per network (M,)."""
        p = np.clip(p, 1e-15, 1 - 1e-15)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=-1)

    def backward(self, cache, y):
        """Gradients of each network's mean BCE, by the chain rule, vectorised over inputs and nets."""
        X, z1, h, p = cache
        dz2 = (p - y) / X.shape[0]                   # ∂L/∂z2 = ∂L/∂p · ∂p/∂z2 = p − y, averaged over inputs
        dh = dz2[:, :, None] * self.params["w2"][:, None, :]   # ∂z2/∂h_j = w2_j
        dz1 = dh * (z1 > 0)                          # ∂h_j/∂z1_j = 1[z1_j > 0]
        return {"w2": np.einsum("rn,rnj->rj", dz2, h),   # ∂z2/∂w2_j = h_j
                "b2": dz2.sum(axis=1),
                "W1": np.einsum("rnj,nk->rjk", dz1, X),  # ∂z1_j/∂W1_jk = x_k
                "b1": dz1.sum(axis=1)}

    def train(self, X, y, steps: int, lr: float, log_every: int = 1):
        """Full-batch gradient descent on all networks at once; y is (N,) or (M, N).

        Returns the loss curves (logged steps, M), logged at steps 0, log_every, 2·log_every, … and the last."""
        logged = sorted(set(range(0, steps, log_every)) | {steps - 1})
        curves = np.empty((len(logged), self.count))
        row = 0
        for step in range(steps):
            p, cache = self.forward(X)
            if step == logged[row]:
                curves[row] = self.loss(p, y)
                row += 1
            for name, grad in self.backward(cache, y).items():
                self.params[name] -= lr * grad
        return logged, curves

    def one(self, index: int) -> dict[str, np.ndarray]:
        """A copy of network ``index``'s parameters."""
        return {k: np.array(v[index], copy=True) for k, v in self.params.items()}


def unit_roles(z1) -> dict[str, np.ndarray]:
    """How each hidden unit treats the 4 inputs, from z1 (..., N, H): counts per network of units
    that are off on every input ("dead"), on for every input ("linear": the net is linear there),
    or on for some and off for others ("bending": its hinge line passes between the inputs)."""
    on = z1 > 0
    dead = (~on.any(axis=-2)).sum(axis=-1)
    linear = on.all(axis=-2).sum(axis=-1)
    return {"dead": dead, "linear": linear, "bending": on.shape[-1] - dead - linear}


def failure_reason(z1, y) -> str:
    """Why one net (z1 (N, H), targets y (N,)) ended on a wrong answer, in a few words."""
    on = z1 > 0
    if not on.any():
        return "every hidden unit is off on all 4 inputs (a dead net), so the output is the constant σ(b2)"
    if unit_roles(z1)["bending"] == 0:
        return "no unit bends between the inputs, so the net is linear on them"
    off = np.flatnonzero(~on.any(axis=1))          # inputs on which every unit is off get p = σ(b2)
    if len(off) > 1 and np.ptp(y[off]) > 0:
        return "inputs with different targets have every unit off, so they share the output σ(b2)"
    return "another flat point of the loss"


def chain_rule_trace(P: dict, x, y: float, units=(0, 1)) -> dict:
    """One forward and one backward pass of one 2-H-1 net (parameters P, as GateNets.one) on one example.

    Every partial of b2 and of the weights of the hidden ``units`` (0-based) is the product of its local
    derivatives along the path; a central finite difference (h = 1e-6) on the weight itself checks it.
    Names are 1-based: W1[j,k] is the weight from input k to hidden unit j.
    """
    x = np.asarray(x, dtype=np.float64)

    def forward(params):
        z1 = params["W1"] @ x + params["b1"]
        h = np.maximum(z1, 0)
        z2 = float(params["w2"] @ h + params["b2"])
        p = 1 / (1 + math.exp(-z2))
        return z1, h, z2, p, -(y * math.log(p) + (1 - y) * math.log(1 - p))

    z1, h, z2, p, loss = forward(P)
    dL_dp = -y / p + (1 - y) / (1 - p)
    dp_dz2 = p * (1 - p)
    top = {"dL/dp": dL_dp, "dp/dz2": dp_dz2}
    chains = {"b2": (("b2", ()), {**top, "dz2/db2": 1.0})}
    for j in units:
        n = j + 1
        chains[f"w2[{n}]"] = (("w2", (j,)), {**top, f"dz2/dw2[{n}] = h{n}": h[j]})
        upstream = {**top, f"dz2/dh{n} = w2[{n}]": P["w2"][j], f"dh{n}/dz1_{n} = 1[z1_{n}>0]": float(z1[j] > 0)}
        for k in range(2):
            chains[f"W1[{n},{k + 1}]"] = (("W1", (j, k)), {**upstream, f"dz1_{n}/dW1[{n},{k + 1}] = x{k + 1}": x[k]})
        chains[f"b1[{n}]"] = (("b1", (j,)), {**upstream, f"dz1_{n}/db1[{n}]": 1.0})

    partials, eps = {}, 1e-6
    for name, ((base, idx), factors) in chains.items():
        values = []
        for sign in (+1, -1):
            shifted = {k: v.copy() for k, v in P.items()}
            shifted[base][idx] += sign * eps
            values.append(forward(shifted)[-1])
        chain = float(np.prod(list(factors.values())))
        numeric = (values[0] - values[1]) / (2 * eps)
        # (+ 0.0 turns a product's −0.0 into 0.0 for printing)
        partials[name] = {"factors": {k: float(v) + 0.0 for k, v in factors.items()}, "chain_rule": chain + 0.0,
                          "finite_difference": numeric, "abs_error": abs(chain - numeric)}
    return {"example": {"x": x.tolist(), "y": y}, "units": [j + 1 for j in units],
            "forward": {"z1": z1.tolist(), "h": h.tolist(), "z2": z2, "p": p, "loss": loss},
            "partials": partials}


def logistic_regression_on_gate(X, y, steps: int, lr: float) -> tuple[float, int]:
    """A single sigmoid unit (no hidden layer) trained like the gate nets: (final BCE, inputs correct)."""
    w, b = np.zeros(2), 0.0
    for _ in range(steps):
        p = expit(X @ w + b)
        w -= lr * X.T @ (p - y) / len(y)
        b -= lr * float(np.mean(p - y))
    p = np.clip(expit(X @ w + b), 1e-15, 1 - 1e-15)
    loss = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return loss, int(((p > 0.5) == (y > 0.5)).sum())
