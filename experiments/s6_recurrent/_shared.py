"""Helpers several section-6 tasks use: names and colours, the gradient probes (6.2, 6.3), the
sequence-sum task and its training recipe (6.4–6.6), and the comparison rule applied to several
models at once (a leader, the models it beats and those it ties with)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from models import RecurrentRegressor, count_parameters
from utils.history import History
from utils.report import Comparison, bootstrap_interval, compare_errors, compare_seeds, plural

CELLS = ("rnn", "lstm", "gru")
NAMES = {"rnn": "vanilla RNN", "lstm": "LSTM", "gru": "GRU", "rnn_matched": "wide vanilla RNN",
         "lstm_forget_bias_1": "LSTM, forget-gate bias 1", "moving_average": "moving average",
         "last_value": "last value", "bidirectional": "bidirectional RNN", "unidirectional": "unidirectional RNN"}
COLORS = {"rnn": "#1f77b4", "lstm": "#d62728", "gru": "#2ca02c", "rnn_matched": "#9467bd",
          "lstm_forget_bias_1": "#ff7f0e", "moving_average": "#8c564b", "last_value": "#7f7f7f",
          "bidirectional": "#d62728", "unidirectional": "#1f77b4"}


def seeds_text(seeds) -> str:
    return plural(len(seeds), "seed")


def join_names(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# ------------------------------------------------------------------ gradient probes (6.2, 6.3)

def spectral_radius(matrix) -> float:
    """Largest eigenvalue modulus of a square matrix (not its norm: non-normal matrices differ)."""
    return float(np.abs(np.linalg.eigvals(np.asarray(matrix, dtype=np.float64))).max())


def input_gradient_norms(model, x, readout, *, per_sequence: bool = False):
    """‖∂(readout · h_T)/∂x_t‖ for each step t: (T,) averaged over the batch, or (B, T).

    This is the gradient BPTT carries from the final state back to step t. The loss is a sum
    over the batch and each sequence's state depends on its own input only, so x.grad[b] is
    sequence b's own gradient. ``model`` has ``encode`` (models.py).
    """
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        _, summary = model.encode(x)          # (B, H)
        (summary @ readout).sum().backward()
    model.zero_grad(set_to_none=True)
    norms = x.grad.norm(dim=2)                # (B, T, D) -> (B, T)
    return norms.numpy() if per_sequence else norms.mean(dim=0).numpy()


def per_step_factor(norms) -> float:
    """exp(slope) of log ‖g_t‖ against steps back from the end: what one step back in time
    multiplies the gradient by (< 1 vanishing, > 1 exploding), fitted over the whole sequence."""
    back = np.arange(len(norms))[::-1]  # T-1 .. 0 steps before the last
    return float(np.exp(np.polyfit(back, np.log(np.maximum(norms, 1e-300)), 1)[0]))


# ------------------------------------------------------------------ the sequence-sum task (6.4–6.6)

def sum_sequences(n: int, steps: int, generator):
    """Sequence-sum task: x_t ~ U(-1, 1), target Σ_t x_t / √T (variance 1/3 at every length).

    Returns x (n, steps, 1) and y (n, 1) float32 tensors.
    """
    x = torch.rand(n, steps, 1, generator=generator) * 2 - 1
    return x, x.sum(dim=1) / steps ** 0.5


SUM_TARGET_VARIANCE = 1 / 3   # MSE of always predicting 0
SUM_THRESHOLD = 0.01          # "converged": MSE below 3% of the target variance
SUM_TEST = 1000               # test sequences per (seed, length)


def train_recurrent(ctx, model, train, val, *, epochs: int, lr: float, seed: int, regression: bool,
                    description: str, patience: int | None = None, batch_size: int | None = None) -> History:
    """Adam + gradient clipping (norm 1) through the shared loop; the per-epoch lines stay quiet."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    kwargs = {"loss_fn": F.mse_loss, "accuracy": False} if regression else {}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    history = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, clip_grad_norm=1.0, seed=seed,
                      patience=patience, description=description, log=None, **kwargs)
    if history.diverged:
        ctx.log(f"  [red]{description}: diverged[/] at epoch {history.stopped_epoch}")
    return history


@dataclass
class SumRun:
    """One model trained on the sequence-sum task at one (seed, length)."""
    history: History
    test_mse: float
    test_mse_interval: list[float]   # paired-bootstrap 95% interval of the mean over the test sequences
    params: int
    epochs_to_threshold: int | None  # first epoch with validation MSE below SUM_THRESHOLD

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean(self.history.epoch_seconds)) if self.history.epoch_seconds else float("nan")

    def seconds_to_threshold(self) -> float | None:
        e = self.epochs_to_threshold
        return float(np.sum(self.history.epoch_seconds[:e])) if e is not None else None


def run_sum_task(ctx, cell: str, steps: int, seed: int, *, hidden: int, n_train: int, epochs: int,
                 lr: float = 3e-3) -> tuple[SumRun, np.ndarray]:
    """Train one RecurrentRegressor on the sequence-sum task; the data depend only on (seed, steps),
    so every model of one comparison sees the same test sequences. Returns the run and its
    per-test-sequence squared errors (for the paired comparison)."""
    gen = torch.Generator().manual_seed(1000 * seed + steps)
    train = sum_sequences(n_train, steps, gen)
    val = sum_sequences(512, steps, gen)
    x_test, y_test = sum_sequences(SUM_TEST, steps, gen)
    torch.manual_seed(seed)
    model = RecurrentRegressor(1, hidden, cell=cell)
    history = train_recurrent(ctx, model, train, val, epochs=epochs, lr=lr, seed=seed, regression=True,
                              description=f"{cell} H={hidden} T={steps} seed {seed}")
    model.eval()
    with torch.no_grad():
        errors = ((model(x_test) - y_test) ** 2).squeeze(1).double().numpy()
    finite = bool(np.isfinite(errors).all())
    below = [i + 1 for i, v in enumerate(history.val_loss) if v < SUM_THRESHOLD]
    run = SumRun(history, float(errors.mean()) if finite else float("nan"),
                 list(bootstrap_interval(errors, seed=seed)) if finite else [float("nan")] * 2,
                 count_parameters(model), below[0] if below else None)
    return run, errors


# ------------------------------------------------------------------ the rule for several models

def compare_models(name_a: str, seeds_a, errors_a, name_b: str, seeds_b, errors_b, *,
                   metric: str = "test MSE", unit: str = "test sequences", block: int = 1) -> Comparison:
    """Lower-is-better comparison by the rule: seed spread with ≥ 2 seeds per side, else a paired
    bootstrap over the one seed's per-example errors (same test examples for both; ``block`` > 1
    resamples moving blocks, for errors correlated along a series)."""
    if len(seeds_a) > 1 and len(seeds_b) > 1:
        return compare_seeds(name_a, seeds_a, name_b, seeds_b, higher_is_better=False, percent=False,
                             metric=metric)
    return compare_errors(name_a, errors_a, name_b, errors_b, metric=metric, unit=unit, block=block)


def compare_times(name_a: str, seconds_a, name_b: str, seconds_b, *, per: str = "epoch") -> Comparison:
    """Repeated wall-clock timings of two models (per epoch, or per timed batch): a difference counts
    only when it exceeds the sum of the two standard deviations (the seed rule, timings as repeats).
    With fewer than two timings a side there is no spread, hence no verdict (an infinite interval)."""
    if len(seconds_a) < 2 or len(seconds_b) < 2:
        ma, mb = float(np.mean(seconds_a)), float(np.mean(seconds_b))
        return Comparison(name_a, name_b, ma, mb, ma - mb, float("inf"), "seeds", min(len(seconds_a), len(seconds_b)),
                          False, None, False, f"seconds per {per}")
    return compare_seeds(name_a, list(seconds_a), name_b, list(seconds_b), higher_is_better=False,
                         percent=False, metric=f"seconds per {per}")


def time_phrase(c: Comparison) -> str:
    """'LSTM is faster per epoch than GRU (LSTM 0.045 s, GRU 0.076 s per epoch; spread ±0.004 s over 30 repeats)'."""
    per = c.metric.replace("seconds ", "")
    ms = max(c.value_a, c.value_b) < 0.1
    def fmt(x):
        return f"{1000 * x:.1f} ms" if ms else f"{x:.3f} s"
    values = f"{c.name_a} {fmt(c.value_a)}, {c.name_b} {fmt(c.value_b)} {per}"
    if not math.isfinite(c.half_width):
        return f"{c.name_a} and {c.name_b} cannot be ranked by time ({values}; one timing each, so no spread was measured)"
    evidence = f"spread ±{fmt(c.half_width)} over {c.n} repeats"
    if c.winner is None:
        return f"{c.name_a} and {c.name_b} take the same time {per} within the spread ({values}; {evidence})"
    return f"{c.winner} is faster {per} than {c.loser} ({values}; {evidence})"


@dataclass
class Ranking:
    """The best-valued model against each of the others, by the rule."""
    leader: str                                          # key of the best value
    names: dict[str, str]                                # key -> display name
    versus: dict[str, Comparison] = field(default_factory=dict)   # other key -> leader vs it
    excluded: list[str] = field(default_factory=list)    # keys without a finite value (diverged)

    @property
    def tied(self) -> list[str]:
        return [k for k, c in self.versus.items() if c.winner is None]

    @property
    def beaten(self) -> list[str]:
        return [k for k, c in self.versus.items() if c.winner is not None]

    @property
    def best(self) -> str | None:
        """The leader when it beats every other model, else None (a tie at the top)."""
        return self.leader if not self.tied else None

    def verdict(self) -> str:
        n = self.names
        lead = n[self.leader]
        if not self.versus:
            return f"{lead} (only finite result)"
        if not self.tied:
            return f"{lead} beats {join_names([n[k] for k in self.beaten])}"
        top = " ≈ ".join([lead] + [n[k] for k in self.tied]) + " (tie)"
        if not self.beaten:
            return top
        return f"{top}; {'both' if len(self.tied) == 1 else 'all'} beat {join_names([n[k] for k in self.beaten])}"

    def sentences(self) -> list[str]:
        return [c.sentence() for c in self.versus.values()]


def rank(values: dict[str, float], names: dict[str, str], compare) -> Ranking:
    """Leader = lowest finite value; ``compare(a, b)`` -> Comparison of key a against key b."""
    finite = [k for k, v in values.items() if v is not None and math.isfinite(v)]
    if not finite:
        raise ValueError("no model has a finite result to rank")
    leader = min(finite, key=values.get)
    return Ranking(leader, {k: names[k] for k in values}, {k: compare(leader, k) for k in finite if k != leader},
                   [k for k in values if k not in finite])


# ------------------------------------------------------------------ figures

def plot_band(ax, curves, label: str, color: str, *, x=None, linestyle="-", diverged=False):
    """Mean curve over seeds with the min–max range shaded (several seeds only); curves are cut to
    the shortest. ``x`` (per curve) replaces the epoch axis; a diverged run ends in ×."""
    from matplotlib.ticker import MaxNLocator

    from utils.plotting import mark_diverged

    n = min(len(c) for c in curves)
    if n == 0:
        return
    arr = np.array([c[:n] for c in curves], dtype=float)
    xs = np.mean([np.asarray(xc[:n]) for xc in x], axis=0) if x is not None else np.arange(1, n + 1)
    mean = arr.mean(0)
    ax.plot(xs, mean, color=color, label=label, linestyle=linestyle)
    if x is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(arr) > 1:
        ax.fill_between(xs, arr.min(0), arr.max(0), color=color, alpha=0.18, linewidth=0)
    if diverged:
        mark_diverged(ax, mean, x=xs, color=color)


# ------------------------------------------------------------------ where the time goes (6.4, 6.6)

GATE_BLOCKS = {"rnn": 1, "gru": 3, "lstm": 4}   # weight blocks per step: the arithmetic per step scales with these


def autograd_graph(cell: str, hidden: int, steps: int, batch: int = 128) -> tuple[int, bool]:
    """(autograd nodes of one forward pass of a RecurrentRegressor on (batch, steps, 1) inputs, whether
    PyTorch ran the recurrence as one fused kernel). Each node is one backward operation: a per-step
    implementation adds a handful per time step; a fused one (oneDNN/cuDNN) adds one for the sequence."""
    torch.manual_seed(0)
    model = RecurrentRegressor(1, hidden, cell=cell)
    out = model(torch.rand(batch, steps, 1)).sum()
    seen, stack = set(), [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        stack.extend(g for g, _ in fn.next_functions)
    fused = any(k in type(fn).__name__.lower() for fn in seen for k in ("mkldnn", "cudnn", "rnnlayer"))
    return len(seen), fused


def batch_seconds(cell: str, hidden: int, steps: int, repeats: int, batch: int = 128) -> list[float]:
    """Wall-clock seconds of one training step (forward, backward, Adam) on a (batch, steps, 1) batch,
    ``repeats`` times after one warm-up step."""
    import time

    torch.manual_seed(0)
    model = RecurrentRegressor(1, hidden, cell=cell)
    opt = torch.optim.Adam(model.parameters())
    x, y = torch.rand(batch, steps, 1), torch.rand(batch, 1)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        loss = F.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return times
