"""1.1 MLP from scratch on logic gates: 2-H-1 ReLU/sigmoid nets trained by hand-written backprop on
AND, OR and XOR. The smallest net (2-2-1) fails often, and the measured reason is shown; a wider
net (2-16-1) learns all three gates. One forward and backward pass is traced by the chain rule."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import NullLocator
from rich.markup import escape

from experiments.s1_foundations._shared import (GATE_INPUTS, GATE_TARGETS, GateNets, chain_rule_trace,
                                                failure_reason, logistic_regression_on_gate, unit_roles)
from utils.plotting import plt
from utils.report import Comparison, accuracy_interval, compare_predictions, table

BUDGET = {"tiny": {"restarts": 4, "steps": 300, "lr": 0.5}, "quick": {"restarts": 20, "steps": 3000, "lr": 0.5},
          "hybrid": {"restarts": 50, "steps": 5000, "lr": 0.5}, "full": {"restarts": 100, "steps": 5000, "lr": 0.5}}
WIDTHS = (2, 4, 8, 16)   # hidden units; 2 is the catalogue's net, 16 the one that learns all gates
DEMO = "2-16-1"
SMALL = "2-2-1"
CONSTANT_LOSS = {"AND": 0.5623, "OR": 0.5623, "XOR": math.log(2)}   # BCE of the best constant prediction


@dataclass
class Result:
    seed: int
    restarts: int
    steps: int
    lr: float
    logged_steps: list[int]
    curves: dict[str, dict[str, np.ndarray]]    # net -> gate -> BCE (logged steps, restarts); 2-2-1 and demo
    solved: dict[str, dict[str, np.ndarray]]    # net -> gate -> bool per restart (all four widths)
    params: dict[str, dict[str, dict[str, np.ndarray]]]  # net -> gate -> name -> final values (restarts, ...)
    bending_at_init: dict[str, np.ndarray]      # net -> bending hidden units at initialisation, per restart
    failures: dict[str, dict[str, dict[str, int]]]   # gate -> net -> reason -> failed runs
    predictions: dict[str, dict[str, list[float]]]   # net -> gate -> P(y=1) on the 4 inputs, this seed
    final_loss: dict[str, dict[str, float]]     # net -> gate -> final BCE, this seed
    trace: dict                                 # the chain-rule trace (see _shared.chain_rule_trace)
    single_neuron: dict[str, dict[str, float]]  # gate -> final_loss, inputs_correct
    comparisons: dict[str, Comparison]          # gate -> demo vs 2-2-1, solved or not, paired by seed


def measure(ctx) -> Result:
    b = ctx.budget
    ctx.use_dataset("synthetic", note="the 4 input pairs of the AND, OR and XOR truth tables")
    X, gates, R = np.array(GATE_INPUTS), list(GATE_TARGETS), b.restarts
    Y = np.repeat(np.array([GATE_TARGETS[g] for g in gates]), R, axis=0)   # one block of nets per gate
    curves, solved, params, bending, failures, preds, final = {}, {}, {}, {}, {g: {} for g in gates}, {}, {}
    P = GateNets(int(DEMO.split("-")[1]), R, ctx.seed, copies=len(gates)).one(gates.index("XOR") * R)
    on = (P["W1"] @ X[3] + P["b1"]) > 0   # trace the demo XOR net of this seed at initialisation, on x = (1, 1)
    units = [int(np.argmax(on)), int(np.argmin(on))] if on.any() and not on.all() else [0, 1]
    trace = chain_rule_trace(P, X[3], GATE_TARGETS["XOR"][3], units=units)

    def train_width(width):   # R nets of this width per gate, trained side by side (one batched NumPy net)
        net = GateNets(width, R, ctx.seed, copies=len(gates))
        bending_at_init = unit_roles(net.pre_activations(X)[:R])["bending"]
        logged, c = net.train(X, Y, b.steps, b.lr, log_every=max(1, b.steps // 100))
        return bending_at_init, logged, c, net.forward(X)[0], net.pre_activations(X), net.params

    widest_first = sorted(WIDTHS, reverse=True)
    trained = dict(zip(widest_first, ctx.map(train_width, widest_first, "widths",
                                             info=lambda width, _: f"2-{width}-1 trained", torch_runs=False)))
    for width in WIDTHS:
        name = f"2-{width}-1"
        bending[name], logged, c, p, z1, net_params = trained[width]
        ok = np.all((p > 0.5) == (Y > 0.5), axis=1)
        solved[name] = {g: ok[i * R:(i + 1) * R] for i, g in enumerate(gates)}
        preds[name] = {g: p[i * R].tolist() for i, g in enumerate(gates)}
        final[name] = {g: float(c[-1, i * R]) for i, g in enumerate(gates)}
        if name in (SMALL, DEMO):
            curves[name] = {g: c[:, i * R:(i + 1) * R] for i, g in enumerate(gates)}
            params[name] = {g: {k: v[i * R:(i + 1) * R] for k, v in net_params.items()} for i, g in enumerate(gates)}
        for i, g in enumerate(gates):
            reasons: dict[str, int] = {}
            for m in np.flatnonzero(~ok[i * R:(i + 1) * R]) + i * R:
                why = failure_reason(z1[m], Y[m])
                reasons[why] = reasons.get(why, 0) + 1
            failures[g][name] = reasons
    for name, part in trace["partials"].items():
        ctx.log(escape(f"  ∂L/∂{name} = {' × '.join(f'{v:.4g}' for v in part['factors'].values())} = "
                       f"{part['chain_rule']:.6g}   (finite difference {part['finite_difference']:.6g})"))
    logreg = {g: logistic_regression_on_gate(X, np.array(GATE_TARGETS[g]), b.steps, b.lr) for g in gates}
    comparisons = {g: compare_predictions(DEMO, solved[DEMO][g], SMALL, solved[SMALL][g],
                                          metric=f"share of seeds solving {g}") for g in gates}
    r = Result(ctx.seed, R, b.steps, b.lr, logged, curves, solved, params, bending, failures, preds, final, trace,
               {g: {"final_loss": v[0], "inputs_correct": v[1]} for g, v in logreg.items()}, comparisons)
    fraction = {g: {n: float(s[g].mean()) for n, s in solved.items()} for g in gates}
    outcome = default_seed_outcome(r)
    ctx.record(predictions=preds[DEMO], predictions_by_net={n: preds[n] for n in (SMALL, DEMO)},
               final_loss=final[DEMO], final_loss_by_net={n: final[n] for n in (SMALL, DEMO)},
               solved_fraction=fraction, default_seed_solved={g: bool(solved[DEMO][g][0]) for g in gates},
               solved_this_seed={n: {g: bool(s[g][0]) for g in gates} for n, s in solved.items()},
               restarts=R, restarts_solved={g: {n: int(s[g].sum()) for n, s in solved.items()} for g in gates},
               xor_solved_fraction=fraction["XOR"][SMALL], and_solved_fraction=fraction["AND"][SMALL],
               or_solved_fraction=fraction["OR"][SMALL], steps=b.steps, learning_rate=b.lr, demo_net=DEMO,
               default_seed_outcome=outcome, chain_rule_trace=trace, traced_seed=ctx.seed, traced_net=DEMO,
               max_chain_rule_vs_finite_difference=max(p["abs_error"] for p in trace["partials"].values()),
               failures=failures, xor_stuck_runs=failures["XOR"][SMALL],
               bending_units_at_init={n: float(v.mean()) for n, v in bending.items()},
               xor_solved_by_bending_at_init=bending_split(r), verdict=comparisons["XOR"].verdict(),
               single_neuron_baseline=r.single_neuron)
    return r


def default_seed_outcome(r: Result) -> str:
    ok = [g for g in GATE_TARGETS if r.solved[DEMO][g][0]]
    if len(ok) == len(GATE_TARGETS):
        return "AND/OR/XOR all solved"
    missed = [g for g in GATE_TARGETS if g not in ok]
    return f"{'/'.join(ok) or 'no gate'} solved, {'/'.join(missed)} not"


def bending_split(r: Result) -> dict[str, dict[str, int]]:
    """XOR runs of every width, split by whether some hidden unit bent between the inputs at initialisation."""
    out = {}
    for label, test in (("none", lambda k: k == 0), ("one or more", lambda k: k > 0)):
        pick = [(test(k), s) for n in r.solved for k, s in zip(r.bending_at_init[n], r.solved[n]["XOR"])]
        out[label] = {"runs": sum(t for t, _ in pick), "solved": sum(bool(t and s) for t, s in pick)}
    return out


def _boundary(ax, P: dict, index: int, gate: str, title: str):
    X, y = np.array(GATE_INPUTS), np.array(GATE_TARGETS[gate])
    grid = np.linspace(-0.5, 1.5, 121)
    gx, gy = np.meshgrid(grid, grid)
    net = GateNets.__new__(GateNets)
    net.params = {k: v[index:index + 1] for k, v in P.items()}
    surface = net.forward(np.column_stack([gx.ravel(), gy.ravel()]))[0][0].reshape(gx.shape)
    filled = ax.contourf(gx, gy, surface, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
    if surface.min() < 0.5 < surface.max():
        ax.contour(gx, gy, surface, levels=[0.5], colors="k", linewidths=1.8)
    W1, b1 = net.params["W1"][0], net.params["b1"][0]
    for j in range(len(b1)):   # hidden unit j switches on across the line W1_j·x + b1_j = 0
        label = "hidden unit switches on (z1_j = 0)" if j == 0 else None
        if abs(W1[j, 1]) > 1e-9:
            ax.plot(grid, -(W1[j, 0] * grid + b1[j]) / W1[j, 1], ":", color="0.25", lw=1, label=label)
        elif abs(W1[j, 0]) > 1e-9:
            ax.axvline(-b1[j] / W1[j, 0], linestyle=":", color="0.25", lw=1, label=label)
    for target, marker in ((0, "o"), (1, "s")):
        sel = y == target
        ax.scatter(X[sel, 0], X[sel, 1], s=90, marker=marker, c="white" if target == 0 else "k",
                   edgecolors="k", linewidths=1.5, zorder=5, label=f"target {target}")
    ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), xticks=np.arange(-0.5, 1.6, 0.5), yticks=np.arange(-0.5, 1.6, 0.5),
           title=title)
    return filled


def draw(ctx, r: Result) -> None:
    gates, nets = list(GATE_TARGETS), (SMALL, DEMO)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), sharex=True, sharey=True)
    fig.subplots_adjust(hspace=0.25, wspace=0.08)
    for row, net in zip(axes, nets):
        for ax, gate in zip(row, gates):
            c, ok = r.curves[net][gate], r.solved[net][gate]
            for i in range(r.restarts):
                ax.semilogy(r.logged_steps, c[:, i], color="#98df8a" if ok[i] else "#ff9896", lw=0.8)
            ax.semilogy(r.logged_steps, c[:, 0], color="k", lw=2, label=f"this run's seed ({r.seed})")
            ax.axhline(CONSTANT_LOSS[gate], color="0.4", ls="--", lw=1, label="best constant prediction")
            ax.set_title(f"{gate}, {net} net: {int(ok.sum())}/{r.restarts} seeds solved")
            ax.yaxis.set_minor_locator(NullLocator())   # the decades are labelled; minor ticks only cost time
        row[0].set_ylabel("BCE loss (log scale)")
    for ax in axes[1]:
        ax.set_xlabel("gradient-descent step (full batch of 4)")
    axes[0, 2].plot([], [], color="#98df8a", label="a seed that solved the gate")
    axes[0, 2].plot([], [], color="#ff9896", label="a seed that did not")
    axes[0, 2].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"Logic gates (4 truth-table inputs): loss of 2-2-1 and {DEMO} ReLU/sigmoid nets, hand-written "
                 f"backprop, lr {r.lr}, {r.restarts} seeds")
    ctx.save_figure(fig, "loss_curves")

    fig, axes = plt.subplots(2, 3, figsize=(12, 8.2), sharex=True, sharey=True)
    fig.subplots_adjust(hspace=0.2, wspace=0.1)
    for row, net in zip(axes, nets):
        for ax, gate in zip(row, gates):
            correct = int(np.sum((np.array(r.predictions[net][gate]) > 0.5) == (np.array(GATE_TARGETS[gate]) > 0.5)))
            filled = _boundary(ax, r.params[net][gate], 0, gate,
                               f"{gate}, {net}: {correct}/4 right, BCE {r.final_loss[net][gate]:.2g}")
    for ax in axes[1]:
        ax.set_xlabel("input x₁")
    for ax in axes[:, 0]:
        ax.set_ylabel("input x₂")
    fig.colorbar(filled, ax=axes, fraction=0.025, pad=0.02, label="predicted P(y = 1)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles + [plt.Line2D([], [], color="k", lw=1.8)], labels + ["decision boundary P = 0.5"],
               loc="upper center", bbox_to_anchor=(0.45, 0.05), ncol=4)
    fig.suptitle(f"Decision boundaries after training, seed {r.seed} (black: P = 0.5; dotted: where each hidden "
                 "ReLU switches on)")
    ctx.save_figure(fig, "decision_boundaries")

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.6), width_ratios=(2, 1), layout="constrained")
    names = list(r.solved)
    for gi, gate in enumerate(gates):
        share = np.array([r.solved[n][gate].mean() for n in names])
        lo, hi = np.array([accuracy_interval(s, r.restarts) for s in share]).T
        x = np.arange(len(names)) + (gi - 1) * 0.27
        err = 100 * np.clip([share - lo, hi - share], 0, None)   # (Wilson bounds can round past the share)
        ax.bar(x, 100 * share, 0.27, yerr=err, capsize=3, label=gate)
    ax.set_xticks(range(len(names)), [f"{n} net" for n in names])
    ax.set(ylabel="seeds that solved the gate (%)", ylim=(0, 109),
           title=f"Share of {r.restarts} seeds solving each gate (95% binomial intervals)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="gate")
    split = bending_split(r)
    keys = list(split)
    shares = [100 * split[k]["solved"] / max(split[k]["runs"], 1) for k in keys]
    bars = ax2.bar([f"{k}\n({split[k]['runs']} runs)" for k in keys], shares, color=["#d62728", "#2ca02c"])
    ax2.bar_label(bars, [f"{split[k]['solved']}/{split[k]['runs']}" for k in keys])
    ax2.set(ylabel="XOR runs solved (%)", ylim=(0, 110), xlabel="hidden units bending between the inputs at init",
            title="XOR, all widths pooled")
    fig.suptitle("Logic gates: how often each width learns each gate")
    ctx.save_figure(fig, "solved_fraction")


def write_up(r: Result) -> str:
    gates, names = list(GATE_TARGETS), list(r.solved)
    pred = {n: {g: ", ".join(f"{v:.3f}" for v in r.predictions[n][g]) for g in gates} for n in (SMALL, DEMO)}
    outcome = default_seed_outcome(r)
    rows = [(g, *[f"{int(r.solved[n][g].sum())}/{r.restarts}" for n in names]) for g in gates]
    comp_lines = []
    for g in gates:
        c, k_demo, k_small = r.comparisons[g], int(r.solved[DEMO][g].sum()), int(r.solved[SMALL][g].sum())
        p = f"p = {c.p_value:.2g}" if c.p_value is not None and c.p_value >= 0.001 else "p < 0.001"
        test = f"McNemar's exact test on the {c.n} seeds paired by seed, {p}"
        comp_lines.append(f"- {g}: {c.winner} solved it on more seeds than {c.loser} ({DEMO} {k_demo}/{r.restarts}, "
                          f"{SMALL} {k_small}/{r.restarts}; {test})." if c.winner else
                          f"- {g}: no measurable difference between {DEMO} and {SMALL} ({k_demo} vs {k_small} of "
                          f"{r.restarts} seeds; {test}).")
    fail_lines = [f"- {g}, {n}: " + "; ".join(f"{k} ({v} run{'s' * (v > 1)})" for k, v in
                                              sorted(r.failures[g][n].items(), key=lambda kv: -kv[1]))
                  for g in gates for n in (SMALL, DEMO) if r.failures[g][n]]
    split = bending_split(r)
    none, some = split["none"], split["one or more"]
    bend = ", ".join(f"{n} {r.bending_at_init[n].mean():.1f}" for n in names)
    no_bend_share = ", ".join(f"{n} {100 * np.mean(r.bending_at_init[n] == 0):.0f}%" for n in names)
    small_none, demo_none = (float(np.mean(r.bending_at_init[n] == 0)) for n in (SMALL, DEMO))
    width_note = (f"The {DEMO} net started with no bending unit on {100 * demo_none:.0f}% of seeds against "
                  f"{100 * small_none:.0f}% for {SMALL}, which is how the wider net escapes this trap."
                  if demo_none < small_none else
                  f"Here the {DEMO} net started without a bending unit as often as {SMALL} "
                  f"({100 * demo_none:.0f}% vs {100 * small_none:.0f}% of seeds), so width alone did not help.")
    t, fwd = r.trace, r.trace["forward"]
    rows_t = [(name, " × ".join(f"{v:.4g}" for v in part["factors"].values()), f"{part['chain_rule']:.6g}",
               f"{part['finite_difference']:.6g}", f"{part['abs_error']:.1e}") for name, part in t["partials"].items()]
    off = [u for u in t["units"] if fwd["z1"][u - 1] <= 0]
    off_note = (f"Hidden unit {off[0]} is off on this input (z1 = {fwd['z1'][off[0] - 1]:.3f} ≤ 0), so its ReLU factor "
                f"is 0 and every partial through it is exactly 0: an off ReLU passes no gradient." if off else
                "Both traced units are on for this input, so no factor is zero.")
    max_err = max(p["abs_error"] for p in t["partials"].values())
    sn = r.single_neuron
    return f"""
## The network that learns the gates (`decision_boundaries.png`, bottom row)
The {DEMO} net ({DEMO.split("-")[1]} ReLU hidden units, sigmoid output, BCE), trained by hand-written backprop with full-batch gradient
descent (lr {r.lr}, {r.steps} steps) on the 4 inputs (0,0), (0,1), (1,0), (1,1), seed {r.seed}: **{outcome}**.
Predicted P(y = 1):

{table(["gate", "targets", f"{DEMO} (seed {r.seed})", f"{SMALL} (seed {r.seed})"],
       [(g, ", ".join(f"{v:.0f}" for v in GATE_TARGETS[g]), pred[DEMO][g], pred[SMALL][g]) for g in gates])}

## How often each width learns each gate (`solved_fraction.png`, `loss_curves.png`)
Solved = all 4 inputs on the right side of 0.5 after {r.steps} steps; {r.restarts} seeds ({r.seed}–{r.seed + r.restarts - 1}),
each gate trained from the same initial weights:

{table(["gate", *[f"{n} net" for n in names]], rows)}

{chr(10).join(comp_lines)}

## Why runs fail (measured on the final weights)
{chr(10).join(fail_lines) or "- No run failed."}

Each hidden ReLU is, on the 4 inputs, either off for all of them (dead: zero gradient, it never recovers), on for all of
them (it adds only a linear function), or on for some and off for others: it *bends* the output between the inputs.
At the best constant prediction the loss is ln 2 = 0.693 for XOR and 0.562 for AND and OR (the dashed lines in
`loss_curves.png`); a net with no bending unit is linear on the inputs, and for XOR the best linear model predicts 0.5
everywhere, where every gradient is exactly zero — a flat point, not a slow run. Mean bending units at initialisation:
{bend}; share of seeds with none: {no_bend_share}. Pooled over widths, XOR was solved in {some['solved']}/{some['runs']}
runs that started with at least one bending unit and in {none['solved']}/{none['runs']} that started with none. {width_note}

## Why AND and OR are linearly separable and XOR is not
AND is separated by the line x₁ + x₂ = 1.5 (only (1,1) lies above it), OR by x₁ + x₂ = 0.5. For XOR, suppose a line
w₁x₁ + w₂x₂ + b had (0,1) and (1,0) on its positive side and (0,0), (1,1) on its negative side. Then
w₂ + b > 0 and w₁ + b > 0 add up to w₁ + w₂ + 2b > 0, while b < 0 and w₁ + w₂ + b < 0 add up to
w₁ + w₂ + 2b < 0 — a contradiction. So no single neuron computes XOR; a hidden layer must bend the input space first.
Measured: a single sigmoid unit trained the same way reached BCE {sn['AND']['final_loss']:.4f} on AND
({sn['AND']['inputs_correct']:.0f}/4 correct), {sn['OR']['final_loss']:.4f} on OR ({sn['OR']['inputs_correct']:.0f}/4)
and {sn['XOR']['final_loss']:.4f} on XOR ({sn['XOR']['inputs_correct']:.0f}/4 on the right side of 0.5; ln 2 = 0.6931).

## One forward and one backward pass, by the chain rule
The {DEMO} XOR net of seed {r.seed} at initialisation, input x = (1, 1), target y = 0, hidden units {t['units'][0]} and
{t['units'][1]} (the first unit on and the first unit off for this input). Forward:
z1 = ({fwd['z1'][t['units'][0] - 1]:.4f}, {fwd['z1'][t['units'][1] - 1]:.4f}) for these units,
h = relu(z1) = ({fwd['h'][t['units'][0] - 1]:.4f}, {fwd['h'][t['units'][1] - 1]:.4f}), z2 = {fwd['z2']:.4f} (all {len(fwd['z1'])} units),
p = σ(z2) = {fwd['p']:.4f}, BCE = {fwd['loss']:.4f}. Backward: each partial is the product of the local derivatives along
its path (∂L/∂p, ∂p/∂z2, then the layer factors), checked against a central finite difference on the weight itself:

{table(["weight", "chain-rule factors", "∂L/∂weight", "finite difference", "|difference|"], rows_t)}

{off_note} The largest chain-rule vs finite-difference gap is {max_err:.1e} (tolerance 1e-7:
{'passed' if max_err < 1e-7 else 'FAILED'}).
"""
