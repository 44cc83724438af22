"""6.7 Time-series forecasting on a synthetic noisy multi-frequency sine: RNN, LSTM and GRU against
moving-average and last-value baselines, one step ahead. MSE and MAE with their 95% intervals
(paired bootstrap over the test points, or the seed spread), every model in the prediction plot."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from experiments.s6_recurrent._shared import (CELLS, COLORS, NAMES, Ranking, compare_models, rank, seeds_text,
                                               train_recurrent)
from models import RecurrentRegressor
from utils.plotting import legend_outside, plt
from utils.report import Comparison, bootstrap_interval, table
from utils.train import predict

BUDGET = {"tiny": {"n_points": 500, "epochs": 1, "patience": None},
          "quick": {"n_points": 2400, "epochs": 20, "patience": None},
          "hybrid": {"n_points": 4000, "epochs": 40, "patience": 8},
          "full": {"n_points": 6000, "epochs": 60, "patience": 10}}
WINDOW, NOISE, HIDDEN, SHOWN = 48, 0.3, 32, 150
BLOCK = 20   # bootstrap block (steps): forecast errors are correlated over about one period of the fastest sine
SINE_COMPONENTS = ((1.0, 20.0, 0.0), (0.6, 45.0, 1.0), (0.4, 110.0, 2.0))  # amplitude, period (steps), phase
BASELINES = ("moving_average", "last_value")
MODELS = (*CELLS, *BASELINES)


def noisy_sine_series(n_points: int, noise: float, rng):
    """A sum of three sines (periods 20, 45, 110 steps) plus Gaussian noise: (noisy, clean) arrays."""
    t = np.arange(n_points)
    clean = sum(a * np.sin(2 * np.pi * t / p + ph) for a, p, ph in SINE_COMPONENTS)
    return clean + rng.normal(0, noise, n_points), clean


def sliding_windows(series, window: int):
    """Inputs (N, window) = series[i : i+window] and next-value targets (N,) = series[i+window]."""
    return sliding_window_view(series[:-1], window), series[window:]


def last_value_forecast(windows):
    return windows[:, -1]


def moving_average_forecast(windows, k: int):
    return windows[:, -k:].mean(axis=1)


@dataclass
class Result:
    seeds: list[int]
    n_points: int
    epochs: int
    train_windows: int
    test_points: int
    mse: dict[str, list[float]]            # model -> per seed
    mae: dict[str, list[float]]
    interval: dict[str, dict[str, list[float]]]  # "mse"/"mae" -> model -> [lo, hi] (bootstrap, last seed)
    floor: list[float]                     # MSE of the clean signal itself, per seed
    ma_k: list[int]                        # moving-average window chosen on validation, per seed
    status: dict[str, list[str]]           # learned model -> training status per seed
    shown_y: np.ndarray                    # first seed: the first SHOWN test targets
    shown_clean: np.ndarray
    shown_preds: dict[str, np.ndarray]
    ranking_mse: Ranking
    ranking_mae: Ranking
    learned_vs_baseline: Comparison        # best learned vs best baseline, MSE
    ma_vs_last: Comparison                 # moving average vs last value, MSE


def measure(ctx) -> Result:
    b = ctx.budget
    ctx.use_dataset("synthetic", note=f"sum of sines (periods {', '.join(f'{p:g}' for _, p, _ in SINE_COMPONENTS)} "
                                      f"steps) + N(0, {NOISE}²) noise, {b.n_points} points; windows of {WINDOW}")
    seeds = ctx.seeds()
    mse, mae = ({m: [] for m in MODELS} for _ in range(2))
    status = {c: [] for c in CELLS}
    floor, ma_k, shown, sq, ab = [], [], {}, {}, {}
    split = {}
    for s in seeds:
        series, clean = noisy_sine_series(b.n_points, NOISE, np.random.default_rng(s))
        x_all, y_all = sliding_windows(series, WINDOW)
        n = len(y_all)
        i_val, i_test = int(0.7 * n), int(0.85 * n)  # chronological split: the future is never trained on
        mu, sd = series[:i_val + WINDOW].mean(), series[:i_val + WINDOW].std()

        def tensors(lo, hi):
            return (torch.tensor((x_all[lo:hi] - mu) / sd, dtype=torch.float32).unsqueeze(-1),   # (N, W, 1)
                    torch.tensor((y_all[lo:hi] - mu) / sd, dtype=torch.float32).unsqueeze(-1))   # (N, 1)

        split[s] = (clean, x_all, y_all, i_val, i_test, mu, sd, tensors(0, i_val), tensors(i_val, i_test),
                    tensors(i_test, n))

    def train_one(job):
        c, s = job
        *_, mu, sd, train, val, test = split[s]
        torch.manual_seed(s)
        model = RecurrentRegressor(1, HIDDEN, cell=c)
        hist = train_recurrent(ctx, model, train, val, epochs=b.epochs, lr=3e-3, seed=s, regression=True,
                               description=f"{c} forecaster seed {s}", patience=b.patience)
        forecast = predict(model, test[0], ctx.cfg.eval_batch_size, ctx.device).squeeze(-1).double().numpy()
        return hist.status, forecast * sd + mu

    jobs = [(c, s) for s in seeds for c in CELLS]
    trained = dict(zip(jobs, ctx.map(train_one, jobs, "forecasters",
                                     info=lambda j, out: f"{j[0]} seed {j[1]}: {out[0]}")))
    for s in seeds:
        clean, x_all, y_all, i_val, i_test, *_ = split[s]
        y_test = y_all[i_test:]
        floor.append(float(np.mean((clean[WINDOW:][i_test:] - y_test) ** 2)))  # knowing the clean signal exactly
        preds = {}
        for c in CELLS:
            run_status, preds[c] = trained[(c, s)]
            status[c].append(run_status)
        # the moving-average window is chosen on the validation split, like a hyper-parameter
        k = min(range(2, 13), key=lambda k: np.mean((moving_average_forecast(x_all[i_val:i_test], k)
                                                      - y_all[i_val:i_test]) ** 2))
        ma_k.append(k)
        preds["moving_average"] = moving_average_forecast(x_all[i_test:], k)
        preds["last_value"] = last_value_forecast(x_all[i_test:])
        for m, p in preds.items():
            sq[m], ab[m] = (p - y_test) ** 2, np.abs(p - y_test)
            mse[m].append(float(sq[m].mean()))
            mae[m].append(float(ab[m].mean()))
        if s == seeds[0]:
            shown = {"y": y_test[:SHOWN], "clean": clean[WINDOW:][i_test:][:SHOWN],
                     "preds": {m: p[:SHOWN] for m, p in preds.items()}}

    def ranking(metric, values, errs):
        return rank({m: float(np.mean(v)) for m, v in values.items()}, NAMES,
                    lambda a, o: compare_models(NAMES[a], values[a], errs[a], NAMES[o], values[o], errs[o], metric=metric,
                                                unit="test points", block=BLOCK))

    def finite(errs):
        return bool(np.isfinite(errs).all())

    interval = {name: {m: list(bootstrap_interval(e[m], seed=seeds[-1], block=BLOCK)) if finite(e[m]) else [np.nan, np.nan]
                       for m in MODELS} for name, e in (("mse", sq), ("mae", ab))}
    r_mse, r_mae = ranking("test MSE", mse, sq), ranking("test MAE", mae, ab)
    learned = [c for c in CELLS if np.isfinite(np.mean(mse[c]))] or list(CELLS)
    best_l = min(learned, key=lambda c: np.mean(mse[c]))
    best_b = min(BASELINES, key=lambda m: np.mean(mse[m]))
    r = Result(seeds, b.n_points, b.epochs, int(0.7 * (b.n_points - WINDOW)), len(sq["last_value"]),
               mse, mae, interval, floor, ma_k, status, shown["y"], shown["clean"], shown["preds"], r_mse, r_mae,
               compare_models(NAMES[best_l], mse[best_l], sq[best_l], NAMES[best_b], mse[best_b], sq[best_b],
                              unit="test points", block=BLOCK),
               compare_models(NAMES["moving_average"], mse["moving_average"], sq["moving_average"],
                              NAMES["last_value"], mse["last_value"], sq["last_value"], unit="test points", block=BLOCK))
    ctx.record(mse={m: float(np.mean(v)) for m, v in mse.items()}, mae={m: float(np.mean(v)) for m, v in mae.items()},
               mse_per_seed=mse, mae_per_seed=mae, mse_interval=interval["mse"], mae_interval=interval["mae"],
               verdict=r_mse.verdict(), verdict_mae=r_mae.verdict(), best_model=r_mse.best or "tie",
               learned_vs_best_baseline=r.learned_vs_baseline.verdict(), noise_floor_mse=float(np.mean(floor)),
               moving_average_window=ma_k, run_status=status, window=WINDOW, noise_std=NOISE, n_points=b.n_points,
               test_points=r.test_points, hidden_size=HIDDEN, epochs=b.epochs, seeds=seeds)
    return r


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(2, 1, figsize=(12, 7), sharex=True, sharey=True)
    t = np.arange(len(r.shown_y))
    for ax, group, title in ((axes[0], CELLS, "learned models"), (axes[1], BASELINES, "baselines")):
        ax.scatter(t, r.shown_y, s=8, color="0.6", label="observed (noisy)", zorder=2)
        ax.plot(t, r.shown_clean, color="k", linestyle=":", linewidth=1.2, label="clean signal")
        for m in group:
            extra = f", k = {r.ma_k[0]}" if m == "moving_average" else ""
            ax.plot(t, r.shown_preds[m], color=COLORS[m], linewidth=1.2,
                    label=f"{NAMES[m]}{extra}: MSE {r.mse[m][0]:.3f}" + (" (diverged)" if "diverged" in r.status.get(m, []) else ""))
        ax.set_ylabel("series value (units of the signal)")
        ax.set_title(f"One-step-ahead forecasts: {title}")
        legend_outside(ax)
    axes[1].set_xlabel("test time step (after the training and validation periods)")
    fig.suptitle(f"Synthetic noisy sum of sines (σ = {NOISE}): first {len(t)} of {r.test_points} test steps, "
                 f"seed {r.seeds[0]}, {ctx.mode} mode")
    ctx.save_figure(fig, "predictions")

    several = len(r.seeds) > 1
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.4))
    for ax, key, values in ((axes[0], "mse", r.mse), (axes[1], "mae", r.mae)):
        means = np.array([np.mean(values[m]) for m in MODELS])
        if several:
            yerr = np.array([np.std(values[m], ddof=1) for m in MODELS])
        else:
            iv = np.array([r.interval[key][m] for m in MODELS])
            yerr = np.vstack([means - iv[:, 0], iv[:, 1] - means])
        ax.bar(range(len(MODELS)), means, yerr=yerr, capsize=4, color=[COLORS[m] for m in MODELS])
        ax.set_xticks(range(len(MODELS)), [NAMES[m] for m in MODELS], rotation=15)
        unit = "series units²" if key == "mse" else "series units"
        ax.set_ylabel(f"test {key.upper()} ({unit})")
        ax.set_title(f"Test {key.upper()}")
    axes[0].axhline(np.mean(r.floor), color="k", linestyle=":", label=f"noise floor (clean signal) {np.mean(r.floor):.3f}")
    axes[0].legend(loc="upper left")   # the learned models' bars, on the left, are the short ones
    bars = (f"mean ± std over {seeds_text(r.seeds)}" if several else
            f"error bars: 95% moving-block bootstrap interval of each mean, {r.test_points} test points")
    fig.suptitle(f"Synthetic noisy sines: one-step forecast errors ({bars}; {ctx.mode} mode)", fontsize=10)
    ctx.save_figure(fig, "errors")


def write_up(r: Result) -> str:
    several = len(r.seeds) > 1
    mean = {k: {m: float(np.mean(v[m])) for m in MODELS} for k, v in (("mse", r.mse), ("mae", r.mae))}

    def cell(key, m):
        v = getattr(r, key)[m]
        if several:
            return f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}"
        lo, hi = r.interval[key][m]
        return f"{np.mean(v):.4f} ({lo:.4f}–{hi:.4f})"

    rows = [(NAMES[m] + (f" (k = {r.ma_k[0]})" if m == "moving_average" else ""), cell("mse", m), cell("mae", m))
            for m in MODELS]
    rk = r.ranking_mse
    if rk.best:
        top = f"Lowest test MSE: **{NAMES[rk.best]}**, which beats every other model by the rule."
    else:
        top = (f"Lowest test MSE: **a tie** between {', '.join(NAMES[m] for m in [rk.leader, *rk.tied])} — no model "
               f"is named best.")
    same = r.ranking_mae.verdict() == rk.verdict()
    lb = r.learned_vs_baseline
    if lb.winner == lb.name_a:
        lb_text = f"The best learned model beats the best baseline: {lb.sentence()}"
    elif lb.winner is None:
        lb_text = f"The best learned model does not beat the best baseline: {lb.sentence()}"
    else:
        lb_text = (f"**No learned model beat the best baseline**: {lb.sentence()} With {r.epochs} epochs on "
                   f"{r.train_windows} training windows the networks had not learned the periodic structure well "
                   f"enough to denoise better than averaging recent values.")
    c = r.ma_vs_last
    k = r.ma_k[0]
    if c.winner == NAMES["last_value"]:
        ma_note = (f"{c.sentence()} Even with k = {k} chosen on validation, averaging divides the noise variance by "
                   f"k but lags the signal by {(k - 1) / 2:g} steps, and the fastest component (period "
                   f"{SINE_COMPONENTS[0][1]:g} steps) moves enough in a step for the lag to cost more than it removes.")
    elif c.winner == NAMES["moving_average"]:
        ma_note = f"{c.sentence()} Here averaging away noise was worth more than the lag of {(k - 1) / 2:g} steps it adds."
    else:
        ma_note = f"{c.sentence()} The noise averaging and the lag it adds roughly cancel."
    floor = float(np.mean(r.floor))
    lead = rk.leader
    evidence = (f"mean ± std over {seeds_text(r.seeds)}" if several else
                f"in brackets the 95% bootstrap interval of each model's mean over the {r.test_points} test points, "
                f"resampled in blocks of {BLOCK} consecutive steps because neighbouring errors are correlated; the "
                f"comparisons below bootstrap the paired differences the same way, which is tighter")
    return f"""
One-step-ahead forecasting of a noisy sum of three sines (noise σ = {NOISE}); inputs are the last {WINDOW} values;
chronological split 70/15/15 (train / validation / test, {r.test_points} test points); RNN, LSTM and GRU (hidden
{HIDDEN}, {r.epochs} epochs, Adam 3e-3) against two baselines: the last value, and the mean of the last k values
(k = {', '.join(map(str, r.ma_k))} chosen on the validation split). {seeds_text(r.seeds)} (noise draw and initialisation).

{table(["model", "test MSE", "test MAE"], rows)}

({evidence}; the same intervals are the error bars of `errors.png`.)

Noise floor: predicting the clean signal exactly scores MSE {floor:.4f} (≈ σ² = {NOISE ** 2:.3f}): no model can go
below it, because the noise in the target is unpredictable.

- {top} {' '.join(rk.sentences())}
- MAE {"gives the same verdict" if same else "gives a different verdict"}: {r.ranking_mae.verdict()}.
- {lb_text}
- {ma_note}
- Gap to the noise floor: the lowest-MSE model ({NAMES[lead]}) is {mean['mse'][lead] - floor:.4f} above it; the
  last-value baseline pays the noise twice (in its input and in the target) plus the change over one step:
  {mean['mse']['last_value']:.4f}.
- `predictions.png` shows every model's forecasts on the first test steps (learned models above, baselines below).
"""
