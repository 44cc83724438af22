"""The SmallCNN training recipe (task 4.3's) and the reuse of 4.3's trained network by later tasks:
4.4 and 4.5 look inside it, 8.1 uses it as the judge of generated images."""
from __future__ import annotations

import torch

from models import SmallCNN
from utils.data import train_val_split


def train_small_cnn(ctx, ds, *, epochs: int, lr: float = 3e-3, seed: int | None = None,
                    batch_size: int | None = None, **model_kwargs):
    """Train models.SmallCNN on ``ds`` with Adam + one-cycle LR; return (model, history, val split).

    ``seed`` (default: the run's) fixes the split, the initial weights and the batch order, so the
    models of one comparison at one seed start from the same weights. The batch size is clipped
    to the training set, so small stand-ins still get several steps per epoch.
    """
    seed = ctx.seed if seed is None else seed
    torch.manual_seed(seed)
    train, val = train_val_split(ds.x_train, ds.y_train, ctx.cfg.val_fraction, seed=seed)
    c, h, _ = ds.shape
    model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h, **model_kwargs).to(ctx.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batch_size = min(batch_size or ctx.cfg.batch_size, max(8, len(train[1]) // 8))
    steps = epochs * -(-len(train[1]) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
    history = ctx.fit(model, train, val, epochs=epochs, optimizer=opt, scheduler=sched,
                      scheduler_per_batch=True, description="CNN", seed=seed, batch_size=batch_size,
                      # NHWC on the CPU too: oneDNN's kernels for it train this net 1.4x faster on the one
                      # thread these tasks declare (on two, results would depend on the thread count)
                      channels_last=True if ctx.device.type == "cpu" else None)
    return model, history, val


def trained_cnn(ctx, ds, *, epochs: int):
    """4.3's trained SmallCNN when its saved weights fit ``ds`` (same dataset and image shape), else one
    trained here. Returns (model in eval mode, a sentence saying which happened and why, the seed its
    initial weights were drawn with: ``torch.manual_seed(seed)`` then the same SmallCNN rebuilds them)."""
    c, h, _ = ds.shape
    prev = ctx.previous("4.3")
    state = prev.load_weights() if prev else None
    if prev is None or state is None:
        reason = "no finished 4.3 run with saved weights in this results folder"
    elif prev.dataset != [ds.name]:
        reason = f"4.3's weights were trained on {', '.join(prev.dataset) or 'other data'}, not {ds.name}"
    else:
        model = SmallCNN(in_channels=c, num_classes=ds.num_classes, image_size=h)
        try:
            model.load_state_dict(state)
        except RuntimeError:
            reason = f"4.3's weights do not fit a {c}×{h}×{h}, {ds.num_classes}-class SmallCNN"
        else:
            m = prev.metrics
            ctx.log(f"  using 4.3's trained weights ({m.get('mode')} mode, test accuracy {m.get('test_accuracy')})")
            return model.to(ctx.device).eval(), (
                f"the network is task 4.3's ({m.get('mode')} mode, {m.get('epochs')} epochs, "
                f"test accuracy {100 * float(m.get('test_accuracy', float('nan'))):.1f}%)"), int(m.get("seed", ctx.seed))
    ctx.log(f"  {reason}: training a SmallCNN here ({epochs} epoch(s) on {len(ds.y_train)} images)")
    model, history, _ = train_small_cnn(ctx, ds, epochs=epochs)
    return model.eval(), (f"{reason}, so a SmallCNN was trained here for {epochs} epoch(s) on "
                          f"{len(ds.y_train)} images ({history.seconds:.0f} s)"), ctx.seed
