"""5.2 Why skip connections: plain and residual networks of two depths, trained alike.

The ResNet paper's degradation problem: a deeper *plain* network (same blocks, no shortcuts) ends
with a *higher training loss* than a shallower one, which is not over-fitting (it is the training
set) but an optimisation difficulty; the same depth with identity shortcuts trains at least as well
as the shallow net. The paper used depths 20 and 56 (6n + 2 layers, widths 16/32/64) on a GPU; the
CPU budgets use fewer layers and narrower widths. Per-layer gradient norms (every 3×3 conv, input
to output) are measured on one batch at initialisation and after training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.ticker import MaxNLocator

from experiments.s5_modern._shared import conv_gradient_norms, correct_on, per_example_loss, split, train_classifier
from models import CifarResNet, count_parameters
from utils.history import History
from utils.plotting import legend_outside, mark_diverged, moving_average, plt
from utils.report import Comparison, compare_errors

BUDGET = {  # depths are 6n + 2 (n blocks per stage, three stages)
    "tiny": {"depths": [8, 14], "width": 4, "epochs": 1, "train_size": 300, "test_size": 100, "lr": 0.05,
             "batch_size": 32, "probe": 64},
    "quick": {"depths": [8, 20], "width": 8, "epochs": 2, "train_size": 1500, "test_size": 500, "lr": 0.05,
              "batch_size": 64, "probe": 512},
    # HYBRID in ≤ 20 min on a 2-core CPU, four runs on one thread each: 150 (plain-20) to 90 (ResNet-32) images/s
    "hybrid": {"depths": [20, 32], "width": 16, "epochs": 5, "train_size": 8000, "test_size": 2000, "lr": 0.1,
               "batch_size": 128, "probe": 512},
    "full": {"depths": [20, 56], "width": 16, "epochs": 30, "train_size": None, "test_size": None, "lr": 0.1,
             "batch_size": 128, "probe": 1000},
}


@dataclass
class Result:
    dataset: str
    depths: list[int]
    width: int
    histories: dict[str, History]           # "plain_<d>" / "resnet_<d>" -> training history
    grad_init: dict[str, list[float]]       # per-conv gradient norms at initialisation, input to output
    grad_trained: dict[str, list[float]]    # the same after training
    parameters: dict[str, int]
    final_train_loss: dict[str, float]      # last epoch's mean training loss (train mode)
    probe_loss: dict[str, float]            # mean loss on the probe training images (eval mode)
    test_accuracy: dict[str, float]
    test_examples: int
    probe_examples: int
    skip: Comparison                        # deep plain vs deep residual, per-example training loss
    degradation: Comparison                 # deep plain vs shallow plain
    deep_resnet_vs_shallow: Comparison      # deep residual vs shallow residual
    gradient_examples: int = 512            # the one training batch the gradient norms are measured on


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("cifar10", train_size=b.train_size, test_size=b.test_size)
    train, val = split(ctx, ds)
    probe = (train[0][:b.probe], train[1][:b.probe])
    # gradient norms on one training-size batch: a backward pass keeps every layer's activations, and on the
    # 512-image probe that was 2.3 GB for plain-32 in HYBRID
    batch = (probe[0][:b.batch_size], probe[1][:b.batch_size])
    widths = (b.width, 2 * b.width, 4 * b.width)

    def train_one(key):
        kind, depth = key.split("_")
        n = (int(depth) - 2) // 6
        torch.manual_seed(ctx.seed)
        model = CifarResNet((n, n, n), widths, ds.num_classes, ds.shape[0], residual=kind == "resnet").to(ctx.device)
        at_init = conv_gradient_norms(model, *batch, ctx.device)
        h = train_classifier(ctx, model, train, val, epochs=b.epochs, lr=b.lr, batch_size=b.batch_size,
                             weight_decay=1e-4, description=key)
        acc = float(correct_on(model, ds.x_test, ds.y_test, ctx.device, ctx.cfg.eval_batch_size).mean())
        return (h, at_init, conv_gradient_norms(model, *batch, ctx.device), count_parameters(model),
                per_example_loss(model, *probe, ctx.device), acc)

    keys = [f"{kind}_{depth}" for depth in sorted(b.depths, reverse=True) for kind in ("plain", "resnet")]  # deep first
    runs = dict(zip(keys, ctx.map(train_one, keys, "networks", info=lambda k, out: f"{k}: test {out[5]:.3f}")))
    keys = [f"{kind}_{depth}" for depth in b.depths for kind in ("plain", "resnet")]  # metrics in the budget's order
    histories, g0, g1, params, losses, test_acc = ({k: runs[k][i] for k in keys} for i in range(6))
    final = {k: h.final("train_loss") for k, h in histories.items()}
    shallow, deep = min(b.depths), max(b.depths)

    def loss_gap(one: str, other: str) -> Comparison:  # "plain_20", "resnet_20": paired bootstrap on the probe images
        return compare_errors(_style(one, b.depths)["label"], losses[one], _style(other, b.depths)["label"],
                              losses[other], metric="training loss (cross-entropy)", seed=ctx.seed, unit="training images")

    skip = loss_gap(f"plain_{deep}", f"resnet_{deep}")
    degradation = loss_gap(f"plain_{deep}", f"plain_{shallow}")
    deeper_res = loss_gap(f"resnet_{deep}", f"resnet_{shallow}")
    ctx.record(final_train_loss=final, depths=list(b.depths), width=b.width, parameters=params,
               grad_norm_first_layer={k: {"init": g0[k][0], "trained": g1[k][0]} for k in g0},
               probe_train_loss={k: float(v.mean()) for k, v in losses.items()}, test_accuracy=test_acc,
               verdict=skip.verdict(), degradation_verdict=degradation.verdict(),
               deep_resnet_verdict=deeper_res.verdict())
    return Result(ds.label, list(b.depths), b.width, histories, g0, g1, params, final,
                  {k: float(v.mean()) for k, v in losses.items()}, test_acc, len(ds.y_test), len(probe[1]),
                  skip, degradation, deeper_res, len(batch[1]))


STYLE = {"plain": "-", "resnet": "--"}


def _style(key: str, depths: list[int]) -> dict:
    kind, depth = key.split("_")
    colors = {"plain": ("tab:orange", "tab:red"), "resnet": ("tab:cyan", "tab:blue")}[kind]
    return {"color": colors[depths.index(int(depth))], "linestyle": STYLE[kind],
            "label": f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"}


def draw(ctx, r: Result) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    per_step = all(h.batch_loss for h in r.histories.values())
    # every optimizer step, smoothed over one window for all models (they train alike, so take the same steps)
    window = max(1, max(len(h.batch_loss) for h in r.histories.values()) // 25)
    for key, h in r.histories.items():
        st = _style(key, r.depths)
        if per_step:   # a QUICK run has too few epochs for an epoch curve
            ax.plot(range(1, len(h.batch_loss) + 1), moving_average(h.batch_loss, window), **st)
        else:
            ax.plot(range(1, len(h.train_loss) + 1), h.train_loss, marker="o", **st)
        if h.diverged:
            mark_diverged(ax, h.batch_loss if per_step else h.train_loss, color=st["color"])
    ax.set_xlabel("optimizer step" if per_step else "epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training loss (cross-entropy, epoch mean)" if not per_step else
                  "training loss (cross-entropy, per step)" if window == 1 else
                  f"training loss (cross-entropy,\nmean of the last {window} steps)")   # one line outgrew the axes
    ax.set_title(f"Plain vs residual networks, depths {r.depths[0]} and {r.depths[-1]}, on {r.dataset}")
    legend_outside(ax)
    ctx.save_figure(fig, "training_loss")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, grads, when in ((axes[0], r.grad_init, "at initialisation"), (axes[1], r.grad_trained, "after training")):
        for key, g in grads.items():
            ax.plot(range(1, len(g) + 1), g, marker=".", **_style(key, r.depths))
        ax.set_yscale("log")
        ax.set(xlabel="3×3 conv layer (1 = first, input side)", title=when)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # layers are counted, not measured
    axes[0].set_ylabel("‖∂loss/∂W‖₂ on one batch (log scale)")
    legend_outside(axes[1])
    fig.suptitle(f"Per-layer gradient norms, plain vs ResNet, on {r.dataset} ({r.gradient_examples} training images)")
    ctx.save_figure(fig, "gradient_norms")


def write_up(r: Result) -> str:
    shallow, deep = min(r.depths), max(r.depths)
    pd, rd, ps = f"plain_{deep}", f"resnet_{deep}", f"plain_{shallow}"
    lines = ["| model | parameters | final training loss (epoch mean) | probe training loss (eval) | test accuracy |",
             "|---|---|---|---|---|"]
    for k in r.histories:
        lines.append(f"| {_style(k, r.depths)['label']} | {r.parameters[k]:,} | {r.final_train_loss[k]:.4f} | "
                     f"{r.probe_loss[k]:.4f} | {100 * r.test_accuracy[k]:.1f}% |")
    deg = r.degradation
    if deg.winner == deg.name_b:  # the shallow plain net has the lower training loss
        degradation = (f"**The deeper plain network degrades:** {deg.sentence()} More layers made the *training* "
                       f"loss worse, so this is not over-fitting but an optimisation problem.")
    elif deg.winner == deg.name_a:
        degradation = (f"**Against the textbook, the deeper plain network did not degrade here:** {deg.sentence()} "
                       f"Measured reason: the deeper plain net has {r.parameters[pd] / r.parameters[ps]:.1f}× the parameters "
                       f"({r.parameters[pd]:,} vs {r.parameters[ps]:,}) and batch norm kept its gradients alive (below), "
                       f"so at depth {deep} and {r.histories[pd].epochs} epochs the extra capacity outweighed the harder "
                       f"optimisation; the paper's gap appears at depth 56 over many epochs.")
    else:
        degradation = (f"**No measurable degradation at this budget:** {deg.sentence()} The textbook expects the "
                       f"deeper plain net to train worse; here the two depths cannot be told apart on the training "
                       f"images.")
    skip = r.skip
    if skip.winner == skip.name_b:
        skips = f"**With skips the deep network trains better:** {skip.sentence()}"
    elif skip.winner == skip.name_a:
        skips = f"**Against the textbook, the plain deep net trained better than the residual one:** {skip.sentence()}"
    else:
        skips = f"**Skips made no measurable difference at depth {deep} here:** {skip.sentence()}"
    res = r.deep_resnet_vs_shallow
    res_line = (f"Deep vs shallow ResNet: {res.sentence()}")
    g0, g1 = r.grad_init, r.grad_trained

    def ratio(g, k):
        return g[k][0] / max(g[k][-1], 1e-30)   # first (input-side) over last conv layer

    parts = []
    for g, when in ((g0, "at initialisation"), (g1, "after training")):
        p, q = ratio(g, pd), ratio(g, rd)
        shares = (f"first/last-layer norm ratio {p:.3g} vs {q:.3g}; first layer {g[pd][0]:.3g} vs "
                  f"{g[rd][0]:.3g}")
        if p < q / 2:
            parts.append(f"{when} the plain-{deep} input layer gets {q / p:.1f}× less of the gradient, relative to "
                         f"its last layer, than the ResNet's ({shares}): the gradient fades on its way down the plain "
                         f"stack, while the shortcuts carry it past the layers")
        elif p < q:
            parts.append(f"{when} the plain-{deep} input layer gets a somewhat smaller share than the ResNet's "
                         f"({shares}), less than a factor of two: batch norm keeps the gradient from vanishing")
        else:
            parts.append(f"{when} the plain-{deep} input layer does not get a smaller share than the ResNet's "
                         f"({shares}), so batch norm keeps the gradient from vanishing there")
    grads = "; ".join(parts)
    grads = grads[0].upper() + grads[1:] + "."
    return f"""
## Training loss (`training_loss.png`)
Networks of depth {shallow} and {deep} (6n + 2 layers, widths {r.width}/{2 * r.width}/{4 * r.width}), each plain
and with identity shortcuts, from the same seed, trained alike (SGD-Nesterov, one-cycle) on {r.dataset}. The
comparisons use each example's training loss on the same {r.probe_examples} training images (paired bootstrap).

{degradation}

{skips}

{res_line}

{chr(10).join(lines)}

Test accuracy is on {r.test_examples} test images.

## Gradient norms (`gradient_norms.png`)
{grads}
"""
