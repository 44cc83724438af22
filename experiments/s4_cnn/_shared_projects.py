"""Helpers of the two section-4 projects: the NumPy CNN and its PyTorch twin (4.2), and the product
classifier's training recipe, augmentation and speed measurements (4.9)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import scratch
from scratch.schedules import OneCycleLR
from utils.history import History
from utils.report import ALPHA, Z95, Comparison, accuracy_interval, pct, sentence_case


# ------------------------------------------------------------------------------------ 4.2: the twins
def build_scratch_cnn(in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                      widths: tuple[int, int] = (16, 32), hidden: int = 64, pool: str = "max", seed: int = 0):
    """The NumPy CNN of 4.2: conv → ReLU → pool → conv → ReLU → pool → FC → ReLU → FC. 3×3 convolutions with
    padding 1 keep the size, each 2×2 pool ("max" or "avg") halves it; He init suits ReLU."""
    rng = np.random.default_rng(seed)
    c1, c2 = widths
    side = image_size // 4
    Pool = {"max": scratch.MaxPool2d, "avg": scratch.AvgPool2d}[pool]
    return scratch.Sequential([
        scratch.Conv2d(in_channels, c1, 3, padding=1, init="he", rng=rng), scratch.ReLU(), Pool(2),
        scratch.Conv2d(c1, c2, 3, padding=1, init="he", rng=rng), scratch.ReLU(), Pool(2),
        scratch.Flatten(),
        scratch.Linear(c2 * side * side, hidden, init="he", rng=rng), scratch.ReLU(),
        scratch.Linear(hidden, num_classes, init="xavier", rng=rng),
    ])


def torch_twin(net, dtype=torch.float32) -> nn.Sequential:
    """The same network in PyTorch (in ``dtype``) with the scratch network's current weights copied in. Layer i
    becomes layer i of an nn.Sequential, so parameter names ("0.weight", ...) and layouts agree one to one."""
    makers = {scratch.Conv2d: lambda m: nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                                  bias="bias" in m.params),
              scratch.Linear: lambda m: nn.Linear(m.in_features, m.out_features, bias="bias" in m.params),
              scratch.MaxPool2d: lambda m: nn.MaxPool2d(m.kernel_size, m.stride, m.padding),
              scratch.AvgPool2d: lambda m: nn.AvgPool2d(m.kernel_size, m.stride, m.padding),
              scratch.Flatten: lambda m: nn.Flatten(), scratch.ReLU: lambda m: nn.ReLU(),
              scratch.Dropout: lambda m: nn.Dropout(m.p)}

    def convert(layer):
        if type(layer) not in makers:
            raise TypeError(f"no PyTorch twin for scratch layer {type(layer).__name__}")
        return makers[type(layer)](layer)

    twin = nn.Sequential(*(convert(layer) for layer in net.layers))
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net.state_dict().items()})
    return twin.to(dtype)


def _relative(a, b) -> float:
    """|a − b|max / |b|max: the largest difference relative to the reference's scale."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _trace(model, x, y) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, np.ndarray]]:
    """One forward + backward pass of a scratch network or a torch twin on one batch: the inputs of
    every ReLU and every max-pool layer (float64 copies) and the parameter gradients."""
    relu_in, pool_in = [], []
    if isinstance(model, scratch.Sequential):
        a = x
        for layer in model.layers:
            (relu_in if isinstance(layer, scratch.ReLU) else pool_in if isinstance(layer, scratch.MaxPool2d)
             else []).append(a.astype(np.float64))
            a = layer.forward(a, training=True)
        model.backward(scratch.softmax_cross_entropy(a, y)[1])
        return relu_in, pool_in, {name: g.astype(np.float64) for name, _, g in model.parameters()}
    model.train()
    model.zero_grad()
    a = torch.from_numpy(x).to(next(model.parameters()).dtype)
    for layer in model:
        (relu_in if isinstance(layer, nn.ReLU) else pool_in if isinstance(layer, nn.MaxPool2d)
         else []).append(a.detach().double().numpy())
        a = layer(a)
    F.cross_entropy(a, torch.from_numpy(y)).backward()
    return relu_in, pool_in, {name: p.grad.double().numpy() for name, p in model.named_parameters()}


def _pool_windows(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H/2, W/2, 4): the 2×2 pooling windows, row-major inside each window."""
    n, c, h, w = a.shape
    h2, w2 = h // 2, w // 2
    return a[:, :, :2 * h2, :2 * w2].reshape(n, c, h2, 2, w2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h2, w2, 4)


def discrete_disagreements(model_a, model_b, x, y) -> dict[str, float]:
    """Where two networks with the same weights make different *discrete* choices on one batch, and the
    gradient gap that follows (``model_b`` is the reference).

    relu_flips: pre-activations with opposite signs (one lets the gradient through, the other not);
    pool_flips: 2×2 max-pool windows whose largest element differs (the gradient goes to another pixel),
    pool_flips_at_ties: those of them where model_b's two largest values are exactly equal;
    tied_windows: share of model_b's pool windows whose two largest values are exactly equal;
    gradient_gap: max over parameter tensors of |grad_a − grad_b|max / |grad_b|max.
    """
    relu_a, pool_a, grad_a = _trace(model_a, x, y)
    relu_b, pool_b, grad_b = _trace(model_b, x, y)
    top2 = [np.sort(_pool_windows(p), axis=-1)[..., -2:] for p in pool_b]
    tied = [(t[..., 0] == t[..., 1]) & (t[..., 1] > 0) for t in top2]
    moved = [_pool_windows(pa).argmax(-1) != _pool_windows(pb).argmax(-1) for pa, pb in zip(pool_a, pool_b)]
    return {"relu_flips": int(sum(((ra > 0) != (rb > 0)).sum() for ra, rb in zip(relu_a, relu_b))),
            "pool_flips": int(sum(m.sum() for m in moved)),
            "pool_flips_at_ties": int(sum((m & t).sum() for m, t in zip(moved, tied))),
            "tied_windows": float(np.mean([t.mean() for t in tied])) if tied else 0.0,
            "gradient_gap": max(_relative(g, grad_b[k]) for k, g in grad_a.items())}


@dataclass
class StepLog:
    """Lockstep training record. One History per network (unit "step"): train_loss has one entry per
    optimizer step, val_loss / val_acc one per checkpoint in ``val_step``, seconds is that network's own
    compute time, status "diverged" when its loss turned NaN/inf."""
    runs: dict[str, History] = field(default_factory=dict)
    val_step: list[int] = field(default_factory=list)          # steps (1-based) after which validation ran


def batch_plan(n: int, batch_size: int, steps: int, seed: int, *, torch_order: bool = False) -> list[np.ndarray]:
    """Index arrays for ``steps`` mini-batches, a fresh permutation of range(n) per epoch (the last
    batch of an epoch possibly shorter). NumPy's generator, as scratch.train_epoch draws them, or with
    ``torch_order`` torch.randperm on a seeded generator, as utils.train.fit draws them."""
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    plan: list[np.ndarray] = []
    while len(plan) < steps:
        order = torch.randperm(n, generator=gen).numpy() if torch_order else rng.permutation(n)
        plan += [order[i:i + batch_size] for i in range(0, n, batch_size)]
    return plan[:steps]


def train_lockstep(ctx, net, twins: dict[str, tuple[nn.Module, list[np.ndarray]]], x, y, val, *, lr: float,
                   plan: list[np.ndarray], eval_after: set[int], description: str) -> StepLog:
    """Train the NumPy network (scratch.Adam) and PyTorch twins (torch.optim.Adam) side by side.

    ``twins``: name -> (module, its batch plan); the NumPy network follows ``plan``. Every network uses
    the same one-cycle schedule (NumPy: scratch's closed form; torch: OneCycleLR stepped after each
    optimizer step, momentum not cycled, as in scratch). Losses are logged per step, validation runs
    after the (0-based) steps in ``eval_after``, and each network's compute time is summed separately.
    """
    total, names = len(plan), ["NumPy", *twins]
    log = StepLog({k: History(unit="step") for k in names})
    runs = log.runs
    opt = scratch.Adam(net.param_arrays(), lr=lr)
    schedule = OneCycleLR(lr, total_steps=total, pct_start=0.25)
    grads = net.grad_arrays()
    torch_opts = {}
    for name, (twin, _) in twins.items():
        o = torch.optim.Adam(twin.parameters(), lr=lr)
        torch_opts[name] = (o, torch.optim.lr_scheduler.OneCycleLR(o, max_lr=lr, total_steps=total, pct_start=0.25,
                                                                     cycle_momentum=False))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xv, yv = val
    with ctx.progress(total, description) as bar, np.errstate(all="ignore"):
        for step, idx in enumerate(plan):
            t0 = time.perf_counter()
            opt.lr = schedule.lr_at(step)
            loss, dlogits = scratch.softmax_cross_entropy(net.forward(x[idx], training=True), y[idx])
            net.backward(dlogits)
            opt.step(grads)
            runs["NumPy"].seconds += time.perf_counter() - t0
            runs["NumPy"].train_loss.append(float(loss))
            for name, (twin, twin_plan) in twins.items():
                t0 = time.perf_counter()
                o, sched = torch_opts[name]
                tidx = torch.from_numpy(twin_plan[step])
                twin.train()
                t_loss = F.cross_entropy(twin(xt[tidx].to(next(twin.parameters()).dtype)), yt[tidx])
                o.zero_grad(set_to_none=True)
                t_loss.backward()
                o.step()
                sched.step()
                runs[name].seconds += time.perf_counter() - t0
                runs[name].train_loss.append(t_loss.item())
            if not math.isfinite(loss):
                runs["NumPy"].status = "diverged"
                ctx.log(f"  [red]diverged[/] at step {step + 1}: the NumPy loss became NaN/inf")
                break
            if step in eval_after:
                log.val_step.append(step + 1)
                v_loss, v_acc = scratch.evaluate(net, xv, yv, batch_size=500)
                runs["NumPy"].val_loss.append(float(v_loss))
                runs["NumPy"].val_acc.append(float(v_acc))
                for name, (twin, _) in twins.items():
                    logits = predict_twin(twin, xv)
                    runs[name].val_loss.append(float(F.cross_entropy(logits, torch.from_numpy(yv))))
                    runs[name].val_acc.append(float((logits.argmax(1).numpy() == yv).mean()))
                ctx.log(f"  step {step + 1}/{total}  val acc " + ", ".join(f"{k} {v.val_acc[-1]:.3f}"
                                                                             for k, v in runs.items()))
            bar.advance(1, info=f"loss {loss:.4f}")
    return log


@torch.no_grad()
def predict_twin(twin: nn.Module, x: np.ndarray, batch_size: int = 1000) -> torch.Tensor:
    """A twin's float32 logits for NumPy images (cast to the twin's dtype), in eval mode."""
    twin.eval()
    dtype = next(twin.parameters()).dtype
    out = torch.cat([twin(torch.from_numpy(x[i:i + batch_size]).to(dtype)) for i in range(0, len(x), batch_size)])
    return out.float()


# ------------------------------------------------------------------------------------ 4.9: the product CNN
# Image datasets whose classes survive a left-right mirror (clothing, CIFAR objects; digits do not).
MIRROR_SYMMETRIC = ("fashion-mnist", "cifar10")


def steps_plan(n_train: int, batch_size: int, epochs: int, min_steps: int, min_batches: int = 8) -> tuple[int, int]:
    """(batch size, epochs) giving at least ``min_steps`` optimizer steps on ``n_train`` images.

    The batch size is clipped so an epoch has at least ``min_batches`` batches; the epoch count is
    then raised until the steps reach ``min_steps``. Small data sets thus get as many steps as large ones.
    """
    batch_size = max(1, min(batch_size, n_train // min_batches or 1))
    per_epoch = math.ceil(n_train / batch_size)
    return batch_size, max(epochs, math.ceil(min_steps / per_epoch))


def product_augmentation(*, flips: bool, shifts: bool, erasing: bool):
    """Whole-batch training augmentation for 4.9: random mirror images, random 2-pixel shifts and
    random erasing, each if asked for. Returns None when there is nothing to apply."""
    from utils.augment import compose, random_crop, random_erasing, random_hflip

    steps = []
    if shifts:
        steps.append(lambda x: random_crop(x, padding=2))
    if flips:
        steps.append(random_hflip)
    if erasing:
        steps.append(lambda x: random_erasing(x, p=0.5, area=(0.02, 0.15)))
    return compose(*steps) if steps else None


def inference_latency(model, x, batch_sizes=(1, 16, 256), *, warmup: int = 5, repeats: int = 30,
                      single_repeats: int | None = None, max_seconds: float = 3.0) -> dict[int, dict[str, float]]:
    """Median forward-pass time of ``model`` (eval mode, no autograd) per batch size (clipped to len(x)): ``warmup``
    untimed calls, then ``repeats`` timed ones (``single_repeats`` for batch 1), cut short after ``max_seconds`` once
    5 are timed; the median resists other processes' interruptions. Returns {batch: {"ms_per_batch",
    "ms_per_image", "images_per_second", "calls", "ms_per_image_q1", "ms_per_image_q3"}} (quartiles of the calls)."""
    model.eval()
    out = {}
    with torch.inference_mode():
        for bs in sorted({min(b, len(x)) for b in batch_sizes}):
            xb = x[:bs].contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x[:bs]
            for _ in range(warmup):
                model(xb)
            n = single_repeats if (bs == 1 and single_repeats) else repeats
            times = []
            start = time.perf_counter()
            for _ in range(n):
                t0 = time.perf_counter()
                model(xb)
                times.append(time.perf_counter() - t0)
                if len(times) >= 5 and time.perf_counter() - start > max_seconds:
                    break
            med = float(np.median(times))
            q1, q3 = (1000 * float(q) / len(xb) for q in np.percentile(times, (25, 75)))
            out[bs] = {"ms_per_batch": 1000 * med, "ms_per_image": 1000 * med / len(xb),
                       "images_per_second": len(xb) / med, "calls": len(times),
                       "ms_per_image_q1": q1, "ms_per_image_q3": q3}  # the middle half of the timed calls
    return out


def compare_intervals(name_a: str, acc_a: float, n_a: int, name_b: str, acc_b: float, n_b: int) -> Comparison:
    """Accuracies on test sets that cannot be paired: unpaired two-proportion test, method "binomial"."""
    from scipy.special import ndtr  # the normal CDF, without importing scipy.stats (a second per process)

    se = math.sqrt(acc_a * (1 - acc_a) / n_a + acc_b * (1 - acc_b) / n_b)
    diff = acc_a - acc_b
    p = float(2 * ndtr(-abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)  # two-sided: 2·Φ(−|z|)
    return Comparison(name_a, name_b, acc_a, acc_b, diff, Z95 * se, "binomial", min(n_a, n_b), True, p,
                      True, "test accuracy")


def comparison_sentence(c: Comparison, n_a: int | None = None, n_b: int | None = None) -> str:
    """Comparison.sentence(), but for the unpaired "binomial" method names the test and both intervals."""
    if c.method != "binomial":
        return c.sentence()
    (la, ha), (lb, hb) = accuracy_interval(c.value_a, n_a or c.n), accuracy_interval(c.value_b, n_b or c.n)
    evidence = (f"95% intervals {100 * la:.1f}–{100 * ha:.1f}% ({n_a or c.n} test images) and {100 * lb:.1f}–"
                f"{100 * hb:.1f}% ({n_b or c.n}); unpaired two-proportion test, Δ {c.shown_diff()} ± "
                f"{100 * c.half_width:.1f} points, p = {c.p_value:.2g}")
    if c.p_value is not None and c.p_value < ALPHA and c.winner:
        return f"{sentence_case(c.winner)} beats {c.loser} in test accuracy ({c.shown(c.value_a)} vs {c.shown(c.value_b)}; {evidence})."
    return (f"No measurable difference between {c.name_a} and {c.name_b} in test accuracy "
            f"({c.shown(c.value_a)} vs {c.shown(c.value_b)}; {evidence}).")


@dataclass
class Baseline:
    """Task 4.3's SmallCNN as a yardstick on this run's test set (see ``baseline_from_43``)."""
    available: bool = False
    note: str = ""                       # where the numbers came from, or why there are none
    mode: str = ""
    test_accuracy: float = float("nan")  # on this run's test images when paired, else 4.3's own
    test_examples: int = 0
    per_class: dict[str, float] = field(default_factory=dict)
    comparison: Comparison | None = None


def baseline_from_43(ctx, ds, correct: np.ndarray, name: str) -> Baseline:
    """Compare this run's predictions (``correct``, one bool per test image) with task 4.3's network.

    With 4.3's saved weights on the same dataset, its network predicts these very test images and
    McNemar's test decides (paired). Otherwise, when 4.3 ran on the same dataset, its recorded test
    accuracy is compared by an unpaired two-proportion test; on other data, or without a 4.3 run, there
    is no comparison and the note says why.
    """
    from models import SmallCNN
    from utils.report import compare_predictions
    from utils.train import predict

    prev = ctx.previous("4.3")
    if prev is None:
        return Baseline(note="task 4.3 has no finished run in this results folder")
    m = prev.metrics
    if prev.dataset != [ds.name]:
        return Baseline(note=f"task 4.3 ran on {', '.join(prev.dataset) or 'other data'}, not {ds.name}")
    c, h, _ = ds.shape
    state, model = prev.load_weights(), SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h)
    try:
        model.load_state_dict(state or {})
    except RuntimeError:
        state = None
    mode = str(m.get("mode", "?"))
    if state is not None:
        pred = predict(model.eval(), ds.x_test, ctx.cfg.eval_batch_size, ctx.device).argmax(1).numpy()
        true = ds.y_test.numpy()
        ok = pred == true
        per_class = {cls: float(ok[true == i].mean()) for i, cls in enumerate(ds.classes) if (true == i).any()}
        return Baseline(True, f"4.3's saved network ({mode} mode) re-evaluated on these {len(ok)} test images: "
                              f"{pct(ok.mean(), 2)} (4.3 recorded {pct(float(m.get('test_accuracy', 'nan')), 2)} "
                              f"on {m.get('test_examples')})", mode, float(ok.mean()), len(ok), per_class,
                        compare_predictions(name, correct, "4.3 SmallCNN", ok))
    acc, n = float(m.get("test_accuracy", float("nan"))), int(m.get("test_examples", 0))
    per_class = {cls: float(v.get("recall", float("nan"))) for cls, v in (m.get("per_class") or {}).items()}
    comparison = compare_intervals(name, float(correct.mean()), len(correct), "4.3 SmallCNN", acc, n) if n else None
    return Baseline(comparison is not None, f"4.3's weights were not usable, so its recorded test accuracy "
                                            f"({mode} mode) is compared, unpaired", mode, acc, n, per_class, comparison)


# ------------------------------------------------------------------------------------ 4.2: reading the probes
def probe_groups(batches: list[dict[str, float]]) -> dict[str, list[dict[str, float]]]:
    """Probe batches by what differed: nothing, only max-pool winners, or ReLU signs."""
    return {"none": [p for p in batches if not p["relu_flips"] and not p["pool_flips"]],
            "ties": [p for p in batches if not p["relu_flips"] and p["pool_flips"]],
            "relu": [p for p in batches if p["relu_flips"]]}


def largest_gap(batches) -> float:
    """The largest gradient gap of some probe batches (nan for none)."""
    return max((p["gradient_gap"] for p in batches), default=float("nan"))


def probe_text(batches: list[dict[str, float]]) -> str:
    """'6 of 8 batches differed only in max-pool winners (16 window(s)), gradient gap ≤ 2.6e-06; …'."""
    g = probe_groups(batches)
    what = {"none": ("made identical choices", None, ""), "ties": ("differed only in max-pool winners", "pool_flips",
            "window(s)"), "relu": ("had ReLU sign flips", "relu_flips", "unit(s)")}
    return "; ".join(f"{len(g[k])} of {len(batches)} batches {text}"
                     + (f" ({int(sum(p[key] for p in g[k]))} {noun})" if key else "")
                     + f", gradient gap ≤ {largest_gap(g[k]):.1e}" for k, (text, key, noun) in what.items() if g[k])
