"""experiments/common/small_cnn.py: later tasks reuse 4.3's trained network when it fits their data,
and otherwise train one and say why."""
from __future__ import annotations

import math
import types

import torch

from experiments.common import small_cnn
from experiments.common.small_cnn import trained_cnn
from models import SmallCNN


# ----------------------------------------------------------------------------- reuse of 4.3's weights
def _context(tmp_path):
    import config
    from experiments.registry import get_task
    from utils.context import RunContext

    return RunContext(get_task("4.4"), config.get_preset("tiny"), torch.device("cpu"), 0, tmp_path, tmp_path,
                      task_dirs={"4.3": get_task("4.3").dirname})


def _fake_dataset(name="fashion-mnist"):
    return types.SimpleNamespace(name=name, shape=(1, 28, 28), num_classes=10, y_train=torch.zeros(3))


def _save_43(tmp_path, model, dataset, seed=7):
    from experiments.registry import get_task
    from utils.results import write_json

    folder = tmp_path / get_task("4.3").dirname
    folder.mkdir(parents=True)
    torch.save(model.state_dict(), folder / "model.pt")
    write_json(folder / "metrics.json", {"status": "done", "dataset": [dataset], "mode": "quick", "seed": seed,
                                         "epochs": 2, "test_accuracy": 0.9})


def test_trained_cnn_reuses_compatible_weights(tmp_path):
    torch.manual_seed(1)
    saved = SmallCNN()
    _save_43(tmp_path, saved, "fashion-mnist")
    model, sentence, seed = trained_cnn(_context(tmp_path), _fake_dataset(), epochs=1)
    assert "task 4.3's" in sentence and "90.0%" in sentence and seed == 7
    assert torch.equal(model.features[0].weight, saved.features[0].weight)


def test_trained_cnn_retrains_for_another_dataset(tmp_path, monkeypatch):
    _save_43(tmp_path, SmallCNN(), "digits")
    calls = []

    def fake_train(ctx, ds, *, epochs):
        calls.append(epochs)
        return SmallCNN(), types.SimpleNamespace(seconds=0.0), None

    monkeypatch.setattr(small_cnn, "train_small_cnn", fake_train)
    _, sentence, seed = trained_cnn(_context(tmp_path), _fake_dataset(), epochs=2)
    assert calls == [2] and "trained here" in sentence and "digits" in sentence and seed == 0


def test_trained_cnn_without_a_previous_run_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(small_cnn, "train_small_cnn",
                        lambda ctx, ds, *, epochs: (SmallCNN(), types.SimpleNamespace(seconds=math.pi), None))
    _, sentence, _ = trained_cnn(_context(tmp_path), _fake_dataset(), epochs=1)
    assert sentence.startswith("no finished 4.3 run") and "(3 s)" in sentence
