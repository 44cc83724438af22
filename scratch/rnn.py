"""Vanilla (tanh) RNN: single step and full sequence with backpropagation through time.

    a_t = x_t W_ihᵀ + h_{t-1} W_hhᵀ + b        (pre-activation)
    h_t = tanh(a_t)

Weights are in torch's layout, so torch.nn.RNN's tensors copy across without a transpose:
weight_ih (H, D) = weight_ih_l0, weight_hh (H, H) = weight_hh_l0. torch keeps two biases
that always appear summed, so the one bias (H,) here is bias_ih_l0 + bias_hh_l0
(see `layers.RNN.from_torch`). Sequences are batch first: x (N, T, D), h (N, T, H).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RNNStepCache(NamedTuple):
    x: np.ndarray               # (N, D) input of this step
    prev_h: np.ndarray          # (N, H) h_{t-1}
    weight_ih: np.ndarray       # (H, D)
    weight_hh: np.ndarray       # (H, H)
    next_h: np.ndarray          # (N, H) h_t


class RNNCache(NamedTuple):
    x: np.ndarray               # (N, T, D) inputs
    h0: np.ndarray              # (N, H) initial state
    weight_ih: np.ndarray       # (H, D)
    weight_hh: np.ndarray       # (H, H)
    h: np.ndarray               # (N, T, H) h_1 .. h_T


def rnn_step_forward(x: np.ndarray, prev_h: np.ndarray, weight_ih: np.ndarray,
                     weight_hh: np.ndarray, bias: np.ndarray):
    """One time step.

    x: (N, D); prev_h: (N, H); weight_ih: (H, D); weight_hh: (H, H); bias: (H,).
    Returns next_h (N, H), cache.
    """
    # h_t = tanh(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b)
    next_h = np.tanh(x @ weight_ih.T + prev_h @ weight_hh.T + bias)
    return next_h, RNNStepCache(x, prev_h, weight_ih, weight_hh, next_h)


def rnn_step_backward(dnext_h: np.ndarray, cache: RNNStepCache):
    """dnext_h: (N, H). Returns dx (N, D), dprev_h (N, H), dweight_ih (H, D), dweight_hh (H, H),
    dbias (H,)."""
    x, prev_h, weight_ih, weight_hh, next_h = cache
    da = dnext_h * (1 - next_h * next_h)            # δa = δh ⊙ tanh'(a) = δh ⊙ (1 - h_t²)
    dx = da @ weight_ih                             # ∂L/∂x_t = δa W_ih
    dprev_h = da @ weight_hh                        # ∂L/∂h_{t-1} = δa W_hh
    dweight_ih = da.T @ x                           # ∂L/∂W_ih = δaᵀ x_t
    dweight_hh = da.T @ prev_h                      # ∂L/∂W_hh = δaᵀ h_{t-1}
    dbias = da.sum(axis=0)                          # ∂L/∂b = Σₙ δa
    return dx, dprev_h, dweight_ih, dweight_hh, dbias


def rnn_forward(x: np.ndarray, h0: np.ndarray, weight_ih: np.ndarray, weight_hh: np.ndarray,
                bias: np.ndarray):
    """Run the cell over a whole sequence (batch first, like torch's batch_first=True).

    x: (N, T, D); h0: (N, H); weights as in `rnn_step_forward`.
    Returns h (N, T, H) holding h_1..h_T, cache.
    """
    n, steps, _ = x.shape
    hidden = weight_hh.shape[0]
    h = np.empty((n, steps, hidden), dtype=np.result_type(x, h0, weight_ih))
    # the input projection of every step at once: one matmul instead of T
    x_proj = x @ weight_ih.T + bias                 # x_t W_ihᵀ + b for all t
    prev_h = h0
    for t in range(steps):
        prev_h = np.tanh(x_proj[:, t] + prev_h @ weight_hh.T)  # h_t = tanh(a_t)
        h[:, t] = prev_h
    return h, RNNCache(x, h0, weight_ih, weight_hh, h)


def rnn_backward(dh: np.ndarray, cache: RNNCache):
    """Backpropagation through time.

    dh: (N, T, H), upstream gradient of every hidden state (the loss may read any of them).
    Returns dx (N, T, D), dh0 (N, H), dweight_ih (H, D), dweight_hh (H, H), dbias (H,).
    """
    x, h0, weight_ih, weight_hh, h = cache
    n, steps, _ = x.shape
    da = np.empty_like(h)                           # δa_t: gradient w.r.t. each step's pre-activation
    dnext = np.zeros_like(h0)                       # ∂L/∂h_t arriving through step t+1: δa_{t+1} W_hh
    for t in reversed(range(steps)):
        dh_t = dh[:, t] + dnext                     # h_t feeds the loss directly and step t+1
        da[:, t] = dh_t * (1 - h[:, t] * h[:, t])   # δa_t = δh_t ⊙ (1 - h_t²)
        dnext = da[:, t] @ weight_hh                # ∂L/∂h_{t-1} = δa_t W_hh  (after t = 1: ∂L/∂h0)
    prev_hs = np.concatenate([h0[:, None], h[:, :-1]], axis=1)  # h_{t-1} for t = 1..T
    flat_da = da.reshape(n * steps, -1)
    # shared weights: each gradient is a sum over time steps, done as one matmul over (n, t)
    dweight_ih = flat_da.T @ x.reshape(n * steps, -1)           # ∂L/∂W_ih = Σ_t δa_tᵀ x_t
    dweight_hh = flat_da.T @ prev_hs.reshape(n * steps, -1)     # ∂L/∂W_hh = Σ_t δa_tᵀ h_{t-1}
    dbias = flat_da.sum(axis=0)                                 # ∂L/∂b = Σ_t Σₙ δa_t
    dx = da @ weight_ih                                         # ∂L/∂x_t = δa_t W_ih
    return dx, dnext, dweight_ih, dweight_hh, dbias
