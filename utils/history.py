"""One training-history type for every loop in the project (NumPy and PyTorch alike).

``utils.train.fit`` fills one, the NumPy scratch loops fill one, and ``utils.plotting``'s
``plot_history`` draws any of them. Lists are per epoch (or per logged step, see ``unit``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)   # training loss of every optimizer step (fit fills it)
    unit: str = "epoch"               # what one entry is: "epoch" or "step"
    status: str = "done"              # "done" | "early_stopped" | "diverged"
    best_epoch: int | None = None     # 1-based entry with the lowest monitored loss
    stopped_epoch: int = 0            # last entry that ran (1-based)
    restored_best: bool = False       # the model ended with the best entry's weights
    seconds: float = 0.0              # wall time of the whole run

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def final(self, name: str) -> float:
        """The last finite value of one series (nan when there is none)."""
        for v in reversed(getattr(self, name)):
            if v is not None and math.isfinite(v):
                return float(v)
        return float("nan")

    def best(self, name: str, *, highest: bool) -> float:
        values = [v for v in getattr(self, name) if v is not None and math.isfinite(v)]
        if not values:
            return float("nan")
        return float(max(values) if highest else min(values))
