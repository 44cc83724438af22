"""2.7 Gradient flow vs depth: sigmoid, ReLU, ReLU + residual and ReLU + batch-norm scratch MLPs of
2 to ≈20 Linear layers on the digits. The weight-gradient norm of every layer, on a log scale, at
initialisation and after training shows where the backpropagated signal vanishes; test accuracy
(compared by the project's rule) shows what that costs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator

import scratch
from experiments.common.scratch_training import digits_arrays, train_scratch
from utils.history import History
from utils.plotting import legend_outside, mark_diverged, plt, sweep_plot
from utils.report import Comparison, compare_runs, pct, table

BUDGET = {
    "tiny": {"depths": [2, 6], "epochs": 1, "width": 32, "lr": 0.05, "probe": 256},
    "quick": {"depths": [2, 5, 10, 20], "epochs": 8, "width": 64, "lr": 0.05, "probe": 512},
    "hybrid": {"depths": [2, 5, 10, 15, 20], "epochs": 15, "width": 64, "lr": 0.05, "probe": 512},
    "full": {"depths": [2, 5, 10, 15, 20], "epochs": 25, "width": 64, "lr": 0.05, "probe": 512},
}
ARCHITECTURES = ("sigmoid", "ReLU", "ReLU + residual", "ReLU + batch norm")
DEPTH_COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd")


class ResidualBlock(scratch.Layer):
    """out = x + act(W x + b); scratch has no residual block, so it is built here. It exposes its Linear's
    params/grads dicts, so optimizers and Sequential.parameters() see them."""

    def __init__(self, width: int, activation: str = "relu", init: str = "he_normal", scale: float = 1.0,
                 rng=None, dtype=np.float32):
        super().__init__()
        self.linear = scratch.Linear(width, width, init=init, rng=rng, dtype=dtype)
        self.linear.params["weight"] *= scale
        self.act = scratch.Activation(activation)
        self.params, self.grads = self.linear.params, self.linear.grads

    def forward(self, x, training=True):
        return x + self.act.forward(self.linear.forward(x, training), training)

    def backward(self, dout):
        # the identity path passes dout unchanged; the branch adds its own gradient
        return dout + self.linear.backward(self.act.backward(dout))


def depth_model(arch: str, depth: int, width: int, seed: int):
    """A scratch MLP with `depth` Linear layers (64 inputs, 10 classes) of the given architecture.
    Sigmoid nets use Xavier init, ReLU nets He init (the standard pairing for each activation)."""
    rng = np.random.default_rng(seed)
    act = "sigmoid" if arch == "sigmoid" else "relu"
    init = "xavier_normal" if arch == "sigmoid" else "he_normal"

    def hidden(fan_in):
        layers = [scratch.Linear(fan_in, width, init=init, rng=rng)]
        if arch == "ReLU + batch norm":
            layers.append(scratch.BatchNorm1d(width))
        return layers + [scratch.Activation(act)]

    layers = hidden(64)
    for _ in range(depth - 2):
        if arch == "ReLU + residual":
            # branch weights scaled by 1/√(blocks): each block adds variance, so the sum stays bounded with depth
            layers.append(ResidualBlock(width, "relu", init, scale=1 / math.sqrt(max(depth - 2, 1)), rng=rng))
        else:
            layers += hidden(width)
    layers.append(scratch.Linear(width, 10, init=init, rng=rng))
    return scratch.Sequential(layers)


def weight_grad_norms(model, x, y) -> list[float]:
    """‖∂L/∂W‖ (Frobenius) of every weight matrix, input side first, after one forward/backward pass."""
    with np.errstate(all="ignore"):
        _, dlogits = scratch.softmax_cross_entropy(model.forward(x, training=True), y)
        model.backward(dlogits)
    return [float(np.linalg.norm(grad)) for name, _, grad in model.parameters()
            if name.endswith("weight") and grad.ndim == 2]


@dataclass
class Result:
    depths: list[int]
    width: int
    epochs: int
    lr: float
    seeds: list[int]
    probe_examples: int
    test_examples: int
    grad_norms: dict[str, dict[str, dict[str, list[float]]]]  # arch -> depth -> "init"/"trained" -> per layer
    test_accuracy: dict[str, dict[str, list[float]]]           # arch -> depth -> per seed (nan: diverged)
    status: dict[str, dict[str, str]]                          # arch -> depth -> first seed's status
    deepest: dict[str, History]                                # arch -> first seed's history at the deepest depth
    comparisons: dict[str, Comparison]                         # "A vs B" -> the rule's verdict


def ratio(norms: list[float]) -> float:
    """First-layer over last-layer gradient norm (below 1: the gradient shrinks towards the input)."""
    return norms[0] / norms[-1] if norms[-1] > 0 else float("nan")


def measure(ctx) -> Result:
    b = ctx.budget
    seeds = ctx.seeds()
    norms, acc, status, deepest, correct = {}, {}, {}, {}, {}
    arrays = {s: digits_arrays(ctx, s) for s in seeds}   # each seed's own split

    def train_one(job):   # one architecture at one depth on one seed's split; the first seed is probed
        s, arch, depth = job
        data = arrays[s]
        x_probe, y_probe = data[0][:b.probe], data[1][:b.probe]
        model = depth_model(arch, depth, b.width, seed=s)
        at_init = weight_grad_norms(model, x_probe, y_probe)
        run = train_scratch(model, data, scratch.SGD(model.param_arrays(), lr=b.lr, momentum=0.9),
                            epochs=b.epochs, seed=s)
        done, right, trained = run.status == "done", None, [math.nan] * len(at_init)
        if s == seeds[0] and done:   # before the probe: its training-mode pass moves batch norm's running stats
            right = scratch.predict(model, data[2]).argmax(1) == data[3]
            trained = weight_grad_norms(model, x_probe, y_probe)
        return run, right, {"init": at_init, "trained": trained}

    jobs = [(s, arch, depth) for s in seeds for arch in ARCHITECTURES for depth in b.depths]
    runs = ctx.map(train_one, jobs, "architectures × depths",
                   info=lambda job, out: f"{job[1]} depth {job[2]}: {out[0].final('val_acc'):.3f}", torch_runs=False)
    for (s, arch, depth), (run, right, grad_norms) in zip(jobs, runs):
        d = str(depth)
        acc.setdefault(arch, {}).setdefault(d, []).append(run.final("val_acc") if run.status == "done" else math.nan)
        if s == seeds[0]:
            if right is not None:
                correct[arch, depth] = right
            norms.setdefault(arch, {})[d] = grad_norms
            status.setdefault(arch, {})[d] = run.status
            if depth == b.depths[-1]:
                deepest[arch] = run
    data = arrays[seeds[-1]]   # the test-set sizes below (every split has the same)

    pairs = [((a, b.depths[-1]), ("sigmoid", b.depths[-1])) for a in ARCHITECTURES[1:]]
    pairs += [(("ReLU + residual", b.depths[-1]), ("ReLU", b.depths[-1])),
              (("ReLU + batch norm", b.depths[-1]), ("ReLU", b.depths[-1]))]
    pairs += [((a, b.depths[0]), (a, b.depths[-1])) for a in ARCHITECTURES]
    comparisons = {}
    for (a, da), (c, dc) in pairs:
        finite = np.all(np.isfinite(acc[a][str(da)] + acc[c][str(dc)]))
        if (a, da) in correct and (c, dc) in correct and finite:
            na, nc = f"{a} depth {da}", f"{c} depth {dc}"
            comparisons[f"{na} vs {nc}"] = compare_runs(na, nc, seeds_a=acc[a][str(da)], seeds_b=acc[c][str(dc)],
                                                        correct_a=correct[a, da], correct_b=correct[c, dc])
    result = Result(list(b.depths), b.width, b.epochs, b.lr, seeds, min(b.probe, len(data[1])), len(data[3]),
                    norms, acc, status, deepest, comparisons)
    ratios = {a: ratio(norms[a][str(b.depths[-1])]["init"]) for a in ARCHITECTURES}
    ctx.record(flow=flow_phrase(result), verdict=headline_verdict(result), grad_ratio_first_last_at_init=ratios,
               grad_ratio_by_depth={a: {d: ratio(n["init"]) for d, n in norms[a].items()} for a in ARCHITECTURES},
               test_accuracy={a: {d: float(np.mean(v)) for d, v in acc[a].items()} for a in ARCHITECTURES},
               grad_norms=norms, run_status=status, comparisons={k: c.verdict() for k, c in comparisons.items()},
               depths=list(b.depths), width=b.width, epochs=b.epochs, seeds=seeds, test_examples=len(data[3]))
    return result


def flow_phrase(r: Result) -> str:
    """The headline: how much of the last layer's gradient reaches the first layer at the deepest depth."""
    d = str(r.depths[-1])
    parts = [f"{ratio(r.grad_norms[a][d]['init']):.1g} ({a})" for a in ("sigmoid", "ReLU")]
    return f"depth {d}: first/last-layer gradient {parts[0]} vs {parts[1]} at init"


def headline_verdict(r: Result) -> str:
    key = f"ReLU + residual depth {r.depths[-1]} vs sigmoid depth {r.depths[-1]}"
    return r.comparisons[key].verdict() if key in r.comparisons else f"a depth-{r.depths[-1]} net diverged"


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey=True, layout="constrained")
    for ax, arch in zip(axes.ravel(), ARCHITECTURES):
        notes = []
        for depth, colour in zip(r.depths, DEPTH_COLOURS):
            n, layers = r.grad_norms[arch][str(depth)], range(1, depth + 1)
            ax.semilogy(layers, n["init"], "o-", ms=3, color=colour, label=f"depth {depth}")
            trained = np.array(n["trained"], dtype=float)
            if r.status[arch][str(depth)] != "done":
                notes.append(f"depth {depth} diverged: no trained curve")
            # a layer whose ReLUs are all off gets exactly 0: left out of the log plot, counted in the analysis
            ax.semilogy(layers, np.where(trained > 0, trained, np.nan), "s--", ms=3, color=colour, alpha=0.7)
            if np.any(trained == 0):
                notes.append(f"depth {depth}: {int(np.sum(trained == 0))} layer(s) with gradient exactly 0 after training")
        if notes:
            ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=7, va="bottom",
                    bbox=dict(fc="white", ec="0.7", alpha=0.9))
        ax.set_title(f"{arch} ({'Xavier' if arch == 'sigmoid' else 'He'} init)")
        ax.set_xlabel("Linear layer (1 = next to the input)")
        ax.set_ylabel("‖∂L/∂W‖ (Frobenius norm, log scale)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 1].plot([], [], "k-o", ms=3, label="at initialisation")
    axes[0, 1].plot([], [], "k--s", ms=3, alpha=0.7, label=f"after {r.epochs} epochs")
    legend_outside(axes[0, 1])
    fig.suptitle(f"Per-layer weight-gradient norm at initialisation (solid) and after {r.epochs} epochs (dashed): "
                 f"{r.probe_examples} scikit-learn digits, MLPs of width {r.width}, {ctx.mode} mode")
    ctx.save_figure(fig, "grad_norm_per_layer")

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
    for arch in ARCHITECTURES:
        init_ratios = [ratio(r.grad_norms[arch][str(d)]["init"]) for d in r.depths]
        line, = axes[0].semilogy(r.depths, init_ratios, "o-", label=arch)
        accs = [100 * float(np.mean(r.test_accuracy[arch][str(d)])) for d in r.depths]
        sweep_plot(axes[1], r.depths, accs, diverged=[r.status[arch][str(d)] != "done" for d in r.depths],
                   color=line.get_color())
        h = r.deepest[arch]
        axes[2].semilogy(range(1, len(h.train_loss) + 1), h.train_loss, "o-", ms=3, color=line.get_color())
        if h.diverged:
            mark_diverged(axes[2], h.train_loss, color=line.get_color(), label=f"{arch}: diverged (×)")
    axes[0].axhline(1, color="0.5", linestyle=":")
    axes[0].set(ylabel="‖∂L/∂W₁‖ / ‖∂L/∂W_last‖ at init (log scale)", title="First- vs last-layer gradient at init")
    axes[1].set(ylabel=f"test accuracy (%, {r.test_examples} test digits)",
                title=f"Test accuracy after {r.epochs} epochs (SGD + momentum 0.9, lr {r.lr:g})")
    for ax in axes[:2]:
        ax.set_xlabel("depth (number of Linear layers)")
        ax.set_xticks(r.depths)
    axes[2].set(xlabel="epoch", ylabel="training loss (cross-entropy, log scale)",
                title=f"Training loss at depth {r.depths[-1]}")
    legend_outside(axes[2], sources=list(axes))
    fig.suptitle(f"Gradient flow and trainability vs depth on the scikit-learn digits ({ctx.mode} mode"
                 f"{', mean of %d seeds' % len(r.seeds) if len(r.seeds) > 1 else ''}; × = diverged)")
    ctx.save_figure(fig, "depth_summary")


def write_up(r: Result) -> str:
    D, d0 = r.depths[-1], r.depths[0]
    rat = {a: [ratio(r.grad_norms[a][str(d)]["init"]) for d in r.depths] for a in ARCHITECTURES}
    acc = {a: [float(np.mean(r.test_accuracy[a][str(d)])) for d in r.depths] for a in ARCHITECTURES}

    def acc_at(a, i=-1):
        return pct(acc[a][i]) if math.isfinite(acc[a][i]) else "diverged"

    def cmp(a, da, c, dc):
        key = f"{a} depth {da} vs {c} depth {dc}"
        return r.comparisons[key].sentence() if key in r.comparisons else "(not compared: a run diverged.)"

    def course(a):
        h = r.deepest[a]
        if not h.train_loss or not math.isfinite(h.train_loss[0]):
            return "diverged in the first epoch"
        finite = [v for v in h.train_loss if math.isfinite(v)]
        return (f"{finite[0]:.2f} → lowest {min(finite):.2f} → final {finite[-1]:.2f}"
                + (" before diverging" if h.diverged else ""))

    shrink = rat["sigmoid"][-1] < rat["sigmoid"][0]
    rows = [(a, *[f"{x:.1e}" for x in rat[a]], *[acc_at(a, i) for i in range(len(r.depths))]) for a in ARCHITECTURES]
    pairs = [(t, i) for a in ARCHITECTURES for d in r.depths if r.status[a][str(d)] == "done"
             for t, i in zip(r.grad_norms[a][str(d)]["trained"], r.grad_norms[a][str(d)]["init"])]
    smaller = float(np.mean([t < i for t, i in pairs])) if pairs else math.nan
    dead = {a: int(np.sum(np.array(r.grad_norms[a][str(D)]["trained"]) == 0)) for a in ARCHITECTURES}
    sigmoid_text = (f"a factor {rat['sigmoid'][0] / rat['sigmoid'][-1]:.0e} smaller: σ′ ≤ 0.25, so each layer scales "
                    "the backpropagated signal by at most a quarter times the weights’ gain, the vanishing gradient"
                    if shrink else "it did not shrink, against the textbook's vanishing gradient")
    relu_cmp = r.comparisons.get(f"ReLU depth {d0} vs ReLU depth {D}")
    losses = [x for x in r.deepest["ReLU"].train_loss if math.isfinite(x)]
    relapsed = bool(losses) and losses[-1] > 1.1 * min(losses)
    relu_text = ("" if relu_cmp is None or relu_cmp.winner != f"ReLU depth {d0}" else
                 f" Yet the depth-{D} ReLU net lost to the depth-{d0} one (below; training loss {course('ReLU')}): "
                 + (f"it improved, then its loss rose again — unstable steps at lr {r.lr:g}, not a vanishing gradient."
                    if relapsed else "its gradient reached the first layer, but the plain deep stack did not learn "
                    f"at lr {r.lr:g} in {r.epochs} epochs."))
    dead_text = (f"At depth {D}, layers with an exactly zero gradient after training (every unit off on all probe "
                 "images: dead ReLUs, not drawn on the log axis): " + ", ".join(f"{a} {n}" for a, n in dead.items() if n)
                 + "." if any(dead.values()) else "No layer ended with an exactly zero gradient.")
    seeds = f"{len(r.seeds)} seeds" if len(r.seeds) > 1 else "one seed, so McNemar's test on the paired test predictions"
    return f"""
MLPs of width {r.width} with {d0} to {D} Linear layers on the scikit-learn digits (8×8). ‖∂L/∂W‖ per layer was
measured on {r.probe_examples} training images at initialisation and after {r.epochs} epochs of SGD (momentum 0.9,
lr {r.lr:g}, the same for every net). Sigmoid nets use Xavier init, ReLU nets He init; the residual blocks are
x + relu(Wx + b) with branch weights scaled by 1/√(blocks); the batch-norm nets put BatchNorm1d between each
Linear and its ReLU. Accuracies are on {r.test_examples} test digits (one digit = {100 / r.test_examples:.2f}
points); comparisons use {seeds}.

{table(["architecture", *[f"ratio, depth {d}" for d in r.depths], *[f"test acc, depth {d}" for d in r.depths]], rows)}

(ratio = first-layer gradient norm / last-layer gradient norm at initialisation; below 1 means the gradient
shrinks on its way back to the input.)

## The gradient at initialisation (`grad_norm_per_layer.png`, `depth_summary.png` left)
- **Sigmoid**: the ratio went from {rat['sigmoid'][0]:.1e} at depth {d0} to {rat['sigmoid'][-1]:.1e} at depth {D}
  ({sigmoid_text}).
- **ReLU** (He init): ratio {rat['ReLU'][-1]:.1e} at depth {D}, {rat['ReLU'][-1] / rat['sigmoid'][-1]:.0e}× the
  sigmoid net's: ReLU′ is 1 on active units, so the gradient reaching the first layer does not decay geometrically.{relu_text}
- **ReLU + residual**: ratio {rat['ReLU + residual'][-1]:.1e}; **ReLU + batch norm**: {rat['ReLU + batch norm'][-1]:.1e}
  at depth {D} ({'above' if rat['ReLU + batch norm'][-1] > 1 else 'below'} 1: the first layer gets the
  {'larger' if rat['ReLU + batch norm'][-1] > 1 else 'smaller'} gradient).

## What it costs (`depth_summary.png` middle and right)
- Depth {d0} vs depth {D}, within each architecture:
{chr(10).join('  - ' + cmp(a, d0, a, D) for a in ARCHITECTURES)}
- Against the sigmoid net at depth {D}:
{chr(10).join('  - ' + cmp(a, D, 'sigmoid', D) for a in ARCHITECTURES[1:])}
- Repairing the plain ReLU stack at depth {D}:
{chr(10).join('  - ' + cmp(a, D, 'ReLU', D) for a in ARCHITECTURES[2:])}
- Training loss of the depth-{D} nets (first → lowest → final): {'; '.join(f'{a} {course(a)}' for a in ARCHITECTURES)}.
- After training (dashed), {pct(smaller, 0)} of the layers of the nets that finished had a smaller gradient than
  at initialisation. {dead_text}
"""
