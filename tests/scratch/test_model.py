"""Sequential model, state dicts, training helpers; a whole CNN vs torch."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from scratch import losses
from scratch.layers import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d,
                            ReLU)
from scratch.model import Sequential, accuracy, evaluate, predict, train_epoch
from scratch.optim import SGD, Adam
from scratch.schedules import OneCycleLR



def test_cnn_forward_backward_matches_torch_sequential():
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, stride=2, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 2 * 3, 5)).double()
    model = Sequential([
        Conv2d.from_torch(torch_model[0], dtype=np.float64),
        BatchNorm2d.from_torch(torch_model[1], dtype=np.float64), ReLU(), MaxPool2d(2), Flatten(),
        Linear.from_torch(torch_model[5], dtype=np.float64)])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 2, 9, 11)), rng.integers(0, 5, 6)
    loss, dlogits = losses.softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    torch_loss = torch.nn.functional.cross_entropy(torch_model(torch.from_numpy(x)),
                                                   torch.from_numpy(y))
    torch_loss.backward()
    assert abs(loss - torch_loss.item()) < 1e-12
    torch_named = dict(torch_model.named_parameters())
    for name, param, grad in model.parameters():
        np.testing.assert_allclose(param, torch_named[name].detach().numpy(), rtol=0, atol=0)
        np.testing.assert_allclose(grad, torch_named[name].grad.numpy(), rtol=1e-10, atol=1e-12)
    # parameter and buffer names follow torch's nn.Sequential state_dict keys
    assert set(model.state_dict()) == {k for k in torch_model.state_dict() if "num_batches" not in k}


def test_state_dict_is_a_deep_copy_and_loads_in_place():
    model = Sequential([Linear(3, 4, rng=0), BatchNorm1d(4), ReLU(), Linear(4, 2, rng=1)])
    state = model.state_dict()
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                          "1.running_var", "3.weight", "3.bias"}
    weight = model.layers[0].params["weight"]
    optimizer = SGD(model.param_arrays(), lr=0.1)
    model.forward(np.random.default_rng(0).standard_normal((8, 3)))  # updates running stats
    model.backward(np.ones((8, 2), dtype=np.float32))
    optimizer.step(model.grad_arrays())
    assert not np.array_equal(weight, state["0.weight"])   # the copy did not move
    model.load_state_dict(state)
    assert model.layers[0].params["weight"] is weight      # same array, new values
    np.testing.assert_array_equal(weight, state["0.weight"])
    np.testing.assert_array_equal(model.layers[1].buffers["running_mean"], 0)
    state["0.weight"][...] = 7                              # editing the dict leaves the model alone
    assert not np.any(weight == 7)
    with pytest.raises(KeyError):
        model.load_state_dict({"0.weight": state["0.weight"]})
    with pytest.raises(ValueError):
        model.load_state_dict({**state, "0.weight": np.zeros((2, 2))})


def test_train_eval_modes_and_zero_grad():
    model = Sequential([Dropout(0.5, rng=0)])
    x = np.ones((4, 10))
    assert (model.forward(x) == 0).any()
    model.eval()
    np.testing.assert_array_equal(model.forward(x), x)
    np.testing.assert_array_equal(model.train().forward(x, training=False), x)
    linear = Sequential([Linear(3, 2, rng=0)])
    linear.forward(np.ones((2, 3), dtype=np.float32))
    linear.backward(np.ones((2, 2), dtype=np.float32))
    assert any(grad.any() for grad in linear.grad_arrays())
    linear.zero_grad()
    assert not any(grad.any() for grad in linear.grad_arrays())
    assert linear.num_parameters() == 8


def _digits():
    """scikit-learn's 1,797 real 8×8 digits, (N, 64) in [0, 1] and labels, read from its data file:
    importing sklearn would cost this suite ~3 s of CPU (the loader is the fallback)."""
    package = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(package.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if path.exists():
        data = np.loadtxt(path, delimiter=",")
        x, y = data[:, :-1], data[:, -1].astype(int)
    else:
        from sklearn.datasets import load_digits
        x, y = load_digits(return_X_y=True)
    assert x.shape == (1797, 64) and set(y) == set(range(10))
    return (x / 16.0).astype(np.float32), y


def test_mlp_learns_digits_with_train_epoch():
    x, y = _digits()
    rng = np.random.default_rng(0)
    model = Sequential([Linear(64, 64, rng=rng), ReLU(), Dropout(0.1, rng=rng),
                        Linear(64, 10, rng=rng)])
    optimizer = Adam(model.param_arrays(), lr=3e-3)
    first_loss, _ = evaluate(model, x, y)
    for _ in range(5):
        train_loss = train_epoch(model, x, y, losses.softmax_cross_entropy, optimizer,
                                 batch_size=32, rng=rng)
    loss, acc = evaluate(model, x, y, batch_size=500)
    assert acc > 0.9, acc
    assert loss < train_loss * 1.5 and loss < first_loss / 5
    np.testing.assert_allclose(accuracy(predict(model, x, batch_size=77), y), acc)


def test_small_cnn_learns_digits_with_schedule():
    x, y = _digits()
    x = x.reshape(-1, 1, 8, 8)[:600]
    y = y[:600]
    rng = np.random.default_rng(1)
    model = Sequential([Conv2d(1, 8, 3, padding=1, rng=rng), BatchNorm2d(8), ReLU(), MaxPool2d(2),
                        Flatten(), Linear(8 * 4 * 4, 10, rng=rng)])
    optimizer = SGD(model.param_arrays(), lr=0.1, momentum=0.9)
    epochs, batch_size = 4, 32
    steps_per_epoch = -(-len(x) // batch_size)
    schedule = OneCycleLR(0.1, total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        train_epoch(model, x, y, losses.softmax_cross_entropy, optimizer, batch_size, rng,
                    schedule=schedule, start_step=epoch * steps_per_epoch)
    assert optimizer.lr == pytest.approx(schedule.lr_at(epochs * steps_per_epoch - 1))
    _, acc = evaluate(model, x, y)
    assert acc > 0.9, acc


def test_evaluate_binary_logits_and_regression_loss():
    model = Sequential([Linear(2, 1, init="zeros")])
    model.layers[0].load_weights(weight=np.array([[1.0, -1.0]]), bias=np.array([0.0]))
    x = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5]], dtype=np.float32)
    y = np.array([[1.0], [0.0], [0.0]], dtype=np.float32)
    loss, acc = evaluate(model, x, y, loss_fn=losses.bce_with_logits)
    assert acc == pytest.approx(2 / 3)
    assert loss == pytest.approx(losses.bce_with_logits(model.forward(x), y)[0], rel=1e-6)


def test_train_epoch_weights_a_last_batch_of_one_sample_by_its_size():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((9, 3)), rng.integers(0, 2, 9)   # batches of 4, 4 and 1
    model = Sequential([Linear(3, 5, rng=0, dtype=np.float64), ReLU(), Linear(5, 2, rng=1, dtype=np.float64)])
    frozen = SGD(model.param_arrays(), lr=0.0)                    # lr 0: every batch sees the same model
    train_loss = train_epoch(model, x, y, losses.softmax_cross_entropy, frozen, batch_size=4, rng=rng)
    assert train_loss == pytest.approx(evaluate(model, x, y)[0], rel=1e-12)  # the per-sample mean
    f64 = np.float64
    with_norm = Sequential([Linear(3, 5, rng=0, dtype=f64), BatchNorm1d(5, dtype=f64),
                            Linear(5, 2, rng=1, dtype=f64)])
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # as torch without drop_last
        train_epoch(with_norm, x, y, losses.softmax_cross_entropy, SGD(with_norm.param_arrays(), lr=0.1),
                    batch_size=4, rng=1)
    # eval mode uses the running statistics: one sample at a time gives the whole batch's outputs
    np.testing.assert_allclose(predict(with_norm, x, batch_size=1), predict(with_norm, x, batch_size=9),
                               rtol=1e-12, atol=1e-15)
