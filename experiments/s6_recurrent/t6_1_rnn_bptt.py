"""6.1 RNN from scratch with backpropagation through time (NumPy) on the echo task.

A tanh RNN built from the NumPy package (`scratch.RNN`, `scratch.Linear`) reads random one-hot
symbols and must output, at every step, the symbol it saw `delay` steps earlier. Its BPTT
gradients are checked against finite differences, it is trained with Adam, and its hidden
states are read back: which past symbols can a linear read-out still recover from h_t?
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from scratch.gradcheck import numerical_gradient, relative_error
from scratch import RNN, Linear
from scratch.losses import softmax_cross_entropy
from scratch.optim import Adam
from utils.history import History
from utils.plotting import legend_outside, mark_diverged, plt
from utils.report import Comparison, compare_predictions, pct, table

BUDGET = {"tiny": {"iterations": 30, "test_sequences": 200},
          "quick": {"iterations": 400, "test_sequences": 1000},
          "hybrid": {"iterations": 1500, "test_sequences": 1000},
          "full": {"iterations": 3000, "test_sequences": 1000}}
VOCAB, STEPS, DELAY, HIDDEN, BATCH = 4, 16, 5, 32, 64
LR, MAX_NORM, TOLERANCE = 1e-2, 5.0, 1e-6


def echo_sequences(rng, n: int, steps: int, vocab: int, delay: int):
    """The echo task: random symbols, and the target at step t is the symbol seen at t - delay.

    Returns one-hot inputs (n, steps, vocab) float64, the symbols (n, steps) and the targets
    (n, steps - delay) for the steps t = delay .. steps-1 (earlier steps have nothing to echo).
    """
    tokens = rng.integers(0, vocab, (n, steps))
    return np.eye(vocab)[tokens], tokens, tokens[:, :steps - delay]


class ScratchEchoRNN:
    """NumPy tanh RNN with a per-step linear read-out, trained by hand-written BPTT.

    x (N, T, V) one-hot -> h (N, T, H) -> logits (N, T - delay, V) for the steps that have a
    target; the loss is softmax cross-entropy averaged over those steps. Only the layers' public
    API is used (forward, backward, params, grads), whatever their weight layout.
    """

    def __init__(self, vocab: int, hidden: int, delay: int, rng=None, dtype=np.float64):
        self.delay = delay
        self.rnn = RNN(vocab, hidden, return_sequences=True, rng=rng, dtype=dtype)
        self.out = Linear(hidden, vocab, rng=rng, dtype=dtype)
        self.layers = {"rnn": self.rnn, "out": self.out}

    def named_params(self):
        return [(f"{ln}.{pn}", p) for ln, layer in self.layers.items() for pn, p in layer.params.items()]

    def named_grads(self):
        return [(f"{ln}.{pn}", layer.grads[pn]) for ln, layer in self.layers.items() for pn in layer.params]

    def forward(self, x):
        """Hidden states (N, T, H) and logits (N, T - delay, V)."""
        h = self.rnn.forward(x)
        return h, self.out.forward(h[:, self.delay:])

    def loss(self, x, targets) -> float:
        _, logits = self.forward(x)
        return softmax_cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))[0]

    def loss_and_backward(self, x, targets):
        """Forward, loss, and BPTT: fills every layer's .grads; returns (loss, logits)."""
        h, logits = self.forward(x)
        n, steps, vocab = logits.shape
        loss, dlogits = softmax_cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        dh = np.zeros_like(h)  # steps before `delay` feed no output: only later steps send gradient back
        dh[:, self.delay:] = self.out.backward(dlogits.reshape(n, steps, vocab))
        self.rnn.backward(dh)  # backpropagation through time over all T steps
        return loss, logits


def clip_global_norm(grads, max_norm: float) -> float:
    """Scale the gradient arrays in place so their joint L2 norm is at most max_norm; return the norm before."""
    norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads)))
    if norm > max_norm:
        for g in grads:
            g *= max_norm / norm
    return norm


def bptt_gradient_check(seed: int = 0) -> dict[str, float]:
    """Relative error of every BPTT gradient of a small float64 ScratchEchoRNN vs central differences."""
    rng = np.random.default_rng(seed)
    model = ScratchEchoRNN(vocab=4, hidden=6, delay=2, rng=rng, dtype=np.float64)
    x, _, targets = echo_sequences(rng, 3, 7, 4, 2)
    model.loss_and_backward(x, targets)
    analytic = {name: g.copy() for name, g in model.named_grads()}
    # 4th-order differences with h = 1e-3: truncation ~h⁴ and round-off ~1e-16/h both far below 1e-6
    return {name: relative_error(analytic[name],
                                 numerical_gradient(lambda _: model.loss(x, targets), param, eps=1e-3, order=4))
            for name, param in model.named_params()}


def lag_decoding(h, x, tokens, lags):
    """For each lag: is the symbol `lag` steps back recovered by a least-squares linear read-out of
    h_t fitted on the first half of the sequences? Returns {lag: correctness (n/2, T - max lag)}
    on the second half, over the steps every lag can be scored on (so the lags pair up)."""
    n, steps, hidden = h.shape
    half, last = n // 2, max(lags)
    out = {}
    for lag in lags:
        feats = np.concatenate([h[:, lag:], np.ones_like(h[:, lag:, :1])], axis=2)  # (N, T-lag, H+1)
        onehot = x[:, :steps - lag]                                                 # the symbol lag steps back
        w = np.linalg.lstsq(feats[:half].reshape(-1, hidden + 1), onehot[:half].reshape(-1, x.shape[2]),
                            rcond=None)[0]
        pred = (feats[half:] @ w).argmax(-1)
        correct = pred == tokens[half:, :steps - lag]
        out[lag] = correct[:, last - lag:]   # steps t = last .. T-1 for every lag
    return out


@dataclass
class Result:
    gradient_errors: dict[str, float]
    history: History                   # per iteration: training batch loss and echo accuracy
    gradient_norms: list[float]        # joint gradient norm before clipping, per iteration
    final_loss: float                  # held-out
    final_accuracy: float
    test_sequences: int
    lag_accuracy: dict[int, float]
    lag_comparison: Comparison         # DELAY steps back vs the longest lag, on the same steps
    scored_steps: int                  # steps per sequence the lag comparison scores
    hidden_one: np.ndarray             # (T, H) hidden states of one held-out sequence
    tokens_one: list[int]
    predicted_one: list[int]           # (T - delay) predicted symbols


def measure(ctx) -> Result:
    b = ctx.budget
    ctx.use_dataset("synthetic", note=f"echo task: random one-hot sequences of {VOCAB} symbols, length {STEPS}; "
                                      f"the target at step t is the input at t-{DELAY}")
    errors = bptt_gradient_check(ctx.seed)
    ctx.log(f"  BPTT gradient check (float64): max relative error {max(errors.values()):.2e}")

    rng = np.random.default_rng(ctx.seed)
    model = ScratchEchoRNN(VOCAB, HIDDEN, DELAY, rng=rng)
    opt = Adam([p for _, p in model.named_params()], lr=LR)
    hist, norms = History(unit="step"), []
    start = time.perf_counter()
    with ctx.progress(b.iterations, "BPTT training") as bar:
        for it in range(b.iterations):
            t0 = time.perf_counter()
            x, _, targets = echo_sequences(rng, BATCH, STEPS, VOCAB, DELAY)  # fresh sequences every step
            loss, logits = model.loss_and_backward(x, targets)
            if not np.isfinite(loss):
                hist.status = "diverged"
                hist.train_loss.append(float("nan"))
                ctx.log(f"  [red]diverged[/] at iteration {it + 1}")
                break
            grads = [g for _, g in model.named_grads()]
            norms.append(clip_global_norm(grads, MAX_NORM))
            opt.step(grads)
            hist.train_loss.append(float(loss))
            hist.train_acc.append(float((logits.argmax(-1) == targets).mean()))
            hist.epoch_seconds.append(time.perf_counter() - t0)
            bar.advance(1, info=f"loss {loss:.3f}")
    hist.seconds = time.perf_counter() - start
    hist.stopped_epoch = len(hist.train_loss)

    x_test, tok_test, y_test = echo_sequences(rng, b.test_sequences, STEPS, VOCAB, DELAY)
    h_test, logits_test = model.forward(x_test)
    final_loss = float(model.loss(x_test, y_test))
    final_acc = float((logits_test.argmax(-1) == y_test).mean())
    lags = list(range(0, DELAY + 3))
    correct = lag_decoding(h_test, x_test, tok_test, lags)
    lag_acc = {lag: float(c.mean()) for lag, c in correct.items()}
    last = max(lags)
    comparison = compare_predictions(f"{DELAY} steps back", correct[DELAY], f"{last} steps back", correct[last],
                                     metric="decoding accuracy", unit="scored steps")
    ctx.record(max_relative_error=max(errors.values()), gradient_check_errors=errors,
               gradient_check_passed=max(errors.values()) < TOLERANCE, gradient_check_tolerance=TOLERANCE,
               final_loss=final_loss, final_echo_accuracy=final_acc, chance_loss=float(np.log(VOCAB)),
               first_batch_loss=hist.train_loss[0] if hist.train_loss else None, train_status=hist.status,
               iterations=hist.epochs, train_seconds=hist.seconds, test_sequences=b.test_sequences,
               lag_decoding_accuracy={str(k): v for k, v in lag_acc.items()}, lag_verdict=comparison.verdict(),
               delay=DELAY, sequence_length=STEPS, vocab=VOCAB, hidden_size=HIDDEN,
               max_gradient_norm_before_clip=max(norms) if norms else None,
               clipped_fraction=float(np.mean(np.array(norms) > MAX_NORM)) if norms else 0.0)
    return Result(errors, hist, norms, final_loss, final_acc, b.test_sequences, lag_acc, comparison,
                  STEPS - last, h_test[0], tok_test[0].tolist(), logits_test[0].argmax(-1).tolist())


def draw(ctx, r: Result) -> None:
    h = r.history
    chance = float(np.log(VOCAB))
    fig, axes = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    its = np.arange(1, h.epochs + 1)
    axes[0].plot(its, h.train_loss, color="#1f77b4", alpha=0.45, label="training batch loss")
    if h.epochs >= 20:
        k = 20
        axes[0].plot(its[k - 1:], np.convolve(h.train_loss, np.ones(k) / k, "valid"), color="#1f77b4",
                     label=f"{k}-iteration mean")
    if h.diverged:
        mark_diverged(axes[0], h.train_loss, color="#1f77b4", label="diverged")
    axes[0].axhline(chance, color="0.4", linestyle=":", label=f"chance ln {VOCAB} = {chance:.2f}")
    axes[0].axhline(r.final_loss, color="#d62728", linestyle="--", label=f"held-out loss {r.final_loss:.4f}")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("cross-entropy (nats, log scale)")
    axes[0].set_title(f"Synthetic echo task (delay {DELAY}): NumPy RNN trained by BPTT + Adam, {ctx.mode} mode"
                      + (" — DIVERGED" if h.diverged else ""))
    legend_outside(axes[0])
    axes[1].plot(np.arange(1, len(h.train_acc) + 1), h.train_acc, color="#2ca02c", alpha=0.6, label="training batch")
    axes[1].axhline(1 / VOCAB, color="0.4", linestyle=":", label=f"chance {1 / VOCAB:.2f}")
    axes[1].axhline(r.final_accuracy, color="#d62728", linestyle="--",
                    label=f"held-out {pct(r.final_accuracy)} ({r.test_sequences} sequences)")
    axes[1].set_ylim(0, 1.02)
    axes[1].set_xlabel(f"training iteration (batch of {BATCH} sequences)")
    axes[1].set_ylabel("echo accuracy (fraction of steps)")
    axes[1].set_title("Accuracy of the echoed symbol")
    legend_outside(axes[1])
    ctx.save_figure(fig, "loss_curve")

    order = np.argsort(r.hidden_one.var(axis=0))[::-1]  # most active units on top
    fig, ax = plt.subplots(figsize=(8, 6))
    im = ax.imshow(r.hidden_one[:, order].T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    tok, pred = r.tokens_one, r.predicted_one
    ticks = [f"{tok[t]}" + (f"\n{tok[t - DELAY]}/{pred[t - DELAY]}" if t >= DELAY else "\n–") for t in range(STEPS)]
    ax.set_xticks(range(STEPS), ticks)
    ax.set_xlabel(f"time step: input symbol (top line), target / predicted symbol (bottom line)\n"
                  f"(target = the input {DELAY} steps back; '–': no target yet)")
    ax.set_ylabel(f"hidden unit (of {HIDDEN}, most variable first)")
    ax.set_title(f"Hidden state h_t of the trained NumPy RNN on one held-out echo sequence ({ctx.mode} mode)")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="activation (tanh, -1 to 1)")
    ctx.save_figure(fig, "hidden_states")


def write_up(r: Result) -> str:
    h = r.history
    max_err = max(r.gradient_errors.values())
    passed = max_err < TOLERANCE
    norms = np.asarray(r.gradient_norms)
    first = h.train_loss[0] if h.train_loss else float("nan")
    trend = "fell" if np.isfinite(r.final_loss) and r.final_loss < first else "did not fall"
    c = r.lag_comparison
    last = max(r.lag_accuracy)
    if c.winner is None:
        memory = (f"The hidden state holds the symbol {last} steps back as well as the one {DELAY} steps back, "
                  f"which the task trains for: {c.sentence()}")
    elif c.winner == c.name_a:
        memory = (f"Decodability fades past the delay the task trains for: {c.sentence()} The network keeps what the "
                  f"loss asks for and lets older symbols wash out.")
    else:
        memory = f"Older symbols are decoded better than the trained delay: {c.sentence()}"
    rows = [(lag, pct(a)) for lag, a in r.lag_accuracy.items()]
    return f"""
A tanh RNN ({VOCAB} inputs → {HIDDEN} hidden → {VOCAB} outputs per step) written with the NumPy package
(`scratch.RNN`, `scratch.Linear`, `scratch.losses.softmax_cross_entropy`), trained by hand-written
backpropagation through time with Adam (lr {LR}, gradient norm clipped at {MAX_NORM}) on the echo task: output the
symbol seen {DELAY} steps earlier, sequences of {STEPS} symbols.

## Gradient check
BPTT gradients of every parameter against 4th-order central differences (float64): maximum relative error
**{max_err:.2e}** — {"below" if passed else "ABOVE"} the tolerance of {TOLERANCE:.0e}.

{table(["parameter", "relative error"], [(k, f"{v:.2e}") for k, v in r.gradient_errors.items()])}

## Training (`loss_curve.png`)
Over {h.epochs} iterations ({h.seconds:.1f} s{", diverged" if h.diverged else ""}) the loss {trend} from
{first:.3f} (chance ln {VOCAB} = {np.log(VOCAB):.3f}) to a held-out loss of **{r.final_loss:.4f}**, with
{pct(r.final_accuracy)} of echoed symbols correct on {r.test_sequences} new sequences
({r.test_sequences * (STEPS - DELAY):,} scored steps; chance {pct(1 / VOCAB)}). The gradient norm before clipping
peaked at {norms.max() if norms.size else float('nan'):.2f}; {pct(float((norms > MAX_NORM).mean()) if norms.size else 0.0)}
of the steps were clipped.

## Hidden states (`hidden_states.png`)
A linear read-out fitted on half of the held-out hidden states recovers the symbol from `lag` steps back on
the other half ({r.test_sequences // 2} sequences × the {r.scored_steps} steps where every lag can be scored) with:

{table(["lag (steps back)", "accuracy"], rows)}

{memory}
"""
