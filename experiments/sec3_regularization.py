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
*under-fit*; a test MSE more than 1.5× the training MSE is *over-fit*. `mse_vs_degree.png` shows the whole
range 1–15: training error only falls with degree, test error falls and then climbs.
""")


@task("3.5", "Early stopping", datasets=("mnist",), headline="test_accuracy.early_stopping", image_dataset=True)
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
