"""7.5 Five sequence models on one task: sequences of N(0, 1) numbers, label = (sum > 0), split
70/15/15. RNN, LSTM (LayerNorm on its states) and GRU (2 layers, hidden 64, dropout 0.3, last hidden
state); LSTM + 4-head self-attention (residual + LayerNorm, mean pooling); a Transformer (d_model 64,
CLS token, sinusoidal positions, 2 blocks, 4 heads, d_ff 256, GELU, AdamW with cosine decay). Plus
the RNN read out by attention pooling over all steps instead of its last state."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from experiments.s7_attention._shared import AdditiveAttention, TransformerClassifier, correct_and_confidence
from models import count_parameters
from utils.history import History
from utils.plotting import legend_outside, plt
from utils.report import Comparison, compare_predictions, pct, table

BUDGET = {"tiny": {"sequences": 240, "length": 50, "epochs": 2, "patience": 10},
          "quick": {"sequences": 2000, "length": 50, "epochs": 6, "patience": 10},
          "hybrid": {"sequences": 5000, "length": 50, "epochs": 30, "patience": 10},
          "full": {"sequences": 5000, "length": 50, "epochs": 30, "patience": 10}}
HIDDEN, LAYERS, DROPOUT, BATCH = 64, 2, 0.3, 64
NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "lstm_attention": "LSTM + attention",
         "transformer": "Transformer", "rnn_attention_pool": "RNN, attention pooling"}
MAIN = ("rnn", "lstm", "gru", "lstm_attention", "transformer")


class RecurrentNet(nn.Module):
    """2-layer RNN / LSTM / GRU over (B, T) numbers; read-out: last state, additive attention pooling
    over all steps, or 4-head self-attention (residual + LayerNorm) then the mean over steps."""

    def __init__(self, cell: str, readout: str = "last", layer_norm: bool = False):
        super().__init__()
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](1, HIDDEN, num_layers=LAYERS, batch_first=True,
                                                                         dropout=DROPOUT)
        self.norm = nn.LayerNorm(HIDDEN) if layer_norm or readout == "self_attention" else nn.Identity()
        self.readout = readout
        if readout == "attention":
            self.pool = AdditiveAttention(HIDDEN, HIDDEN)
        elif readout == "self_attention":
            self.attn = nn.MultiheadAttention(HIDDEN, 4, dropout=0.1, batch_first=True)
        self.drop = nn.Dropout(DROPOUT)
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, x):
        states, _ = self.rnn(x.unsqueeze(-1))
        if self.readout == "last":
            return self.head(self.drop(self.norm(states[:, -1])))
        if self.readout == "attention":
            mask = torch.ones(states.shape[:2], dtype=torch.bool)
            return self.head(self.drop(self.pool(states, states[:, -1], mask)[0]))
        a, _ = self.attn(states, states, states, need_weights=False)
        return self.head(self.drop(self.norm(states + a).mean(1)))


def build(name: str) -> nn.Module:
    if name == "transformer":
        return TransformerClassifier(d_model=64, heads=4, layers=2, d_ff=256, max_len=64, in_features=1,
                                     dropout=0.1, pooling="cls")
    return {"rnn": lambda: RecurrentNet("rnn"), "lstm": lambda: RecurrentNet("lstm", layer_norm=True),
            "gru": lambda: RecurrentNet("gru"), "lstm_attention": lambda: RecurrentNet("lstm", "self_attention"),
            "rnn_attention_pool": lambda: RecurrentNet("rnn", "attention")}[name]()


class _Feature(nn.Module):  # the Transformer reads (B, T, 1)
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.unsqueeze(-1))


@dataclass
class Result:
    sequences: int
    length: int
    test_examples: int
    histories: dict[str, History]
    parameters: dict[str, int]
    test_accuracy: dict[str, float]
    comparison: Comparison              # best vs runner-up of the five
    pooling: Comparison                 # RNN attention pooling vs last state
    lowest: Comparison | None = None    # best vs the lowest of the five


def measure(ctx) -> Result:
    b = ctx.budget
    ctx.use_dataset("synthetic", note=f"{b.sequences} sequences of {b.length} N(0,1) numbers, label = sum > 0")
    g = torch.Generator().manual_seed(ctx.seed)
    x = torch.randn(b.sequences, b.length, generator=g)
    y = (x.sum(1) > 0).long()
    n_tr, n_val = int(0.7 * len(x)), int(0.15 * len(x))
    tr, va, te = slice(0, n_tr), slice(n_tr, n_tr + n_val), slice(n_tr + n_val, None)

    def train_one(name):
        torch.manual_seed(ctx.seed)
        model = build(name)
        model = _Feature(model) if name == "transformer" else model
        if name == "transformer":
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=b.epochs)
            kwargs = {"scheduler": sched}
        else:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=5, factor=0.5)
            kwargs = {"on_epoch_end": lambda _e, _m, res, p=plateau: p.step(res.val_loss[-1])}
        h = ctx.fit(model, (x[tr], y[tr]), (x[va], y[va]), epochs=b.epochs, optimizer=opt, batch_size=BATCH,
                    patience=b.patience, clip_grad_norm=1.0, description=NAMES[name], **kwargs)
        return h, count_parameters(model), correct_and_confidence(model, x[te], y[te])[0]

    names = (*MAIN, "rnn_attention_pool")
    runs = dict(zip(names, ctx.map(train_one, names, "models",
                                   info=lambda name, out: f"{NAMES[name]}: {out[2].mean():.3f}")))
    hist, params, correct = ({k: v[i] for k, v in runs.items()} for i in range(3))
    acc = {k: float(v.mean()) for k, v in correct.items()}
    ranked = sorted(MAIN, key=lambda k: -acc[k])
    comparison = compare_predictions(NAMES[ranked[0]], correct[ranked[0]], NAMES[ranked[1]], correct[ranked[1]])
    pooling = compare_predictions(NAMES["rnn_attention_pool"], correct["rnn_attention_pool"], NAMES["rnn"],
                                  correct["rnn"])
    lowest = compare_predictions(NAMES[ranked[0]], correct[ranked[0]], NAMES[ranked[-1]], correct[ranked[-1]])
    ctx.record(test_accuracy=acc, test_examples=int(len(y[te])), parameters=params,
               best_val_accuracy={k: h.best("val_acc", highest=True) for k, h in hist.items()},
               epochs={k: h.epochs for k, h in hist.items()}, verdict=comparison.verdict(),
               pooling_verdict=pooling.verdict(), lowest_verdict=lowest.verdict())
    return Result(b.sequences, b.length, int(len(y[te])), hist, params, acc, comparison, pooling, lowest)


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), constrained_layout=True)
    colors = dict(zip(NAMES, ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:cyan")))
    for k, h in r.histories.items():
        style, c = (":" if k == "rnn_attention_pool" else "-"), colors[k]
        axes[0, 0].plot(range(1, h.epochs + 1), h.train_loss, style, color=c, label=NAMES[k])
        axes[0, 1].plot(range(1, len(h.val_loss) + 1), h.val_loss, style, color=c, label=NAMES[k])
        axes[1, 0].plot(range(1, len(h.val_acc) + 1), [100 * v for v in h.val_acc], style, color=c, label=NAMES[k])
        axes[1, 1].scatter(r.parameters[k] / 1e3, 100 * r.test_accuracy[k], color=c, label=NAMES[k], s=50)
    for ax, title, ylabel in ((axes[0, 0], "training loss", "cross-entropy"), (axes[0, 1], "validation loss", "cross-entropy"),
                              (axes[1, 0], "validation accuracy", "accuracy (%)")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
    axes[1, 1].set_xscale("log")
    axes[1, 1].xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[1, 1].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # "20", not "2×10¹"
    axes[1, 1].xaxis.set_minor_formatter(NullFormatter())
    axes[1, 1].set_xlabel("parameters (thousands, log scale)")
    axes[1, 1].set_ylabel(f"test accuracy (%, {r.test_examples} sequences)")
    axes[1, 1].set_title("parameters vs test accuracy")
    legend_outside(axes[0, 1])
    fig.suptitle(f"Sequence models on the synthetic sum-sign task ({r.sequences} sequences of {r.length} N(0,1) "
                 f"numbers, {ctx.mode} mode)")
    ctx.save_figure(fig, "comparison_2x2")


def write_up(r: Result) -> str:
    rows = [(NAMES[k], f"{r.parameters[k]:,}", pct(r.test_accuracy[k]), pct(r.histories[k].best("val_acc", highest=True)),
             r.histories[k].epochs) for k in (*MAIN, "rnn_attention_pool")]
    ranked = sorted(MAIN, key=lambda k: -r.test_accuracy[k])
    worst = ranked[-1]
    c = r.lowest
    if c is None:
        lowest = ""
    elif c.winner is None:
        lowest = f" Even this is not measurably below the best: {c.sentence()}"
    else:
        lowest = f" Against the best: {c.sentence()}" + (
            f" The task needs the running sum of all {r.length} inputs: a gated cell or attention can carry it, "
            f"while the plain RNN has to keep it through {r.length} multiplications by its recurrent matrix."
            if worst == "rnn" else "")
    return f"""
## Result (`comparison_2x2.png`; {r.test_examples} test sequences)
{table(["model", "parameters", "test accuracy", "best validation accuracy", "epochs"], rows)}

Highest test accuracy: {NAMES[ranked[0]]}; against the runner-up: {r.comparison.sentence()}
Lowest: {NAMES[worst]} ({pct(r.test_accuracy[worst])}).{lowest}

## Attention pooling vs the last hidden state (RNN)
{r.pooling.sentence()}
"""
