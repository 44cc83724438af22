"""Training the NumPy (scratch) networks: data as arrays, an MLP builder, and a divergence-aware loop.

Used by sections 1 and 2 (activations, optimizers, schedules, hyper-parameters). The loop fills
the project's one history type, ``utils.history.History``; its ``val_*`` series are measured
on the held-out split passed as the last two arrays of ``data`` after every epoch.
"""
from __future__ import annotations

import math
import time

import numpy as np

import scratch
from utils.history import History


def digits_arrays(ctx, seed: int, dtype=None):
    """scikit-learn's real 8×8 digits as standardised NumPy arrays (stratified 80/20 split).

    Returns (x_train, y_train, x_test, y_test); x is (N, 64) scaled by the training pixels'
    mean and overall standard deviation.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    ctx.use_dataset("digits", note="scikit-learn's 1,797 real 8×8 handwritten digits, stratified 80/20 split")
    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.data, d.target, test_size=0.2, stratify=d.target,
                                              random_state=seed)
    mean, std = x_tr.mean(axis=0), x_tr.std()
    dtype = dtype or np.float32
    return ((x_tr - mean) / std).astype(dtype), y_tr, ((x_te - mean) / std).astype(dtype), y_te


def image_arrays(ds):
    """An ImageData's tensors as flat NumPy arrays for scratch networks: (x_train, y_train, x_test, y_test)."""
    return (ds.x_train.flatten(1).numpy(), ds.y_train.numpy(), ds.x_test.flatten(1).numpy(), ds.y_test.numpy())


def scratch_mlp(sizes, activation: str = "relu", init: str = "torch", seed: int = 0, dtype=None):
    """scratch.Sequential: Linear → activation for each hidden layer, then a Linear output (logits)."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(scratch.Linear(fan_in, fan_out, init=init, rng=rng, dtype=dtype or np.float32))
        if i < len(sizes) - 2:
            layers.append(scratch.Activation(activation))
    return scratch.Sequential(layers)


def train_scratch(model, data, optimizer, *, epochs: int, batch_size: int = 64, seed: int = 0,
                  schedule=None) -> History:
    """Train a scratch classifier with scratch.train_epoch (softmax cross-entropy); evaluate each epoch.

    data is (x_train, y_train, x_heldout, y_heldout). A schedule (anything with lr_at(step)) sets the
    lr every step. A loss that turns NaN/inf ends the run with status "diverged" instead of raising.
    """
    x_tr, y_tr, x_te, y_te = data
    rng = np.random.default_rng(seed)
    batch_size = min(batch_size, len(x_tr))
    steps_per_epoch = math.ceil(len(x_tr) / batch_size)
    run = History()
    start = time.perf_counter()
    # A diverging run overflows on its way to NaN; it is detected and labelled, not warned about.
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            t0 = time.perf_counter()
            loss = scratch.train_epoch(model, x_tr, y_tr, scratch.softmax_cross_entropy, optimizer,
                                       batch_size, rng, schedule, epoch * steps_per_epoch)
            held_loss, held_acc = scratch.evaluate(model, x_te, y_te)
            if not (math.isfinite(loss) and math.isfinite(held_loss)):
                run.status = "diverged"
                run.train_loss.append(float("nan"))
                break
            run.train_loss.append(float(loss))
            run.val_loss.append(float(held_loss))
            run.val_acc.append(float(held_acc))
            run.epoch_seconds.append(time.perf_counter() - t0)
            run.stopped_epoch = epoch + 1
    run.seconds = time.perf_counter() - start
    return run


def scratch_digits_sweep(ctx, names, description: str, build, *, epochs: int) -> dict[str, list[History]]:
    """Train one scratch network per (seed, name) on the digits split of that seed.

    build(name, seed) -> (model, optimizer). Returns {name: [History per seed]}, seeds in ctx.seeds() order.
    """
    runs: dict[str, list[History]] = {name: [] for name in names}
    seeds = ctx.seeds()
    with ctx.progress(len(seeds) * len(names), description) as bar:
        for s in seeds:
            data = digits_arrays(ctx, s)
            for name in names:
                model, opt = build(name, s)
                runs[name].append(train_scratch(model, data, opt, epochs=epochs, seed=s))
                bar.advance(1, info=f"{name}: held-out acc {runs[name][-1].final('val_acc'):.3f}")
    return runs
