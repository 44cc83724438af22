"""6.6 Recurrent models compared on the sequence-sum task: training time, final loss and parameter
count in one table, with recommendations drawn from those measured numbers by the comparison rule.
A vanilla RNN widened to the LSTM's parameter count separates the effect of size from that of gates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.s6_recurrent._shared import (COLORS, NAMES, SUM_TARGET_VARIANCE, SUM_TEST, Ranking, SumRun,
                                               compare_models, compare_times, join_names, rank, run_sum_task,
                                               seeds_text, time_phrase)
from models import RecurrentRegressor, count_parameters
from utils.plotting import legend_outside, plt
from utils.report import Comparison, table

BUDGET = {"tiny": {"n_train": 128, "epochs": 2}, "quick": {"n_train": 1024, "epochs": 24},
          "hybrid": {"n_train": 4096, "epochs": 30}, "full": {"n_train": 8192, "epochs": 40}}
STEPS, HIDDEN = 30, 32


def matched_hidden() -> int:
    """The vanilla-RNN width whose parameter count is closest to the H = 32 LSTM's."""
    target = count_parameters(RecurrentRegressor(1, HIDDEN, cell="lstm"))
    return min(range(HIDDEN, 8 * HIDDEN), key=lambda h: abs(count_parameters(RecurrentRegressor(1, h, cell="rnn"))
                                                           - target))


@dataclass
class Result:
    seeds: list[int]
    n_train: int
    epochs: int
    hidden: dict[str, int]                     # model -> hidden size
    runs: dict[str, list[SumRun]]
    ranking: Ranking                           # lowest test MSE against the others
    times: dict[str, dict[str, Comparison]]    # a -> b -> seconds per epoch, by the rule (a before b in MODELS)
    matched_vs_lstm: Comparison                # equal parameters: gates or size?
    matched_vs_rnn: Comparison                 # did widening the RNN help?


def measure(ctx) -> Result:
    b = ctx.budget
    models = {"rnn": ("rnn", HIDDEN), "lstm": ("lstm", HIDDEN), "gru": ("gru", HIDDEN), "rnn_matched": ("rnn", matched_hidden())}
    ctx.use_dataset("synthetic", note=f"sequence sum, T = {STEPS}, {b.n_train} training, {SUM_TEST} test sequences")
    seeds = ctx.seeds()
    runs, errors = {m: [] for m in models}, {}
    jobs = [(m, s) for s in seeds for m in models]
    done = ctx.map(lambda j: run_sum_task(ctx, models[j[0]][0], STEPS, j[1], hidden=models[j[0]][1], n_train=b.n_train,
                                          epochs=b.epochs),
                   jobs, "comparison runs", info=lambda j, out: f"{j[0]}: {out[0].test_mse:.3g}")
    for (m, _), (run, errors[m]) in zip(jobs, done):   # errors: the last seed's, for the paired test
        runs[m].append(run)
    mse = {m: [r.test_mse for r in runs[m]] for m in models}

    def versus(a, o):
        return compare_models(NAMES[a], mse[a], errors[a], NAMES[o], mse[o], errors[o])

    def epoch_seconds(m):
        return [t for r in runs[m] for t in r.history.epoch_seconds]

    ranking = rank({m: float(np.mean(v)) for m, v in mse.items()}, NAMES, versus)
    keys = list(models)
    times = {a: {o: compare_times(NAMES[a], epoch_seconds(a), NAMES[o], epoch_seconds(o)) for o in keys[i + 1:]}
             for i, a in enumerate(keys)}
    r = Result(seeds, b.n_train, b.epochs, {m: h for m, (_, h) in models.items()}, runs, ranking, times,
               versus("rnn_matched", "lstm"), versus("rnn_matched", "rnn"))
    pick, _ = recommendation(r)
    ctx.record(params={m: runs[m][0].params for m in models},
               train_seconds={m: float(np.mean([x.history.seconds for x in runs[m]])) for m in models},
               seconds_per_epoch={m: float(np.mean(epoch_seconds(m))) for m in models},
               final_loss={m: float(np.mean(v)) for m, v in mse.items()}, final_loss_per_seed=mse,
               hidden_size=r.hidden, verdict=ranking.verdict(), best_loss_model=ranking.best or "tie",
               recommended=NAMES[pick], run_status={m: [x.history.status for x in runs[m]] for m in models},
               sequence_length=STEPS, epochs=b.epochs, train_sequences=b.n_train, seeds=seeds)
    return r


def time_cmp(r: Result, a: str, b: str) -> Comparison:
    return r.times[a][b] if b in r.times.get(a, {}) else r.times[b][a]


def recommendation(r: Result) -> tuple[str, str]:
    """(the practical pick, why): among the models tied for the lowest loss, the one no other in that
    group beats on seconds per epoch; if several remain, the one with the fewest parameters."""
    top = [r.ranking.leader, *r.ranking.tied]
    quick = [m for m in top if not any(time_cmp(r, m, o).winner == NAMES[o] for o in top if o != m)]
    params = {m: r.runs[m][0].params for m in quick}
    pick = min(quick, key=params.get)
    if len(top) == 1:
        why = "it alone has the lowest loss by the rule"
    elif len(quick) == 1:
        why = (f"it ties for the lowest loss with {join_names(NAMES[m] for m in top if m != pick)} and none of "
               f"them trains faster per epoch: " + "; ".join(time_phrase(time_cmp(r, pick, o)) for o in top if o != pick))
    else:
        why = (f"{join_names(NAMES[m] for m in quick)} tie for the lowest loss and take the same time per epoch within "
               f"the spread; it has the fewest parameters ({params[pick]:,})")
    return pick, why


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.4), sharey=True)
    several = len(r.seeds) > 1
    for m in r.runs:
        lab = f"{NAMES[m]} (H = {r.hidden[m]})"
        loss = [x.test_mse for x in r.runs[m]]
        y = float(np.mean(loss))
        if several:
            yerr = np.std(loss, ddof=1)
        else:
            lo, hi = r.runs[m][0].test_mse_interval
            yerr = [[y - lo], [hi - y]]
        secs = [t for x in r.runs[m] for t in x.history.epoch_seconds]
        axes[0].errorbar(r.runs[m][0].params, y, yerr=yerr, color=COLORS[m], marker="o", capsize=3, label=lab)
        axes[1].errorbar(np.mean(secs), y, yerr=yerr, xerr=np.std(secs, ddof=1) if len(secs) > 1 else None,
                         color=COLORS[m], marker="o", capsize=3, label=lab)
    for ax in axes:
        ax.set_yscale("log")
    axes[0].set_ylabel("test MSE (log scale)")
    axes[0].set_xlabel("trainable parameters")
    axes[0].set_title("Final loss vs model size")
    axes[1].set_xlabel("seconds per epoch (wall clock; bar: ± std over epochs)")
    axes[1].set_title("Final loss vs training time")
    legend_outside(axes[1])
    bars = "± std over seeds" if several else f"95% bootstrap interval over {SUM_TEST} test sequences"
    fig.suptitle(f"Synthetic sequence sum, T = {STEPS}: recurrent models compared ({seeds_text(r.seeds)}; loss bars: "
                 f"{bars}; {ctx.mode} mode)", fontsize=10)
    ctx.save_figure(fig, "loss_time_params")


def write_up(r: Result) -> str:
    rk = r.ranking
    models = list(r.runs)
    final = {m: float(np.mean([x.test_mse for x in r.runs[m]])) for m in models}
    spe = {m: float(np.mean([t for x in r.runs[m] for t in x.history.epoch_seconds])) for m in models}
    secs = {m: float(np.mean([x.history.seconds for x in r.runs[m]])) for m in models}
    params = {m: r.runs[m][0].params for m in models}
    rows = [(f"{NAMES[m]} (H={r.hidden[m]})" + (", parameters ≈ LSTM" if m == "rnn_matched" else ""),
             f"{params[m]:,}", f"{secs[m]:.1f}", f"{spe[m]:.3f}", f"{final[m]:.3g}", f"{final[m] / final[rk.leader]:.1f}×")
            for m in models]
    recs = []
    if rk.best:
        recs.append(f"Lowest loss: **{NAMES[rk.best]}** ({final[rk.best]:.3g}), ahead of every other model by the rule: "
                    + " ".join(rk.sentences()))
    else:
        recs.append(f"Lowest loss: **a tie** between {join_names(NAMES[m] for m in [rk.leader, *rk.tied])} "
                    f"({', '.join(f'{final[m]:.3g}' for m in [rk.leader, *rk.tied])}): "
                    + " ".join(rk.versus[m].sentence() for m in rk.tied))
    pick, why = recommendation(r)
    recs.append(f"Recommended here: **{NAMES[pick]}** — {why}.")
    fastest = [m for m in models if all(time_cmp(r, m, o).winner == NAMES[m] for o in models if o != m)]
    if fastest and fastest[0] != pick:
        f = fastest[0]
        recs.append(f"When time matters more than loss: **{NAMES[f]}** is faster per epoch than every other model "
                    f"({spe[f]:.3f} s vs {', '.join(f'{NAMES[o]} {spe[o]:.3f} s' for o in models if o != f)}), "
                    f"at {final[f] / final[rk.leader]:.1f}× the lowest loss.")
    c = r.matched_vs_lstm
    gates = ("the LSTM beats it, so more parameters did not close the gap: the gating, not the size, makes the difference here"
             if c.winner == NAMES["lstm"] else
             "with equal parameters the vanilla RNN matches the LSTM, so size explains the gap here" if c.winner is None else
             "the wide RNN beats the LSTM: with equal parameters the gates did not help on this task")
    recs.append(f"Parameters vs gates: the vanilla RNN widened to H = {r.hidden['rnn_matched']} ({params['rnn_matched']:,} "
                f"parameters, vs the LSTM's {params['lstm']:,}) — {gates}. {c.sentence()} Widening it against the "
                f"H = {HIDDEN} RNN: {r.matched_vs_rnn.sentence()}")
    bad = [m for m in rk.beaten if final[m] > 5 * final[rk.leader]]
    if bad:
        recs.append("Avoid for tasks that integrate over the whole sequence: " + ", ".join(
            f"{NAMES[m]} ({final[m] / final[rk.leader]:.0f}× the lowest loss, beaten by the rule)" for m in bad) + ".")
    return f"""
Measured in this run: the sequence-sum task (T = {STEPS}), {r.epochs} epochs of {r.n_train} sequences, Adam lr 3e-3,
{seeds_text(r.seeds)}; test MSE on {SUM_TEST} sequences (predicting 0 scores {SUM_TARGET_VARIANCE:.3f}). Times are
wall clock on this machine's CPU; they include whatever else ran on it during the run.

{table(["model", "parameters", "train seconds", "seconds/epoch", "test MSE", "loss vs lowest"], rows)}

## Recommendations (from the numbers above; `loss_time_params.png`)
{chr(10).join('- ' + x for x in recs)}
"""
