"""Vanilla (tanh) RNN: single step and full sequence with backpropagation through time.

    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b)

Weight layout is the equation's (input on the left): W_xh (D, H), W_hh (H, H),
b (H,). torch.nn.RNN stores weight_ih_l0 (H, D), weight_hh_l0 (H, H) and two
biases, so W_xh = weight_ih_l0ᵀ, W_hh = weight_hh_l0ᵀ, b = bias_ih_l0 + bias_hh_l0
(see `layers.RNN.from_torch`).
"""
from __future__ import annotations

import numpy as np


def rnn_step_forward(x: np.ndarray, prev_h: np.ndarray, W_xh: np.ndarray,
                     W_hh: np.ndarray, b: np.ndarray):
    """One time step.

    x: (N, D); prev_h: (N, H); W_xh: (D, H); W_hh: (H, H); b: (H,).
    Returns next_h (N, H), cache.
    """
    next_h = np.tanh(x @ W_xh + prev_h @ W_hh + b)  # h_t = tanh(x_t W_xh + h_{t-1} W_hh + b)
    return next_h, (x, prev_h, W_xh, W_hh, next_h)


def rnn_step_backward(dnext_h: np.ndarray, cache):
    """dnext_h: (N, H). Returns dx (N, D), dprev_h (N, H), dW_xh (D, H), dW_hh (H, H), db (H,)."""
    x, prev_h, W_xh, W_hh, next_h = cache
    dpre = dnext_h * (1 - next_h * next_h)          # through tanh: tanh' = 1 - h_t²
    dx = dpre @ W_xh.T
    dprev_h = dpre @ W_hh.T
    dW_xh = x.T @ dpre
    dW_hh = prev_h.T @ dpre
    db = dpre.sum(axis=0)
    return dx, dprev_h, dW_xh, dW_hh, db


def rnn_forward(x: np.ndarray, h0: np.ndarray, W_xh: np.ndarray, W_hh: np.ndarray,
                b: np.ndarray):
    """Run the cell over a whole sequence (batch first, like torch's batch_first=True).

    x: (N, T, D); h0: (N, H). Returns h (N, T, H) holding h_1..h_T, cache.
    """
    n, steps, _ = x.shape
    hidden = W_hh.shape[0]
    h = np.empty((n, steps, hidden), dtype=np.result_type(x, h0, W_xh))
    # the input projection of every step at once: one matmul instead of T
    x_proj = x @ W_xh + b                           # x_t W_xh + b for all t
    prev_h = h0
    for t in range(steps):
        prev_h = np.tanh(x_proj[:, t] + prev_h @ W_hh)
        h[:, t] = prev_h
    return h, (x, h0, W_xh, W_hh, h)


def rnn_backward(dh: np.ndarray, cache):
    """Backpropagation through time.

    dh: (N, T, H), upstream gradient of every hidden state (the loss may read any of them).
    Returns dx (N, T, D), dh0 (N, H), dW_xh (D, H), dW_hh (H, H), db (H,).
    """
    x, h0, W_xh, W_hh, h = cache
    n, steps, _ = x.shape
    dpre = np.empty_like(h)                         # gradient w.r.t. each step's pre-activation
    dnext = np.zeros_like(h0)                       # gradient flowing back from step t+1
    for t in reversed(range(steps)):
        dh_t = dh[:, t] + dnext                     # h_t feeds the loss and step t+1
        dpre[:, t] = dh_t * (1 - h[:, t] * h[:, t])
        dnext = dpre[:, t] @ W_hh.T
    prev_hs = np.concatenate([h0[:, None], h[:, :-1]], axis=1)  # h_{t-1} for t = 1..T
    flat_dpre = dpre.reshape(n * steps, -1)
    # shared weights: the gradient is the sum over time steps, done as single matmuls
    dW_xh = x.reshape(n * steps, -1).T @ flat_dpre
    dW_hh = prev_hs.reshape(n * steps, -1).T @ flat_dpre
    db = flat_dpre.sum(axis=0)
    dx = dpre @ W_xh.T
    return dx, dnext, dW_xh, dW_hh, db
