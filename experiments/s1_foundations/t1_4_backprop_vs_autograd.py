"""1.4 Manual backprop vs autograd: the same MLP in NumPy (hand-written backward) and in PyTorch, from
identical weights. Gradients are compared at the same weights, both are trained on the same batches, and
the time per step is compared by the comparison rule (paired bootstrap over the steps)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import scratch
from utils.plotting import legend_outside, plt
from utils.report import Comparison, compare_errors, compare_predictions, describe_accuracy, table

BUDGET = {"tiny": {"train_size": 640, "test_size": 300, "steps": 10},
          "quick": {"train_size": 6400, "test_size": 2000, "steps": 100},
          "hybrid": {"train_size": 20000, "test_size": 10000, "steps": 300},
          "full": {"train_size": 60000, "test_size": None, "steps": 900}}
HIDDEN = (256, 128)
BATCH, LR, MOMENTUM = 64, 0.05, 0.9


@dataclass
class Result:
    dataset: str
    sizes: list[int]
    steps: int
    batch: int
    grad_diff: dict[str, list[float]]   # "float64"/"float32" -> [max |Δ gradient|, |Δ loss|] at identical weights
    losses: dict[str, list[float]]      # "numpy"/"torch" -> training loss per step
    ms: dict[str, list[float]]          # "numpy"/"torch" -> milliseconds per step
    matmul_ms: list[float]              # NumPy: the step's 9 matrix products alone, ms, per step
    weight_gap: float                   # max |Δ weight| after training
    test_examples: int
    test_accuracy: dict[str, float]
    speed: Comparison                   # NumPy vs PyTorch, ms per step (lower is better)
    accuracy: Comparison                # NumPy vs PyTorch, paired test predictions


def torch_and_scratch_mlp(sizes, seed: int, dtype):
    """A torch nn.Sequential MLP (ReLU) and a scratch.Sequential copy with identical weights, in `dtype`."""
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
    loss_np, dlogits = scratch.softmax_cross_entropy(copy.forward(x), y)
    copy.backward(dlogits)
    net.zero_grad()
    loss_t = F.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
    loss_t.backward()
    torch_grads = [p.grad.numpy() for p in net.parameters()]
    diff = max(float(np.max(np.abs(g - t))) for g, t in zip(copy.grad_arrays(), torch_grads))
    return diff, abs(loss_np - loss_t.item())


def matmul_time(sizes, batch: int, rng) -> float:
    """Seconds for the matrix products of one scratch training step (per layer: forward x·Wᵀ, backward δᵀx and δW)."""
    acts = [rng.standard_normal((batch, n)).astype(np.float32) for n in sizes]
    weights = [rng.standard_normal((b, a)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    t0 = time.perf_counter()
    for i, w in enumerate(weights):
        acts[i] @ w.T                       # forward
        acts[i + 1].T @ acts[i]             # ∂L/∂W
        acts[i + 1] @ w                     # ∂L/∂x (scratch computes it for the input layer too)
    return time.perf_counter() - t0


def measure(ctx) -> Result:
    b = ctx.budget
    ds = ctx.load_images("fashion-mnist", train_size=b.train_size, test_size=b.test_size)
    x, y = ds.x_train.flatten(1).numpy(), ds.y_train.numpy()
    sizes = [x.shape[1], *HIDDEN, ds.num_classes]
    batch = min(BATCH, len(x))

    # 1) Gradients at identical weights, float64 (the hand-written backward vs autograd) and float32.
    grad_diff = {}
    for name, dtype in (("float64", np.float64), ("float32", np.float32)):
        net, copy = torch_and_scratch_mlp(sizes, ctx.seed, dtype)
        grad_diff[name] = list(gradient_difference(net, copy, x[:256].astype(dtype), y[:256]))

    # 2) Train both (float32) on the same batches with the same SGD: the loss curves should overlap.
    net, copy = torch_and_scratch_mlp(sizes, ctx.seed, np.float32)
    opt_t = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    opt_np = scratch.SGD(copy.param_arrays(), lr=LR, momentum=MOMENTUM)
    rng = np.random.default_rng(ctx.seed)
    order = np.concatenate([rng.permutation(len(x)) for _ in range(-(-b.steps * batch // len(x)))])
    losses, seconds, matmul = {"numpy": [], "torch": []}, {"numpy": [], "torch": []}, []
    for i in range(b.steps):   # both on one thread (the task runs with threads=1): a like-for-like timing
        idx = order[i * batch:(i + 1) * batch]
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
        matmul.append(1000 * matmul_time(sizes, batch, rng))
    weight_gap = max(float(np.max(np.abs(a - p.detach().numpy()))) for a, p in zip(copy.param_arrays(), net.parameters()))
    ms = {k: [1000 * s for s in v] for k, v in seconds.items()}
    x_te, y_te = ds.x_test.flatten(1).numpy(), ds.y_test.numpy()
    correct_np = scratch.predict(copy, x_te).argmax(axis=1) == y_te
    with torch.no_grad():
        correct_t = (net(ds.x_test.flatten(1)).argmax(1) == ds.y_test).numpy()
    speed = compare_errors("NumPy", ms["numpy"], "PyTorch", ms["torch"], metric="time per step (ms)", seed=ctx.seed)
    accuracy = compare_predictions("NumPy", correct_np, "PyTorch", correct_t)
    acc = {"numpy": float(correct_np.mean()), "torch": float(correct_t.mean())}
    gap = np.abs(np.array(losses["numpy"]) - np.array(losses["torch"]))
    median = {k: float(np.median(v)) for k, v in ms.items()}
    ctx.record(max_abs_grad_diff=grad_diff["float64"][0], max_abs_grad_diff_float32=grad_diff["float32"][0],
               loss_diff_at_identical_weights={k: v[1] for k, v in grad_diff.items()},
               max_abs_loss_diff_over_training=float(gap.max()), max_abs_weight_diff_after_training=weight_gap,
               time_per_step_ms=median, numpy_over_torch_time=median["numpy"] / median["torch"],
               matmul_ms_per_step=float(np.median(matmul)), steps=b.steps, batch_size=batch, architecture=sizes,
               test_accuracy=acc, test_examples=len(y_te), verdict=speed.verdict(), accuracy_verdict=accuracy.verdict())
    return Result(ds.label, sizes, b.steps, batch, grad_diff, losses, ms, matmul, weight_gap, len(y_te), acc, speed,
                  accuracy)


def draw(ctx, r: Result) -> None:
    gap = np.abs(np.array(r.losses["numpy"]) - np.array(r.losses["torch"]))
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.2))
    axes[0].plot(r.losses["numpy"], color="#1f77b4", lw=3, alpha=0.6, label="NumPy (hand-written backward)")
    axes[0].plot(r.losses["torch"], color="#d62728", lw=1, linestyle="--", label="PyTorch (autograd)")
    axes[0].set(xlabel=f"SGD step (batch of {r.batch})", ylabel="training loss (cross-entropy)",
                title=f"Loss per step: largest gap {gap.max():.1e}")
    nonzero = np.flatnonzero(gap > 0)
    axes[1].semilogy(nonzero, gap[nonzero], "o", ms=3, color="0.3", label="steps with a non-zero gap")
    axes[1].set_xlim(-2, r.steps + 1)
    axes[1].set(xlabel=f"SGD step (batch of {r.batch})", ylabel="|loss NumPy − loss torch| (log scale)",
                title=f"Gap per step ({r.steps - len(nonzero)} of {r.steps} exactly 0, not drawn)")
    legend_outside(axes[1], sources=list(axes))
    fig.suptitle(f"Same MLP {'-'.join(map(str, r.sizes))} from identical weights on {r.dataset}")
    ctx.save_figure(fig, "loss_curves")

    fig, ax = plt.subplots(figsize=(7, 4))
    med = [float(np.median(r.ms["numpy"])), float(np.median(r.ms["torch"]))]
    q = [np.percentile(r.ms[k], [25, 75]) for k in ("numpy", "torch")]
    bars = ax.bar(["NumPy\n(hand-written)", "PyTorch\n(autograd)"], med, color=["#1f77b4", "#d62728"],
                  yerr=[[m - lo for m, (lo, _) in zip(med, q)], [hi - m for m, (_, hi) in zip(med, q)]], capsize=4)
    ax.bar_label(bars, fmt="%.2f ms", label_type="center", color="white", fontweight="bold")
    ax.plot([0, 1], [min(r.ms["numpy"]), min(r.ms["torch"])], "o", color="k", label="fastest step")
    ax.axhline(min(r.matmul_ms), color="0.3", ls="--", lw=1, label="NumPy's 9 matrix products alone (fastest)")
    ax.set(ylabel="time per training step (ms)",
           title=f"Time per step on {r.dataset}, batch {r.batch}, one CPU thread\n(median of {r.steps} steps, "
                 "bars: 25th–75th percentile)", ylim=(0, None))
    legend_outside(ax)
    ctx.save_figure(fig, "time_per_step")


def write_up(r: Result) -> str:
    gap = np.abs(np.array(r.losses["numpy"]) - np.array(r.losses["torch"]))
    med = {k: float(np.median(v)) for k, v in r.ms.items()}
    mm, fastest = min(r.matmul_ms), min(r.ms["numpy"])
    s = r.speed
    p = "p < 0.001" if s.p_value is not None and s.p_value < 0.001 else f"p = {s.p_value:.2g}"
    evidence = (f"mean {s.value_a:.3f} vs {s.value_b:.3f} ms, difference {s.diff:+.3f} ms ± {s.half_width:.3f} "
                f"(95% paired bootstrap over the {s.n} steps, {p})")
    if s.winner:
        slower = "NumPy" if s.winner == "PyTorch" else "PyTorch"
        speed_text = (f"{s.winner} was faster per step: {evidence}; {max(med.values()) / min(med.values()):.2f}× in "
                      f"medians. The matrix products are the same BLAS calls in both, so the difference is everything "
                      f"around them: {slower}'s per-operation overhead.")
    else:
        speed_text = f"No measurable difference in time per step: {evidence}."
    share = mm / fastest
    grad_ok = r.grad_diff["float64"][0] < 1e-10
    return f"""
The MLP {'-'.join(map(str, r.sizes))} (ReLU) was built in PyTorch and its weights copied into the scratch NumPy
network, so both start identical. Data: {r.dataset}.

## Gradients
On one batch of 256 training images the hand-written backward pass and torch autograd gave gradients that differ by at
most **{r.grad_diff['float64'][0]:.1e}** in float64 (loss difference {r.grad_diff['float64'][1]:.1e}; tolerance 1e-10:
{'passed' if grad_ok else 'FAILED'}) and {r.grad_diff['float32'][0]:.1e} in float32. float64 agreement at round-off
level means the backward pass is the exact derivative; float32's larger gap is single-precision rounding of the same
arithmetic done in a different order.

## Training side by side (`loss_curves.png`)
{r.steps} SGD steps (lr {LR}, momentum {MOMENTUM}, batch {r.batch}) on the same batches in the same order, float32: the
largest per-step loss gap was {gap.max():.1e} ({int((gap == 0).sum())} of {r.steps} steps exactly equal), and after
training the weights differed by at most {r.weight_gap:.1e}. Test accuracy after these steps:
NumPy {describe_accuracy(r.test_accuracy['numpy'], r.test_examples)}, PyTorch
{describe_accuracy(r.test_accuracy['torch'], r.test_examples)}. {r.accuracy.sentence()}

## Speed (`time_per_step.png`)
{table(["implementation", "median ms per step"], [("NumPy, hand-written", f"{med['numpy']:.2f}"),
                                                   ("PyTorch, autograd", f"{med['torch']:.2f}"),
                                                   ("NumPy's 9 matrix products alone", f"{float(np.median(r.matmul_ms)):.2f}")])}

{speed_text} In the least disturbed measurements (the fastest of {r.steps}), NumPy's step took {fastest:.2f} ms and its
9 matrix products alone {mm:.2f} ms ({100 * min(share, 1):.0f}%); the rest is elementwise work (ReLU masks, softmax, the
momentum update) and Python calls. Both ran on one CPU thread; the median is
{med['numpy'] / fastest:.1f}× the fastest NumPy step, a measure of how much other programs running at the same time
stretched the timings.
"""
