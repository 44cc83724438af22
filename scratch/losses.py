"""Loss functions. Each returns (loss, dpred): the scalar loss, averaged like
torch's reduction='mean', and its gradient with respect to the prediction.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

# torch's BCE backward floors p(1-p) at the float32 constant 1e-12 (≈ 9.99999996e-13)
_BCE_EPSILON = float(np.float32(1e-12))


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax, stable: z - max z - log Σ exp(z - max z)."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(z)_i = exp(z_i) / Σ_j exp(z_j), computed from shifted logits."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """Cross-entropy of softmax(logits) against integer class labels.

    logits: (N, C); labels: (N,) ints in [0, C). Same as torch.nn.functional.cross_entropy.
    Returns loss (mean over N), dlogits (N, C).
    """
    n = logits.shape[0]
    labels = np.asarray(labels, dtype=np.intp)
    log_probs = log_softmax(logits)
    loss = -log_probs[np.arange(n), labels].mean()  # L = -(1/N) Σₙ log p_{n, yₙ}
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), labels] -= 1              # ∂L/∂z = (softmax(z) - onehot(y)) / N
    dlogits /= n
    return float(loss), dlogits


def bce(probs: np.ndarray, targets: np.ndarray):
    """Binary cross-entropy on probabilities (torch.nn.functional.binary_cross_entropy).

    probs, targets: same shape, probs in [0, 1]. Logs are clamped at -100 and the
    gradient's denominator at 1e-12 exactly as torch does, so p = 0 or 1 stays finite.
    Returns loss (mean over all elements), dprobs.
    """
    count = probs.size
    with np.errstate(divide="ignore"):  # log(0) = -inf is clamped just below
        log_p = np.maximum(np.log(probs), -100)
        log_1mp = np.maximum(np.log1p(-probs), -100)
    loss = -(targets * log_p + (1 - targets) * log_1mp).mean()  # L = -mean(y log p + (1-y) log(1-p))
    # ∂L/∂p = (p - y) / (p (1 - p)) / count
    dprobs = (probs - targets) / np.maximum(probs * (1 - probs), _BCE_EPSILON) / count
    return float(loss), dprobs.astype(probs.dtype, copy=False)


def bce_with_logits(logits: np.ndarray, targets: np.ndarray):
    """Binary cross-entropy on logits (torch's binary_cross_entropy_with_logits), stable.

    logits, targets: same shape. Returns loss (mean over all elements), dlogits.
    """
    count = logits.size
    # log(1 + e^{-z}) + (1 - y) z, rewritten as max(z, 0) - z y + log(1 + e^{-|z|}) to avoid overflow
    loss = (np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))).mean()
    dlogits = (expit(logits) - targets) / count     # ∂L/∂z = (σ(z) - y) / count
    return float(loss), dlogits.astype(logits.dtype, copy=False)


def mse(pred: np.ndarray, target: np.ndarray):
    """Mean squared error. Returns loss = mean((p - y)²), dpred = 2 (p - y) / count."""
    diff = pred - target
    return float((diff * diff).mean()), 2 * diff / diff.size


def mae(pred: np.ndarray, target: np.ndarray):
    """Mean absolute error (L1). Returns loss = mean|p - y|, dpred = sign(p - y) / count (0 at ties, as torch)."""
    diff = pred - target
    return float(np.abs(diff).mean()), np.sign(diff) / diff.size


def huber(pred: np.ndarray, target: np.ndarray, delta: float = 1.0):
    """Huber loss (torch.nn.HuberLoss): ½d² if |d| ≤ δ else δ(|d| - ½δ), d = p - y.

    Returns loss (mean over all elements), dpred = clip(d, -δ, δ) / count.
    """
    diff = pred - target
    abs_diff = np.abs(diff)
    quadratic = abs_diff <= delta
    loss = np.where(quadratic, 0.5 * diff * diff, delta * (abs_diff - 0.5 * delta)).mean()
    return float(loss), np.clip(diff, -delta, delta) / diff.size
