"""Scratch optimizers vs torch.optim, step for step, in float64."""
import numpy as np
import pytest
import torch

from scratch import losses
from scratch.layers import Linear, Tanh
from scratch.model import Sequential
from scratch.optim import SGD, Adam, AdamW, RMSprop

STEPS = 25


CONFIGS = [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.9)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    (Adam, torch.optim.Adam, dict(lr=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
]


@pytest.mark.parametrize("ours, theirs, kwargs", CONFIGS,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CONFIGS)])
def test_optimizer_matches_torch_with_random_grads(ours, theirs, kwargs):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((2, 2, 3))]
    initial = [p.copy() for p in params]
    torch_params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    optimizer = ours(params, **kwargs)
    torch_optimizer = theirs(torch_params, **kwargs)
    for step in range(STEPS):
        grads = [rng.standard_normal(p.shape) * (1 + step % 3) for p in params]
        if step == 12:  # learning-rate changes (what schedules do) must act the same way
            optimizer.lr *= 0.5
            for group in torch_optimizer.param_groups:
                group["lr"] *= 0.5
        optimizer.step(grads)
        for tp, g in zip(torch_params, grads):
            tp.grad = torch.from_numpy(g.copy())
        torch_optimizer.step()
        for p, tp in zip(params, torch_params):
            assert np.max(np.abs(p - tp.detach().numpy())) < 1e-10
    # the updates were real (not a no-op that trivially matches)
    assert all(np.abs(p - p0).max() > 1e-3 for p, p0 in zip(params, initial))


@pytest.mark.parametrize("ours, theirs, kwargs", [
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.05)),
    (AdamW, torch.optim.AdamW, dict(lr=0.05, weight_decay=0.1)),
])
def test_optimizer_matches_torch_on_a_real_loss(ours, theirs, kwargs):
    """Train the same 2-layer MLP (same init) with scratch and with torch for 20 steps."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 5)), rng.integers(0, 3, 32)
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(),
                                      torch.nn.Linear(8, 3)).double()
    model = Sequential([Linear.from_torch(torch_model[0], dtype=np.float64), Tanh(),
                        Linear.from_torch(torch_model[2], dtype=np.float64)])
    optimizer = ours(model.param_arrays(), **kwargs)
    torch_optimizer = theirs(torch_model.parameters(), **kwargs)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    first_loss = None
    for _ in range(20):
        loss, dlogits = losses.softmax_cross_entropy(model.forward(x), y)
        model.backward(dlogits)
        optimizer.step(model.grad_arrays())
        torch_optimizer.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(torch_model(x_t), y_t)
        torch_loss.backward()
        torch_optimizer.step()
        assert abs(loss - torch_loss.item()) < 1e-10
        first_loss = loss if first_loss is None else first_loss
    assert loss < first_loss
    for (name, param, _), torch_param in zip(model.parameters(), torch_model.parameters()):
        assert np.max(np.abs(param - torch_param.detach().numpy())) < 1e-10, name


def test_optimizer_updates_in_place_and_validates():
    param = np.zeros(3)
    optimizer = SGD([param], lr=1.0)
    optimizer.step([np.ones(3)])
    np.testing.assert_array_equal(param, -np.ones(3))
    with pytest.raises(ValueError):
        optimizer.step([np.ones(3), np.ones(3)])
    with pytest.raises(ValueError):
        optimizer.step([np.ones(4)])
    with pytest.raises(ValueError):
        SGD([param], lr=0.1, nesterov=True)  # nesterov needs momentum
    with pytest.raises(ValueError):
        Adam([], lr=0.1)


def test_float32_params_stay_float32():
    param = np.ones(4, dtype=np.float32)
    for optimizer in (SGD([param], lr=0.1, momentum=0.9), RMSprop([param]), Adam([param]),
                      AdamW([param])):
        for _ in range(3):
            optimizer.step([np.full(4, 0.5, dtype=np.float32)])
        assert param.dtype == np.float32
        assert all(v.dtype == np.float32 for state in optimizer.state for v in state.values())
