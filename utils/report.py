"""Small helpers for analysis.md text built from measured numbers.

The point of these is honesty: a comparison sentence states the measured difference and,
when several seeds were run, whether that difference is larger than the seed-to-seed spread.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def pct(x: float, digits: int = 1) -> str:
    """0.9123 -> '91.2%'."""
    return f"{100 * x:.{digits}f}%"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def spread(values: Sequence[float], fmt=pct) -> str:
    """'91.2% ± 0.3% (3 seeds)' or '91.2% (1 seed)'."""
    m, s = mean_std(values)
    n = len(values)
    return f"{fmt(m)} ± {fmt(s)} ({n} seeds)" if n > 1 else f"{fmt(m)} (1 seed)"


def compare(a: Sequence[float], b: Sequence[float], name_a: str, name_b: str, *,
            higher_is_better: bool = True, fmt=pct, unit_points: bool = True) -> str:
    """One sentence comparing two sets of per-seed results of the same metric.

    With >= 2 seeds each, a difference counts as real only if it exceeds the sum of the two
    standard deviations (a deliberately conservative, readable rule); with one seed the
    sentence says that no spread was measured.
    """
    ma, sa = mean_std(a)
    mb, sb = mean_std(b)
    diff = ma - mb
    better = name_a if (diff > 0) == higher_is_better else name_b
    worse = name_b if better == name_a else name_a
    size = f"{abs(diff) * 100:.2f} percentage points" if unit_points else f"{abs(diff):.4g}"
    if diff == 0:
        return f"{name_a} and {name_b} measured the same ({fmt(ma)})."
    text = f"{better} did better than {worse} by {size} ({name_a} {fmt(ma)}, {name_b} {fmt(mb)})"
    if len(a) > 1 and len(b) > 1:
        if abs(diff) > sa + sb:
            text += f"; the gap is larger than the seed-to-seed spread (±{fmt(sa)}, ±{fmt(sb)}), so it is likely real."
        else:
            text += (f"; the gap is within the seed-to-seed spread (±{fmt(sa)}, ±{fmt(sb)}), so these runs do not "
                     f"show a real difference.")
    else:
        text += "; one seed only (QUICK mode), so the spread was not measured and a small gap may be noise."
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def most_confused(cm) -> tuple[int, int, int]:
    """(true class, predicted class, count) of the largest off-diagonal cell of a confusion matrix."""
    off = np.array(cm, copy=True)
    np.fill_diagonal(off, 0)
    true_idx, pred_idx = np.unravel_index(off.argmax(), off.shape)
    return int(true_idx), int(pred_idx), int(off[true_idx, pred_idx])
