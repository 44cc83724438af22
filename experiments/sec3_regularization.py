"""Section 3: regularization and generalization."""
from __future__ import annotations

from experiments.registry import task


def smooth_target(x):
    """The smooth function behind the noisy samples of 3.1 and 3.6: f(x) = sin(2πx)."""
    import numpy as np

    return np.sin(2 * np.pi * x)


def fit_polynomial(x, y, degree: int):
    """Least-squares polynomial on a scaled domain (numerically stable even at degree 15+)."""
    from numpy.polynomial import Polynomial

    return Polynomial.fit(x, y, degree, domain=[0, 1])


@task("3.1", "Polynomial regression: under- and over-fitting", datasets=("synthetic",), headline="best_degree")
def polynomial_regression(ctx):
    import numpy as np

    from utils.plotting import plt
    from utils.report import table

    degrees = (1, 3, 15)
    n_train, noise = 20, 0.25
    noise_var = noise ** 2
    ctx.use_dataset("synthetic", note=f"y = sin(2πx) + N(0, {noise}²), {n_train} training points, x ~ U(0, 1)")
    seeds = ctx.seeds()
    x_test = np.linspace(0, 1, 500)
    y_test_clean = smooth_target(x_test)
    train_mse = {d: [] for d in degrees}
    test_mse = {d: [] for d in degrees}
    first_fit = {}
    for s in seeds:
        rng = np.random.default_rng(s)
        x = np.sort(rng.uniform(0, 1, n_train))
        y = smooth_target(x) + rng.normal(0, noise, n_train)
        y_test = y_test_clean + rng.normal(0, noise, x_test.size)  # fresh noisy test draws
        for d in degrees:
            p = fit_polynomial(x, y, d)
            train_mse[d].append(float(np.mean((p(x) - y) ** 2)))
            test_mse[d].append(float(np.mean((p(x_test) - y_test) ** 2)))
            if s == seeds[0]:
                first_fit[d] = p
        if s == seeds[0]:
            x0, y0 = x, y
    tr = {d: float(np.mean(v)) for d, v in train_mse.items()}
    te = {d: float(np.mean(v)) for d, v in test_mse.items()}

    # Name each degree from its numbers (noise variance σ² is the floor a perfect model reaches):
    best = min(degrees, key=lambda d: te[d])
    verdict = {}
    for d in degrees:
        if d == best:
            verdict[d] = "well-fit"
        elif tr[d] > 2 * noise_var:
            verdict[d] = "under-fit"   # cannot even fit the training data down to the noise level
        elif te[d] > 1.5 * tr[d]:
            verdict[d] = "over-fit"    # fits training points (below σ²) but fails on new ones
        else:
            verdict[d] = "fits acceptably"

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    for ax, d in zip(axes, degrees):
        ax.plot(x_test, y_test_clean, color="0.3", linestyle="--", label="true f(x) = sin(2πx)")
        ax.scatter(x0, y0, s=18, color="#1f77b4", zorder=3, label="training samples")
        ax.plot(x_test, first_fit[d](x_test), color="#d62728", label=f"degree {d} fit")
        ax.set_ylim(-2, 2)
        ax.set_title(f"degree {d}: {verdict[d]}\ntrain MSE {tr[d]:.3f}, test MSE {te[d]:.3f}")
        ax.set_xlabel("x")
        ax.legend(loc="lower left")
    axes[0].set_ylabel("y")
    ctx.save_figure(fig, "fits")

    all_degrees = list(range(1, 16))
    rng = np.random.default_rng(seeds[0])
    curve_tr, curve_te = [], []
    for d in all_degrees:
        p = fit_polynomial(x0, y0, d)
        curve_tr.append(float(np.mean((p(x0) - y0) ** 2)))
        curve_te.append(float(np.mean((p(x_test) - (y_test_clean + rng.normal(0, noise, x_test.size))) ** 2)))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.semilogy(all_degrees, curve_tr, "o-", label="train MSE")
    ax.semilogy(all_degrees, curve_te, "s-", label="test MSE")
    ax.axhline(noise_var, color="0.4", linestyle=":", label=f"noise variance σ² = {noise_var:.3f}")
    for d in degrees:
        ax.axvline(d, color="0.85", zorder=0)
    ax.set_xlabel("polynomial degree")
    ax.set_ylabel("mean squared error (log scale)")
    ax.set_title("Train vs test error by degree (first seed)")
    ax.legend()
    ctx.save_figure(fig, "mse_vs_degree")

    ctx.record(degrees=list(degrees), train_mse={str(d): tr[d] for d in degrees},
               test_mse={str(d): te[d] for d in degrees},
               train_mse_per_seed={str(d): v for d, v in train_mse.items()},
               test_mse_per_seed={str(d): v for d, v in test_mse.items()},
               verdict={str(d): verdict[d] for d in degrees}, best_degree=best,
               noise_variance=noise_var, n_train=n_train, seeds=seeds)
    # What the full 1-15 curve (first seed) did, read from its numbers.
    train_falls = all(b <= a + 1e-12 for a, b in zip(curve_tr, curve_tr[1:]))
    best_curve = all_degrees[int(np.argmin(curve_te))]
    curve_text = (f"`mse_vs_degree.png` shows the whole range 1–15 for the first draw: training MSE "
                  f"{'never rises' if train_falls else 'mostly falls'} with degree ({curve_tr[0]:.3f} → {curve_tr[-1]:.2e}), "
                  f"while test MSE is lowest at degree {best_curve} ({min(curve_te):.3f}) and reaches "
                  f"{curve_te[-1]:.3g} at degree 15.")
    under = [d for d in degrees if verdict[d] == "under-fit"]
    over = [d for d in degrees if verdict[d] == "over-fit"]
    rows = [(d, f"{tr[d]:.4f}", f"{te[d]:.4f}", f"{te[d] / max(tr[d], 1e-12):.1f}×", verdict[d]) for d in degrees]
    lines = [f"Degree **{best}** has the lowest test MSE ({te[best]:.4f}, close to the noise floor σ² = {noise_var:.4f}): "
             f"it is the well-fit model."]
    for d in under:
        lines.append(f"Degree {d} is **under-fit**: even its training MSE ({tr[d]:.4f}) is "
                     f"{tr[d] / noise_var:.1f}× the noise variance, so the model is too simple to follow sin(2πx).")
    for d in over:
        lines.append(f"Degree {d} is **over-fit**: its training MSE ({tr[d]:.4f}) is below the noise variance — it "
                     f"fits the noise in {n_train} points — while its test MSE ({te[d]:.4f}) is {te[d] / tr[d]:.0f}× larger.")
    if not under and not over:
        lines.append("In these draws no degree met the under- or over-fitting criteria below; see the table.")
    ctx.write_analysis(f"""
{n_train} noisy training points of sin(2πx) (noise σ = {noise}), fitted by least squares with polynomials of
degree 1, 3 and 15; averaged over {len(seeds)} random draw(s) of the data.

{table(["degree", "train MSE", "test MSE", "test / train", "verdict"], rows)}

{chr(10).join('- ' + l for l in lines)}

Criteria, applied to the numbers above: the lowest test MSE is *well-fit*; a training MSE above 2σ² is
*under-fit*; a test MSE more than 1.5× the training MSE is *over-fit*. {curve_text}
""")


@task("3.5", "Early stopping", datasets=("mnist",), headline="test_accuracy.early_stopping", image_dataset=True, threads=1)
def early_stopping(ctx):
    import numpy as np
    import torch

    from models import MLP
    from utils.data import train_val_split
    from utils.plotting import plt
    from utils.report import compare, pct, spread, table

    # A small training subset and a wide MLP with no regularisation over-fit within a few
    # epochs, which is what early stopping is for.
    ds = ctx.load_images("mnist", train_size=ctx.pick(tiny=400, quick=3000, hybrid=5000, full=10000))
    epochs = ctx.pick(tiny=6, quick=30, hybrid=30, full=30)
    patience = ctx.pick(tiny=2, quick=7, hybrid=7, full=7)
    train, val = train_val_split(ds.x_train, ds.y_train, 0.2, seed=ctx.seed)
    in_features = int(np.prod(ds.shape))

    runs = {"fixed": [], "early_stopping": []}
    for s in ctx.seeds():
        for kind in runs:
            torch.manual_seed(s)  # identical initial weights for both runs of a seed
            model = MLP(in_features, (512, 256), ds.num_classes)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            res = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, seed=s,
                          patience=patience if kind == "early_stopping" else None,
                          description=f"{kind} (seed {s})")
            # The restored weights must reproduce the best epoch's validation loss exactly.
            val_loss_now, _ = ctx.evaluate(model, *val)
            test_loss, test_acc = ctx.evaluate(model, ds.x_test, ds.y_test)
            runs[kind].append({"result": res, "test_acc": test_acc, "test_loss": test_loss,
                               "val_loss_final_weights": val_loss_now})

    fixed, early = runs["fixed"][0], runs["early_stopping"][0]
    rf, re_ = fixed["result"], early["result"]
    best_val = re_.history["val_loss"][re_.best_epoch - 1]
    restore_error = abs(early["val_loss_final_weights"] - best_val)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ep_f = range(1, len(rf.history["val_loss"]) + 1)
    ep_e = range(1, len(re_.history["val_loss"]) + 1)
    axes[0].plot(ep_f, rf.history["train_loss"], color="#1f77b4", label="train")
    axes[0].plot(ep_f, rf.history["val_loss"], color="#d62728", label="validation")
    axes[0].axvline(rf.best_epoch, color="0.5", linestyle=":", label=f"lowest val loss (epoch {rf.best_epoch})")
    axes[0].set_title(f"Fixed {epochs} epochs: test acc {pct(fixed['test_acc'])}")
    axes[1].plot(ep_e, re_.history["train_loss"], color="#1f77b4", label="train")
    axes[1].plot(ep_e, re_.history["val_loss"], color="#d62728", label="validation")
    axes[1].axvline(re_.stopped_epoch, color="k", linestyle="--", label=f"stopped (epoch {re_.stopped_epoch})")
    axes[1].axvline(re_.best_epoch, color="#2ca02c", linestyle=":", label=f"best, restored (epoch {re_.best_epoch})")
    axes[1].set_title(f"Patience {patience}: test acc {pct(early['test_acc'])}")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (cross-entropy)")
        ax.set_xlim(0.5, epochs + 0.5)
        ax.legend()
    fig.suptitle(f"Early stopping, MLP 512-256 on {len(train[1])} {ds.label} images")
    ctx.save_figure(fig, "loss_curves")

    acc_f = [r["test_acc"] for r in runs["fixed"]]
    acc_e = [r["test_acc"] for r in runs["early_stopping"]]
    sec_f = [r["result"].seconds for r in runs["fixed"]]
    sec_e = [r["result"].seconds for r in runs["early_stopping"]]
    saved = 1 - np.mean(sec_e) / np.mean(sec_f)
    ctx.record(best_epoch=re_.best_epoch, stopped_epoch=re_.stopped_epoch,
               fixed_best_val_epoch=rf.best_epoch, epochs_fixed=epochs, patience=patience,
               test_accuracy={"fixed": fixed["test_acc"], "early_stopping": early["test_acc"]},
               train_seconds={"fixed": rf.seconds, "early_stopping": re_.seconds},
               test_accuracy_per_seed={"fixed": acc_f, "early_stopping": acc_e},
               train_seconds_per_seed={"fixed": sec_f, "early_stopping": sec_e},
               time_saved_fraction=float(saved), restore_check_abs_error=restore_error,
               val_loss={"fixed_final": rf.history["val_loss"][-1], "early_best": best_val})
    if restore_error > 1e-5:
        raise RuntimeError(f"restored weights do not reproduce the best validation loss (error {restore_error:.2e})")
    stopped = re_.status == "early_stopped"
    stop_text = (f"Early stopping ended training after epoch {re_.stopped_epoch} of {epochs}, {patience} epochs after the "
                 f"lowest validation loss at epoch {re_.best_epoch} ({best_val:.4f}), and restored that epoch's weights "
                 f"(re-evaluated validation loss {early['val_loss_final_weights']:.4f}, difference {restore_error:.1e})."
                 if stopped else
                 f"Validation loss never went {patience} epochs without improving, so early stopping ran all {epochs} "
                 f"epochs; it still restored the best epoch ({re_.best_epoch}).")
    ctx.write_analysis(f"""
MLP 784-512-256-{ds.num_classes} (Adam, lr 1e-3, no regularisation) on {len(train[1])} training images of
{ds.label}, {len(val[1])} for validation; identical initial weights for both runs.

{stop_text}
The fixed run's validation loss was lowest at epoch {rf.best_epoch} and ended at {rf.history['val_loss'][-1]:.4f}
after {epochs} epochs: it kept training {epochs - rf.best_epoch} epochs past its best point.

{table(["run", "epochs run", "train seconds", "test accuracy (seeds)"], [
    (f"fixed {epochs} epochs", epochs, f"{np.mean(sec_f):.1f}", spread(acc_f)),
    (f"patience {patience}, best restored", re_.stopped_epoch, f"{np.mean(sec_e):.1f}", spread(acc_e))])}

- Time saved by early stopping: {100 * saved:.0f}% of the fixed run's training time.
- Accuracy: {compare(acc_e, acc_f, "early stopping", f"fixed {epochs} epochs")}
""")


# ----------------------------------------------------------------------------- helpers of 3.2–3.4, 3.7
def image_subset(ctx, n_train: int, n_val: int):
    """The task's image data with a modest training subset and a validation split of it.

    A few thousand training images let an MLP over-fit within seconds, so the effect of a
    regulariser is visible in QUICK mode.
    """
    from utils.data import train_val_split

    ds = ctx.load_images("mnist", train_size=n_train + n_val)
    train, val = train_val_split(ds.x_train, ds.y_train, n_val / (n_train + n_val), seed=ctx.seed)
    return ds, train, val


def make_mlp(ds, seed: int, hidden=(512, 256, 128), **options):
    """models.MLP for ``ds``; the seed fixes the initial weights, so variants of a seed start alike."""
    import numpy as np
    import torch

    from models import MLP

    torch.manual_seed(seed)
    return MLP(int(np.prod(ds.shape)), tuple(hidden), ds.num_classes, **options)


def weight_matrices(model) -> list:
    """The weight matrices of a network (biases and normalisation scales excluded)."""
    return [p for p in model.parameters() if p.ndim >= 2]


def abs_weights(model):
    """|w| of all weight matrices as one NumPy vector."""
    import torch

    return torch.cat([p.detach().abs().flatten().cpu() for p in weight_matrices(model)]).numpy()


def add_weight_penalty(model, kind: str, lam: float) -> None:
    """Train ``model`` with the penalty λ·Σ|w| ("l1") or λ·Σw² ("l2") on its weight matrices.

    The penalty's gradient (λ·sign(w) or 2λ·w) is added to each weight's gradient by a hook
    during backward, so the cross-entropy that fit() reports stays the plain data loss and
    train/validation losses remain comparable. Biases are not penalised, as usual.
    """
    import torch

    if kind not in ("l1", "l2"):
        raise ValueError(f"penalty kind must be 'l1' or 'l2', got {kind!r}")
    for p in weight_matrices(model):
        if kind == "l1":
            p.register_hook(lambda g, p=p: g + lam * torch.sign(p.detach()))
        else:
            p.register_hook(lambda g, p=p: g + 2 * lam * p.detach())


def weight_penalty(model, kind: str, lam: float) -> float:
    """The value of the penalty of add_weight_penalty for the current weights."""
    return float(lam * sum((p.detach().abs() if kind == "l1" else p.detach() ** 2).sum() for p in weight_matrices(model)))


def near_zero_share(values, threshold: float) -> float:
    """Share of entries with |value| < threshold (the sparsity measure of 3.4)."""
    import numpy as np

    values = np.abs(np.asarray(values, dtype=float))
    return float((values < threshold).mean()) if values.size else 0.0


def prune_small_weights(model, threshold: float) -> int:
    """Set weights with |w| < threshold to exactly zero (in place); return how many were zeroed."""
    import torch

    zeroed = 0
    with torch.no_grad():
        for p in weight_matrices(model):
            small = p.abs() < threshold
            zeroed += int(small.sum())
            p[small] = 0.0
    return zeroed


def train_mlp(ctx, ds, train, val, *, seed: int, epochs: int, lr: float = 1e-3, sgd: bool = False,
              penalty: tuple[str, float] | None = None, description: str = "MLP", hidden=(512, 256, 128), **options):
    """Train make_mlp(ds, seed, ...) with Adam (or SGD with momentum 0.9); return (model, FitResult)."""
    import torch

    model = make_mlp(ds, seed, hidden, **options)
    if penalty is not None and penalty[1] > 0:
        add_weight_penalty(model, *penalty)
    opt = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if sgd
           else torch.optim.Adam(model.parameters(), lr=lr))
    result = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, seed=seed, description=description)
    return model, result


def accuracies(ctx, model, result, ds, train, val) -> dict:
    """Train (eval mode), validation and test accuracy of a trained model; None if it diverged."""
    if result.diverged:
        return {"status": "diverged", "train": None, "val": None, "test": None, "val_loss": None}
    val_loss, val_acc = ctx.evaluate(model, *val)
    return {"status": result.status, "train": ctx.evaluate(model, *train)[1], "val": val_acc,
            "test": ctx.evaluate(model, ds.x_test, ds.y_test)[1], "val_loss": val_loss}


def lambda_label(lam: float) -> str:
    return "0" if lam == 0 else f"{lam:.0e}".replace("e-0", "e-")


def compare_runs(a, b, name_a: str, name_b: str, **options) -> str:
    """utils.report.compare, or a note when one side has no result (every run of it diverged)."""
    from utils.report import compare

    missing = [name for name, v in ((name_a, a), (name_b, b)) if not v]
    return f"no comparison: {' and '.join(missing)} diverged." if missing else compare(a, b, name_a, name_b, **options)


def evaluation_noise(acc_a: float, acc_b: float, n: int) -> float:
    """Twice the binomial standard error sqrt(p(1 − p)/n) of an accuracy near (acc_a + acc_b)/2 on n examples.

    Two accuracies measured on n examples that differ by less than this are indistinguishable
    from the luck of which examples were drawn.
    """
    import math

    p = (acc_a + acc_b) / 2
    return 2 * math.sqrt(max(p * (1 - p), 1e-12) / n)


def evaluation_noise_note(acc_a: float, acc_b: float, n: int) -> str:
    """A sentence saying whether two accuracies on ``n`` examples differ by more than evaluation_noise."""
    import math

    if acc_a is None or acc_b is None or math.isnan(acc_a) or math.isnan(acc_b):
        return ""
    two_se = evaluation_noise(acc_a, acc_b, n)
    verdict = "larger" if abs(acc_a - acc_b) > two_se else "smaller"
    return (f"The difference, {100 * abs(acc_a - acc_b):.2f} points, is {verdict} than twice the binomial standard error "
            f"of an accuracy on {n} images (±{100 * two_se:.2f} points).")


@task("3.2", "Dropout 0.0 vs 0.5", datasets=("mnist",), headline="best_dropout", image_dataset=True, threads=1)
def dropout(ctx):
    import numpy as np

    from utils.plotting import plot_history, plt
    from utils.report import spread, table

    n_train = ctx.pick(tiny=300, quick=3000, hybrid=6000, full=10000)
    ds, train, val = image_subset(ctx, n_train, ctx.pick(tiny=100, quick=1000, hybrid=2000, full=2000))
    epochs = ctx.pick(tiny=2, quick=20, hybrid=30, full=40)
    rates = (0.0, 0.5)
    runs = {p: [] for p in rates}
    for s in ctx.seeds():
        for p in rates:
            model, res = train_mlp(ctx, ds, train, val, seed=s, epochs=epochs, dropout=p,
                                   description=f"dropout {p} (seed {s})")
            acc = accuracies(ctx, model, res, ds, train, val)
            # The gap uses train accuracy measured in eval mode (dropout off), like the test accuracy.
            acc["gap"] = None if res.diverged else acc["train"] - acc["test"]
            runs[p].append({"result": res, **acc})

    key = {p: f"{p:.1f}" for p in rates}
    colors = {0.0: "#d62728", 0.5: "#1f77b4"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for p in rates:
        plot_history(axes, runs[p][0]["result"].history, label=f"dropout {p}", color=colors[p])
    axes[0].set_title("Loss per epoch (solid: train, dashed: validation)")
    axes[1].set_title("Accuracy per epoch")
    fig.suptitle(f"MLP 512-256-128 on {len(train[1])} {ds.label} images, first seed")
    ctx.save_figure(fig, "curves")

    def values(p, k):
        return [r[k] for r in runs[p] if r[k] is not None]

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, p in enumerate(rates):
        tr, te = values(p, "train"), values(p, "test")
        if not te:
            ax.text(i, 0.5, "diverged", ha="center", color="0.4")
            continue
        ax.plot([i, i], [np.mean(te), np.mean(tr)], color="0.6", zorder=1)
        ax.scatter([i] * len(tr), tr, color="#1f77b4", s=50, zorder=3, label="train (eval mode)" if i == 0 else None)
        ax.scatter([i] * len(te), te, color="#d62728", marker="s", s=50, zorder=3, label="test" if i == 0 else None)
        ax.annotate(f"gap {100 * np.mean(values(p, 'gap')):.1f} pts", (i, (np.mean(tr) + np.mean(te)) / 2),
                    xytext=(10, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_xticks(range(len(rates)), [f"dropout {p}" for p in rates])
    ax.set_xlim(-0.5, len(rates) - 0.3)
    ax.set_ylabel("accuracy (fraction)")
    ax.margins(y=0.12)
    ax.set_title("Generalization gap: train vs test accuracy (one dot per seed)")
    ax.legend(loc="upper right")
    ctx.save_figure(fig, "generalization_gap")

    test = {p: values(p, "test") for p in rates}
    gap = {p: values(p, "gap") for p in rates}
    best = max(rates, key=lambda p: np.mean(test[p]) if test[p] else -1)
    first = {p: runs[p][0]["result"].history for p in rates}
    min_epoch = {p: int(np.argmin(first[p]["val_loss"])) + 1 if first[p]["val_loss"] else None for p in rates}
    ctx.record(test_accuracy={key[p]: float(np.mean(test[p])) for p in rates},
               generalization_gap={key[p]: float(np.mean(gap[p])) for p in rates},
               train_accuracy={key[p]: float(np.mean(values(p, "train"))) for p in rates},
               test_accuracy_per_seed={key[p]: test[p] for p in rates},
               generalization_gap_per_seed={key[p]: gap[p] for p in rates},
               run_status={key[p]: [r["status"] for r in runs[p]] for p in rates},
               best_dropout=key[best], epochs=epochs, train_examples=len(train[1]), val_examples=len(val[1]),
               lowest_val_loss_epoch={key[p]: min_epoch[p] for p in rates},
               val_loss_final={key[p]: first[p]["val_loss"][-1] if first[p]["val_loss"] else None for p in rates},
               seeds=ctx.seeds())

    rows = [(f"{p}", spread(values(p, "train")), spread(test[p]), spread(gap[p], fmt=lambda v: f"{100 * v:.1f} pts"),
             min_epoch[p], f"{first[p]['val_loss'][min_epoch[p] - 1]:.3f} → {first[p]['val_loss'][-1]:.3f}")
            for p in rates if test[p]]
    gap_diff = np.mean(gap[0.0]) - np.mean(gap[0.5])
    h = first[0.5]
    below = [e + 1 for e, (a, v) in enumerate(zip(h["train_acc"], h["val_acc"])) if a < v]
    below_note = (f"With dropout 0.5 that running training accuracy stayed below validation accuracy in {len(below)} "
                  f"of {len(h['val_acc'])} epochs, because half the units are dropped while it is measured."
                  if below else "")
    gap_text = (f"Dropout 0.5 {'narrowed' if gap_diff > 0 else 'widened'} the gap between training and test accuracy "
                f"by {abs(100 * gap_diff):.1f} percentage points ({100 * np.mean(gap[0.0]):.1f} → "
                f"{100 * np.mean(gap[0.5]):.1f}). Across seeds, with the smaller gap counted as better: "
                + compare_runs(gap[0.5], gap[0.0], "dropout 0.5", "dropout 0.0", higher_is_better=False))
    if gap_diff <= 0:
        gap_text += " The measured direction is the opposite of the textbook expectation that dropout narrows the gap."
    ctx.write_analysis(f"""
MLP {int(np.prod(ds.shape))}-512-256-128-{ds.num_classes} (ReLU, Adam lr 1e-3, {epochs} epochs) trained on a
deliberately small subset — {len(train[1])} {ds.label} images, {len(val[1])} for validation — so that the
unregularised network over-fits within the budget; dropout 0.0 and 0.5 start from identical weights.

{table(["dropout", "train accuracy", "test accuracy", "gap (train − test)", "lowest val loss at epoch (first seed)",
        "val loss: lowest → final (first seed)"], rows)}

- {gap_text}
- Test accuracy: {compare_runs(test[0.5], test[0.0], "dropout 0.5", "dropout 0.0")}
  {evaluation_noise_note(np.mean(test[0.5]), np.mean(test[0.0]), len(ds.y_test))}
- Validation loss (`curves.png`, first seed): without dropout it was lowest at epoch {min_epoch[0.0]} and ended at
  {first[0.0]['val_loss'][-1]:.3f}; with dropout 0.5 it was lowest at epoch {min_epoch[0.5]} and ended at
  {first[0.5]['val_loss'][-1]:.3f}. A validation loss that climbs while training loss keeps falling is over-fitting.

Train accuracy in the table is measured after training with dropout switched off (eval mode); the training
curves in `curves.png` are averaged over each epoch with dropout active. {below_note}
""")


@task("3.3", "L2 regularization strength", datasets=("mnist",), headline="best_lambda", image_dataset=True, threads=1)
def l2_regularization(ctx):
    import numpy as np

    from utils.plotting import plt
    from utils.report import pct, spread, table

    lambdas = (0.0, 1e-4, 1e-3, 1e-2)
    n_train = ctx.pick(tiny=300, quick=3000, hybrid=6000, full=10000)
    ds, train, val = image_subset(ctx, n_train, ctx.pick(tiny=100, quick=1000, hybrid=2000, full=2000))
    epochs = ctx.pick(tiny=2, quick=15, hybrid=30, full=40)
    seeds = ctx.seeds()
    runs = {lam: [] for lam in lambdas}
    first_weights, first_history = {}, {}
    for s in seeds:
        for lam in lambdas:
            model, res = train_mlp(ctx, ds, train, val, seed=s, epochs=epochs, penalty=("l2", lam),
                                   description=f"L2 λ={lambda_label(lam)} (seed {s})")
            acc = accuracies(ctx, model, res, ds, train, val)
            w = abs_weights(model)
            acc.update(weight_l2_norm=float(np.sqrt((w ** 2).sum())), mean_abs_weight=float(w.mean()),
                       penalty=weight_penalty(model, "l2", lam))
            runs[lam].append(acc)
            if s == seeds[0]:
                first_weights[lam], first_history[lam] = w, res.history
    init_weights = abs_weights(make_mlp(ds, seeds[0]))

    def values(lam, k):
        return [r[k] for r in runs[lam] if r[k] is not None]

    label = {lam: lambda_label(lam) for lam in lambdas}
    val_acc = {lam: float(np.mean(values(lam, "val"))) if values(lam, "val") else None for lam in lambdas}
    best = max((lam for lam in lambdas if val_acc[lam] is not None), key=lambda lam: val_acc[lam])
    colors = dict(zip(lambdas, ("#d62728", "#ff7f0e", "#2ca02c", "#1f77b4")))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    xs = np.arange(len(lambdas))
    for k, name, marker in (("train", "train (after training)", "o"), ("val", "validation", "s")):
        means = [np.mean(values(lam, k)) if values(lam, k) else np.nan for lam in lambdas]
        ax.plot(xs, means, marker=marker, label=name)
        for x, lam in zip(xs, lambdas):
            ax.scatter([x] * len(values(lam, k)), values(lam, k), color="0.5", s=10, zorder=3)
    ax.axvline(lambdas.index(best), color="0.4", linestyle=":", label=f"best λ = {label[best]} (validation)")
    ax.set_xticks(xs, [label[lam] for lam in lambdas])
    ax.set_xlabel("L2 strength λ (penalty λ·Σw²)")
    ax.set_ylabel("accuracy (fraction)")
    ax.set_title("Accuracy vs λ (grey dots: seeds)")
    ax.legend()
    ax = axes[1]
    for lam in lambdas:
        h = first_history[lam]
        ax.plot(range(1, len(h["val_loss"]) + 1), h["val_loss"], color=colors[lam], label=f"λ = {label[lam]}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (cross-entropy)")
    ax.set_title("Validation loss per epoch (first seed)")
    ax.legend()
    fig.suptitle(f"L2 regularization, MLP 512-256-128 on {len(train[1])} {ds.label} images")
    ctx.save_figure(fig, "accuracy_vs_lambda")

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    everything = np.concatenate([init_weights] + list(first_weights.values()))
    floor = 1e-6
    bins = np.logspace(np.log10(floor), np.log10(everything.max()), 70)
    ax.hist(np.clip(init_weights, floor, None), bins=bins, histtype="step", color="0.5", linestyle="--", linewidth=1.2,
            label=f"initial weights (mean |w| {init_weights.mean():.4f})")
    for lam in lambdas:
        w = first_weights[lam]
        ax.hist(np.clip(w, floor, None), bins=bins, histtype="step", color=colors[lam], linewidth=1.4,
                label=f"λ = {label[lam]} (mean |w| {w.mean():.4f}, ‖w‖₂ {np.sqrt((w ** 2).sum()):.1f})")
    ax.set_xscale("log")
    ax.set_xlabel("weight magnitude |w| (log scale; values below 1e-6 in the first bin)")
    ax.set_ylabel("number of weights")
    ax.set_title("Weight magnitudes after training, all layers (first seed)")
    ax.legend(loc="upper left")
    ctx.save_figure(fig, "weight_histograms")

    ctx.record(lambdas=list(lambdas), best_lambda=best,
               val_accuracy={label[lam]: val_acc[lam] for lam in lambdas},
               val_accuracy_per_seed={label[lam]: values(lam, "val") for lam in lambdas},
               train_accuracy={label[lam]: float(np.mean(values(lam, "train"))) for lam in lambdas if values(lam, "train")},
               test_accuracy={label[lam]: float(np.mean(values(lam, "test"))) for lam in lambdas if values(lam, "test")},
               test_accuracy_per_seed={label[lam]: values(lam, "test") for lam in lambdas},
               weight_l2_norm={label[lam]: float(np.mean(values(lam, "weight_l2_norm"))) for lam in lambdas},
               mean_abs_weight={label[lam]: float(np.mean(values(lam, "mean_abs_weight"))) for lam in lambdas},
               initial_mean_abs_weight=float(init_weights.mean()),
               final_penalty={label[lam]: float(np.mean(values(lam, "penalty"))) for lam in lambdas},
               run_status={label[lam]: [r["status"] for r in runs[lam]] for lam in lambdas},
               epochs=epochs, train_examples=len(train[1]), val_examples=len(val[1]), seeds=seeds)

    rows = [(label[lam], spread(values(lam, "val")), spread(values(lam, "train")),
             f"{100 * (np.mean(values(lam, 'train')) - val_acc[lam]):.1f} pts",
             f"{np.mean(values(lam, 'weight_l2_norm')):.1f}", f"{np.mean(values(lam, 'penalty')):.3f}")
            if val_acc[lam] is not None else (label[lam], "diverged", "", "", "", "")
            for lam in lambdas]
    order = sorted((lam for lam in lambdas if val_acc[lam] is not None), key=lambda lam: -val_acc[lam])
    norms = [np.mean(values(lam, "weight_l2_norm")) for lam in lambdas]
    shrink = all(a >= b for a, b in zip(norms, norms[1:]))
    gaps = [np.mean(values(lam, "train")) - val_acc[lam] for lam in lambdas if val_acc[lam] is not None]
    small_share = [near_zero_share(first_weights[lam], 1e-3) for lam in lambdas]
    largest = lambdas[-1]
    best_reg = max((lam for lam in lambdas if lam > 0 and val_acc[lam] is not None), key=lambda lam: val_acc[lam])
    gain = val_acc[best_reg] - val_acc[0.0]
    if gain <= 0:
        verdict = "here no λ beat the unregularised network on validation, contrary to it."
    elif gain > evaluation_noise(val_acc[best_reg], val_acc[0.0], len(val[1])):
        verdict = f"here the best λ gained {100 * gain:.2f} points, beyond the evaluation noise, which supports it."
    else:
        verdict = (f"here the best λ gained only {100 * gain:.2f} points, within the evaluation noise, so this run "
                   f"neither confirms nor refutes it.")
    textbook = "The textbook expects a moderate penalty to generalise better than none; " + verdict
    if val_acc[largest] is None:
        top_note = f"The strongest penalty, λ = {label[largest]}, diverged."
    elif largest != best:
        underfits = np.mean(values(largest, "train")) < np.mean(values(0.0, "train"))
        top_note = (f"The strongest penalty, λ = {label[largest]}, scored {pct(val_acc[largest])} on validation, "
                    f"{100 * (val_acc[best] - val_acc[largest]):.1f} points below the best, with train accuracy "
                    f"{pct(np.mean(values(largest, 'train')))} against {pct(np.mean(values(0.0, 'train')))} without "
                    f"penalty" + (": past some strength the penalty costs more fit than it saves in over-fitting."
                                  if underfits else "."))
    else:
        top_note = f"The strongest penalty tried, λ = {label[largest]}, was also the best: a larger λ might help further."
    ctx.write_analysis(f"""
MLP {int(np.prod(ds.shape))}-512-256-128-{ds.num_classes} (Adam lr 1e-3, {epochs} epochs) on {len(train[1])}
training images of {ds.label} (a small subset, so that the unregularised network over-fits), {len(val[1])}
validation images. The training loss is cross-entropy + λ·Σw² over the weight matrices (biases not
penalised); all λ start from identical initial weights.

{table(["λ", "validation accuracy", "train accuracy", "train − validation", "‖w‖₂", "penalty λ·Σw² at the end"], rows)}

- **Best λ on validation: {label[best]}** ({pct(val_acc[best])}); ranking {' > '.join(label[lam] for lam in order)}.
- Best penalised network against none: {compare_runs(values(best_reg, 'val'), values(0.0, 'val'), f'λ = {label[best_reg]}', 'λ = 0')}
  {evaluation_noise_note(val_acc[best_reg], val_acc[0.0], len(val[1]))} {textbook}
  On the test set (used only after choosing λ): λ = {label[best]} {spread(values(best, 'test'))},
  λ = 0 {spread(values(0.0, 'test'))}.
- {top_note}
- The train − validation accuracy gap went {' → '.join(f'{100 * g:.1f}' for g in gaps)} points as λ grew.
- Weight size (`weight_histograms.png`): the overall L2 norm of the weights went
  {' → '.join(f'{n:.1f}' for n in norms)} ({'monotonically smaller' if shrink else 'not monotonically'}; the
  initial weights had mean |w| {init_weights.mean():.4f}). The share of weights below 10⁻³ went
  {' → '.join(pct(v) for v in small_share)}: L2 pulls on each weight in proportion to its size (gradient 2λw),
  so the whole histogram moves left; how that differs from L1's constant pull is the subject of 3.4.
""")


@task("3.4", "L1 vs L2 regularization", datasets=("mnist",), headline="sparsity.l1", image_dataset=True, threads=1)
def l1_vs_l2(ctx):
    import copy

    import numpy as np

    from utils.plotting import plt
    from utils.report import pct, spread, table

    # Strengths picked in a preliminary QUICK run so that both penalties cost about the same
    # accuracy; what differs is where they put the weights. λ·Σ|w| and λ·Σw² have different
    # units, so equal λ would not be a like-for-like comparison.
    variants = {"none": None, "l1": ("l1", 1e-4), "l2": ("l2", 1e-3)}
    names = {"none": "no penalty", "l1": "L1, λ = 1e-4", "l2": "L2, λ = 1e-3"}
    colors = {"none": "#7f7f7f", "l1": "#d62728", "l2": "#1f77b4"}
    threshold = 1e-3  # "near zero": 1/20 of the initial mean |w| (about 0.02 for this MLP)
    n_train = ctx.pick(tiny=300, quick=3000, hybrid=6000, full=10000)
    ds, train, val = image_subset(ctx, n_train, ctx.pick(tiny=100, quick=1000, hybrid=2000, full=2000))
    epochs = ctx.pick(tiny=2, quick=15, hybrid=30, full=40)
    seeds = ctx.seeds()
    runs = {k: [] for k in variants}
    first = {}
    for s in seeds:
        for k, penalty in variants.items():
            model, res = train_mlp(ctx, ds, train, val, seed=s, epochs=epochs, penalty=penalty,
                                   description=f"{names[k]} (seed {s})")
            acc = accuracies(ctx, model, res, ds, train, val)
            acc["sparsity"] = None if res.diverged else near_zero_share(abs_weights(model), threshold)
            runs[k].append(acc)
            if s == seeds[0] and not res.diverged:
                first[k] = model
    init_weights = abs_weights(make_mlp(ds, seeds[0]))

    def values(k, key):
        return [r[key] for r in runs[k] if r[key] is not None]

    # Magnitude pruning of the first seed's models: zero the given share of weights (smallest |w|
    # first, all layers together) and re-measure test accuracy.
    all_shares = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
    shares = ctx.pick(tiny=(0.0, 0.5, 0.9), quick=all_shares, hybrid=all_shares, full=all_shares)
    def pruned_accuracy(model, cutoff):
        pruned = copy.deepcopy(model)
        prune_small_weights(pruned, cutoff)
        return ctx.evaluate(pruned, ds.x_test, ds.y_test)[1]

    pruning = {}
    for k, model in first.items():
        cutoffs = np.quantile(abs_weights(model), shares)
        pruning[k] = {"share_pruned": list(shares),
                      "test_accuracy": [pruned_accuracy(model, float(c) if sh > 0 else 0.0) for sh, c in zip(shares, cutoffs)],
                      "test_accuracy_at_threshold": pruned_accuracy(model, threshold)}
    per_layer = {k: [near_zero_share(p.detach().abs().cpu().numpy(), threshold) for p in weight_matrices(m)]
                 for k, m in first.items()}

    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.3))
    floor = 1e-6
    w_first = {k: abs_weights(m) for k, m in first.items()}
    bins = np.logspace(np.log10(floor), np.log10(max(w.max() for w in [init_weights, *w_first.values()])), 70)
    axes[0].hist(np.clip(init_weights, floor, None), bins=bins, histtype="step", color="0.6", linestyle="--",
                 label="initial weights")
    for k, w in w_first.items():
        axes[0].hist(np.clip(w, floor, None), bins=bins, histtype="step", color=colors[k], linewidth=1.4,
                     label=f"{names[k]}: {pct(near_zero_share(w, threshold))} below {threshold:g}")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("weight magnitude |w| (log scale; below 1e-6 in the first bin)")
    axes[0].set_ylabel("number of weights")
    axes[0].set_title("Weight magnitudes after training (first seed)")
    grid = np.logspace(-6, 0, 200)
    def share_below(w):
        return np.searchsorted(np.sort(w), grid) / w.size

    for k, w in w_first.items():
        axes[1].plot(grid, share_below(w), color=colors[k], label=names[k])
    axes[1].plot(grid, share_below(init_weights), color="0.6", linestyle="--", label="initial weights")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("threshold t (log scale)")
    axes[1].set_ylabel("share of weights with |w| < t")
    axes[1].set_title("Sparsity at every threshold")
    for ax in axes:
        ax.axvline(threshold, color="k", linestyle=":", linewidth=1, label=f"near-zero threshold {threshold:g}")
        ax.legend(loc="upper left")
    ctx.save_figure(fig, "weight_histograms")

    fig, ax = plt.subplots(figsize=(7, 4.3))
    for k, p in pruning.items():
        ax.plot(p["share_pruned"], p["test_accuracy"], "o-", color=colors[k], markersize=4, label=names[k])
    ax.set_xlabel("share of weights set to zero (smallest |w| first, all layers)")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title("Magnitude pruning after training (first seed)")
    ax.legend(loc="lower left")
    ctx.save_figure(fig, "pruning")

    test = {k: values(k, "test") for k in variants}
    sparsity = {k: values(k, "sparsity") for k in variants}

    def keep_accuracy(k, drop=0.01):
        """The largest share of weights pruned while test accuracy stays within ``drop`` of unpruned."""
        p = pruning[k]
        ok = [s for s, a in zip(p["share_pruned"], p["test_accuracy"]) if a >= runs[k][0]["test"] - drop]
        return max(ok, default=0.0)

    ctx.record(test_accuracy={k: float(np.mean(test[k])) for k in variants if test[k]},
               val_accuracy={k: float(np.mean(values(k, "val"))) for k in variants if values(k, "val")},
               train_accuracy={k: float(np.mean(values(k, "train"))) for k in variants if values(k, "train")},
               sparsity={k: float(np.mean(sparsity[k])) for k in variants if sparsity[k]},
               sparsity_threshold=threshold, initial_sparsity=near_zero_share(init_weights, threshold),
               sparsity_per_layer=per_layer, lambdas={k: v[1] for k, v in variants.items() if v},
               test_accuracy_per_seed=test, sparsity_per_seed=sparsity,
               pruned_test_accuracy_at_threshold={k: p["test_accuracy_at_threshold"] for k, p in pruning.items()},
               prunable_share_within_1pt={k: keep_accuracy(k) for k in pruning},
               pruning_curve=pruning, run_status={k: [r["status"] for r in runs[k]] for k in variants},
               epochs=epochs, train_examples=len(train[1]), seeds=seeds)

    rows = [(names[k], spread(values(k, "val")), spread(test[k]), spread(sparsity[k]),
             " / ".join(pct(v, 0) for v in per_layer[k]) if k in per_layer else "",
             pct(pruning[k]["test_accuracy_at_threshold"]) if k in pruning else "")
            if test[k] else (names[k], "diverged", "", "", "", "") for k in variants]
    exact_zero_note = ""
    if "l1" in w_first:
        exact = float((w_first["l1"] == 0).mean())
        exact_zero_note = (f"{'None' if exact == 0 else 'Only ' + pct(exact, 3)} of the L1 network's weights are exactly "
                           f"zero: with Adam the L1 subgradient "
                           f"λ·sign(w) makes small weights hover around zero rather than land on it (there is no proximal "
                           f"step), which is why sparsity is counted below a threshold.")
    if sparsity["l1"] and sparsity["l2"]:
        ratio = np.mean(sparsity["l1"]) / max(np.mean(sparsity["l2"]), 1e-9)
        sparsity_text = (f"{'L1' if ratio > 1 else 'L2'} left more near-zero weights — L1 {spread(sparsity['l1'])} vs "
                         f"L2 {spread(sparsity['l2'])} ({max(ratio, 1 / max(ratio, 1e-9)):.1f}× as many), "
                         f"no penalty {spread(sparsity['none'])}.")
    else:
        sparsity_text = "a regularised run diverged, so sparsity cannot be compared."
    ctx.write_analysis(f"""
MLP {int(np.prod(ds.shape))}-512-256-128-{ds.num_classes} (Adam lr 1e-3, {epochs} epochs) on {len(train[1])}
training images of {ds.label}, {len(val[1])} validation images; identical initial weights. Penalties on the
weight matrices only: L1 adds λ·Σ|w| (gradient λ·sign(w), a constant pull towards zero), L2 adds λ·Σw²
(gradient 2λw, a pull that fades as w shrinks). **Sparsity** is the share of weights with |w| < {threshold:g}
(the initial weights had {pct(near_zero_share(init_weights, threshold))} below it).

{table(["penalty", "validation accuracy", "test accuracy", f"share of weights below {threshold:g}",
        "per layer, 1st → last (first seed)", f"test accuracy, weights below {threshold:g} set to 0 (first seed)"], rows)}

- Sparsity: {sparsity_text}
- Accuracy: {compare_runs(test['l1'], test['l2'], 'L1', 'L2')}
  {evaluation_noise_note(np.mean(test['l1']), np.mean(test['l2']), len(ds.y_test))}
- Against no penalty: {compare_runs(test['l1'], test['none'], 'L1', 'no penalty')}
- Pruning (`pruning.png`): zeroing the weights below {threshold:g} changed test accuracy by
  {', '.join(f"{names[k]} {100 * (pruning[k]['test_accuracy_at_threshold'] - runs[k][0]['test']):+.2f} pts" for k in pruning)};
  the largest share of weights that could be zeroed (smallest first) while staying within 1 point of the
  unpruned accuracy was {', '.join(f"{names[k]} {pct(keep_accuracy(k))}" for k in pruning)}.

{exact_zero_note}
""")


# ----------------------------------------------------------------------------- 3.6
def bootstrap_predictions(x, y, x_eval, fit, n_boot: int, rng):
    """Predictions at ``x_eval`` of ``fit(x_b, y_b)`` for ``n_boot`` bootstrap resamples: (n_boot, len(x_eval)).

    Each resample draws len(x) points from (x, y) with replacement; ``fit`` returns a callable model.
    """
    import numpy as np

    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    return np.stack([fit(x[i], y[i])(x_eval) for i in idx])


def bias_variance_decomposition(predictions, f_true, y_test) -> dict:
    """Split the expected squared error of a family of fitted models into bias², variance and noise.

    predictions: (n_models, n_points), each row one fitted model's predictions at the test inputs;
    f_true: the noise-free target there; y_test: noisy observations there. Averaged over the points:
    bias² = (mean prediction − f)², variance = spread of the predictions around their mean,
    noise = (y − f)², test_mse = (prediction − y)² over all models. test_mse equals
    bias² + variance + noise up to the cross term 2·(mean prediction − f)·(f − y), which
    averages to zero when the test noise is independent of the fits (returned as ``residual``).
    """
    import numpy as np

    predictions = np.asarray(predictions, dtype=float)
    mean_prediction = predictions.mean(axis=0)
    out = {
        "bias_squared": float(np.mean((mean_prediction - f_true) ** 2)),
        "variance": float(np.mean(predictions.var(axis=0))),
        "noise": float(np.mean((y_test - f_true) ** 2)),
        "test_mse": float(np.mean((predictions - y_test) ** 2)),
    }
    out["residual"] = out["test_mse"] - out["bias_squared"] - out["variance"] - out["noise"]
    return out


@task("3.6", "Bias-variance trade-off", datasets=("synthetic",), headline="best_degree")
def bias_variance(ctx):
    import warnings

    import numpy as np

    from utils.plotting import plt
    from utils.report import table

    degrees = list(range(1, 21))
    n_train, noise = 30, 0.25
    n_models = ctx.pick(tiny=20, quick=200, hybrid=500, full=1000)
    # A fixed, evenly spaced design: with random x a gap at the edge of [0, 1] alone sends a
    # high-degree fit to ±10⁶, and that would hide the trade-off behind a few such draws.
    x = np.linspace(0, 1, n_train)
    f_train = smooth_target(x)
    ctx.use_dataset("synthetic", note=f"y = sin(2πx) + N(0, {noise}²) at {n_train} evenly spaced x in [0, 1]")
    x_test = np.linspace(0, 1, 200)
    f_test = smooth_target(x_test)
    seeds = ctx.seeds()
    keys = ("bias_squared", "variance", "noise", "test_mse", "residual")
    boot = {k: np.zeros((len(seeds), len(degrees))) for k in keys}
    fresh = {k: np.zeros((len(seeds), len(degrees))) for k in keys}
    single_train, single_test = np.zeros((len(seeds), len(degrees))), np.zeros((len(seeds), len(degrees)))
    rank_deficient = np.zeros(len(degrees))
    shown = {}
    with ctx.progress(len(seeds) * len(degrees), "polynomial fits") as bar, warnings.catch_warnings():
        # A bootstrap resample repeats points; with fewer distinct x than coefficients the
        # least-squares problem is under-determined and numpy warns, then returns the minimum-norm fit.
        warnings.simplefilter("ignore", np.exceptions.RankWarning)
        for si, s in enumerate(seeds):
            rng = np.random.default_rng(s)
            y = f_train + rng.normal(0, noise, n_train)
            y_test = f_test + rng.normal(0, noise, x_test.size)
            # The generator is known here, so fresh training sets (new noise) give the true decomposition.
            fresh_ys = f_train + rng.normal(0, noise, (n_models, n_train))
            for di, d in enumerate(degrees):
                fit = lambda xs, ys, d=d: fit_polynomial(xs, ys, d)  # noqa: E731
                boot_rng = np.random.default_rng([s, d])
                preds = bootstrap_predictions(x, y, x_test, fit, n_models, boot_rng)
                for k, v in bias_variance_decomposition(preds, f_test, y_test).items():
                    boot[k][si, di] = v
                fresh_preds = np.stack([fit(x, yf)(x_test) for yf in fresh_ys])
                for k, v in bias_variance_decomposition(fresh_preds, f_test, y_test).items():
                    fresh[k][si, di] = v
                p = fit(x, y)
                single_train[si, di] = np.mean((p(x) - y) ** 2)
                single_test[si, di] = np.mean((p(x_test) - y_test) ** 2)
                if si == 0:
                    shown[d] = fresh_preds[:25]
                    # The same resamples again (same generator seed), to count their distinct points.
                    resample = np.random.default_rng([s, d]).integers(0, n_train, size=(n_models, n_train))
                    rank_deficient[di] = np.mean([len(np.unique(r)) < d + 1 for r in resample])
                bar.advance(1, info=f"seed {s} degree {d}")
            if si == 0:
                y0 = y

    est = {k: boot[k].mean(0) for k in keys}
    truth = {k: fresh[k].mean(0) for k in keys}
    di = {d: i for i, d in enumerate(degrees)}
    best = degrees[int(np.argmin(est["test_mse"]))]
    best_true = degrees[int(np.argmin(truth["test_mse"]))]
    best_per_seed = [degrees[int(i)] for i in boot["test_mse"].argmin(1)]
    best_true_per_seed = [degrees[int(i)] for i in fresh["test_mse"].argmin(1)]
    under, over = degrees[0], degrees[-1]

    def crossing(parts):
        return next((d for d in degrees if parts["variance"][di[d]] > parts["bias_squared"][di[d]]), None)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, parts, name in ((axes[0], est, f"Bootstrap: {n_models} resamples of the one training set"),
                            (axes[1], truth, f"Ground truth: {n_models} fresh training sets")):
        ax.semilogy(degrees, parts["test_mse"], "o-", color="k", markersize=4, label="expected test MSE (measured)")
        ax.semilogy(degrees, parts["bias_squared"], "s-", color="#1f77b4", markersize=4, label="bias²")
        ax.semilogy(degrees, parts["variance"], "^-", color="#d62728", markersize=4, label="variance")
        ax.semilogy(degrees, parts["noise"], ":", color="0.4", label="noise (measured on the test targets)")
        ax.semilogy(degrees, parts["bias_squared"] + parts["variance"] + parts["noise"], "--", color="#2ca02c",
                    linewidth=1.2, label="bias² + variance + noise")
        b = degrees[int(np.argmin(parts["test_mse"]))]
        ax.axvline(b, color="#9467bd", linestyle="-.", linewidth=1, zorder=0, label=f"lowest test MSE: degree {b}")
        ax.set_xlabel("polynomial degree")
        ax.set_ylabel("mean squared error (log scale)")
        ax.set_title(name)
        ax.set_xticks(degrees[::2] if len(degrees) > 10 else degrees)
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(f"Bias–variance decomposition, {n_train} training points, noise σ = {noise}")
    ctx.save_figure(fig, "decomposition")

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax.semilogy(degrees, single_train.mean(0), "o-", markersize=4, label="train MSE (one fit on the training set)")
    ax.semilogy(degrees, single_test.mean(0), "s-", markersize=4, label="test MSE of that fit")
    ax.semilogy(degrees, truth["test_mse"], "d-", markersize=4, label="expected test MSE over fresh training sets")
    top = 3 * max(single_test.mean(0).max(), truth["test_mse"].max())
    off = [d for d in degrees if est["test_mse"][di[d]] > top]
    ax.semilogy(degrees, est["test_mse"], "^--", markersize=4,
                label="expected test MSE, bootstrap estimate" + (f" (off the scale from degree {off[0]})" if off else ""))
    ax.axhline(noise ** 2, color="0.4", linestyle=":", label=f"noise variance σ² = {noise ** 2:.4f}")
    ax.set_ylim(min(single_train.mean(0).min(), noise ** 2) / 2, top)
    ax.set_xlabel("polynomial degree")
    ax.set_ylabel("mean squared error (log scale)")
    ax.set_xticks(degrees[::2] if len(degrees) > 10 else degrees)
    ax.set_title(f"Test error vs model complexity ({n_train} training points)")
    ax.legend(loc="upper left", fontsize=7)
    ctx.save_figure(fig, "test_error")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    for ax, d, verdict in zip(axes, (under, best_true, over), ("under-fit", "best", "over-fit")):
        for j, row in enumerate(shown[d]):
            ax.plot(x_test, row, color="#d62728", alpha=0.2, linewidth=0.8,
                    label="fits to fresh training sets" if j == 0 else None)
        ax.plot(x_test, np.mean(shown[d], 0), color="#d62728", linewidth=2, label="mean of the fits")
        ax.plot(x_test, f_test, color="k", linestyle="--", label="true f(x) = sin(2πx)")
        ax.scatter(x, y0, s=14, color="#1f77b4", zorder=3, label="one training set")
        ax.set_ylim(-2, 2)
        ax.set_xlabel("x")
        ax.set_title(f"degree {d} ({verdict})\nbias² {truth['bias_squared'][di[d]]:.3g}, "
                     f"variance {truth['variance'][di[d]]:.3g}")
    axes[0].set_ylabel("y")
    axes[0].legend(loc="lower left", fontsize=7)
    ctx.save_figure(fig, "fits")

    def per_degree(arr):
        return {str(d): float(v) for d, v in zip(degrees, arr)}

    ctx.record(degrees=degrees, best_degree=best, best_degree_per_seed=best_per_seed,
               bias_squared=per_degree(est["bias_squared"]), variance=per_degree(est["variance"]),
               noise=per_degree(est["noise"]), test_mse=per_degree(est["test_mse"]),
               decomposition_residual=per_degree(est["residual"]),
               test_mse_per_seed={str(d): boot["test_mse"][:, i] for i, d in enumerate(degrees)},
               fresh_data={"best_degree": best_true, "best_degree_per_seed": best_true_per_seed,
                           "bias_squared": per_degree(truth["bias_squared"]), "variance": per_degree(truth["variance"]),
                           "test_mse": per_degree(truth["test_mse"]),
                           "decomposition_residual": per_degree(truth["residual"])},
               single_fit={"train_mse": per_degree(single_train.mean(0)), "test_mse": per_degree(single_test.mean(0))},
               bootstrap_rank_deficient_share=per_degree(rank_deficient), noise_variance=noise ** 2,
               n_train=n_train, n_models=n_models,
               variance_exceeds_bias_from_degree={"bootstrap": crossing(est), "fresh_data": crossing(truth)}, seeds=seeds)

    def rel_residual(parts):
        return float(np.max(np.abs(parts["residual"]) / parts["test_mse"]))

    def g(v):
        return f"{v:.3g}" if v < 1e4 else f"{v:.1e}"

    show = sorted({1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, best, best_true} & set(degrees))
    rows = [(d, g(truth["bias_squared"][di[d]]), g(truth["variance"][di[d]]), g(truth["test_mse"][di[d]]),
             g(est["bias_squared"][di[d]]), g(est["variance"][di[d]]), g(est["test_mse"][di[d]]),
             f"{100 * rank_deficient[di[d]]:.0f}%") for d in show]
    t = truth
    u_shape = t["test_mse"][di[best_true]] < min(t["test_mse"][di[under]], t["test_mse"][di[over]])
    agree = sum(est["test_mse"][di[d]] <= 1.5 * t["test_mse"][di[d]] for d in degrees)
    sane = [d for d in degrees if t["variance"][di[d]] / 2 <= est["variance"][di[d]] <= 2 * t["variance"][di[d]]]
    overstated = [d for d in degrees if est["variance"][di[d]] > 2 * t["variance"][di[d]]]
    seeds_note = (f" Over {len(seeds)} seeds the best degree was {', '.join(map(str, best_true_per_seed))} (fresh data) and "
                  f"{', '.join(map(str, best_per_seed))} (bootstrap)." if len(seeds) > 1 else "")
    ct, cb = crossing(t), crossing(est)
    distinct = n_train * (1 - (1 - 1 / n_train) ** n_train)
    ctx.write_analysis(f"""
## Setup
{n_train} training points at evenly spaced x in [0, 1], y = sin(2πx) + Gaussian noise (σ = {noise}: irreducible
error σ² = {noise ** 2:.4f}); least-squares polynomials of degree 1–20. For each degree the expected squared error
on 200 test inputs is split by `bias_variance_decomposition` into **bias²** (distance of the average fitted curve
from sin(2πx)), **variance** (how much the fitted curve moves when the training data change) and **noise** (the
test targets' own scatter, measured). The family of fitted curves comes from two sources:
**bootstrap** — {n_models} resamples, with replacement, of the one training set (all one has with real data) —
and, because the generator is known, **fresh training sets** ({n_models} new noise draws): the ground truth.

## Result
{table(["degree", "bias² (fresh)", "variance (fresh)", "test MSE (fresh)", "bias² (bootstrap)", "variance (bootstrap)",
        "test MSE (bootstrap)", "resamples under-determined"], rows)}

- **Test error is {'U-shaped' if u_shape else 'not U-shaped in this run'}** (`test_error.png`): on fresh data the
  expected test MSE is {t['test_mse'][di[under]]:.4f} at degree {under}, lowest at **degree {best_true}
  ({t['test_mse'][di[best_true]]:.4f}, {t['test_mse'][di[best_true]] / noise ** 2:.2f}× σ²)** and
  {t['test_mse'][di[over]]:.4f} at degree {over}, while the training MSE only falls
  ({single_train.mean(0)[di[under]]:.4f} → {single_train.mean(0)[di[over]]:.4f}, below σ² from degree
  {next((d for d in degrees if single_train.mean(0)[di[d]] < noise ** 2), '—')}).{seeds_note}
- **Bias² falls, variance rises** (`decomposition.png`, fresh data): bias² {t['bias_squared'][di[under]]:.4f} →
  {t['bias_squared'][di[over]]:.2g}, variance {t['variance'][di[under]]:.4f} → {t['variance'][di[over]]:.3g}
  (degree {under} → {over}); {f'variance first exceeds bias² at degree {ct}' if ct else 'variance never exceeds bias²'}.
  Degree {under} is **under-fit**: bias² is {t['bias_squared'][di[under]] / t['variance'][di[under]]:.0f}× the variance
  — a line misses the sine the same way on every training set. Degree {over} is **over-fit**: variance is
  {t['variance'][di[over]] / max(t['bias_squared'][di[over]], 1e-12):.0f}× the bias² — the curve follows the noise
  of whichever {n_train} points it saw (`fits.png`).
- **The parts add up**: bias² + variance + noise equals the directly measured expected test MSE to within
  {100 * rel_residual(t):.2f}% (fresh) and {100 * rel_residual(est):.2f}% (bootstrap) at every degree; the remainder
  is the cross term between the fits and the test noise. Measured noise {est['noise'][0]:.4f} vs σ² = {noise ** 2:.4f}.

## How good is the bootstrap?
The bootstrap picked degree **{best}** (fresh data: {best_true}){', the same model' if best == best_true else ', a different model'}.
Its expected test MSE was within 1.5× of the truth at {agree} of {len(degrees)} degrees. Its variance was within a
factor 2 of the true variance at degree(s) {', '.join(map(str, sane)) or 'none'} and more than twice it at
{len(overstated)} degrees: at degree {under} it was {est['variance'][di[under]] / t['variance'][di[under]]:.1f}× the truth
(resampling (x, y) pairs also makes the x positions random, which tilts a misspecified line; the fresh training sets
keep x fixed), and at high degree it grows without bound (degree {over}: {g(est['variance'][di[over]])} vs
{g(t['variance'][di[over]])}){f'; it first puts variance above bias² at degree {cb}' if cb else ''}.
The reason is structural, not a bug: a resample of {n_train} points contains on average only {distinct:.0f}
distinct ones, leaving gaps between them that a high-degree polynomial bridges with huge swings, and once the
degree reaches the number of distinct points (from degree {next((d for d in degrees if rank_deficient[di[d]] > 0.5), '—')}
in more than half the resamples) the fit is under-determined. So the bootstrap answers "what if I had about
{distinct:.0f} distinct points" and overstates the variance of flexible models. Its variance figures are no substitute for the
fresh-data truth; as a tool for choosing the degree it
{'still pointed to the right one here' if best == best_true else f'pointed to degree {best} instead of {best_true} here'}.
""")


# ----------------------------------------------------------------------------- 3.7
def epochs_to_reach(values, target: float):
    """1-based index of the first value >= target, or None if never reached."""
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def batch_norm_internals(model, x_all, x_batch, batch_sizes, x_eval, y_eval) -> dict:
    """What the first BatchNorm layer of ``model`` does in training vs evaluation mode.

    Compares, per feature, the statistics of the layer's input over all of ``x_all`` (the
    population), over one mini-batch ``x_batch``, and the running estimates the layer keeps;
    then the network's outputs on the same inputs in train mode (batch statistics) and eval
    mode (running statistics). The model itself is left untouched (probes run on copies).
    """
    import copy

    import torch

    def probe():
        net = copy.deepcopy(model).cpu()
        bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d))
        seen = []
        bn.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
        return net, bn, seen

    bn0 = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    running_mean, running_var = bn0.running_mean.detach().cpu(), bn0.running_var.detach().cpu()
    other = torch.cat([x_batch[:1], x_all[:len(x_batch) - 1]])  # the first image with other batch-mates
    with torch.no_grad():
        net, _, seen = probe()
        net.eval()
        net(x_all)
        pre = seen[-1]
        pop_mean, pop_var = pre.mean(0), pre.var(0, unbiased=False)
        eval_logits = net(x_batch)
        same_example_eval = float((net(other)[0] - eval_logits[0]).abs().max())
        eval_acc = float((net(x_eval).argmax(1) == y_eval).float().mean())
        # Train mode on a fresh copy: every forward pass there also moves the copy's running estimates.
        net, _, seen = probe()
        net.train()
        train_logits = net(x_batch)
        batch_mean, batch_var = seen[-1].mean(0), seen[-1].var(0, unbiased=False)
        same_example_train = float((net(other)[0] - train_logits[0]).abs().max())
        train_mode_acc = {}
        for bs in batch_sizes:
            n = len(x_eval) // bs * bs
            preds = torch.cat([net(x_eval[i:i + bs]).argmax(1) for i in range(0, n, bs)])
            train_mode_acc[bs] = float((preds == y_eval[:n]).float().mean())

    def rel(a, b):
        return float(((a - b).abs() / b.abs().clamp_min(1e-8)).mean())

    return {
        "population_mean": pop_mean.numpy(), "population_var": pop_var.numpy(),
        "running_mean": running_mean.numpy(), "running_var": running_var.numpy(),
        "batch_mean": batch_mean.numpy(), "batch_var": batch_var.numpy(), "batch_size": len(x_batch),
        "running_vs_population_mean_abs_error": float((running_mean - pop_mean).abs().mean()),
        "batch_vs_population_mean_abs_error": float((batch_mean - pop_mean).abs().mean()),
        "running_vs_population_var_rel_error": rel(running_var, pop_var),
        "batch_vs_population_var_rel_error": rel(batch_var, pop_var),
        "train_vs_eval_logit_mean_abs_diff": float((train_logits - eval_logits).abs().mean()),
        "train_vs_eval_prediction_agreement": float((train_logits.argmax(1) == eval_logits.argmax(1)).float().mean()),
        "same_example_other_batch_logit_change": {"train_mode": same_example_train, "eval_mode": same_example_eval},
        "eval_mode_accuracy": eval_acc, "train_mode_accuracy_by_batch_size": train_mode_acc,
    }


@task("3.7", "Normalization: none vs batch norm vs layer norm", datasets=("mnist",),
      headline="first_epoch_val_accuracy.batch_norm", image_dataset=True, threads=1)
def normalization(ctx):
    import numpy as np

    from utils.plotting import plot_history, plt
    from utils.report import pct, spread, table

    kinds = {"none": {}, "batch_norm": {"batch_norm": True}, "layer_norm": {"layer_norm": True}}
    names = {"none": "no normalization", "batch_norm": "batch norm", "layer_norm": "layer norm"}
    colors = {"none": "#7f7f7f", "batch_norm": "#1f77b4", "layer_norm": "#2ca02c"}
    hidden = (256, 256, 256)
    base_lr = 0.01
    lrs = ctx.pick(tiny=(0.01, 0.5), quick=(0.01, 0.1, 0.5, 2.0), hybrid=(0.01, 0.1, 0.5, 1.0, 2.0),
                   full=(0.01, 0.1, 0.5, 1.0, 2.0))
    n_train = ctx.pick(tiny=300, quick=3000, hybrid=6000, full=10000)
    ds, train, val = image_subset(ctx, n_train, ctx.pick(tiny=100, quick=1000, hybrid=2000, full=2000))
    epochs = ctx.pick(tiny=2, quick=8, hybrid=12, full=15)
    seeds = ctx.seeds()
    runs = {(k, lr): [] for k in kinds for lr in lrs}
    bn_model = None
    several_seeds = len(seeds) > 1
    for s in seeds:
        for lr in lrs:
            for k, opts in kinds.items():
                model, res = train_mlp(ctx, ds, train, val, seed=s, epochs=epochs, lr=lr, sgd=True, hidden=hidden,
                                       description=f"{names[k]}, lr {lr}" + (f" (seed {s})" if several_seeds else ""), **opts)
                runs[(k, lr)].append(res)
                if k == "batch_norm" and lr == base_lr and s == seeds[0]:
                    bn_model = model

    def final_val(k, lr):
        """Final validation accuracy per seed; None for a diverged run."""
        return [None if r.diverged else r.history["val_acc"][-1] for r in runs[(k, lr)]]

    base = {k: runs[(k, base_lr)] for k in kinds}
    best_final = max(r.history["val_acc"][-1] for k in kinds for r in base[k] if not r.diverged)
    target = round(0.95 * best_final, 3)
    first_epoch = {k: [r.history["val_acc"][0] for r in base[k] if r.history["val_acc"]] for k in kinds}
    to_target = {k: [epochs_to_reach(r.history["val_acc"], target) for r in base[k]] for k in kinds}

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for k in kinds:
        plot_history(axes, base[k][0].history, label=names[k], color=colors[k])
    axes[1].axhline(target, color="k", linestyle=":", linewidth=1, label=f"target {pct(target)}")
    axes[1].legend(fontsize=7)
    axes[0].set_title(f"Loss per epoch, SGD lr {base_lr}")
    axes[1].set_title("Accuracy per epoch (solid: train, dashed: validation)")
    fig.suptitle(f"Convergence: MLP {'-'.join(map(str, hidden))} on {len(train[1])} {ds.label} images (first seed)")
    ctx.save_figure(fig, "convergence")

    fig, ax = plt.subplots(figsize=(7, 4.3))
    for k in kinds:
        means = [np.mean([v for v in final_val(k, lr) if v is not None]) if any(v is not None for v in final_val(k, lr))
                 else np.nan for lr in lrs]
        ax.plot(lrs, means, "o-", color=colors[k], label=names[k])
        diverged_at = [lr for lr in lrs if any(v is None for v in final_val(k, lr))]
        if diverged_at:  # one × per diverged setting, at the bottom, offset per network so they do not overlap
            ax.scatter(diverged_at, [0.03 + 0.04 * list(kinds).index(k)] * len(diverged_at), marker="x", s=60,
                       color=colors[k], zorder=4, label=f"{names[k]}: diverged" + (" (some seed)" if several_seeds else ""))
    ax.axhline(1 / ds.num_classes, color="0.5", linestyle=":", linewidth=1, label="chance")
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("learning rate (SGD, momentum 0.9; log scale)")
    ax.set_ylabel(f"validation accuracy after {epochs} epochs")
    ax.set_title("Tolerance of high learning rates (× = diverged, NaN loss)")
    ax.legend(loc="center left")
    ctx.save_figure(fig, "lr_tolerance")

    all_sizes = (2, 4, 8, 32, 128, 500)
    batch_sizes = ctx.pick(tiny=(2, 16, 64), quick=all_sizes, hybrid=all_sizes, full=all_sizes)
    probe_batch = 32
    bn = batch_norm_internals(bn_model, train[0], val[0][:probe_batch], batch_sizes, *val)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, stat in ((axes[0], "mean"), (axes[1], "var")):
        pop = bn[f"population_{stat}"]
        ax.scatter(pop, bn[f"batch_{stat}"], s=9, alpha=0.6, color="#ff7f0e",
                   label=f"one training-mode batch of {bn['batch_size']}")
        ax.scatter(pop, bn[f"running_{stat}"], s=9, alpha=0.8, color="#1f77b4", label="running estimate (used in eval)")
        lo, hi = float(min(pop.min(), bn[f"batch_{stat}"].min())), float(max(pop.max(), bn[f"batch_{stat}"].max()))
        ax.plot([lo, hi], [lo, hi], color="k", linewidth=0.8, label="y = x")
        word = "mean" if stat == "mean" else "variance"
        ax.set_xlabel(f"{word} over the whole training set, per feature")
        ax.set_ylabel(f"{word} of the estimate")
        ax.set_title(f"First BN layer: input {word} per feature")
        ax.legend(fontsize=7, loc="upper left")
    accs = bn["train_mode_accuracy_by_batch_size"]
    axes[2].plot(list(accs), list(accs.values()), "o-", color="#ff7f0e", label="train mode (batch statistics)")
    axes[2].axhline(bn["eval_mode_accuracy"], color="#1f77b4", linestyle="--",
                    label=f"eval mode (running statistics): {pct(bn['eval_mode_accuracy'])}")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xlabel("batch size at prediction time (log scale)")
    axes[2].set_ylabel("validation accuracy")
    axes[2].set_title("Predicting in train vs eval mode")
    axes[2].legend(fontsize=7, loc="lower right")
    ctx.save_figure(fig, "bn_internals")

    tolerated = {}
    for k in kinds:
        finals = {lr: final_val(k, lr) for lr in lrs}
        best_k = max((np.mean([v for v in f if v is not None]) for f in finals.values() if any(v is not None for v in f)),
                     default=0.0)
        ok = [lr for lr, f in finals.items() if all(v is not None for v in f) and np.mean(f) >= best_k - 0.05]
        tolerated[k] = max(ok, default=None)
    lr_key = {lr: f"{lr:g}" for lr in lrs}
    ctx.record(
        first_epoch_val_accuracy={k: float(np.mean(v)) for k, v in first_epoch.items() if v},
        first_epoch_val_accuracy_per_seed=first_epoch, target_val_accuracy=target, epochs_to_target=to_target,
        final_val_accuracy={k: {lr_key[lr]: final_val(k, lr) for lr in lrs} for k in kinds},
        diverged={k: [lr_key[lr] for lr in lrs if any(v is None for v in final_val(k, lr))] for k in kinds},
        highest_tolerated_lr=tolerated, base_lr=base_lr, learning_rates=list(lrs),
        epoch_seconds={k: float(np.mean([np.mean(r.history["epoch_seconds"]) for r in base[k]])) for k in kinds},
        bn_internals={key: v for key, v in bn.items() if not key.startswith(("population_", "running_m", "running_v", "batch_m", "batch_v"))},
        epochs=epochs, hidden=list(hidden), train_examples=len(train[1]), seeds=seeds)

    def reach_text(k):
        vals = to_target[k]
        got = [v for v in vals if v is not None]
        if not got:
            return f"not within {epochs} epochs"
        return ((f"epoch {np.mean(got):.1f} ({len(got)}/{len(vals)} seeds)" if len(vals) > 1 else f"epoch {got[0]}")
                + ("" if len(got) == len(vals) else f", other seeds not within {epochs}"))

    rows = [(names[k], spread(first_epoch[k]), reach_text(k),
             spread([r.history["val_acc"][-1] for r in base[k] if not r.diverged]),
             f"{1000 * np.mean([np.mean(r.history['epoch_seconds']) for r in base[k]]):.0f} ms")
            for k in kinds]
    lr_rows = [(f"{lr:g}", *[", ".join("diverged" if v is None else pct(v) for v in final_val(k, lr)) for k in kinds])
               for lr in lrs]
    tol_text = "; ".join(f"{names[k]} up to {tolerated[k]:g}" if tolerated[k] else f"{names[k]}: none" for k in kinds)
    accs_sorted = sorted(accs.items())
    small_bs, small_acc = accs_sorted[0]
    if (bn["running_vs_population_mean_abs_error"] < bn["batch_vs_population_mean_abs_error"]
            and bn["running_vs_population_var_rel_error"] < bn["batch_vs_population_var_rel_error"]):
        running_note = ("So the running averages (momentum 0.1, over the last batches of training) are the better "
                        "estimate of the population statistics; a single batch is a noisy one. They are not exact, "
                        "partly because they average batches seen while the weights were still changing.")
    else:
        running_note = ("Here the running averages were not closer to the population statistics than one batch: "
                        "they average batches seen while the weights were still changing.")
    small_note = (f": {small_bs}-image batches give statistics too noisy to normalise with, and the prediction for an "
                  f"image then depends on its batch-mates." if small_acc < bn["eval_mode_accuracy"] - 0.05 else ".")
    ctx.write_analysis(f"""
MLP {int(np.prod(ds.shape))}-{'-'.join(map(str, hidden))}-{ds.num_classes} (ReLU; the normalization layer sits
between each linear layer and its ReLU), SGD with momentum 0.9, {epochs} epochs, {len(train[1])} training and
{len(val[1])} validation images of {ds.label}; all variants of a seed share the initial weights of their linear layers.

## Convergence speed (SGD lr {base_lr}, `convergence.png`)
{table(["normalization", "val. accuracy after epoch 1", f"first epoch at ≥ {pct(target)} val. accuracy",
        f"val. accuracy after {epochs} epochs", "time per epoch"], rows)}

The target is 95% of the best final validation accuracy among the three. After one epoch:
- {compare_runs(first_epoch['batch_norm'], first_epoch['none'], 'batch norm', 'no normalization')}
- {compare_runs(first_epoch['layer_norm'], first_epoch['none'], 'layer norm', 'no normalization')}

## Tolerance of a high learning rate (`lr_tolerance.png`)
Validation accuracy after {epochs} epochs{' (one value per seed)' if several_seeds else ''}:

{table(["learning rate", *[names[k] for k in kinds]], lr_rows)}

Highest learning rate that neither diverged nor lost more than 5 points against the best learning rate of the same
network: {tol_text}.

## Batch-norm internals (`bn_internals.png`, first BN layer of the lr {base_lr} network)
- **Running vs batch statistics.** Against each feature's mean over the whole training set,
  the running mean is off by {bn['running_vs_population_mean_abs_error']:.3f} on average and one batch of {probe_batch}
  by {bn['batch_vs_population_mean_abs_error']:.3f}; for the variance the mean relative errors are
  {pct(bn['running_vs_population_var_rel_error'])} and {pct(bn['batch_vs_population_var_rel_error'])}. {running_note}
- **Train vs eval mode.** On the same {probe_batch} validation images, train mode (normalise with the batch's own
  statistics) and eval mode (normalise with the running statistics) give logits that differ by
  {bn['train_vs_eval_logit_mean_abs_diff']:.3f} on average and the same predicted class for
  {pct(bn['train_vs_eval_prediction_agreement'])} of them. In train mode one image's logits changed by up to
  {bn['same_example_other_batch_logit_change']['train_mode']:.3f} when its batch-mates changed; in eval mode by
  {bn['same_example_other_batch_logit_change']['eval_mode']:.1g} — eval mode is a fixed function of each input.
- **Why eval mode matters.** Predicting in train mode, validation accuracy was {pct(small_acc)} with batches of
  {small_bs} and {pct(accs_sorted[-1][1])} with batches of {accs_sorted[-1][0]}, against
  {pct(bn['eval_mode_accuracy'])} in eval mode{small_note}
""")


# ----------------------------------------------------------------------------- 3.8
def class_proportions(y, n_classes: int):
    """Share of each class in the label vector ``y``."""
    import numpy as np

    return np.bincount(np.asarray(y), minlength=n_classes) / max(len(y), 1)


def random_split(n: int, fractions, seed: int) -> list:
    """Index arrays of a plain random split of range(n) into parts of the given fractions."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum(fractions)[:-1] / np.sum(fractions) * n).astype(int)
    return np.split(order, cuts)


def stratified_split(y, fractions, seed: int) -> list:
    """Index arrays of a split in which every part keeps the class proportions of ``y``.

    Each class is shuffled and cut by the fractions on its own, so a part's share of every class
    is within one example of the exact fraction.
    """
    import numpy as np

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
    import numpy as np

    return float(np.max(np.abs(class_proportions(y_part, n_classes) - class_proportions(y_all, n_classes))))


@task("3.8", "Data splits and cross-validation", datasets=("digits",), headline="kfold_accuracy", threads=1)
def data_splits(ctx):
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from utils.plotting import plt
    from utils.report import pct, table

    x_all, y_all = load_digits(return_X_y=True)
    n_use = ctx.pick(tiny=600, quick=len(y_all), hybrid=len(y_all), full=len(y_all))
    keep = np.sort(np.random.default_rng(ctx.seed).permutation(len(y_all))[:n_use])
    x, y = x_all[keep], y_all[keep]
    n_classes = 10
    ctx.use_dataset("digits", note=f"scikit-learn 8×8 handwritten digits, {len(y)} images, 10 classes")
    n_single = ctx.pick(tiny=8, quick=50, hybrid=100, full=200)
    n_repeats = ctx.pick(tiny=2, quick=10, hybrid=20, full=40)
    k = 5
    rng = np.random.default_rng(ctx.seed)

    def model(c=1.0):
        # Standardised pixels + multinomial logistic regression: a fast, well-understood classifier.
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))

    def accuracy(train_idx, test_idx, c=1.0):
        return float(model(c).fit(x[train_idx], y[train_idx]).score(x[test_idx], y[test_idx]))

    # Small problems: one BLAS thread is faster than several (and fair to other processes).
    with ctx.progress(4 + n_single + n_repeats, "fits") as bar:
        # 1. Train / validation / test: choose C on validation, report once on test.
        tr, va, te = stratified_split(y, (0.6, 0.2, 0.2), seed=ctx.seed)
        cs = (0.01, 0.1, 1.0, 10.0)
        val_acc = {}
        for c in cs:
            val_acc[c] = accuracy(tr, va, c)
            bar.advance(1, info=f"C = {c:g}")
        best_c = max(cs, key=lambda c: val_acc[c])  # a tie goes to the smaller C (stronger regularisation)
        test_acc = accuracy(np.concatenate([tr, va]), te, best_c)

        # 2. Single random 80/20 hold-out splits: how much does one estimate move with the split?
        single = []
        for i in range(n_single):
            a, b = random_split(len(y), (0.8, 0.2), seed=int(rng.integers(2 ** 31)))
            single.append(accuracy(a, b, best_c))
            bar.advance(1, info="single splits")

        # 3. k-fold cross-validation, repeated with different shuffles.
        kfold, fold_accs = [], []
        for _ in range(n_repeats):
            folds = StratifiedKFold(k, shuffle=True, random_state=int(rng.integers(2 ** 31))).split(x, y)
            accs = [accuracy(a, b, best_c) for a, b in folds]
            fold_accs.append(accs)
            kfold.append(float(np.mean(accs)))
            bar.advance(1, info="k-fold")

    # Stratification: class shares of small test parts, random vs stratified (no fitting needed).
    n_prop = ctx.pick(tiny=50, quick=500, hybrid=1000, full=1000)
    test_fraction = 0.1
    dev_random, dev_strat = [], []
    for _ in range(n_prop):
        s = int(rng.integers(2 ** 31))
        dev_random.append(max_proportion_deviation(y[random_split(len(y), (1 - test_fraction, test_fraction), s)[1]], y, n_classes))
        dev_strat.append(max_proportion_deviation(y[stratified_split(y, (1 - test_fraction, test_fraction), s)[1]], y, n_classes))
    example_seed = int(rng.integers(2 ** 31))
    ex_random = random_split(len(y), (1 - test_fraction, test_fraction), example_seed)[1]
    ex_strat = stratified_split(y, (1 - test_fraction, test_fraction), example_seed)[1]
    split_props = {name: class_proportions(y[idx], n_classes) for name, idx in (("train", tr), ("validation", va), ("test", te))}
    overall = class_proportions(y, n_classes)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    w = 0.27
    classes = np.arange(n_classes)
    for i, (props, name, color) in enumerate(((overall, f"whole set ({len(y)})", "0.5"),
                                               (class_proportions(y[ex_random], n_classes), f"random {pct(test_fraction, 0)} part ({len(ex_random)})", "#d62728"),
                                               (class_proportions(y[ex_strat], n_classes), f"stratified {pct(test_fraction, 0)} part ({len(ex_strat)})", "#1f77b4"))):
        axes[0].bar(classes + (i - 1) * w, props, w, color=color, label=name)
    axes[0].set_xticks(classes)
    axes[0].set_xlabel("digit class")
    axes[0].set_ylabel("share of the examples")
    axes[0].set_title("Class shares of one small test part")
    axes[0].set_ylim(0, axes[0].get_ylim()[1] * 1.25)
    axes[0].legend(fontsize=7, loc="upper center", ncol=3)
    bins = np.linspace(0, max(dev_random) * 1.05, 30)
    axes[1].hist(dev_random, bins=bins, color="#d62728", alpha=0.7, label=f"random split (mean {pct(np.mean(dev_random), 2)})")
    axes[1].hist(dev_strat, bins=bins, color="#1f77b4", alpha=0.7, label=f"stratified split (mean {pct(np.mean(dev_strat), 2)})")
    axes[1].set_xlabel("largest |class share in the part − class share overall| (fraction)")
    axes[1].set_ylabel(f"number of splits (of {n_prop})")
    axes[1].set_title(f"Class-share error of {pct(test_fraction, 0)} test parts")
    axes[1].legend(fontsize=7)
    ctx.save_figure(fig, "stratification")

    fig, ax = plt.subplots(figsize=(8, 3.8))
    jitter = np.random.default_rng(0)
    for row, (vals, name, color) in enumerate(((single, f"{n_single} single 80/20 splits", "#d62728"),
                                               (kfold, f"{n_repeats} repeats of {k}-fold CV", "#1f77b4"))):
        m, sd = np.mean(vals), np.std(vals, ddof=1)
        ax.scatter(vals, row + jitter.uniform(-0.18, 0.18, len(vals)), s=18, alpha=0.6, color=color,
                   label=f"{name}: {pct(m, 2)} ± {pct(sd, 2)}")
        ax.errorbar([m], [row + 0.32], xerr=[sd], fmt="D", color="k", capsize=4, markersize=4)
    ax.errorbar([], [], xerr=[], fmt="D", color="k", capsize=4, markersize=4, label="mean ± standard deviation")
    ax.set_yticks([0, 1], ["single split", f"{k}-fold CV"])
    ax.set_ylim(-0.5, 1.9)
    ax.set_xlabel("estimated accuracy (fraction)")
    ax.set_title(f"How much an accuracy estimate depends on the split (C = {best_c:g})")
    ax.legend(fontsize=7, loc="upper left")
    ctx.save_figure(fig, "kfold_vs_single_split")

    sd_single, sd_kfold = float(np.std(single, ddof=1)), float(np.std(kfold, ddof=1))
    within_fold_sd = float(np.mean([np.std(a, ddof=1) for a in fold_accs]))
    ctx.record(kfold_accuracy=float(np.mean(kfold)), kfold_accuracy_std_over_repeats=sd_kfold,
               kfold_estimates=kfold, fold_accuracies=fold_accs, within_kfold_fold_std=within_fold_sd, k=k,
               single_split_accuracy_mean=float(np.mean(single)), single_split_accuracy_std=sd_single,
               single_split_estimates=single, single_split_range=[min(single), max(single)],
               three_way_split={"sizes": {"train": len(tr), "validation": len(va), "test": len(te)},
                                "val_accuracy_by_C": {f"{c:g}": v for c, v in val_acc.items()}, "best_C": best_c,
                                "test_accuracy": test_acc,
                                "class_proportions": {n: p for n, p in split_props.items()}},
               class_proportions_overall=overall,
               stratification={"test_fraction": test_fraction, "splits": n_prop,
                               "max_share_deviation_mean": {"random": float(np.mean(dev_random)), "stratified": float(np.mean(dev_strat))},
                               "max_share_deviation_max": {"random": float(np.max(dev_random)), "stratified": float(np.max(dev_strat))}},
               examples=len(y))

    props_dev = max(float(np.max(np.abs(p - overall))) for p in split_props.values())
    ratio = sd_single / max(sd_kfold, 1e-12)
    ctx.write_analysis(f"""
scikit-learn's digits ({len(y)} 8×8 images, 10 classes), classified by standardised pixels + logistic regression.

## Train / validation / test
A stratified 60/20/20 split ({len(tr)} / {len(va)} / {len(te)} images; every part's class shares within
{pct(props_dev, 2)} of the whole set's). The regularisation constant C was chosen on the validation part only:

{table(["C", "validation accuracy"], [(f"{c:g}", pct(v, 2)) for c, v in val_acc.items()])}

Chosen **C = {best_c:g}**; refitted on train + validation, it scored **{pct(test_acc, 2)}** on the untouched test part.
That single test number is the honest estimate: the validation accuracy of the chosen C ({pct(val_acc[best_c], 2)})
was picked as the best of {len(cs)}, which biases it upwards; here it was
{abs(100 * (val_acc[best_c] - test_acc)):.2f} points {'above' if val_acc[best_c] >= test_acc else 'below'} the test score.

## Stratification (`stratification.png`)
Over {n_prop} random {pct(test_fraction, 0)} test parts ({int(round(test_fraction * len(y)))} images), the class share that
strayed furthest from the whole set's was off by {pct(np.mean(dev_random), 2)} on average (worst
{pct(np.max(dev_random), 2)}) with a plain random split, and by {pct(np.mean(dev_strat), 2)} (worst
{pct(np.max(dev_strat), 2)}) with a stratified one — {np.mean(dev_random) / max(np.mean(dev_strat), 1e-12):.0f}× smaller.
Stratifying removes one source of noise in small evaluation sets; with rare classes it also keeps them from
vanishing from a part.

## k-fold vs single split (`kfold_vs_single_split.png`)
- {n_single} single random 80/20 hold-out splits gave accuracies from {pct(min(single), 2)} to {pct(max(single), 2)}
  (standard deviation {pct(sd_single, 2)}): the choice of split alone spans {100 * (max(single) - min(single)):.1f} points.
- {n_repeats} repeats of {k}-fold cross-validation (different shuffles) gave {pct(np.mean(kfold), 2)} with a standard
  deviation of **{pct(sd_kfold, 2)}** between repeats — {ratio:.1f}× {'smaller' if ratio > 1 else 'larger'} than a single
  split's, because every image is used for testing exactly once and {k} estimates are averaged.
- Inside one {k}-fold run the fold accuracies spread by {pct(within_fold_sd, 2)} (standard deviation); that describes
  single folds, not the uncertainty of their mean.
- The single-split mean ({pct(np.mean(single), 2)}) and the k-fold mean ({pct(np.mean(kfold), 2)}) differ by
  {100 * abs(np.mean(single) - np.mean(kfold)):.2f} points: both estimate the same quantity, k-fold with less noise
  at {k}× the training cost.
""")
