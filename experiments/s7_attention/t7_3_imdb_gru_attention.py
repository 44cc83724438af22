"""7.3 IMDb sentiment: a GRU (two layers; one in QUICK and the test preset) read out from the last real
token's hidden state, against the same GRU with additive (Bahdanau) attention over all its states.
Vocabulary from the training split only,
reviews truncated to ``max_len`` tokens, padding skipped by packed sequences (the "last state" is the
last real word's) and masked out of the attention softmax. Curves, a model comparison, attention over
the words of test reviews (a folder, right and wrong ones), confidence histograms, accuracy by length."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from experiments.s7_attention._shared import GRUTextClassifier, correct_and_confidence, text_splits
from models import count_parameters
from utils.history import History
from utils.plotting import count_axis, history_figure, legend_outside, plt
from utils.report import Comparison, accuracy_interval, compare_predictions, describe_accuracy, pct, table

# gru_layers: QUICK uses one (the CPU's GRU backward is three quarters of the task's time, and one layer halves it)
BUDGET = {  # train_size / test_size None: all reviews (25,000 / 25,000 on IMDb)
    "tiny": {"train_size": 300, "test_size": 200, "max_len": 64, "vocab_size": 1000, "embed": 16, "hidden": 16,
             "gru_layers": 1, "epochs": 1, "batch_size": 64, "lr": 2e-3, "examples": 1},
    "quick": {"train_size": 3000, "test_size": 1000, "max_len": 112, "vocab_size": 5000, "embed": 32, "hidden": 32,
              "gru_layers": 1, "epochs": 4, "batch_size": 64, "lr": 1e-2, "examples": 4},
    "hybrid": {"train_size": 8000, "test_size": 5000, "max_len": 200, "vocab_size": 5000, "embed": 128,
               "hidden": 128, "gru_layers": 2, "epochs": 3, "batch_size": 64, "lr": 2e-3, "examples": 6},
    "full": {"train_size": None, "test_size": None, "max_len": 400, "vocab_size": 5000, "embed": 128, "hidden": 256,
             "gru_layers": 2, "epochs": 8, "batch_size": 64, "lr": 1e-3, "examples": 8},
}
MODELS = {"baseline": "GRU, last state", "attention": "GRU + attention"}
WINDOW, PER_ROW = 96, 12


@dataclass
class Result:
    dataset: str
    standin: bool
    max_len: int
    vocab_size: int
    train_examples: int
    histories: dict[str, History]
    parameters: dict[str, int]
    accuracy: dict[str, float]
    test_examples: int
    correct: dict[str, np.ndarray]       # per test review, booleans
    confidence: dict[str, np.ndarray]    # probability of the predicted class
    lengths: np.ndarray                  # test reviews' token counts (before truncation)
    comparison: Comparison
    examples: list[dict]                 # {"tokens", "weights", "label", "prob_positive", "correct"}


def measure(ctx) -> Result:
    b = ctx.budget
    data = ctx.load_imdb()
    s = text_splits(data, vocab_size=b.vocab_size, max_len=b.max_len, train_size=b.train_size,
                    test_size=b.test_size, val_fraction=0.1, seed=ctx.seed)
    ctx.log(f"  data: {data.label}: {len(s.y_train)} train / {len(s.y_val)} val / {len(s.y_test)} test reviews, "
            f"vocabulary {len(s.vocab)}, truncated to {b.max_len} tokens")
    histories, params, correct, conf, models = {}, {}, {}, {}, {}

    def train_one(key):
        torch.manual_seed(ctx.seed)
        model = GRUTextClassifier(len(s.vocab), b.embed, b.hidden, layers=b.gru_layers, attention=key == "attention")
        h = ctx.fit(model, (s.x_train, s.y_train), (s.x_val, s.y_val), epochs=b.epochs,
                    batch_size=b.batch_size, optimizer=torch.optim.Adam(model.parameters(), lr=b.lr),
                    clip_grad_norm=1.0, patience=3, description=MODELS[key])
        return h, model, *correct_and_confidence(model, s.x_test, s.y_test)

    trained = ctx.map(train_one, MODELS, "GRU classifiers",
                      info=lambda k, out: f"{MODELS[k]}: test {out[2].mean():.3f}")
    for key, (histories[key], model, correct[key], conf[key]) in zip(MODELS, trained):
        params[key] = count_parameters(model)
        ctx.save_weights(model, f"{key}.pt")
        models[key] = model
    comparison = compare_predictions(MODELS["attention"], correct["attention"], MODELS["baseline"], correct["baseline"])
    examples = _examples(models["attention"], s, correct["attention"], b.examples)
    lengths = np.array([len(t) for t in s.test_tokens])
    accuracy = {k: float(v.mean()) for k, v in correct.items()}
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(ctx.out_dir / "test_correct.npz", **correct)        # paired predictions for 7.4
    ctx.record(test_accuracy=accuracy, test_examples=len(s.y_test), verdict=comparison.verdict(),
               p_value=comparison.p_value, parameters=params, epochs={k: h.epochs for k, h in histories.items()},
               seconds_per_epoch={k: float(np.mean(h.epoch_seconds)) for k, h in histories.items()},
               train_examples=len(s.y_train), val_examples=len(s.y_val), vocabulary=len(s.vocab),
               data_signature={"dataset": data.name, "max_len": b.max_len, "train_size": b.train_size,
                               "test_size": b.test_size, "vocab_size": b.vocab_size, "seed": ctx.seed})
    return Result(data.label, data.standin, b.max_len, len(s.vocab), len(s.y_train), histories, params, accuracy,
                  len(s.y_test), correct, conf, lengths, comparison, examples)


def _examples(model, s, correct, k: int) -> list[dict]:
    """Attention weights over the words of a few right and a few wrong test reviews."""
    picks = list(np.flatnonzero(correct)[:k]) + list(np.flatnonzero(~correct)[:k])
    model.eval()
    with torch.no_grad():
        logits, weights = model.forward_with_weights(s.x_test[picks])
    probs = torch.softmax(logits, 1)[:, 1]
    out = []
    for row, i in enumerate(picks):
        n = int((s.x_test[i] != 0).sum())
        out.append({"tokens": s.test_tokens[i][:n], "weights": weights[row, :n].tolist(),
                    "label": int(s.y_test[i]), "prob_positive": float(probs[row]), "correct": bool(correct[i])})
    return out


def _word_map(ax, ex: dict) -> None:
    """Words in reading order, wrapped PER_ROW to a line, each cell coloured by its attention weight; the
    WINDOW words around the largest weight are shown."""
    w = np.asarray(ex["weights"])
    centre = int(w.argmax())
    lo = max(0, min(centre - WINDOW // 2, len(w) - WINDOW))
    tokens, w = ex["tokens"][lo:lo + WINDOW], w[lo:lo + WINDOW]
    rows = -(-len(tokens) // PER_ROW)
    grid = np.full((rows, PER_ROW), np.nan)
    grid.flat[:len(w)] = w
    top = max(float(np.nanmax(grid)), 1e-9)
    ax.imshow(grid, cmap="YlOrRd", vmin=0, vmax=top, aspect="auto")
    for j, t in enumerate(tokens):  # white on the darkest cells, where black would not read
        ax.text(j % PER_ROW, j // PER_ROW, t, ha="center", va="center", fontsize=6.5,
                color="white" if w[j] > 0.6 * top else "black")
    ax.set_xticks([])
    ax.set_yticks(range(rows), [f"word {lo + r * PER_ROW + 1}" for r in range(rows)], fontsize=6)
    ax.grid(False)
    truth = "positive" if ex["label"] else "negative"
    ax.set_title(f"{'right' if ex['correct'] else 'WRONG'}: true {truth}, P(positive) = {ex['prob_positive']:.2f}, "
                 f"{len(ex['tokens'])} words (darker = more attention; max {max(ex['weights']):.2f})", fontsize=8)


def draw(ctx, r: Result) -> None:
    names = {MODELS[k]: h for k, h in r.histories.items()}
    fig = history_figure(names, f"GRU vs GRU + attention on {r.dataset} (reviews ≤ {r.max_len} tokens)")
    ctx.save_figure(fig, "curves")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    keys = list(MODELS)
    acc = [100 * r.accuracy[k] for k in keys]
    ci = np.array([accuracy_interval(r.accuracy[k], r.test_examples) for k in keys]) * 100
    axes[0].bar([MODELS[k] for k in keys], acc, yerr=[np.subtract(acc, ci[:, 0]), ci[:, 1] - acc], capsize=5,
                color=["tab:gray", "tab:blue"])
    axes[0].set_ylabel(f"test accuracy (%, 95% interval, {r.test_examples} reviews)")
    axes[0].set_ylim(max(0, min(ci[:, 0]) - 10), 100)
    counts, count_label = count_axis([r.parameters[k] for k in keys])
    axes[1].bar([MODELS[k] for k in keys], counts, color=["tab:gray", "tab:blue"])
    axes[1].set_ylabel(count_label)
    axes[2].bar([MODELS[k] for k in keys], [np.mean(r.histories[k].epoch_seconds) for k in keys],
                color=["tab:gray", "tab:blue"])
    axes[2].set_ylabel("seconds per training epoch (CPU)")
    fig.suptitle(f"Model comparison on {r.dataset}: {r.comparison.verdict()}")
    ctx.save_figure(fig, "model_comparison")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True, constrained_layout=True)
    bins = np.linspace(0.5, 1.0, 21)
    for ax, k in zip(axes, keys):
        c, p = r.correct[k], r.confidence[k]
        ax.hist([p[c], p[~c]], bins=bins, stacked=True, color=["tab:green", "tab:red"],
                label=[f"right ({int(c.sum())})", f"wrong ({int((~c).sum())})"])
        ax.set_xlabel("probability of the predicted class")
        ax.set_title(f"{MODELS[k]}: {pct(r.accuracy[k])}")
        ax.legend(loc="upper left")
    axes[0].set_ylabel("test reviews")
    fig.suptitle(f"Prediction confidence on {r.dataset}")
    ctx.save_figure(fig, "confidence_histograms")

    edges, by_len = length_bins(r)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    centres = np.arange(len(edges) - 1)
    for k, color in zip(keys, ("tab:gray", "tab:blue")):
        a = np.array([v[0] for v in by_len[k]])
        lo_hi = np.array([accuracy_interval(v[0], v[1]) for v in by_len[k]])
        ax.errorbar(centres, 100 * a, yerr=[100 * (a - lo_hi[:, 0]), 100 * (lo_hi[:, 1] - a)], marker="o",
                    capsize=4, color=color, label=MODELS[k])
    ax.set_xticks(centres, [f"{edges[i]}–{edges[i + 1]}" for i in centres])
    ax.set_xlabel(f"review length (tokens; models read the first {r.max_len})")
    ax.set_ylabel("test accuracy (%, 95% interval)")
    legend_outside(ax)
    ax.set_title(f"Accuracy by review length on {r.dataset}")
    ctx.save_figure(fig, "accuracy_by_length")

    if r.examples:
        shown = [next((e for e in r.examples if e["correct"]), None), next((e for e in r.examples if not e["correct"]), None)]
        shown = [e for e in shown if e is not None]
        fig, axes = plt.subplots(len(shown), 1, figsize=(12, 3.6 * len(shown)), squeeze=False, constrained_layout=True)
        for ax, ex in zip(axes[:, 0], shown):
            _word_map(ax, ex)
        fig.suptitle(f"GRU + attention: attention over the words of test reviews ({r.dataset})")
        ctx.save_figure(fig, "attention_examples")
        for i, ex in enumerate(r.examples):   # the folder: one figure per review, right and wrong ones
            fig, ax = plt.subplots(figsize=(12, 3.8), constrained_layout=True)
            _word_map(ax, ex)
            fig.suptitle(f"GRU + attention on a {r.dataset} test review")
            ctx.save_figure(fig, f"attention_reviews/{'right' if ex['correct'] else 'wrong'}_{i + 1}", listed=False)


def length_bins(r: Result):
    """Quartile edges of review length and, per model, (accuracy, count) in each bin."""
    edges = np.unique(np.quantile(r.lengths, [0, 0.25, 0.5, 0.75, 1.0]).astype(int))
    edges[-1] += 1
    which = np.clip(np.searchsorted(edges, r.lengths, side="right") - 1, 0, len(edges) - 2)
    by_len = {k: [(float(r.correct[k][which == i].mean()) if (which == i).any() else float("nan"),
                   int((which == i).sum())) for i in range(len(edges) - 1)] for k in MODELS}
    return edges.tolist(), by_len


def write_up(r: Result) -> str:
    h = r.histories
    edges, by_len = length_bins(r)
    rows = [(f"{edges[i]}–{edges[i + 1] - 1}", by_len["baseline"][i][1], pct(by_len["baseline"][i][0]),
             pct(by_len["attention"][i][0])) for i in range(len(edges) - 1)]
    long_share = float((r.lengths > r.max_len).mean())
    conf = {k: (float(r.confidence[k][r.correct[k]].mean()) if r.correct[k].any() else float("nan"),
                float(r.confidence[k][~r.correct[k]].mean()) if (~r.correct[k]).any() else float("nan"))
            for k in MODELS}
    data_note = ("The data is the generated stand-in: sentiment phrases at random places in long neutral text, "
                 "with negations and contrasts." if r.standin else "The data is the real IMDb review set.")
    peaks = [max(e["weights"]) for e in r.examples]
    ex_note = (f"In the {len(r.examples)} reviews in `attention_reviews/` the largest single weight ranges from "
               f"{min(peaks):.2f} to {max(peaks):.2f} (uniform attention would give 1/length ≈ "
               f"{1 / np.mean([len(e['tokens']) for e in r.examples]):.3f})." if r.examples else "")
    return f"""
## Result (`model_comparison.png`, `curves.png`)
{data_note} {r.train_examples} training reviews, vocabulary {r.vocab_size} (training split only), reviews
truncated to the first {r.max_len} tokens ({pct(long_share)} of the test reviews are longer).

- {MODELS['baseline']}: {describe_accuracy(r.accuracy['baseline'], r.test_examples)}, {r.parameters['baseline']:,} parameters,
  {np.mean(h['baseline'].epoch_seconds):.1f} s/epoch over {h['baseline'].epochs} epochs
- {MODELS['attention']}: {describe_accuracy(r.accuracy['attention'], r.test_examples)}, {r.parameters['attention']:,} parameters,
  {np.mean(h['attention'].epoch_seconds):.1f} s/epoch over {h['attention'].epochs} epochs

{r.comparison.sentence()}

Best validation accuracy: {pct(h['baseline'].best('val_acc', highest=True))} (last state) and
{pct(h['attention'].best('val_acc', highest=True))} (attention).

## Attention over words (`attention_examples.png`, folder `attention_reviews/`)
{ex_note} Dark cells are the words the classifier's summary is built from.

## Confidence (`confidence_histograms.png`)
Mean probability of the predicted class on right / wrong reviews: last state {conf['baseline'][0]:.2f} /
{conf['baseline'][1]:.2f}, attention {conf['attention'][0]:.2f} / {conf['attention'][1]:.2f}.

## Accuracy by review length (`accuracy_by_length.png`, quartiles of the test set)
{table(["tokens", "reviews", MODELS['baseline'], MODELS['attention']], rows)}
"""
