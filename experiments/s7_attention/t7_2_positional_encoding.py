"""7.2 Positional encoding: the sinusoidal table (base 10000) for d_model 64 over 50 positions, and the
position-to-position similarity PE(p)·PE(q). The dot product depends only on the offset p − q
(Σ cos(ω_i (p − q))), is largest at offset 0 and falls with distance, so attention can read
relative position from it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.s7_attention._shared import sinusoidal_encoding
from utils.plotting import plt

BUDGET = {"tiny": {"positions": 50}, "quick": {"positions": 50}, "hybrid": {"positions": 50},
          "full": {"positions": 50}}
D_MODEL, BASE, REFERENCE = 64, 10000.0, 25


@dataclass
class Result:
    positions: int
    d_model: int
    encoding: np.ndarray            # (positions, d_model)
    similarity: np.ndarray          # (positions, positions) dot products
    by_offset: list[float]          # mean similarity at offset k = 0 … positions-1
    offset_only_deviation: float    # max over p of |PE(p)·PE(p+k) − mean over p| (all k)
    first_dip: int                  # first offset where similarity stops falling (a local minimum)


def measure(ctx) -> Result:
    ctx.use_dataset("synthetic", note="the sinusoidal encoding table itself")
    n = ctx.budget.positions
    pe = sinusoidal_encoding(n, D_MODEL, BASE).numpy()
    sim = pe @ pe.T
    diag = [np.diagonal(sim, k) for k in range(n)]
    by_offset = [float(d.mean()) for d in diag]
    deviation = float(max(np.abs(d - d.mean()).max() for d in diag))
    falls = np.diff(by_offset)
    dip = int(np.argmax(falls > 0)) if (falls > 0).any() else n - 1
    ctx.record(offset_only_deviation=deviation, similarity_by_offset={k: by_offset[k] for k in (0, 1, 2, 5, 10, 20, 40)
                                                                     if k < n},
               neighbour_similarity=by_offset[1] / by_offset[0], first_local_minimum_offset=dip,
               d_model=D_MODEL, positions=n, base=BASE)
    return Result(n, D_MODEL, pe, sim, by_offset, deviation, dip)


def draw(ctx, r: Result) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.8))
    im = ax.imshow(r.encoding, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xlabel("encoding dimension i (even: sin, odd: cos; frequency falls with i)")
    ax.set_ylabel("position p (token index)")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="PE(p, i)")
    ax.set_title(f"Sinusoidal positional encoding, d_model {r.d_model}, {r.positions} positions, base {BASE:g}")
    ctx.save_figure(fig, "encoding_heatmap")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    im = a1.imshow(r.similarity, cmap="viridis")
    a1.set_xlabel("position q")
    a1.set_ylabel("position p")
    a1.grid(False)
    fig.colorbar(im, ax=a1, label="PE(p)·PE(q)")
    a1.set_title("Dot product between every pair of positions")
    a2.plot(range(r.positions), r.similarity[REFERENCE], marker=".", label=f"PE({REFERENCE})·PE(q)")
    a2.plot(np.arange(r.positions) + REFERENCE, r.by_offset, ls="--", color="tab:red",
            label=f"mean over p at offset q − p (shifted to {REFERENCE})")
    a2.set_xlim(0, r.positions - 1)
    a2.set_xlabel("position q")
    a2.set_ylabel("dot product (unitless; max = d_model/2)")
    a2.legend(loc="lower center", fontsize=8)
    a2.set_title(f"Similarity to position {REFERENCE}")
    fig.suptitle("Sinusoidal positions: similarity depends only on the distance (synthetic: the table itself)")
    ctx.save_figure(fig, "position_similarity")


def write_up(r: Result) -> str:
    b = r.by_offset
    shown = [k for k in (0, 1, 2, 5, 10, 20, 40) if k < len(b)]
    values = ", ".join(f"offset {k}: {b[k]:.2f}" for k in shown)
    dip = (f"The fall is not monotone: the first local minimum is at offset {r.first_dip}, after which fast "
           f"dimensions come back in phase a little, so the code tells near from far but coarsely at long range."
           if r.first_dip < len(b) - 1 else f"The fall is monotone over all {len(b)} positions.")
    invariance = ("holds to rounding error" if r.offset_only_deviation < 1e-9
                  else f"is off by up to {r.offset_only_deviation:.2g}")
    return f"""
## The table (`encoding_heatmap.png`)
Each row is one position's {r.d_model}-dimensional code. The first dimensions oscillate fast (period 2π ≈ 6.3
positions), the last ones so slowly (period up to 2π·{BASE:g}^({r.d_model - 2}/{r.d_model}) ≈
{2 * np.pi * BASE ** ((r.d_model - 2) / r.d_model):.0f} positions) that they barely change over {r.positions}
positions: like the digits of a clock, fast columns tell neighbours apart, slow ones tell far positions apart.
Every row has the same norm² = d_model/2 = {b[0]:.1f}.

## Similarity (`position_similarity.png`)
PE(p)·PE(p+k) = Σᵢ cos(ωᵢ k) does not depend on p: over all pairs the largest deviation from the mean at the
same offset is {r.offset_only_deviation:.1e}, so the invariance {invariance}. That is why the
heatmap is constant along its diagonals. The similarity is largest at offset 0 and falls with distance
({values}); neighbours keep {100 * b[1] / b[0]:.0f}% of the self-similarity. {dip}
"""
