"""7.1 Attention, written out: scaled dot-product attention softmax(QKᵀ/√d_k)·V with masking, and
multi-head attention (d_model 64, 8 heads, W_q, W_k, W_v, W_o) in plain torch ops, checked against
``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention`` given the same weights (float64).
Then the weights on a small sentence: every head's heatmap, and for "The cat sat on the mat" with
query "sat" the raw scores beside the softmax weights."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.plotting import plt

BUDGET = {"tiny": {"checks": 3}, "quick": {"checks": 20}, "hybrid": {"checks": 50}, "full": {"checks": 100}}
D_MODEL, HEADS, TOLERANCE = 64, 8, 1e-6
SENTENCE = ["the", "cat", "sat", "on", "the", "mat"]
QUERY = "sat"


def scaled_dot_product_attention(q, k, v, mask=None):
    """q (…, Tq, d_k), k (…, Tk, d_k), v (…, Tk, d_v); mask (…, Tq, Tk) True = may attend.
    Returns (output, weights, raw scores)."""
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)           # S = QKᵀ / √d_k
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))      # masked positions get e^(-inf) = 0
    weights = torch.softmax(scores, dim=-1)                    # A = softmax(S) row by row
    return weights @ v, weights, scores                        # out = A·V


def multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, b_q, b_k, b_v, b_o, heads: int, mask=None):
    """x (B, T, d_model); W_* (d_model, d_model) in nn.Linear's (out, in) layout. Returns (out, weights
    per head (B, heads, Tq, Tk))."""
    b, tq, d = x_q.shape
    d_k = d // heads
    q = x_q @ w_q.T + b_q                                      # Q = X W_qᵀ + b_q
    k = x_kv @ w_k.T + b_k                                     # K = X W_kᵀ + b_k
    v = x_kv @ w_v.T + b_v                                     # V = X W_vᵀ + b_v

    def split(t):                                              # (B, T, d) → (B, h, T, d_k)
        return t.view(b, -1, heads, d_k).transpose(1, 2)
    out, weights, _ = scaled_dot_product_attention(split(q), split(k), split(v), mask)  # head_i = Attn(Q_i, K_i, V_i)
    concat = out.transpose(1, 2).reshape(b, tq, d)             # Concat(head_1, …, head_h)
    return concat @ w_o.T + b_o, weights                       # · W_oᵀ + b_o


def check_against_torch(n: int, seed: int) -> dict[str, float]:
    """Largest |ours − torch| over ``n`` random float64 cases (with and without causal masks)."""
    g = torch.Generator().manual_seed(seed)
    worst = {"sdpa": 0.0, "multihead": 0.0, "multihead_weights": 0.0}
    for i in range(n):
        t = 4 + i % 9
        x = torch.randn(3, t, D_MODEL, generator=g, dtype=torch.float64)
        mask = torch.ones(t, t, dtype=torch.bool).tril() if i % 2 else None
        q, k, v = (torch.randn(2, HEADS, t, D_MODEL // HEADS, generator=g, dtype=torch.float64) for _ in range(3))
        ours, _, _ = scaled_dot_product_attention(q, k, v, mask)
        worst["sdpa"] = max(worst["sdpa"], float((ours - F.scaled_dot_product_attention(q, k, v, mask)).abs().max()))
        torch.manual_seed(seed + i)
        mha = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True).double().eval()
        with torch.no_grad():
            mha.in_proj_bias.normal_()
            ref, ref_w = mha(x, x, x, attn_mask=None if mask is None else ~mask, average_attn_weights=False)
            wq, wk, wv = mha.in_proj_weight.chunk(3)
            bq, bk, bv = mha.in_proj_bias.chunk(3)
            out, w = multi_head_attention(x, x, wq, wk, wv, mha.out_proj.weight, bq, bk, bv, mha.out_proj.bias,
                                          HEADS, mask)
        worst["multihead"] = max(worst["multihead"], float((out - ref).abs().max()))
        worst["multihead_weights"] = max(worst["multihead_weights"], float((w - ref_w).abs().max()))
    return worst


@dataclass
class Result:
    checks: int
    max_abs_diff: dict[str, float]      # "sdpa" / "multihead" / "multihead_weights"
    tokens: list[str]
    head_weights: np.ndarray            # (heads, T, T) on the sentence
    query_scores: list[float]           # head 0, query "sat": raw QKᵀ/√d_k
    query_weights: list[float]          # its softmax
    causal_weights: np.ndarray          # (T, T) head 0 under a causal mask
    weights_sum_to_one: float           # max |row sum − 1|


def measure(ctx) -> Result:
    ctx.use_dataset("synthetic", note="random float64 tensors; a six-word sentence with random embeddings")
    diffs = check_against_torch(ctx.budget.checks, ctx.seed)
    g = torch.Generator().manual_seed(ctx.seed)
    vocab = sorted(set(SENTENCE))
    table = torch.randn(len(vocab), D_MODEL, generator=g, dtype=torch.float64)
    x = table[[vocab.index(w) for w in SENTENCE]][None]        # (1, 6, 64): "the" twice, same embedding
    w = [torch.randn(D_MODEL, D_MODEL, generator=g, dtype=torch.float64) / math.sqrt(D_MODEL) for _ in range(4)]
    zeros = torch.zeros(D_MODEL, dtype=torch.float64)
    _, weights = multi_head_attention(x, x, *w, zeros, zeros, zeros, zeros, HEADS)
    d_k = D_MODEL // HEADS
    q = (x @ w[0].T)[0, :, :d_k]
    k = (x @ w[1].T)[0, :, :d_k]
    _, _, scores = scaled_dot_product_attention(q, k, k)
    causal = torch.ones(len(SENTENCE), len(SENTENCE), dtype=torch.bool).tril()
    _, causal_w, _ = scaled_dot_product_attention(q, k, k, causal)
    qi = SENTENCE.index(QUERY)
    row_error = float((weights.sum(-1) - 1).abs().max())
    ctx.record(max_abs_diff_vs_torch=max(diffs.values()), max_abs_diff=diffs, tolerance=TOLERANCE,
               passes=bool(max(diffs.values()) < TOLERANCE), checks=ctx.budget.checks,
               weights_sum_to_one=row_error, d_model=D_MODEL, heads=HEADS,
               query_weights={"query": QUERY, "keys": SENTENCE,
                              "weights": torch.softmax(scores[qi], 0).tolist()})
    return Result(ctx.budget.checks, diffs, SENTENCE, weights[0].numpy(), scores[qi].tolist(),
                  torch.softmax(scores[qi], 0).tolist(), causal_w.numpy(), row_error)


def draw(ctx, r: Result) -> None:
    heads = r.head_weights.shape[0]
    fig, axes = plt.subplots(2, heads // 2, figsize=(3.0 * heads // 2, 6.4), constrained_layout=True)
    for h, ax in enumerate(axes.flat):
        im = ax.imshow(r.head_weights[h], vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(r.tokens)), r.tokens, rotation=60, fontsize=8)
        ax.set_yticks(range(len(r.tokens)), r.tokens, fontsize=8)
        ax.set_title(f"head {h + 1}", fontsize=9)
        ax.grid(False)
    fig.supxlabel("key (attended-to word)")
    fig.supylabel("query word")
    fig.colorbar(im, ax=axes, shrink=0.7, label="attention weight (rows sum to 1)")
    fig.suptitle(f"Multi-head attention weights on \"{' '.join(r.tokens)}\" (random embeddings and weights, "
                 f"d_model {D_MODEL}, {heads} heads)")
    ctx.save_figure(fig, "attention_heads")

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(r.causal_weights, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(r.tokens)), r.tokens)
    ax.set_yticks(range(len(r.tokens)), r.tokens)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="attention weight")
    ax.set_title("Head 1 with a causal mask: no weight on later words")
    ctx.save_figure(fig, "causal_mask")

    fig, ax1 = plt.subplots(figsize=(8, 4.2))
    x = np.arange(len(r.tokens))
    labels = [f"{t} ({i + 1})" for i, t in enumerate(r.tokens)]
    ax1.bar(x - 0.2, r.query_scores, 0.4, color="tab:gray", label="raw score qᵀk/√d_k (left axis)")
    ax1.set_ylabel("raw score (unitless)")
    ax1.axhline(0, color="black", lw=0.6)
    ax2 = ax1.twinx()
    ax2.bar(x + 0.2, r.query_weights, 0.4, color="tab:blue", label="softmax weight (right axis)")
    ax2.set_ylabel("attention weight (sums to 1)")
    ax2.set_ylim(0, 1)
    ax2.grid(False)
    ax1.set_xticks(x, labels)
    ax1.set_xlabel("key word (position)")
    handles = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax1.legend(handles, [h.get_label() for h in handles], loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax1.set_title(f"Query \"{QUERY}\" in \"The cat sat on the mat\" (head 1): raw scores vs softmax weights")
    ctx.save_figure(fig, "query_scores")


def write_up(r: Result) -> str:
    worst = max(r.max_abs_diff.values())
    verdict = "within" if worst < TOLERANCE else "OUTSIDE"
    order = np.argsort(r.query_weights)[::-1]
    top, second = int(order[0]), int(order[1])
    s = np.asarray(r.query_scores)
    w = np.asarray(r.query_weights)
    spread_scores = float(s.max() - s.min())
    ratio = float(w.max() / max(w.min(), 1e-300))
    same = [i for i, t in enumerate(r.tokens) if t == "the"]
    return f"""
## Checks against torch (tolerance {TOLERANCE:g}, float64, {r.checks} random cases, half with a causal mask)
- scaled dot-product attention vs `F.scaled_dot_product_attention`: max |difference| {r.max_abs_diff['sdpa']:.1e}
- multi-head attention vs `nn.MultiheadAttention` with the same W_q, W_k, W_v, W_o and biases: outputs
  {r.max_abs_diff['multihead']:.1e}, per-head weights {r.max_abs_diff['multihead_weights']:.1e}

All {verdict} the tolerance. Attention rows sum to one to {r.weights_sum_to_one:.1e}.

## Heads on a sentence (`attention_heads.png`, `causal_mask.png`)
The weights come from random embeddings and random projections, so the patterns show the mechanism,
not language: each of the {r.head_weights.shape[0]} heads uses its own 8-dimensional slice of Q and K and
so spreads its weight differently over the same six words. The two "the" tokens share one embedding, so
every query gives them the same weight (head 1, query "{QUERY}": {w[same[0]]:.3f} and {w[same[1]]:.3f}).
Under the causal mask the upper triangle is exactly zero and the first word attends only to itself.

## Raw scores vs softmax (`query_scores.png`)
For the query "{QUERY}" the raw scores span {spread_scores:.2f}; the softmax turns that into weights from
{w.min():.3f} to {w.max():.3f} (a factor {ratio:.1f}), largest on "{r.tokens[top]}" (position {top + 1},
{w[top]:.3f}) then "{r.tokens[second]}" ({w[second]:.3f}). Dividing by √d_k = {math.sqrt(D_MODEL // 8):.2f} keeps
the scores in a range where the softmax is not saturated, so several words keep a share.
"""
