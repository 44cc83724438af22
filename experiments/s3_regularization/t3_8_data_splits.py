"""3.8 Data splits and cross-validation on scikit-learn's 8×8 digits.

A stratified train / validation / test split chooses the regularisation constant C of a
logistic regression on validation and reports once on test; stratification is set against
plain random splits by how far small parts stray from the class shares; and a k-fold estimate
is set against the spread of single hold-out estimates. Every comparison goes through the rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.s3_regularization._shared import compare_spread
from utils.plotting import legend_outside, plt
from utils.report import Comparison, compare_errors, compare_predictions, describe_accuracy, pct, table

BUDGET = {
    "tiny": {"n_use": 600, "n_single": 8, "n_repeats": 3, "n_prop": 50, "k": 5, "test_fraction": 0.1},
    "quick": {"n_use": None, "n_single": 50, "n_repeats": 10, "n_prop": 500, "k": 5, "test_fraction": 0.1},
    "hybrid": {"n_use": None, "n_single": 100, "n_repeats": 20, "n_prop": 1000, "k": 5, "test_fraction": 0.1},
    "full": {"n_use": None, "n_single": 200, "n_repeats": 40, "n_prop": 1000, "k": 5, "test_fraction": 0.1},
}
CS = (0.01, 0.1, 1.0, 10.0)
N_CLASSES = 10


def class_proportions(y, n_classes: int):
    """Share of each class in the label vector ``y``."""
    return np.bincount(np.asarray(y), minlength=n_classes) / max(len(y), 1)


def random_split(n: int, fractions, seed: int) -> list:
    """Index arrays of a plain random split of range(n) into parts of the given fractions."""
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum(fractions)[:-1] / np.sum(fractions) * n).astype(int)
    return np.split(order, cuts)


def stratified_split(y, fractions, seed: int) -> list:
    """Index arrays of a split in which every part keeps the class proportions of ``y``: each
    class is shuffled and cut by the fractions on its own, so a part's share of every class is
    within one example of the exact fraction."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    share = np.cumsum(fractions)[:-1] / np.sum(fractions)
    parts = [[] for _ in fractions]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        for part, chunk in zip(parts, np.split(members, np.round(share * len(members)).astype(int))):
            part.append(chunk)
    return [rng.permutation(np.concatenate(p)) for p in parts]


def max_proportion_deviation(y_part, y_all, n_classes: int) -> float:
    """Largest absolute difference between a part's class shares and the whole set's."""
    return float(np.max(np.abs(class_proportions(y_part, n_classes) - class_proportions(y_all, n_classes))))


@dataclass
class Result:
    examples: int
    sizes: dict[str, int]                     # train / validation / test of the three-way split
    val_accuracy: dict[str, float]            # per C
    chosen_c: float
    c_comparison: Comparison                  # chosen C vs the runner-up, on the validation part
    test_accuracy: float
    split_props: dict[str, np.ndarray]        # class shares of train / validation / test, and "overall"
    test_fraction: float
    dev_random: np.ndarray                    # per random small part: largest class-share deviation
    dev_strat: np.ndarray
    strat_comparison: Comparison
    example_props: dict[str, np.ndarray]      # one random and one stratified small part
    k: int
    single: list[float]                       # single 80/20 hold-out estimates
    kfold: list[float]                        # k-fold estimates (one per reshuffle)
    fold_accs: list[list[float]]
    spread_comparison: Comparison             # standard deviation: k-fold vs single split


def measure(ctx) -> Result:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    b = ctx.budget
    x_all, y_all = load_digits(return_X_y=True)
    n_use = min(b.n_use or len(y_all), len(y_all))
    keep = np.sort(np.random.default_rng(ctx.seed).permutation(len(y_all))[:n_use])
    x, y = x_all[keep], y_all[keep]
    ctx.use_dataset("digits", note=f"scikit-learn 8×8 handwritten digits, {len(y)} images, 10 classes")
    rng = np.random.default_rng(ctx.seed)

    def fit(idx, c):
        # Standardised pixels + multinomial logistic regression: a fast, well-understood classifier.
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(x[idx], y[idx])

    def accuracy(train_idx, test_idx, c):
        return float(fit(train_idx, c).score(x[test_idx], y[test_idx]))

    with ctx.progress(len(CS) + 1, "choosing C") as bar:
        tr, va, te = stratified_split(y, (0.6, 0.2, 0.2), seed=ctx.seed)
        right = {}
        for c in CS:
            right[c] = fit(tr, c).predict(x[va]) == y[va]
            bar.advance(1, info=f"C = {c:g}")
        ranked = sorted(CS, key=lambda c: (-right[c].mean(), c))  # a tie goes to the smaller C
        chosen, runner_up = ranked[0], ranked[1]
        c_cmp = compare_predictions(f"C = {chosen:g}", right[chosen], f"C = {runner_up:g}", right[runner_up],
                                    metric="validation accuracy", unit="validation images")
        test_acc = accuracy(np.concatenate([tr, va]), te, chosen)
        bar.advance(1, info="test")

    def estimate(job):   # one accuracy estimate of the chosen C: a single 80/20 split, or one k-fold repeat
        kind, split_seed = job
        if kind == "single":
            return [accuracy(*random_split(len(y), (0.8, 0.2), seed=split_seed), chosen)]
        folds = StratifiedKFold(b.k, shuffle=True, random_state=split_seed).split(x, y)
        return [accuracy(a, t, chosen) for a, t in folds]

    jobs = [(kind, int(rng.integers(2 ** 31))) for kind, n in (("single", b.n_single), ("kfold", b.n_repeats))
            for _ in range(n)]
    estimates = ctx.map(estimate, jobs, "single splits and k-fold repeats", torch_runs=False)
    single = [e[0] for (kind, _), e in zip(jobs, estimates) if kind == "single"]
    fold_accs = [e for (kind, _), e in zip(jobs, estimates) if kind == "kfold"]
    kfold = [float(np.mean(f)) for f in fold_accs]
    f = (1 - b.test_fraction, b.test_fraction)
    seeds = [int(s) for s in rng.integers(2 ** 31, size=b.n_prop + 1)]
    dev_random = np.array([max_proportion_deviation(y[random_split(len(y), f, s)[1]], y, N_CLASSES)
                           for s in seeds[:-1]])
    dev_strat = np.array([max_proportion_deviation(y[stratified_split(y, f, s)[1]], y, N_CLASSES)
                          for s in seeds[:-1]])
    strat_cmp = compare_errors("a stratified split", dev_strat, "a random split", dev_random,
                               unit="pairs of small test parts", metric="largest class-share deviation")
    examples = {"random": class_proportions(y[random_split(len(y), f, seeds[-1])[1]], N_CLASSES),
                "stratified": class_proportions(y[stratified_split(y, f, seeds[-1])[1]], N_CLASSES)}
    spread_cmp = compare_spread(f"{b.k}-fold CV", kfold, "single split", single, seed=ctx.seed)
    props = {name: class_proportions(y[idx], N_CLASSES)
             for name, idx in (("train", tr), ("validation", va), ("test", te))}
    props["overall"] = class_proportions(y, N_CLASSES)
    r = Result(len(y), {"train": len(tr), "validation": len(va), "test": len(te)},
               {f"{c:g}": float(right[c].mean()) for c in CS}, chosen, c_cmp, test_acc, props, b.test_fraction,
               dev_random, dev_strat, strat_cmp, examples, b.k, single, kfold, fold_accs, spread_cmp)
    ctx.record(kfold_accuracy=float(np.mean(kfold)), kfold_accuracy_std_over_repeats=float(np.std(kfold, ddof=1)),
               kfold_estimates=kfold, fold_accuracies=fold_accs, k=b.k,
               single_split_accuracy_mean=float(np.mean(single)),
               single_split_accuracy_std=float(np.std(single, ddof=1)),
               single_split_estimates=single, single_split_range=[min(single), max(single)],
               spread_verdict=spread_cmp.verdict(), stratification_verdict=strat_cmp.verdict(),
               three_way_split={"sizes": r.sizes, "val_accuracy_by_C": r.val_accuracy, "chosen_C": chosen,
                                "chosen_C_verdict": c_cmp.verdict(), "test_accuracy": test_acc,
                                "class_proportions": props},
               stratification={"test_fraction": b.test_fraction, "splits": b.n_prop,
                               "max_share_deviation_mean": {"random": float(dev_random.mean()),
                                                            "stratified": float(dev_strat.mean())},
                               "max_share_deviation_max": {"random": float(dev_random.max()),
                                                           "stratified": float(dev_strat.max())}},
               examples=len(y))
    return r


def draw(ctx, r: Result) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.3))
    w, classes = 0.27, np.arange(N_CLASSES)
    n_part = int(round(r.test_fraction * r.examples))
    for i, (props, name, color) in enumerate(((r.split_props["overall"], f"whole set ({r.examples})", "0.5"),
                                              (r.example_props["random"], f"random part (~{n_part})", "#d62728"),
                                              (r.example_props["stratified"], f"stratified part (~{n_part})",
                                               "#1f77b4"))):
        axes[0].bar(classes + (i - 1) * w, props, w, color=color, label=name)
    axes[0].set_xticks(classes)
    axes[0].set_xlabel("digit class")
    axes[0].set_ylabel("share of the examples")
    axes[0].set_title(f"Class shares of one {pct(r.test_fraction, 0)} test part")
    legend_outside(axes[0])
    bins = np.linspace(0, max(r.dev_random.max(), r.dev_strat.max()) * 1.05, 30)
    axes[1].hist(r.dev_random, bins=bins, color="#d62728", alpha=0.7, label="random split")
    axes[1].hist(r.dev_strat, bins=bins, color="#1f77b4", alpha=0.7, label="stratified split")
    axes[1].set_xlabel("largest |class share in the part − class share overall| (fraction)")
    axes[1].set_ylabel(f"number of splits (of {len(r.dev_random)})")
    axes[1].set_title(f"Class-share error of {pct(r.test_fraction, 0)} test parts")
    legend_outside(axes[1])
    fig.suptitle(f"Stratified vs random splits, scikit-learn digits ({r.examples} images, {ctx.mode} mode)", y=1.03)
    fig.subplots_adjust(wspace=0.6)
    ctx.save_figure(fig, "stratification")

    fig, ax = plt.subplots(figsize=(9, 3.9))
    jitter = np.random.default_rng(0)
    for row, (vals, name, color) in enumerate(((r.single, f"{len(r.single)} single 80/20 splits", "#d62728"),
                                               (r.kfold, f"{len(r.kfold)} reshuffles of {r.k}-fold CV", "#1f77b4"))):
        m, sd = np.mean(vals), np.std(vals, ddof=1)
        ax.scatter(vals, row + jitter.uniform(-0.18, 0.18, len(vals)), s=18, alpha=0.6, color=color, label=name)
        ax.errorbar([m], [row + 0.32], xerr=[sd], fmt="D", color="k", capsize=4, markersize=4,
                    label="mean ± standard deviation" if row == 0 else None)
    ax.set_yticks([0, 1], ["single split", f"{r.k}-fold CV"])
    ax.set_ylim(-0.5, 1.7)
    ax.set_xlabel("estimated accuracy (fraction)")
    ax.set_title(f"Accuracy estimates by split, digits, C = {r.chosen_c:g} ({ctx.mode} mode)")
    legend_outside(ax)
    ctx.save_figure(fig, "kfold_vs_single_split")


def write_up(r: Result) -> str:
    props_dev = max(float(np.max(np.abs(p - r.split_props["overall"])))
                    for k, p in r.split_props.items() if k != "overall")
    v_chosen = r.val_accuracy[f"{r.chosen_c:g}"]
    if r.c_comparison.winner is None:
        chosen = (f"The procedure takes the highest validation accuracy, **C = {r.chosen_c:g}**, but the validation part "
                  f"cannot separate it from the runner-up: {r.c_comparison.sentence()} So it is a choice, not a "
                  f"measured best.")
    else:
        chosen = f"**C = {r.chosen_c:g}** is chosen: {r.c_comparison.sentence()}"
    sd_s, sd_k = float(np.std(r.single, ddof=1)), float(np.std(r.kfold, ddof=1))
    within = float(np.mean([np.std(a, ddof=1) for a in r.fold_accs]))
    gap = abs(np.mean(r.single) - np.mean(r.kfold))
    n_part = int(round(r.test_fraction * r.examples))
    return f"""
scikit-learn's digits ({r.examples} 8×8 images, 10 classes), classified by standardised pixels + logistic regression.

## Train / validation / test
A stratified 60/20/20 split ({r.sizes['train']} / {r.sizes['validation']} / {r.sizes['test']} images; every part's
class shares within {pct(props_dev, 2)} of the whole set's). C was chosen on the validation part only:

{table(["C", f"validation accuracy ({r.sizes['validation']} images)"], [(c, pct(v, 2)) for c, v in r.val_accuracy.items()])}

{chosen} Refitted on train + validation, it scored **{describe_accuracy(r.test_accuracy, r.sizes['test'])}** on the
untouched test part: that single number is the estimate to report. The validation accuracy of the chosen C
({pct(v_chosen, 2)}) was the best of {len(r.val_accuracy)} and so tends to flatter; here it was
{100 * abs(v_chosen - r.test_accuracy):.2f} points {'above' if v_chosen >= r.test_accuracy else 'below'} the test score
(one image of {r.sizes['test']} is {100 / r.sizes['test']:.2f} points).

## Stratification (`stratification.png`)
Over {len(r.dev_random)} pairs of {pct(r.test_fraction, 0)} test parts (~{n_part} images, the same seed for both kinds),
the class share that strayed furthest from the whole set's was off by {pct(r.dev_random.mean(), 2)} on average
(worst {pct(r.dev_random.max(), 2)}) with a plain random split and by {pct(r.dev_strat.mean(), 2)} (worst
{pct(r.dev_strat.max(), 2)}) with a stratified one. {r.strat_comparison.sentence()} Stratifying removes one source of
noise in small evaluation sets; with rare classes it also keeps them from vanishing from a part.

## k-fold vs single split (`kfold_vs_single_split.png`)
- {len(r.single)} single random 80/20 hold-out splits gave accuracies from {pct(min(r.single), 2)} to
  {pct(max(r.single), 2)} (standard deviation {pct(sd_s, 2)}): the choice of split alone spans
  {100 * (max(r.single) - min(r.single)):.1f} points.
- {len(r.kfold)} reshuffles of {r.k}-fold cross-validation gave {pct(np.mean(r.kfold), 2)} with a standard deviation of
  {pct(sd_k, 2)} between reshuffles ({sd_s / max(sd_k, 1e-12):.1f}× {'smaller' if sd_k < sd_s else 'larger'} than a
  single split's): {r.spread_comparison.sentence()} Every image is tested exactly once and {r.k} estimates are averaged.
- Inside one {r.k}-fold run the fold accuracies spread by {pct(within, 2)} (standard deviation); that describes single
  folds, not the uncertainty of their mean.
- The single-split mean ({pct(np.mean(r.single), 2)}) and the k-fold mean ({pct(np.mean(r.kfold), 2)}) differ by
  {100 * gap:.2f} points, {'less' if gap < sd_s else 'more'} than one single split's standard deviation: both estimate
  the same quantity, k-fold with less noise at {r.k}× the training cost.
"""
