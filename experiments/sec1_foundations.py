"""Section 1: foundations — networks from scratch (NumPy only: hand-written forward and backward).

Also home of the small helpers that sections 1 and 2 share: data as NumPy arrays, a scratch MLP builder,
a divergence-aware scratch training loop, and a one-thread guard for small-network tasks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from experiments.registry import task

# ------------------------------------------------------------------------------ shared helpers




def digits_arrays(ctx, seed: int, dtype=None):
    """scikit-learn's real 8×8 digits as standardised NumPy arrays (stratified 80/20 split).

    Returns (x_train, y_train, x_test, y_test); x is (N, 64) scaled by the training pixels'
    mean and overall standard deviation.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    ctx.use_dataset("digits", note="scikit-learn's 1,797 real 8×8 handwritten digits, stratified 80/20 split")
    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.data, d.target, test_size=0.2, stratify=d.target,
                                              random_state=seed)
    mean, std = x_tr.mean(axis=0), x_tr.std()
    dtype = dtype or np.float32
    return ((x_tr - mean) / std).astype(dtype), y_tr, ((x_te - mean) / std).astype(dtype), y_te


def image_arrays(ds):
    """An ImageData's tensors as flat NumPy arrays for scratch networks: (x_train, y_train, x_test, y_test)."""
    return (ds.x_train.flatten(1).numpy(), ds.y_train.numpy(), ds.x_test.flatten(1).numpy(), ds.y_test.numpy())


def scratch_mlp(sizes, activation: str = "relu", init: str = "torch", seed: int = 0, dtype=None):
    """scratch.Sequential: Linear → activation for each hidden layer, then a Linear output (logits)."""
    import numpy as np

    import scratch

    rng = np.random.default_rng(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(scratch.Linear(fan_in, fan_out, init=init, rng=rng, dtype=dtype or np.float32))
        if i < len(sizes) - 2:
            layers.append(scratch.Activation(activation))
    return scratch.Sequential(layers)


@dataclass
class ScratchRun:
    """Per-epoch history of a scratch-network training run."""
    train_loss: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    status: str = "done"            # "done" | "diverged" (loss became NaN/inf)
    seconds: float = 0.0

    @property
    def final_acc(self) -> float:
        return self.test_acc[-1] if self.test_acc else float("nan")


def train_scratch(model, data, optimizer, *, epochs: int, batch_size: int = 64, seed: int = 0,
                  schedule=None) -> ScratchRun:
    """Train a scratch classifier with scratch.train_epoch (softmax cross-entropy); evaluate each epoch.

    data is (x_train, y_train, x_test, y_test). A schedule (anything with lr_at(step)) sets the lr every step.
    A loss that turns NaN/inf ends the run with status "diverged" instead of raising.
    """
    import time

    import numpy as np

    import scratch

    x_tr, y_tr, x_te, y_te = data
    rng = np.random.default_rng(seed)
    steps_per_epoch = math.ceil(len(x_tr) / batch_size)
    run = ScratchRun()
    start = time.perf_counter()
    # A diverging run overflows on its way to NaN; it is detected and labelled, not warned about.
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            loss = scratch.train_epoch(model, x_tr, y_tr, scratch.softmax_cross_entropy, optimizer,
                                       batch_size, rng, schedule, epoch * steps_per_epoch)
            test_loss, test_acc = scratch.evaluate(model, x_te, y_te)
            if not (math.isfinite(loss) and math.isfinite(test_loss)):
                run.status = "diverged"
                break
            run.train_loss.append(loss)
            run.test_loss.append(test_loss)
            run.test_acc.append(test_acc)
    run.seconds = time.perf_counter() - start
    return run


def scratch_digits_sweep(ctx, names, description: str, build, *, epochs: int) -> dict[str, list[ScratchRun]]:
    """Train one scratch network per (seed, name) on the digits split of that seed.

    build(name, seed) -> (model, optimizer). Returns {name: [ScratchRun per seed]}, seeds in ctx.seeds() order.
    """
    runs = {name: [] for name in names}
    seeds = ctx.seeds()
    with ctx.progress(len(seeds) * len(names), description) as bar:
        for s in seeds:
            data = digits_arrays(ctx, s)
            for name in names:
                model, opt = build(name, s)
                runs[name].append(train_scratch(model, data, opt, epochs=epochs, seed=s))
                bar.advance(1, info=f"{name}: test acc {runs[name][-1].final_acc:.3f}")
    return runs


# ------------------------------------------------------------------------------ 1.1 logic gates

GATE_INPUTS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
GATE_TARGETS = {"AND": (0.0, 0.0, 0.0, 1.0), "XOR": (0.0, 1.0, 1.0, 0.0)}


class GateNets:
    """R independent 2-2-1 networks (ReLU hidden, sigmoid output, BCE), trained side by side.

    Parameters (float64): W1 (R, 2, 2) [hidden j, input k], b1 (R, 2), w2 (R, 2), b2 (R,).
    For inputs X (N, 2):  z1 = X W1ᵀ + b1,  h = relu(z1),  z2 = h·w2 + b2,  p = σ(z2).
    Restart r is the network of seed (seed + r); restart 0 is "this run's" network.
    """

    def __init__(self, restarts: int, seed: int):
        import numpy as np

        from scratch import init_array

        self.params = {}
        for r in range(restarts):
            rng = np.random.default_rng(seed + r)
            # torch's nn.Linear default, U(±1/√fan_in), with fan_in = 2 for both layers
            one = {"W1": init_array((2, 2), 2, 2, "torch", rng, np.float64),
                   "b1": init_array((2,), 2, 2, "torch", rng, np.float64),
                   "w2": init_array((2,), 2, 1, "torch", rng, np.float64),
                   "b2": init_array((), 2, 1, "torch", rng, np.float64)}
            for name, value in one.items():
                self.params.setdefault(name, []).append(value)
        self.params = {name: np.stack(values) for name, values in self.params.items()}

    @property
    def restarts(self) -> int:
        return len(self.params["b2"])

    def forward(self, X):
        """p (R, N) for inputs X (N, 2), and the cache for backward."""
        import numpy as np
        from scipy.special import expit

        P = self.params
        z1 = np.einsum("nk,rjk->rnj", X, P["W1"]) + P["b1"][:, None, :]
        h = np.maximum(z1, 0)
        z2 = np.einsum("rnj,rj->rn", h, P["w2"]) + P["b2"][:, None]
        p = expit(z2)
        return p, (X, z1, h, p)

    def loss(self, p, y):
        """Mean binary cross-entropy over the N inputs, one value per network (R,)."""
        import numpy as np

        p = np.clip(p, 1e-15, 1 - 1e-15)
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=-1)

    def backward(self, cache, y):
        """Gradients of each network's mean BCE, by the chain rule, vectorised over inputs and nets."""
        import numpy as np

        X, z1, h, p = cache
        dz2 = (p - y) / X.shape[0]                   # ∂L/∂z2 = ∂L/∂p · ∂p/∂z2 = p − y, averaged over inputs
        dh = dz2[:, :, None] * self.params["w2"][:, None, :]   # ∂z2/∂h_j = w2_j
        dz1 = dh * (z1 > 0)                          # ∂h_j/∂z1_j = 1[z1_j > 0]
        return {"w2": np.einsum("rn,rnj->rj", dz2, h),   # ∂z2/∂w2_j = h_j
                "b2": dz2.sum(axis=1),
                "W1": np.einsum("rnj,nk->rjk", dz1, X),  # ∂z1_j/∂W1_jk = x_k
                "b1": dz1.sum(axis=1)}

    def train(self, X, y, steps: int, lr: float):
        """Full-batch gradient descent on all networks at once; returns the loss curves (steps, R)."""
        import numpy as np

        curves = np.empty((steps, self.restarts))
        for step in range(steps):
            p, cache = self.forward(X)
            curves[step] = self.loss(p, y)
            for name, grad in self.backward(cache, y).items():
                self.params[name] -= lr * grad
        return curves


def chain_rule_trace(net: GateNets, x, y: float, restart: int = 0) -> dict:
    """One forward and one backward pass of one network on one example, every partial by the chain rule.

    Returns {"forward": {...}, "partials": {weight: {"factors", "chain_rule", "finite_difference", ...}}}.
    The finite difference perturbs the weight itself (central, h = 1e-6) as an independent check.
    """
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    P = {k: np.array(v[restart], copy=True) for k, v in net.params.items()}

    def forward(params):
        z1 = params["W1"] @ x + params["b1"]
        h = np.maximum(z1, 0)
        z2 = float(params["w2"] @ h + params["b2"])
        p = 1 / (1 + math.exp(-z2))
        return z1, h, z2, p, -(y * math.log(p) + (1 - y) * math.log(1 - p))

    z1, h, z2, p, loss = forward(P)
    dL_dp = -y / p + (1 - y) / (1 - p)
    dp_dz2 = p * (1 - p)
    chains = {"b2": {"dL/dp": dL_dp, "dp/dz2": dp_dz2, "dz2/db2": 1.0}}
    for j in range(2):
        chains[f"w2_{j + 1}"] = {"dL/dp": dL_dp, "dp/dz2": dp_dz2, f"dz2/dw2_{j + 1} = h_{j + 1}": h[j]}
        upstream = {"dL/dp": dL_dp, "dp/dz2": dp_dz2, f"dz2/dh_{j + 1} = w2_{j + 1}": P["w2"][j],
                    f"dh_{j + 1}/dz1_{j + 1} = 1[z1_{j + 1}>0]": float(z1[j] > 0)}
        for k in range(2):
            chains[f"W1_{j + 1}{k + 1}"] = {**upstream, f"dz1_{j + 1}/dW1_{j + 1}{k + 1} = x_{k + 1}": x[k]}
        chains[f"b1_{j + 1}"] = {**upstream, f"dz1_{j + 1}/db1_{j + 1}": 1.0}

    def index_of(name):
        # "W1_21" -> ("W1", (1, 0)); "b2" -> ("b2", ())
        base, _, digits = name.partition("_")
        return base, tuple(int(d) - 1 for d in digits)

    partials, eps = {}, 1e-6
    for name, factors in chains.items():
        base, idx = index_of(name)
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
    return {"example": {"x": x.tolist(), "y": y},
            "forward": {"z1": z1.tolist(), "h": h.tolist(), "z2": z2, "p": p, "loss": loss},
            "partials": partials}


def logistic_regression_on_gate(X, y, steps: int, lr: float) -> tuple[float, int]:
    """A single sigmoid unit (no hidden layer) trained like the 2-2-1 net: (final BCE, inputs correct)."""
    import numpy as np
    from scipy.special import expit

    w, b = np.zeros(2), 0.0
    for _ in range(steps):
        p = expit(X @ w + b)
        w -= lr * X.T @ (p - y) / len(y)
        b -= lr * float(np.mean(p - y))
    p = np.clip(expit(X @ w + b), 1e-15, 1 - 1e-15)
    loss = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return loss, int(((p > 0.5) == (y > 0.5)).sum())


def plot_gate_boundary(ax, net: GateNets, restart: int, X, y, title: str):
    """Predicted P(y=1) over the input plane, the 0.5 boundary, and the hidden ReLUs' hinge lines.

    Returns the filled contour set (for a colorbar)."""
    import numpy as np

    grid = np.linspace(-0.5, 1.5, 201)
    gx, gy = np.meshgrid(grid, grid)
    points = np.column_stack([gx.ravel(), gy.ravel()])
    p, _ = net.forward(points)
    surface = p[restart].reshape(gx.shape)
    filled = ax.contourf(gx, gy, surface, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
    if surface.min() < 0.5 < surface.max():
        ax.contour(gx, gy, surface, levels=[0.5], colors="k", linewidths=1.8)
    W1, b1 = net.params["W1"][restart], net.params["b1"][restart]
    for j in range(2):  # hidden unit j switches on across the line W1_j·x + b1_j = 0
        if abs(W1[j, 1]) > 1e-9:
            ax.plot(grid, -(W1[j, 0] * grid + b1[j]) / W1[j, 1], ":", color="0.25", lw=1.2,
                    label="hidden unit switches on (z1_j = 0)" if j == 0 else None)
        elif abs(W1[j, 0]) > 1e-9:
            ax.axvline(-b1[j] / W1[j, 0], linestyle=":", color="0.25", lw=1.2,
                       label="hidden unit switches on (z1_j = 0)" if j == 0 else None)
    for target, marker in ((0, "o"), (1, "s")):
        sel = y == target
        ax.scatter(X[sel, 0], X[sel, 1], s=90, marker=marker, c="white" if target == 0 else "k",
                   edgecolors="k", linewidths=1.5, zorder=5, label=f"target {target}")
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylim(-0.5, 1.5)
    ax.set_xlabel("input x₁")
    ax.set_ylabel("input x₂")
    ax.set_title(title)
    return filled


@task("1.1", "MLP from scratch on logic gates", datasets=("synthetic",), headline="xor_solved_fraction", threads=1)
def logic_gates(ctx):
    import numpy as np

    from utils.plotting import plt
    from utils.report import table

    X = np.array(GATE_INPUTS)
    ctx.use_dataset("synthetic", note="the 4 input pairs of the AND and XOR truth tables")
    steps = ctx.pick(tiny=300, quick=3000, hybrid=5000, full=5000)
    restarts = ctx.pick(tiny=4, quick=20, hybrid=50, full=100)
    lr = 0.5

    nets, curves, solved, preds = {}, {}, {}, {}
    for gate, targets in GATE_TARGETS.items():
        y = np.array(targets)
        net = GateNets(restarts, ctx.seed)
        if gate == "XOR":
            # Trace at initialisation on input (1, 1), for the first seed whose two hidden ReLUs are both on
            # there, so that no chain-rule factor is trivially 0 (seed 0 of the run if none is).
            z1 = np.einsum("k,rjk->rj", X[3], net.params["W1"]) + net.params["b1"]
            both_on = np.flatnonzero((z1 > 0).all(axis=1))
            traced_restart = int(both_on[0]) if len(both_on) else 0
            trace = chain_rule_trace(net, X[3], y[3], restart=traced_restart)
        curves[gate] = net.train(X, y, steps, lr)
        p, _ = net.forward(X)
        nets[gate], preds[gate] = net, p
        solved[gate] = np.all((p > 0.5) == (y > 0.5), axis=1)   # every input on the right side of 0.5

    # Print the traced pass: every partial derivative of the XOR net's loss on that input.
    fwd = trace["forward"]
    z1_txt, h_txt = np.round(fwd["z1"], 4).tolist(), np.round(fwd["h"], 4).tolist()
    ctx.log(f"  XOR net of seed {ctx.seed + traced_restart}, forward on x = (1, 1), y = 0: z1 = {z1_txt}, h = {h_txt}, "
            f"z2 = {fwd['z2']:.4f}, p = {fwd['p']:.4f}, loss = {fwd['loss']:.4f}")
    for name, part in trace["partials"].items():
        chain = " × ".join(f"{v:.4g}" for v in part["factors"].values())
        ctx.log(f"  ∂L/∂{name} = {chain} = {part['chain_rule']:.6g}   (finite difference {part['finite_difference']:.6g})")
    max_trace_error = max(p["abs_error"] for p in trace["partials"].values())

    # Loss curves: every restart thin, this run's network (restart 0) bold.
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, gate in zip(axes, GATE_TARGETS):
        c = curves[gate]
        for r in range(restarts):
            ax.semilogy(c[:, r], color="#2ca02c" if solved[gate][r] else "#d62728", alpha=0.25, lw=0.8)
        ax.semilogy(c[:, 0], color="k", lw=2, label=f"seed {ctx.seed} ({'solved' if solved[gate][0] else 'not solved'})")
        ax.plot([], [], color="#2ca02c", label="other seeds that solved it")
        ax.plot([], [], color="#d62728", label="other seeds stuck")
        ax.set_title(f"{gate}: {int(solved[gate].sum())}/{restarts} seeds solved")
        ax.set_xlabel("gradient-descent step (full batch of 4)")
        ax.legend()
    axes[0].set_ylabel("BCE loss (log scale)")
    fig.suptitle(f"2-2-1 ReLU/sigmoid net trained by hand-written backprop (lr {lr}, {restarts} random seeds)")
    ctx.save_figure(fig, "loss_curves")

    # Decision boundaries: AND and XOR for this run's seed, plus an XOR seed with the other outcome.
    other = np.flatnonzero(solved["XOR"] != solved["XOR"][0])
    panels = [("AND", 0), ("XOR", 0)] + ([("XOR", int(other[0]))] if len(other) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 1, 4.6), sharey=True)
    for ax, (gate, r) in zip(np.atleast_1d(axes), panels):
        y = np.array(GATE_TARGETS[gate])
        correct = int(((preds[gate][r] > 0.5) == (y > 0.5)).sum())
        filled = plot_gate_boundary(ax, nets[gate], r, X, y,
                                    f"{gate}, seed {ctx.seed + r}: {correct}/4 correct, loss {curves[gate][-1, r]:.3f}")
    fig.colorbar(filled, ax=axes, fraction=0.03, pad=0.02, label="predicted P(y = 1)")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="k", lw=1.8)]
    labels += ["decision boundary P = 0.5"]
    fig.legend(handles, labels, loc="lower center", ncol=4, bbox_to_anchor=(0.45, -0.08))
    fig.suptitle("Decision boundaries (black line: P = 0.5; dotted: where each hidden ReLU switches on)")
    ctx.save_figure(fig, "decision_boundaries")

    logreg = {gate: logistic_regression_on_gate(X, np.array(t), steps, lr) for gate, t in GATE_TARGETS.items()}
    # Why the stuck XOR runs are stuck: how many hidden units are on for at least one input, and the loss level.
    z1 = np.einsum("nk,rjk->rnj", X, nets["XOR"].params["W1"]) + nets["XOR"].params["b1"][:, None, :]
    live_units = (z1 > 0).any(axis=1).sum(axis=1)
    stuck_levels = {}
    for r in np.flatnonzero(~solved["XOR"]):
        key = f"loss {curves['XOR'][-1, r]:.3f}, {live_units[r]} live hidden unit(s)"
        stuck_levels[key] = stuck_levels.get(key, 0) + 1
    xor_fraction = float(solved["XOR"].mean())
    ctx.record(predictions={g: preds[g][0] for g in GATE_TARGETS},
               final_loss={g: float(curves[g][-1, 0]) for g in GATE_TARGETS},
               solved_this_seed={g: bool(solved[g][0]) for g in GATE_TARGETS},
               restarts=restarts, restarts_solved={g: int(solved[g].sum()) for g in GATE_TARGETS},
               xor_solved_fraction=xor_fraction, and_solved_fraction=float(solved["AND"].mean()),
               steps=steps, learning_rate=lr, chain_rule_trace=trace,
               max_chain_rule_vs_finite_difference=max_trace_error, traced_seed=ctx.seed + traced_restart,
               xor_stuck_runs=stuck_levels,
               single_neuron_baseline={g: {"final_loss": v[0], "inputs_correct": v[1]} for g, v in logreg.items()})

    rows = [(name, " × ".join(f"{v:.4g}" for v in part["factors"].values()), f"{part['chain_rule']:.6g}",
             f"{part['finite_difference']:.6g}", f"{part['abs_error']:.1e}")
            for name, part in trace["partials"].items()]
    dead = [j + 1 for j in range(2) if fwd["z1"][j] <= 0]
    dead_note = (f"Hidden unit(s) {', '.join(map(str, dead))} had z1 ≤ 0 on this input, so the ReLU factor is 0 and every "
                 f"partial through that unit is exactly 0 — the ReLU passes no gradient where it is off."
                 if dead else "Both hidden units were active on this input, so every factor is non-zero.")
    pred_txt = {g: ", ".join(f"{v:.3f}" for v in preds[g][0]) for g in GATE_TARGETS}
    xor0 = "solved XOR" if solved["XOR"][0] else "did **not** solve XOR"
    stuck = restarts - int(solved["XOR"].sum())
    trace_why = (" (the first seed whose two hidden units are both on for this input, so no factor is trivially 0)"
                 if traced_restart else "")
    if stuck:
        groups = "; ".join(f"{n} run(s) ended at {k}" for k, n in sorted(stuck_levels.items(), key=lambda kv: -kv[1]))
        stuck_text = (f"The {stuck} XOR run(s) that failed were stuck, not slow (their loss had stopped changing): {groups}. "
                      f"A live unit is one whose ReLU is on for at least one of the 4 inputs; a unit that is off on every "
                      f"input gets exactly zero gradient and can never switch back on (a dead ReLU), and with only two "
                      f"units one dead unit leaves a linear model, which cannot fit XOR (see below).")
    else:
        stuck_text = "No XOR run got stuck with these seeds."
    ctx.write_analysis(f"""
## What the network learned (seed {ctx.seed})
Full-batch gradient descent, learning rate {lr}, {steps} steps, on the 4 truth-table inputs
(0,0), (0,1), (1,0), (1,1). Predicted P(y = 1):

- AND (targets 0, 0, 0, 1): {pred_txt['AND']} — final BCE {curves['AND'][-1, 0]:.4f};
  {'all 4 correct' if solved['AND'][0] else 'not all correct'}.
- XOR (targets 0, 1, 1, 0): {pred_txt['XOR']} — final BCE {curves['XOR'][-1, 0]:.4f}; this seed {xor0}.

Over {restarts} random initialisations (seeds {ctx.seed}–{ctx.seed + restarts - 1}) the same 2-2-1 net solved AND
{int(solved['AND'].sum())}/{restarts} times and XOR **{int(solved['XOR'].sum())}/{restarts}** times ({100 * xor_fraction:.0f}%).
{stuck_text}
`loss_curves.png` shows the stuck runs levelling off on flat plateaus; `decision_boundaries.png` shows the regions each
hidden unit carves. Solving XOR needs both hidden units alive and bending the plane in different places.

## Why AND is linearly separable and XOR is not
AND is separated by one line, e.g. x₁ + x₂ = 1.5: only (1,1) lies above it. For XOR, suppose a line
w₁x₁ + w₂x₂ + b had (0,1) and (1,0) on its positive side and (0,0), (1,1) on its negative side. Then
w₂ + b > 0 and w₁ + b > 0 add up to w₁ + w₂ + 2b > 0, while b < 0 and w₁ + w₂ + b < 0 add up to
w₁ + w₂ + 2b < 0 — a contradiction. So no single neuron can compute XOR; the hidden layer is needed to
bend the input space first. Measured: a single sigmoid unit trained the same way reached BCE
{logreg['AND'][0]:.4f} ({logreg['AND'][1]}/4 correct) on AND but only {logreg['XOR'][0]:.4f} on XOR
(ln 2 = {math.log(2):.4f} is the loss of predicting 0.5 everywhere), with {logreg['XOR'][1]}/4 inputs on the right side of 0.5.

## One forward and one backward pass, by the chain rule
XOR net of seed {ctx.seed + traced_restart} at initialisation{trace_why}, input x = (1, 1), target y = 0.
Forward: z1 = {z1_txt}, h = relu(z1) = {h_txt}, z2 = {fwd['z2']:.4f}, p = σ(z2) = {fwd['p']:.4f}, BCE loss = {fwd['loss']:.4f}.
Each partial is the product of the local derivatives along its path (factors in order:
∂L/∂p, ∂p/∂z2, then the layer factors), compared with a central finite difference on the weight itself:

{table(["weight", "chain-rule factors", "∂L/∂weight", "finite difference", "|difference|"], rows)}

{dead_note} The largest chain-rule vs finite-difference gap is {max_trace_error:.1e}.
""")


# ------------------------------------------------------------------------------ 1.2 activations

ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu")


def torch_activation(name: str):
    """The torch function that scratch.activations' `name` mirrors (torch's default parameters)."""
    import torch
    import torch.nn.functional as F

    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "leaky_relu": F.leaky_relu,
            "elu": F.elu, "gelu": F.gelu, "softplus": F.softplus, "silu": F.silu}[name]


def activation_vs_torch(name: str, x) -> tuple[float, float]:
    """Max |f - f_torch| and max |f' - f'_torch| on x (float64); torch's f' from autograd."""
    import numpy as np
    import torch

    from scratch.activations import ACTIVATIONS

    fn, grad_fn = ACTIVATIONS[name]
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = torch_activation(name)(xt)
    out.sum().backward()  # elementwise f, so d(Σf)/dx_i = f'(x_i)
    return (float(np.max(np.abs(fn(x) - out.detach().numpy()))),
            float(np.max(np.abs(grad_fn(x) - xt.grad.numpy()))))


def epochs_to_reach(accs, level: float):
    """First 1-based epoch whose accuracy is >= level, or None."""
    return next((i + 1 for i, a in enumerate(accs) if a >= level), None)


@task("1.2", "Activation functions", datasets=("digits",), headline="max_abs_diff_vs_torch", threads=1)
def activation_functions(ctx):
    import numpy as np

    import scratch
    from scratch.activations import ACTIVATIONS
    from utils.plotting import plt
    from utils.report import pct, spread, table

    ctx.use_dataset("synthetic", note="1,001 evenly spaced inputs in [−5, 5] for the function checks")
    x = np.linspace(-5, 5, 1001)   # includes x = 0 exactly, where ReLU's derivative is a convention (0, as torch)
    diffs = {name: activation_vs_torch(name, x) for name in ACTIVATION_NAMES}
    max_diff = max(max(v) for v in diffs.values())

    fig, axes = plt.subplots(2, 4, figsize=(13, 6), sharex=True)
    for ax, name in zip(axes.ravel(), ACTIVATION_NAMES):
        fn, grad_fn = ACTIVATIONS[name]
        ax.plot(x, fn(x), color="#1f77b4", label="f(x)")
        ax.plot(x, grad_fn(x), color="#d62728", linestyle="--", label="f′(x)")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_ylim(-1.5, 3)
        ax.set_title(f"{name}\nmax |Δ| vs torch: {max(diffs[name]):.0e}")
        ax.legend(loc="upper left")
    for ax in axes[1]:
        ax.set_xlabel("pre-activation x")
    for ax in axes[:, 0]:
        ax.set_ylabel("f(x), f′(x)")
    fig.suptitle("Activation functions (solid) and their derivatives (dashed), NumPy from scratch")
    ctx.save_figure(fig, "functions_and_derivatives")

    epochs = ctx.pick(tiny=2, quick=15, hybrid=30, full=40)
    sizes = (64, 64, 64, 10)
    seeds = ctx.seeds()

    def build(name, s):
        model = scratch_mlp(sizes, name, seed=s)   # same initial weights for every activation
        return model, scratch.SGD(model.param_arrays(), lr=0.05, momentum=0.9)

    runs = scratch_digits_sweep(ctx, ACTIVATION_NAMES, "activations", build, epochs=epochs)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for i, name in enumerate(ACTIVATION_NAMES):
        r = runs[name][0]
        style = "-" if i < 4 else "--"
        axes[0].semilogy(range(1, len(r.train_loss) + 1), r.train_loss, style, label=name)
        axes[1].plot(range(1, len(r.test_acc) + 1), r.test_acc, style, label=name)
    axes[0].set_ylabel("training loss (cross-entropy, log scale)")
    axes[1].set_ylabel("test accuracy (fraction)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(ncol=2)
    axes[0].set_title("Training loss per epoch")
    axes[1].set_title("Test accuracy per epoch")
    fig.suptitle(f"Same scratch MLP {'-'.join(map(str, sizes))}, same initial weights, SGD+momentum, digits (seed {seeds[0]})")
    ctx.save_figure(fig, "training_curves")

    final = {name: [r.final_acc for r in runs[name]] for name in ACTIVATION_NAMES}
    reach = {name: epochs_to_reach(runs[name][0].test_acc, 0.9) for name in ACTIVATION_NAMES}
    ranked = sorted(ACTIVATION_NAMES, key=lambda n: -np.mean(final[n]))
    ctx.record(max_abs_diff_vs_torch=max_diff,
               max_abs_diff={n: {"value": v[0], "derivative": v[1]} for n, v in diffs.items()},
               test_accuracy={n: float(np.mean(v)) for n, v in final.items()}, test_accuracy_per_seed=final,
               final_train_loss={n: runs[n][0].train_loss[-1] if runs[n][0].train_loss else None for n in ACTIVATION_NAMES},
               epochs_to_90_percent=reach, run_status={n: runs[n][0].status for n in ACTIVATION_NAMES},
               epochs=epochs, architecture=list(sizes), seeds=seeds)
    diff_rows = [(n, f"{diffs[n][0]:.1e}", f"{diffs[n][1]:.1e}") for n in ACTIVATION_NAMES]
    train_rows = [(n, spread(final[n]), f"{runs[n][0].train_loss[-1]:.4f}" if runs[n][0].train_loss else "—",
                   reach[n] or f"not within {epochs}", runs[n][0].status) for n in ranked]
    slowest = max(ACTIVATION_NAMES, key=lambda n: reach[n] or epochs + 1)
    sigmoid_note = "did" if slowest == "sigmoid" else f"was not the slowest ({slowest} was)"
    ctx.write_analysis(f"""
## From scratch vs torch
Each activation and its hand-written derivative were evaluated on 1,001 points in [−5, 5] (float64) and compared
with torch's function and its autograd derivative. Largest absolute difference over all eight: **{max_diff:.1e}**.

{table(["activation", "max |f − f_torch|", "max |f′ − f′_torch|"], diff_rows)}

## Training with each activation (`training_curves.png`)
The same scratch MLP {'-'.join(map(str, sizes))} (identical initial weights, torch-default init), SGD with momentum 0.9,
learning rate 0.05, batch 64, {epochs} epochs on the digits training split; ranked by final test accuracy:

{table(["activation", "test accuracy", "final train loss", "epochs to 90% test acc", "status"], train_rows)}

Best: {ranked[0]} ({pct(np.mean(final[ranked[0]]))}); worst: {ranked[-1]} ({pct(np.mean(final[ranked[-1]]))}), a gap of
{100 * (np.mean(final[ranked[0]]) - np.mean(final[ranked[-1]])):.1f} percentage points
({'one seed, so no spread was measured' if len(seeds) == 1 else f'{len(seeds)} seeds'}).
Slowest to reach 90% test accuracy: {slowest} ({reach[slowest] or f'not within {epochs} epochs'}).
Sigmoid's derivative is at most 0.25 (see the grid), so each layer multiplies the backpropagated gradient by a
factor ≤ 0.25 before the weights act on it; that is the textbook reason it trains slowest, and here it {sigmoid_note}.
""")


# ------------------------------------------------------------------------------ 1.3 universal approximation

def target_functions() -> dict:
    """The 1-D functions of 1.3: key -> (label, f). A step and |x| test the kinks a smooth tanh net must build."""
    import numpy as np

    return {"sin": ("sin(2πx)", lambda x: np.sin(2 * math.pi * x)),
            "abs": ("|x|", np.abs),
            "step": ("step 1[x > 0]", lambda x: (x > 0).astype(x.dtype)),
            "cubic": ("x³ − x/2", lambda x: x ** 3 - 0.5 * x)}


class ShallowNets:
    """F independent one-hidden-layer tanh nets of width H (one per target function), hand-written backprop.

    W1, b1: (F, 1, H); W2: (F, H, 1); b2: (F, 1, 1). x: (N, 1) shared; y = tanh(x W1 + b1) W2 + b2: (F, N, 1).
    """

    def __init__(self, n_functions: int, width: int, seed: int, dtype=None):
        import numpy as np

        dtype = dtype or np.float64

        rng = np.random.default_rng(seed)
        # Input weights ~N(0, 3²) and biases ~U(±3) put the tanh "knees" (at x = −b/w) across [−1, 1].
        params = [rng.normal(0, 3, (n_functions, 1, width)), rng.uniform(-3, 3, (n_functions, 1, width)),
                  rng.normal(0, 1 / math.sqrt(width), (n_functions, width, 1)), np.zeros((n_functions, 1, 1))]
        self.params = [p.astype(dtype) for p in params]
        self.grads = [np.zeros_like(p) for p in self.params]

    def forward(self, x):
        import numpy as np

        W1, b1, W2, b2 = self.params
        h = np.tanh(x[None] * W1 + b1)            # (F, N, H)
        self.cache = (x, h)
        return h @ W2 + b2                        # (F, N, 1)

    def backward(self, dy) -> None:
        """dy: ∂loss/∂y (F, N, 1); fills self.grads in place (for a scratch optimizer)."""
        x, h = self.cache
        W2 = self.params[2]
        dz = 1 - h * h                                        # tanh′ = 1 − tanh², then times ∂/∂h = dy W2ᵀ
        dz *= dy * W2.transpose(0, 2, 1)
        for grad, value in zip(self.grads, (
                (x[None] * dz).sum(axis=1, keepdims=True),    # ∂/∂W1 = Σₙ xₙ δₙ
                dz.sum(axis=1, keepdims=True),                # ∂/∂b1 = Σₙ δₙ
                h.transpose(0, 2, 1) @ dy,                    # ∂/∂W2 = hᵀ dy
                dy.sum(axis=1, keepdims=True))):              # ∂/∂b2 = Σₙ dy
            grad[...] = value

    def mse(self, x, targets):
        """Per-function MSE (F,) and ∂(Σ_f MSE_f)/∂y."""
        diff = self.forward(x) - targets
        return (diff ** 2).mean(axis=(1, 2)), 2 * diff / diff.shape[1]


@task("1.3", "Universal approximation", datasets=("synthetic",), headline="median_mse_reduction", threads=1)
def universal_approximation(ctx):
    import numpy as np

    import scratch
    from scratch.schedules import CosineAnnealingLR
    from utils.plotting import plt
    from utils.report import table

    widths = (2, 4, 8, 16, 32, 64, 128)
    functions = target_functions()
    names = list(functions)
    steps = ctx.pick(tiny=100, quick=2500, hybrid=6000, full=10000)
    # float32 and 100 points: ~6× faster than float64 on 200 points, with the same errors to within noise.
    x_train = np.linspace(-1, 1, 100, dtype=np.float32)[:, None]
    x_test = np.linspace(-1, 1, 1001, dtype=np.float32)[:, None]   # also between the training points
    y_train = np.stack([functions[n][1](x_train) for n in names]).astype(np.float32)
    y_test = np.stack([functions[n][1](x_test) for n in names]).astype(np.float32)
    ctx.use_dataset("synthetic", note="4 functions sampled at 100 points in [−1, 1]; error on 1,001 points")
    seeds = ctx.seeds()
    lr = 0.02
    # MSE per (seed, width, function), on the training points and on the dense test grid
    train_mse = np.zeros((len(seeds), len(widths), len(names)))
    test_mse = np.zeros_like(train_mse)
    fits = {}
    with ctx.progress(len(seeds) * len(widths), "widths") as bar:
        for si, s in enumerate(seeds):
            for wi, width in enumerate(widths):
                net = ShallowNets(len(names), width, seed=s + 1000 * width, dtype=np.float32)
                opt = scratch.Adam(net.params, lr=lr)
                # cosine decay to 0: a constant Adam step left the widest nets oscillating around their best fit
                schedule = CosineAnnealingLR(lr, T_max=steps)
                for step in range(steps):   # full batch: all 100 points every step
                    schedule.apply(opt, step)
                    _, dy = net.mse(x_train, y_train)
                    net.backward(dy)
                    opt.step(net.grads)
                train_mse[si, wi] = net.mse(x_train, y_train)[0]
                test_mse[si, wi] = net.mse(x_test, y_test)[0]
                if si == 0:
                    fits[width] = net.forward(x_test)[:, :, 0]
                bar.advance(1, info=f"width {width}")
    mse, mse_train = test_mse.mean(axis=0), train_mse.mean(axis=0)   # (widths, functions)

    shown = (2, 8, 32, 128)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")
    for fi, (ax, name) in enumerate(zip(axes.ravel(), names)):
        ax.plot(x_test[:, 0], y_test[fi, :, 0], color="k", lw=2.5, label="target")
        for width in shown:
            ax.plot(x_test[:, 0], fits[width][fi], lw=1.3, label=f"width {width} (test MSE {mse[widths.index(width), fi]:.1e})")
        ax.set_title(f"f(x) = {functions[name][0]}")
        ax.set_xlabel("x")
        ax.set_ylabel("f(x) and fits")
        ax.legend(fontsize=6.5)
    fig.suptitle(f"One-hidden-layer tanh nets (scratch, Adam + cosine decay, {steps} full-batch steps), seed {seeds[0]}")
    ctx.save_figure(fig, "fits")

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for fi, name in enumerate(names):
        line, = ax.loglog(widths, mse[:, fi], "o-", label=f"{functions[name][0]}: test")
        ax.loglog(widths, mse_train[:, fi], "s:", color=line.get_color(), alpha=0.8, label="  … training points")
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("hidden units (width)")
    ax.set_ylabel("MSE (log scale)")
    ax.set_title(f"Approximation error vs width ({'mean of ' + str(len(seeds)) + ' seeds' if len(seeds) > 1 else 'one seed'})")
    ax.legend(ncol=2, fontsize=7)
    ctx.save_figure(fig, "error_vs_width")

    reduction = {n: float(mse[0, fi] / mse[-1, fi]) for fi, n in enumerate(names)}
    monotone = {n: bool(np.all(np.diff(mse[:, fi]) < 0)) for fi, n in enumerate(names)}
    best_width = {n: widths[int(np.argmin(mse[:, fi]))] for fi, n in enumerate(names)}
    hardest = max(names, key=lambda n: mse[-1, names.index(n)])
    step = names.index("step")
    gap_points = int(np.sum(np.abs(x_test[:, 0]) < np.min(np.abs(x_train[:, 0]))))
    ctx.record(widths=list(widths), functions={n: functions[n][0] for n in names},
               test_mse={n: {str(w): float(mse[wi, fi]) for wi, w in enumerate(widths)} for fi, n in enumerate(names)},
               train_mse={n: {str(w): float(mse_train[wi, fi]) for wi, w in enumerate(widths)} for fi, n in enumerate(names)},
               test_mse_per_seed={n: test_mse[:, :, fi].tolist() for fi, n in enumerate(names)},
               mse_reduction_2_to_128=reduction, median_mse_reduction=float(np.median(list(reduction.values()))),
               error_falls_at_every_width=monotone, best_width=best_width, steps=steps, learning_rate=lr, seeds=seeds)
    rows = [(functions[n][0], *[f"{mse[wi, fi]:.1e}" for wi in range(len(widths))], f"{reduction[n]:.0f}×")
            for fi, n in enumerate(names)]
    step_where = ("most of the step's error is in that unconstrained gap." if mse[-1, step] > 2 * mse_train[-1, step] else
                  "the error is mostly the imperfect fit around the jump itself, not the gap between samples.")
    not_monotone = [f"{functions[n][0]} (lowest at width {best_width[n]})" for n in names if not monotone[n]]
    monotone_text = ("The error fell at every doubling of the width for every function." if not not_monotone else
                     "The error did not fall at every doubling for: " + ", ".join(not_monotone) + ". A wider net can "
                     "represent everything a narrower one can, so this is the optimiser (a fixed step budget from a "
                     "random start) not reaching the better fit, not a limit of the architecture.")
    ctx.write_analysis(f"""
One hidden layer of tanh units, trained by hand-written backprop with Adam (lr {lr}, cosine decay to 0, {steps}
full-batch steps on 100 points in [−1, 1]); test MSE on 1,001 points{f', mean of {len(seeds)} seeds' if len(seeds) > 1 else ''}:

{table(["function", *[f"width {w}" for w in widths], "width 2 → 128"], rows)}

- Going from 2 to 128 hidden units cut the test error by a median factor of {np.median(list(reduction.values())):.0f}×
  (from {min(reduction.values()):.0f}× for {functions[min(reduction, key=reduction.get)][0]} to
  {max(reduction.values()):.0f}× for {functions[max(reduction, key=reduction.get)][0]}).
- {monotone_text}
- Hardest at width 128: {functions[hardest][0]} (test MSE {mse[-1, names.index(hardest)]:.1e}). A step cannot be made by a
  finite sum of smooth tanh units, only approached by ever steeper ones, which need large weights that gradient
  descent reaches slowly; the fits overshoot on both sides of the jump (`fits.png`). {gap_points} of the 1,001 test points
  lie between the two training points that bracket the jump (x = ±{np.min(np.abs(x_train[:, 0])):.4f}), where no training
  point pins the function down; on the training points alone the widest net's MSE was {mse_train[-1, step]:.1e}
  against {mse[-1, step]:.1e} on the test grid, so {step_where}

This is the universal approximation theorem at work: one hidden layer can approximate any continuous function on an
interval as closely as desired given enough units. The theorem says nothing about how many units or how long training
takes — the numbers above are what this budget achieved.
""")


# ------------------------------------------------------------------------------ 1.4 manual backprop vs autograd

def torch_and_scratch_mlp(sizes, seed: int, dtype):
    """A torch nn.Sequential MLP (ReLU) and a scratch.Sequential copy with identical weights, in `dtype`."""
    import numpy as np
    import torch
    import torch.nn as nn

    import scratch

    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers).to(torch.float64 if dtype == np.float64 else torch.float32)
    copy = scratch.Sequential([scratch.Linear.from_torch(m, dtype=dtype) if isinstance(m, nn.Linear) else scratch.ReLU()
                               for m in net])
    return net, copy


def gradient_difference(net, copy, x, y) -> tuple[float, float]:
    """(max |∂L/∂θ_numpy − ∂L/∂θ_torch| over all parameters, |loss difference|) for one batch."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    import scratch

    loss_np, dlogits = scratch.softmax_cross_entropy(copy.forward(x), y)
    copy.backward(dlogits)
    net.zero_grad()
    loss_t = F.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
    loss_t.backward()
    torch_grads = [p.grad.numpy() for p in net.parameters()]
    diff = max(float(np.max(np.abs(g - t))) for g, t in zip(copy.grad_arrays(), torch_grads))
    return diff, abs(loss_np - loss_t.item())


@task("1.4", "Manual backprop vs autograd", datasets=("fashion-mnist",), headline="max_abs_grad_diff",
      image_dataset=True, threads=1)
def manual_vs_autograd(ctx):
    import time

    import numpy as np
    import torch
    import torch.nn.functional as F

    import scratch
    from utils.plotting import plt
    from utils.report import table

    ds = ctx.load_images("fashion-mnist", train_size=ctx.pick(tiny=640, quick=6400, hybrid=20000, full=60000),
                         test_size=ctx.pick(tiny=300, quick=2000, hybrid=10000, full=None))
    x = ds.x_train.flatten(1).numpy()
    y = ds.y_train.numpy()
    sizes = (x.shape[1], 256, 128, ds.num_classes)
    batch, lr, momentum = 64, 0.05, 0.9

    # 1) Gradients at identical weights, float64 (the hand-written backward vs autograd) and float32.
    grad_diff = {}
    for name, dtype in (("float64", np.float64), ("float32", np.float32)):
        net, copy = torch_and_scratch_mlp(sizes, ctx.seed, dtype)
        grad_diff[name] = gradient_difference(net, copy, x[:256].astype(dtype), y[:256])

    # 2) Train both (float32) on the same batches with the same SGD: the loss curves should overlap.
    net, copy = torch_and_scratch_mlp(sizes, ctx.seed, np.float32)
    opt_t = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    opt_np = scratch.SGD(copy.param_arrays(), lr=lr, momentum=momentum)
    steps = ctx.pick(tiny=10, quick=100, hybrid=300, full=900)
    order = np.random.default_rng(ctx.seed).permutation(len(x))
    batches = [order[(i * batch) % len(x):(i * batch) % len(x) + batch] for i in range(steps)]
    losses = {"numpy": [], "torch": []}
    seconds = {"numpy": [], "torch": []}
    for idx in batches:   # both on one thread (the task runs with threads=1): a like-for-like timing
        xb, yb = x[idx], y[idx]
        t0 = time.perf_counter()
        loss, dlogits = scratch.softmax_cross_entropy(copy.forward(xb), yb)
        copy.backward(dlogits)
        opt_np.step(copy.grad_arrays())
        seconds["numpy"].append(time.perf_counter() - t0)
        losses["numpy"].append(loss)
        t0 = time.perf_counter()
        loss_t = F.cross_entropy(net(torch.from_numpy(xb)), torch.from_numpy(yb))
        opt_t.zero_grad()
        loss_t.backward()
        opt_t.step()
        seconds["torch"].append(time.perf_counter() - t0)
        losses["torch"].append(loss_t.item())
    loss_gap = np.abs(np.array(losses["numpy"]) - np.array(losses["torch"]))
    weight_gap = max(float(np.max(np.abs(a - p.detach().numpy()))) for a, p in zip(copy.param_arrays(), net.parameters()))
    ms = {k: 1000 * float(np.median(v)) for k, v in seconds.items()}
    test_np = scratch.evaluate(copy, ds.x_test.flatten(1).numpy(), ds.y_test.numpy())
    with torch.no_grad():
        test_t = float((net(ds.x_test.flatten(1)).argmax(1) == ds.y_test).float().mean())

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    axes[0].plot(losses["numpy"], color="#1f77b4", lw=3, alpha=0.6, label="NumPy (hand-written backward)")
    axes[0].plot(losses["torch"], color="#d62728", lw=1, linestyle="--", label="PyTorch (autograd)")
    axes[0].set_xlabel("SGD step (batch of 64)")
    axes[0].set_ylabel("training loss (cross-entropy)")
    axes[0].set_title(f"Loss per step: largest gap {loss_gap.max():.1e}")
    axes[0].legend()
    nonzero = np.flatnonzero(loss_gap > 0)
    axes[1].semilogy(nonzero, loss_gap[nonzero], "o", ms=3, color="0.3", label="steps with a non-zero gap")
    axes[1].set_xlim(-2, steps + 1)
    axes[1].set_xlabel("SGD step (batch of 64)")
    axes[1].set_ylabel("|loss NumPy − loss torch| (log scale)")
    axes[1].set_title(f"Gap per step ({steps - len(nonzero)} of {steps} exactly 0, not drawn)")
    axes[1].legend()
    fig.suptitle(f"Same MLP {'-'.join(map(str, sizes))} from identical weights on {ds.label}")
    ctx.save_figure(fig, "loss_curves")

    fig, ax = plt.subplots(figsize=(6, 3.8))
    bars = ax.bar(["NumPy\n(hand-written)", "PyTorch\n(autograd)"], [ms["numpy"], ms["torch"]], color=["#1f77b4", "#d62728"])
    ax.bar_label(bars, fmt="%.2f ms")
    ax.set_ylabel("median time per training step (ms)")
    ax.set_title(f"Time per step, batch {batch}, one CPU thread each")
    ctx.save_figure(fig, "time_per_step")

    ctx.record(max_abs_grad_diff=grad_diff["float64"][0], max_abs_grad_diff_float32=grad_diff["float32"][0],
               loss_diff_at_identical_weights={k: v[1] for k, v in grad_diff.items()},
               max_abs_loss_diff_over_training=float(loss_gap.max()), max_abs_weight_diff_after_training=weight_gap,
               time_per_step_ms=ms, numpy_over_torch_time=ms["numpy"] / ms["torch"], steps=steps, batch_size=batch,
               architecture=list(sizes), test_accuracy={"numpy": test_np[1], "torch": test_t})
    faster = "PyTorch" if ms["torch"] < ms["numpy"] else "NumPy"
    ratio = max(ms.values()) / min(ms.values())
    if ratio < 1.15:
        speed_text = (f"The two took about the same time per step ({faster} {ratio:.2f}× faster): at this size both spend "
                      f"most of it in the same BLAS matrix products of the three Linear layers, and autograd's "
                      f"bookkeeping costs about as much as NumPy's temporary arrays.")
    else:
        speed_text = (f"{faster} was {ratio:.1f}× faster per step. The matrix products are the same BLAS calls in both, so "
                      f"the difference is overhead: " + ("autograd's graph recording and Python dispatch per operation."
                                                         if faster == "NumPy" else
                                                         "NumPy allocates a new temporary array for every elementwise step, "
                                                         "where torch uses fused in-place kernels."))
    ctx.write_analysis(f"""
The MLP {'-'.join(map(str, sizes))} (ReLU) was built in PyTorch, and its weights copied into the scratch NumPy
network, so both start identical.

## Gradients
On one batch of 256 {ds.label} images the hand-written backward pass and torch autograd gave gradients that differ
by at most **{grad_diff['float64'][0]:.1e}** in float64 (loss difference {grad_diff['float64'][1]:.1e}) and
{grad_diff['float32'][0]:.1e} in float32. float64 agreement at round-off level means the backward pass is the exact
derivative; float32's larger gap is single-precision rounding of the same arithmetic done in a different order.

## Training side by side (`loss_curves.png`)
{steps} SGD steps (lr {lr}, momentum {momentum}, batch {batch}) on the same batches in the same order, float32:
the two loss curves overlap — the largest per-step gap was {loss_gap.max():.1e}, and after training the weights
differed by at most {weight_gap:.1e}. Test accuracy after these steps: NumPy {test_np[1]:.4f}, PyTorch {test_t:.4f}.

## Speed (`time_per_step.png`)
{table(["implementation", "median ms per step"],
        [("NumPy, hand-written", f"{ms['numpy']:.2f}"), ("PyTorch, autograd", f"{ms['torch']:.2f}")])}

{speed_text} Both were timed on one CPU thread; the median over {steps} steps damps the noise of other programs
running at the same time.
""")


# ------------------------------------------------------------------------------ 1.5 loss functions

def losses_vs_torch(grid) -> dict[str, float]:
    """Max |value| and |gradient| differences between scratch.losses and torch on a grid of predictions."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from scratch import losses

    def gap(np_fn, torch_fn, pred, target):
        value, grad = np_fn(pred, target)
        pt = torch.tensor(pred, requires_grad=True)
        out = torch_fn(pt, torch.tensor(target))
        out.backward()
        return max(abs(value - out.item()), float(np.max(np.abs(grad - pt.grad.numpy()))))

    errors = grid - 0.3
    probs = np.linspace(0.01, 0.99, 99)
    logits = np.linspace(-6, 6, 121)
    return {
        "mse": gap(losses.mse, F.mse_loss, errors, np.zeros_like(errors)),
        "mae": gap(losses.mae, F.l1_loss, errors, np.zeros_like(errors)),
        "huber": gap(losses.huber, F.huber_loss, errors, np.zeros_like(errors)),
        "bce": gap(losses.bce, F.binary_cross_entropy, probs, np.ones_like(probs)),
        "bce_with_logits": gap(losses.bce_with_logits, F.binary_cross_entropy_with_logits, logits, np.ones_like(logits)),
        "cross_entropy": gap(losses.softmax_cross_entropy, F.cross_entropy,
                             np.column_stack([logits, np.zeros_like(logits), np.zeros_like(logits)]),
                             np.zeros(len(logits), dtype=np.int64)),
    }


def pointwise(loss_fn, pred, target):
    """Per-element loss and gradient (the scratch losses average, so evaluate one element at a time, vectorised)."""
    import numpy as np

    values = np.array([loss_fn(p[None], t[None])[0] for p, t in zip(pred, target)])
    grads = np.array([loss_fn(p[None], t[None])[1][0] for p, t in zip(pred, target)])
    return values, grads


def robust_line_fit(x, y, loss_fn, steps: int = 3000, lr: float = 0.05):
    """Fit y ≈ a·x + b by gradient descent on loss_fn (a scratch loss); returns (a, b)."""
    import numpy as np

    a, b = 0.0, 0.0
    for _ in range(steps):
        _, dpred = loss_fn(a * x + b, y)
        a -= lr * float(np.sum(dpred * x))
        b -= lr * float(np.sum(dpred))
    return a, b


@task("1.5", "Loss functions", datasets=("synthetic",), headline="max_abs_diff_vs_torch", threads=1)
def loss_functions(ctx):
    import numpy as np
    from scipy.special import expit

    from scratch import losses
    from utils.plotting import plt
    from utils.report import table

    ctx.use_dataset("synthetic", note="prediction grids; a line y = 2x + 1 with 10% gross outliers")
    torch_gap = losses_vs_torch(np.linspace(-3, 3, 121))

    # Values and gradients vs prediction: one element at a time.
    err = np.linspace(-3, 3, 241)
    zero = np.zeros_like(err)
    regression = {"MSE": pointwise(losses.mse, err, zero), "MAE": pointwise(losses.mae, err, zero),
                  "Huber (δ = 1)": pointwise(losses.huber, err, zero)}
    p = np.linspace(0.005, 0.995, 199)
    ones = np.ones_like(p)
    binary = {"BCE, target 1": pointwise(losses.bce, p, ones), "BCE, target 0": pointwise(losses.bce, p, 1 - ones),
              "MSE on p, target 1": pointwise(losses.mse, p, ones)}
    z = np.linspace(-6, 6, 241)
    ce_value = np.log(2 + np.exp(z)) - z            # −log softmax of the true class with logits (z, 0, 0)
    ce_grad = np.exp(z) / (np.exp(z) + 2) - 1       # softmax − onehot, true-class entry
    ce_np = [losses.softmax_cross_entropy(np.array([[zi, 0.0, 0.0]]), np.array([0])) for zi in z]
    ce_check = max(float(np.max(np.abs(np.array([v for v, _ in ce_np]) - ce_value))),
                   float(np.max(np.abs(np.array([g[0, 0] for _, g in ce_np]) - ce_grad))))
    sig = expit(z)
    logit_losses = {"cross-entropy (3 classes), true-class logit": (ce_value, ce_grad),
                    "BCE on σ(z), target 1": (np.logaddexp(0, -z), sig - 1),
                    "MSE on σ(z), target 1": ((sig - 1) ** 2, 2 * (sig - 1) * sig * (1 - sig))}

    panels = [(regression, err, "prediction − target", "Regression losses"),
              (binary, p, "predicted probability p", "Losses on a probability"),
              (logit_losses, z, "logit z of the true class", "Losses on a logit")]
    for which, ylabel, name in ((0, "loss value", "loss_values"), (1, "∂loss/∂prediction", "loss_gradients")):
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        for ax, (curves, xs, xlabel, title) in zip(axes, panels):
            for label, pair in curves.items():
                ax.plot(xs, pair[which], label=label)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.axhline(0, color="0.6", lw=0.6)
            ax.legend(loc="best")
        axes[1].set_ylim(-12 if which else -0.2, 12 if which else 6)
        fig.suptitle("Loss " + ("values" if which == 0 else "gradients") + " vs prediction (scratch.losses, one example)")
        ctx.save_figure(fig, name)

    # Robustness to outliers: fit a line with each regression loss.
    rng = np.random.default_rng(ctx.seed)
    x = rng.uniform(-1, 1, 100)
    y = 2 * x + 1 + rng.normal(0, 0.1, 100)
    outliers = rng.choice(100, 10, replace=False)
    y[outliers] += rng.uniform(8, 12, 10)   # gross errors, all on one side
    fits = {name: robust_line_fit(x, y, fn) for name, fn in
            (("MSE", losses.mse), ("MAE", losses.mae), ("Huber (δ = 1)", losses.huber))}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(np.delete(x, outliers), np.delete(y, outliers), s=12, color="0.4", label="data")
    ax.scatter(x[outliers], y[outliers], s=25, color="#d62728", marker="x", label="10 outliers")
    xs = np.linspace(-1, 1, 2)
    ax.plot(xs, 2 * xs + 1, "k--", label="true line y = 2x + 1")
    for name, (a, b) in fits.items():
        ax.plot(xs, a * xs + b, label=f"{name}: y = {a:.2f}x + {b:.2f}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Line fitted by gradient descent on each regression loss")
    ax.legend()
    ctx.save_figure(fig, "outlier_fit")

    intercept_error = {name: abs(b - 1) for name, (a, b) in fits.items()}
    saturated = {"bce_grad_at_logit_-5": float(expit(-5) - 1),
                 "mse_on_sigmoid_grad_at_logit_-5": float(2 * (expit(-5) - 1) * expit(-5) * (1 - expit(-5)))}
    grad_at_error_3 = {name: float(v[1][-1]) for name, v in regression.items()}
    max_gap = max(max(torch_gap.values()), ce_check)
    ctx.record(max_abs_diff_vs_torch=max_gap, diff_vs_torch=torch_gap, cross_entropy_formula_check=ce_check,
               gradient_at_error_3=grad_at_error_3, saturation=saturated,
               outlier_fit={name: {"slope": a, "intercept": b} for name, (a, b) in fits.items()},
               outlier_intercept_error=intercept_error)
    best = min(intercept_error, key=intercept_error.get)
    ratio = saturated["bce_grad_at_logit_-5"] / saturated["mse_on_sigmoid_grad_at_logit_-5"]
    ctx.write_analysis(f"""
## From scratch vs torch
Every loss (value and gradient) matches torch's: largest absolute difference **{max_gap:.1e}**
({', '.join(f'{k} {v:.0e}' for k, v in torch_gap.items())}).

## What the curves show (`loss_values.png`, `loss_gradients.png`)
- At an error of 3 the gradient is {grad_at_error_3['MSE']:.1f} for MSE, {grad_at_error_3['MAE']:.1f} for MAE and
  {grad_at_error_3['Huber (δ = 1)']:.1f} for Huber: MSE's gradient grows with the error, so one large error dominates the
  update; MAE's has constant size (and jumps at 0, which makes it jitter near the optimum); Huber is MSE near 0 and
  MAE far away.
- BCE's gradient wrt p is −1/p for target 1: it grows without bound as the prediction becomes confidently wrong.
- With a sigmoid output, a confidently wrong logit z = −5 (target 1) gets gradient {saturated['bce_grad_at_logit_-5']:.3f}
  from BCE but {saturated['mse_on_sigmoid_grad_at_logit_-5']:.4f} from MSE on σ(z) — {ratio:.0f}× smaller, because
  σ′(z) saturates. That is why classifiers pair sigmoid/softmax with cross-entropy, whose gradient wrt the logit
  is simply p − y.

## Outliers (`outlier_fit.png`)
A line y = 2x + 1 with 10 of 100 points pushed up by 8–12 units: the fitted intercept was off by
{', '.join(f'{k} {v:.2f}' for k, v in intercept_error.items())}. {best} stayed closest to the true line; MSE was pulled
towards the outliers because their squared errors dominate its mean.

## Which loss for which task
{table(["task", "output layer", "loss", "why"], [
    ("regression, Gaussian-like noise", "linear", "MSE", "maximum likelihood under Gaussian noise; smooth gradient"),
    ("regression with outliers", "linear", "MAE or Huber", "bounded gradient: outliers cannot dominate (measured above)"),
    ("regression, want the median", "linear", "MAE", "minimised by the median, not the mean"),
    ("binary classification", "sigmoid (or logits)", "BCE (with logits)",
     "gradient p − y does not saturate; use the logits form for stability"),
    ("multi-label classification", "one sigmoid per label", "BCE per label", "labels are independent yes/no questions"),
    ("multi-class, one label", "softmax (logits)", "cross-entropy", "gradient softmax − onehot; probabilistic outputs"),
])}
""")
