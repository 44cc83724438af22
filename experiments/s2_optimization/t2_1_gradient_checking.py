"""2.1 Gradient checking: every hand-written backward pass of the scratch package against
central differences of its forward pass, in float64, and one whole small CNN end to end.

The catalogue's bar: every relative error below 1e-6. A float32 check of the same Linear
layer shows why the check is done in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import scratch
from scratch.gradcheck import check_all_layers, check_layer, numerical_gradient, relative_error
from utils.plotting import plt
from utils.report import table

BUDGET = {mode: {"bar": 1e-6, "eps": 3e-4, "cnn_eps": 1e-3, "order": 4}
          for mode in ("tiny", "quick", "hybrid", "full")}
KINDS = {"linear": "layer", "conv2d": "layer", "maxpool2d": "layer", "avgpool2d": "layer",
         "softmax_cross_entropy": "loss", "bce": "loss", "bce_with_logits": "loss", "mse": "loss",
         "mae": "loss", "huber": "loss", "rnn_step": "recurrent", "rnn_sequence": "recurrent",
         "batchnorm1d": "normalisation", "batchnorm2d": "normalisation", "layernorm": "normalisation",
         "dropout": "regularisation", "whole CNN": "network"}
CNN_NAME = "whole CNN (conv, tanh, avg-pool, linear, CE)"


@dataclass
class Result:
    rows: list[dict]          # per op: name, max_rel_error, errors {input/parameter: error}, input_shape
    bar: float                # every error must be below this
    eps: float                # finite-difference step of the per-op checks
    cnn_eps: float            # step of the whole-CNN check
    order: int                # stencil order (4: f(x±h), f(x±2h))
    float32_error: float      # the same Linear-layer check in float32, for contrast


def kind(name: str) -> str:
    """What sort of op a check row is (layer, activation, loss, ...), from its name."""
    return next((k for prefix, k in KINDS.items() if name.startswith(prefix)), "activation")


def composite_network_check(seed: int, eps: float = 1e-3, order: int = 4) -> float:
    """Gradient check of a whole small CNN (conv → tanh → avg-pool → flatten → linear → softmax-CE), float64.

    Returns the largest relative error over every parameter. Smooth ops only, so the ±2h probes of the
    4th-order stencil never straddle a kink.
    """
    rng = np.random.default_rng(seed)
    f64 = np.float64
    model = scratch.Sequential([scratch.Conv2d(2, 3, 3, padding=1, rng=rng, dtype=f64), scratch.Tanh(),
                                scratch.AvgPool2d(2), scratch.Flatten(),
                                scratch.Linear(3 * 3 * 3, 4, rng=rng, dtype=f64)])
    x, y = rng.standard_normal((3, 2, 6, 6)), rng.integers(0, 4, 3)
    _, dlogits = scratch.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    errors = []
    for _, param, grad in model.parameters():
        analytic = grad.copy()
        numeric = numerical_gradient(lambda _: scratch.softmax_cross_entropy(model.forward(x), y)[0], param,
                                     eps=eps, order=order)
        errors.append(relative_error(analytic, numeric))
    return max(errors)


def measure(ctx) -> Result:
    b = ctx.budget
    ctx.use_dataset("synthetic", note="random float64 inputs and parameters for every op")
    rows = check_all_layers(rng=ctx.seed, eps=b.eps, order=b.order)
    rows.append({"name": CNN_NAME, "max_rel_error": composite_network_check(ctx.seed, b.cnn_eps, b.order),
                 "errors": {}, "input_shape": [3, 2, 6, 6]})
    for r in rows:
        r["input_shape"] = list(r["input_shape"])
    # Why float64: the same check on a float32 Linear layer (round-off ~1e-7 / h swamps the difference).
    rng = np.random.default_rng(ctx.seed)
    float32_error = max(check_layer(scratch.Linear(5, 3, rng=rng, dtype=np.float32),
                                    rng.standard_normal((4, 5)).astype(np.float32), eps=1e-3, order=4,
                                    rng=rng).values())
    worst = max(rows, key=lambda r: r["max_rel_error"])
    ctx.record(max_relative_error=worst["max_rel_error"], worst_op=worst["name"], layers_checked=len(rows),
               bar=b.bar, bar_passed=bool(worst["max_rel_error"] < b.bar),
               per_layer={r["name"]: r["max_rel_error"] for r in rows},
               per_layer_detail={r["name"]: r["errors"] for r in rows},
               float32_linear_relative_error=float32_error)
    return Result(rows, b.bar, b.eps, b.cnn_eps, b.order, float(float32_error))


def draw(ctx, r: Result) -> None:
    names = [r_["name"] for r_ in r.rows] + ["linear, in float32 (contrast, not checked)"]
    errors = [max(r_["max_rel_error"], 1e-17) for r_ in r.rows] + [r.float32_error]
    colours = ["#2ca02c" if e < r.bar else "#d62728" for e in errors[:-1]] + ["0.6"]
    fig, ax = plt.subplots(figsize=(8.5, 0.26 * len(names) + 1.6))
    y = np.arange(len(names))[::-1]
    bars = ax.barh(y, errors, color=colours)
    bars[-1].set_hatch("//")
    ax.set_yticks(y, names, fontsize=7)
    ax.axvline(r.bar, color="k", linestyle="--")
    ax.text(r.bar, y[0] + 0.8, f" bar {r.bar:.0e}", fontsize=8, va="bottom")
    ax.set_xscale("log")
    ax.set_xlim(min(errors) / 5, max(max(errors), r.bar) * 20)
    ax.set_xlabel("max relative error, analytic vs central-difference gradient (log scale, no unit)")
    worst = max(r_["max_rel_error"] for r_ in r.rows)
    ax.set_title(f"Gradient check of {len(r.rows)} scratch ops on random data (float64): worst {worst:.1e}\n"
                 f"green: below the {r.bar:.0e} bar, red: above; grey: float32 for contrast", fontsize=10)
    ctx.save_figure(fig, "relative_errors")


def write_up(r: Result) -> str:
    worst = max(r.rows, key=lambda x: x["max_rel_error"])
    failed = [x["name"] for x in r.rows if x["max_rel_error"] >= r.bar]
    by_kind: dict[str, list[float]] = {}
    for x in r.rows:
        by_kind.setdefault(kind(x["name"]), []).append(x["max_rel_error"])
    detail = [(x["name"], kind(x["name"]), str(tuple(x["input_shape"])),
               ", ".join(f"{k} {v:.1e}" for k, v in x["errors"].items()) or "all parameters",
               f"{x['max_rel_error']:.1e}", "yes" if x["max_rel_error"] < r.bar else "**no**") for x in r.rows]
    kinds = "; ".join(f"{k} {len(v)} (worst {max(v):.1e})" for k, v in by_kind.items())
    verdict = (f"All {len(r.rows)} are below the bar of {r.bar:.0e}, the worst by a factor "
               f"{r.bar / max(worst['max_rel_error'], 1e-300):,.0f}×." if not failed else
               f"**{len(failed)} of {len(r.rows)} fail the bar of {r.bar:.0e}: {', '.join(failed)}** — their "
               f"backward passes disagree with the finite differences of their forward passes and need fixing.")
    f32 = ("is above the bar: float32's ~1e-7 rounding divided by the step h swamps the comparison, so a "
           "float32 check cannot tell a correct gradient from a subtly wrong one" if r.float32_error >= r.bar else
           "happens to pass the bar here, but float32's ~1e-7 rounding divided by the step h leaves a margin "
           f"of only {r.bar / max(r.float32_error, 1e-300):.0f}×, too little to trust")
    return f"""
## Result (`relative_errors.png`)
Every op of the scratch package was checked in float64: its hand-written backward pass against central
differences of its forward pass (order-{r.order} stencil, step h = {r.eps:g}; h = {r.cnn_eps:g} for the whole CNN), for
the input and every parameter. The relative error per element is |a − n| / max(|a| + |n|, 1e-8); the table
gives the largest over all elements.

**{len(r.rows)} ops checked; worst relative error {worst['max_rel_error']:.1e} ({worst['name']}).** {verdict}
By kind: {kinds}.

{table(["op", "kind", "input shape", "error per input / parameter", "max", f"< {r.bar:.0e}"], detail)}

Notes:
- Kinks (ReLU at 0, max-pool ties, |x| at 0) would make a finite difference meaningless, so the checker keeps
  inputs at least 0.1 away from them; the last row checks a whole small CNN end to end, so the layers' gradients
  also chain correctly.
- Why float64: the same check of a float32 Linear layer gives {r.float32_error:.1e}, which {f32}.
"""
