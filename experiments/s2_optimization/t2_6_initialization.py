"""2.6 Weight initialization: the six standard weight distributions (U[−1,1], N(0,1), Xavier and Kaiming,
uniform and normal) as measured histograms; then zeros, small normal, large normal, Xavier/Glorot and
He/Kaiming on a 10-layer tanh and ReLU scratch MLP on the digits: per-layer activation and gradient
statistics at initialisation, training curves, and test accuracy compared by the project's rule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator

import scratch
from experiments.common.scratch_training import digits_arrays, scratch_mlp, train_scratch
from utils.history import History
from utils.plotting import legend_outside, mark_diverged, plt
from utils.report import Comparison, compare_runs, pct, table

BUDGET = {
    "tiny": {"epochs": 1, "depth": 10, "width": 32, "lr": 0.01, "probe": 256},
    "quick": {"epochs": 10, "depth": 10, "width": 64, "lr": 0.01, "probe": 512},
    "hybrid": {"epochs": 20, "depth": 10, "width": 64, "lr": 0.01, "probe": 512},
    "full": {"epochs": 30, "depth": 10, "width": 64, "lr": 0.01, "probe": 512},
}
INIT_SCHEMES = {  # name: (scratch.init_array scheme, scale for 'normal')
    "zeros": ("zeros", None), "small normal (σ 0.01)": ("normal", 0.01), "large normal (σ 1)": ("normal", 1.0),
    "Xavier/Glorot": ("xavier_normal", None), "He/Kaiming": ("he_normal", None),
}
ACTIVATIONS = ("tanh", "relu")
MATCHED = {"tanh": "Xavier/Glorot", "relu": "He/Kaiming"}   # the textbook pairing
# The six distributions of the histograms: name -> (scratch.init_array scheme or "uniform±1", theoretical std(fan))
DISTRIBUTIONS = {
    "U[−1, 1]": ("uniform±1", lambda fi, fo: 1 / math.sqrt(3)),
    "Xavier uniform": ("xavier", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    "Kaiming uniform": ("he", lambda fi, fo: math.sqrt(2 / fi)),
    "N(0, 1)": ("normal", lambda fi, fo: 1.0),
    "Xavier normal": ("xavier_normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    "Kaiming normal": ("he_normal", lambda fi, fo: math.sqrt(2 / fi)),
}
FLOOR = 1e-14   # exact zeros are drawn here on the log axes


@dataclass
class Result:
    depth: int
    width: int
    epochs: int
    lr: float
    seeds: list[int]
    probe_examples: int
    test_examples: int
    majority_share: float                             # share of the most frequent class in the test set
    weights: dict[str, dict[str, float]]              # distribution -> mean, std, theory_std
    hist_counts: dict[str, list[float]]               # distribution -> histogram counts (density)
    hist_edges: dict[str, list[float]]
    activation_std: dict[str, dict[str, list[float]]]   # activation -> init -> per hidden layer
    weight_grad_std: dict[str, dict[str, list[float]]]  # activation -> init -> per Linear layer
    test_accuracy: dict[str, dict[str, list[float]]]    # activation -> init -> per seed (nan: diverged)
    histories: dict[str, dict[str, History]]            # activation -> init -> first seed's history
    comparisons: dict[str, Comparison]                  # "act: init vs matched init" -> the rule's verdict


def sample_weights(name: str, fan_in: int, fan_out: int, rng) -> np.ndarray:
    scheme = DISTRIBUTIONS[name][0]
    if scheme == "uniform±1":
        return rng.uniform(-1, 1, (fan_out, fan_in))
    return scratch.init_array((fan_out, fan_in), fan_in, fan_out, scheme, rng, np.float64, scale=1.0)


def initialise(model, scheme: str, scale, seed: int) -> None:
    """Overwrite every Linear weight of a scratch model with `scheme` (scratch.init_array) and zero the biases."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, scratch.Linear):
            w = layer.params["weight"]   # (fan_out, fan_in)
            w[...] = scratch.init_array(w.shape, w.shape[1], w.shape[0], scheme, rng, w.dtype,
                                        **({"scale": scale} if scale is not None else {}))
            layer.params["bias"][...] = 0


def layer_statistics(model, x, y):
    """Per hidden layer: std of the activations; per Linear layer: std of ∂L/∂W — one forward/backward pass."""
    acts, out = [], x
    with np.errstate(all="ignore"):
        for layer in model.layers:
            out = layer.forward(out, training=True)
            if isinstance(layer, scratch.Activation):
                acts.append(float(np.std(out)))
        _, dlogits = scratch.softmax_cross_entropy(out, y)
        model.backward(dlogits)
    grads = [float(np.std(layer.grads["weight"])) for layer in model.layers if isinstance(layer, scratch.Linear)]
    return acts, grads


def measure(ctx) -> Result:
    b = ctx.budget
    rng = np.random.default_rng(ctx.seed)
    weights, counts, edges = {}, {}, {}
    for name, (_, theory) in DISTRIBUTIONS.items():
        w = sample_weights(name, b.width, b.width, rng).ravel()
        weights[name] = {"mean": float(w.mean()), "std": float(w.std()), "theory_std": theory(b.width, b.width)}
        counts[name], edges[name] = (a.tolist() for a in np.histogram(w, bins=50, density=True))

    sizes = (64,) + (b.width,) * (b.depth - 1) + (10,)
    seeds = ctx.seeds()
    a_std, g_std, acc, hist, correct = {}, {}, {}, {}, {}
    arrays = {s: digits_arrays(ctx, s) for s in seeds}   # each seed's own split

    def train_one(job):   # one activation and initialisation on one seed's split; the first seed is probed
        s, act, name = job
        data = arrays[s]
        model = scratch_mlp(sizes, act, seed=s)
        initialise(model, *INIT_SCHEMES[name], seed=s)
        stats = layer_statistics(model, data[0][:b.probe], data[1][:b.probe]) if s == seeds[0] else None
        run = train_scratch(model, data, scratch.SGD(model.param_arrays(), lr=b.lr, momentum=0.9),
                            epochs=b.epochs, seed=s)
        right = (scratch.predict(model, data[2]).argmax(1) == data[3]
                 if s == seeds[0] and run.status == "done" else None)
        return stats, run, right

    jobs = [(s, act, name) for s in seeds for act in ACTIVATIONS for name in INIT_SCHEMES]
    runs = ctx.map(train_one, jobs, "inits", info=lambda job, out: f"{job[1]} {job[2]}: {out[1].final('val_acc'):.3f}",
                   torch_runs=False)
    for (s, act, name), (stats, run, right) in zip(jobs, runs):
        if stats is not None:
            a_std.setdefault(act, {})[name], g_std.setdefault(act, {})[name] = stats
        acc.setdefault(act, {}).setdefault(name, []).append(run.final("val_acc") if run.status == "done" else math.nan)
        hist.setdefault(act, {}).setdefault(name, run)     # the first seed's
        if right is not None:
            correct[act, name] = right

    comparisons = {}
    for act in ACTIVATIONS:
        m = MATCHED[act]
        for name in INIT_SCHEMES:
            if name != m and (act, m) in correct and (act, name) in correct and np.all(np.isfinite(acc[act][name])):
                comparisons[f"{act}: {name} vs {m}"] = compare_runs(
                    name, m, seeds_a=acc[act][name], seeds_b=acc[act][m], correct_a=correct[act, name],
                    correct_b=correct[act, m])
    _, y_tr, _, y_te = arrays[seeds[-1]]   # every seed's split has the same sizes
    r = Result(b.depth, b.width, b.epochs, b.lr, seeds, min(b.probe, len(y_tr)), len(y_te),
               float(np.bincount(y_te).max() / len(y_te)), weights, counts, edges, a_std, g_std, acc, hist, comparisons)
    ctx.record(verdict=headline_verdict(r), weight_distributions=weights,
               test_accuracy={a: {n: float(np.mean(v)) for n, v in acc[a].items()} for a in ACTIVATIONS},
               test_accuracy_per_seed=acc, run_status={a: {n: h.status for n, h in hist[a].items()} for a in ACTIVATIONS},
               activation_std=a_std, weight_grad_std=g_std, comparisons={k: c.verdict() for k, c in comparisons.items()},
               depth=b.depth, width=b.width, epochs=b.epochs, seeds=seeds, test_examples=len(y_te))
    return r


def rival(r: Result, act: str) -> Comparison | None:
    """The matched init's comparison with the most accurate other init (None if none finished)."""
    found = [c for k, c in r.comparisons.items() if k.startswith(f"{act}: ")]
    return max(found, key=lambda c: c.value_a) if found else None


def headline_verdict(r: Result) -> str:
    return "; ".join(f"{act}: {c.verdict()}" if (c := rival(r, act)) else f"{act}: {MATCHED[act]} diverged"
                     for act in ACTIVATIONS)


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex="col", layout="constrained")
    for ax, name in zip(axes.ravel(), DISTRIBUTIONS):
        w = r.weights[name]
        ax.stairs(r.hist_counts[name], r.hist_edges[name], fill=True, alpha=0.6)
        ax.set(title=name, ylabel="density (1 / weight unit)")
        ax.text(0.02, 0.97, f"measured mean {w['mean']:+.4f}\nmeasured std {w['std']:.4f}\n"
                f"theory std {w['theory_std']:.4f}", transform=ax.transAxes, va="top", fontsize=8,
                bbox=dict(fc="white", ec="0.7", alpha=0.9))
    plt.setp(axes[1], xlabel="weight value")
    fig.suptitle(f"Six initial weight distributions for one {r.width}→{r.width} layer ({r.width * r.width:,} "
                 f"samples each; fan_in = fan_out = {r.width}; {ctx.mode} mode)")
    ctx.save_figure(fig, "weight_histograms")

    for key, ylabel, fname, xlabel in (("a", "std of the layer's activations", "activation_stats", "hidden layer"),
                                       ("g", "std of ∂L/∂W (weight gradient)", "gradient_stats", "Linear layer")):
        stats = r.activation_std if key == "a" else r.weight_grad_std
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True, layout="constrained")
        for ax, act in zip(axes, ACTIVATIONS):
            for name in INIT_SCHEMES:
                values = np.array(stats[act][name], dtype=float)
                ax.semilogy(range(1, len(values) + 1), np.maximum(np.nan_to_num(values, nan=FLOOR), FLOOR), "o-",
                            ms=3, label=name + (" (exactly 0: drawn at 1e-14)" if np.all(values == 0) else ""))
            ax.set(title=f"{act}, {r.depth} Linear layers of width {r.width}, at initialisation",
                   xlabel=f"{xlabel} (1 = next to the input)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].set_ylabel(f"{ylabel} (log scale)")
        legend_outside(axes[1], sources=list(axes))
        fig.suptitle(("Activations" if key == "a" else "Weight gradients") + f" per layer on {r.probe_examples} "
                     f"scikit-learn digits, five initialisations ({ctx.mode} mode)")
        ctx.save_figure(fig, fname)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True, layout="constrained")
    for ax, act in zip(axes, ACTIVATIONS):
        for name in INIT_SCHEMES:
            h = r.histories[act][name]
            acc = np.mean(r.test_accuracy[act][name])
            # zeros and small normal both sit at ln 10: zeros dotted and wider so both stay visible
            style = {"linestyle": ":", "lw": 3} if name == "zeros" else {"linestyle": "-"}
            line, = ax.semilogy(range(1, len(h.train_loss) + 1), h.train_loss, marker="o", ms=3,
                                label=f"{name}: {pct(acc) if math.isfinite(acc) else 'diverged (×)'}", **style)
            if h.diverged:
                mark_diverged(ax, h.train_loss, color=line.get_color())
        ax.set(title=act, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend_outside(ax, title=f"init: test accuracy ({r.test_examples} digits)")
    axes[0].set_ylabel("training loss (cross-entropy, log scale)")
    fig.suptitle(f"Training the {r.depth}-layer nets on the scikit-learn digits (SGD + momentum 0.9, lr {r.lr:g}, "
                 f"batch 64; {ctx.mode} mode; × = diverged)")
    ctx.save_figure(fig, "training_curves")


def span(values) -> str:
    """'first → last' of a per-layer statistic, or what stops it being a number."""
    values = np.asarray(values, dtype=float)
    if np.all(values == 0):
        return "exactly 0"
    if not np.all(np.isfinite(values)):
        return "overflowed"
    return f"{values[0]:.1e} → {values[-1]:.1e}"


def factor(values) -> float:
    values = np.asarray(values, dtype=float)
    return values[-1] / values[0] if values[0] > 0 and np.all(np.isfinite(values)) else math.nan


def write_up(r: Result) -> str:
    acc = {a: {n: float(np.mean(v)) for n, v in r.test_accuracy[a].items()} for a in ACTIVATIONS}

    def a(act, name):   # the accuracy as written in the table and the text
        return pct(acc[act][name]) if math.isfinite(acc[act][name]) else "diverged"

    def cmp(act, name):
        key = f"{act}: {name} vs {MATCHED[act]}"
        return r.comparisons[key].sentence() if key in r.comparisons else f"{name} diverged, so it was not compared."

    rows = [(act, name, span(r.activation_std[act][name]), span(r.weight_grad_std[act][name]), a(act, name),
             r.comparisons[f"{act}: {name} vs {MATCHED[act]}"].verdict() if f"{act}: {name} vs {MATCHED[act]}"
             in r.comparisons else ("—" if name == MATCHED[act] else "diverged"))
            for act in ACTIVATIONS for name in INIT_SCHEMES]
    hist_rows = [(n, f"{w['mean']:+.4f}", f"{w['std']:.4f}", f"{w['theory_std']:.4f}") for n, w in r.weights.items()]
    zero = {act: np.all(np.array(r.activation_std[act]["zeros"]) == 0) for act in ACTIVATIONS}
    st, sr = r.activation_std["tanh"], r.activation_std["relu"]
    xt, hr = factor(st["Xavier/Glorot"]), factor(sr["He/Kaiming"])
    large_relu = r.histories["relu"]["large normal (σ 1)"]
    g = 0.01 * math.sqrt(r.width)
    fixed = [r.weights[n]["std"] for n in ("U[−1, 1]", "N(0, 1)")]
    scaled = [w["std"] for n, w in r.weights.items() if n.startswith(("Xavier", "Kaiming"))]
    lo, hi = min(fixed) / max(scaled), max(fixed) / min(scaled)
    saturated = np.asarray(st["large normal (σ 1)"], dtype=float)[-1] > 0.8
    zero_text = ("every hidden activation and every weight gradient is exactly 0 (both activations), so all units "
                 "stay identical and get identical (zero) updates: the symmetry is never broken and only the output "
                 "bias learns." if all(zero.values()) else
                 f"the activations were not all exactly zero: {span(st['zeros'])} (tanh), {span(sr['zeros'])} (ReLU).")
    large = factor(sr["large normal (σ 1)"])
    seeds = (f"{len(r.seeds)} seeds (seed spread)" if len(r.seeds) > 1 else
             "one seed (McNemar's test on the paired test predictions)")
    return f"""
## The six distributions (`weight_histograms.png`)
Each drawn for a {r.width}→{r.width} layer ({r.width * r.width:,} weights). Measured mean and standard deviation
against theory (Xavier: √(2/(fan_in+fan_out)); Kaiming: √(2/fan_in); U[−a, a] has std a/√3):

{table(["distribution", "measured mean", "measured std", "theory std"], hist_rows)}

The Xavier and Kaiming draws are {lo:.1f}–{hi:.1f}× narrower than U[−1, 1] and N(0, 1): their scale
follows the layer's fan (for fan {r.width}), the fixed ones do not.

## Deep nets at initialisation and after training
A {r.depth}-layer MLP (width {r.width}) with tanh or ReLU, each initialisation applied to every Linear layer (biases 0).
Statistics from one forward/backward pass on {r.probe_examples} digits (std of each hidden layer's activations, layer
1 → {r.depth - 1}; std of each ∂L/∂W, layer 1 → {r.depth}); then {r.epochs} epochs of SGD (momentum 0.9, lr {r.lr:g}).
Test accuracy on {r.test_examples} test digits; each init is compared with the textbook one for its activation
(Xavier for tanh, He for ReLU) using {seeds}.

{table(["activation", "init", "activation std, first → last", "∂L/∂W std, first → last", "test accuracy",
        "vs matched init"], rows)}

- **Zeros**: {zero_text}
  Test accuracy {a('tanh', 'zeros')} (tanh) and {a('relu', 'zeros')} (ReLU); the most frequent test class is
  {pct(r.majority_share)} of the test set.
- **Small normal (σ 0.01)**: each layer multiplies the signal by about σ·√{r.width} = {g:.2f}, and the activation std
  went {span(st['small normal (σ 0.01)'])} (tanh) and {span(sr['small normal (σ 0.01)'])} (ReLU); the weight gradients
  are {span(r.weight_grad_std['tanh']['small normal (σ 0.01)'])} (tanh). Test accuracy {a('tanh', 'small normal (σ 0.01)')} /
  {a('relu', 'small normal (σ 0.01)')} (tanh / ReLU).
- **Large normal (σ 1)**: tanh activations {span(st['large normal (σ 1)'])}{
  ' (std near 1: the units sit at ±1, where tanh′ ≈ 0)' if saturated else ''};
  ReLU activations {span(sr['large normal (σ 1)'])}, a factor {large:.1e} over {r.depth - 2} layers,
  {large ** (1 / (r.depth - 2)):.1f}× per layer (theory:
  √({r.width}/2) = {math.sqrt(r.width / 2):.1f}×){
  ', and training diverged (NaN loss)' if large_relu.diverged else ''}.
- **Xavier** changed tanh's activation std by a factor {xt:.2f} over {r.depth - 1} hidden layers; **He** changed
  ReLU's by {hr:.2f}, doubling the variance to make up for ReLU zeroing half its inputs.
- Against Xavier (tanh):
{chr(10).join('  - ' + cmp('tanh', n) for n in INIT_SCHEMES if n != MATCHED['tanh'])}
- Against He (ReLU):
{chr(10).join('  - ' + cmp('relu', n) for n in INIT_SCHEMES if n != MATCHED['relu'])}
"""
