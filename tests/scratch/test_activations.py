"""scratch.activations: every activation's f and f' against torch (float64, over a range that
includes saturation and softplus's threshold), and the forms derived from the one definition
(ACTIVATIONS pairs, module-level functions, forward/backward pairs, layer classes)."""
import copy
import inspect
import pickle

import numpy as np
import pytest
import torch

from scratch import activations as act
from scratch import layers
from scratch.layers import Activation, LeakyReLU, ReLU, Softplus

NAMES = list(act.ACTIVATIONS)
NON_DEFAULT = {"leaky_relu": {"negative_slope": 0.2}, "elu": {"alpha": 1.5},
               "softplus": {"beta": 2.0, "threshold": 10.0}}


def test_the_eight_activations_and_their_torch_parameters():
    assert NAMES == ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "silu"]
    for spec in act.ACTIVATIONS.values():
        torch_defaults = {name: p.default for name, p in
                          inspect.signature(getattr(torch.nn, spec.layer_name)).parameters.items()
                          if name in spec.params}
        assert spec.params == torch_defaults, spec.name  # same names, same defaults as torch.nn


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("defaults", [True, False], ids=["torch-defaults", "other-parameters"])
def test_activation_and_derivative_match_torch(rng, torch_ref, name, defaults):
    spec = act.ACTIVATIONS[name]
    params = {} if defaults else NON_DEFAULT.get(name, {})
    # wide range incl. saturation (|x| = 40), softplus's threshold region, and x = 0 exactly
    x = np.concatenate([rng.standard_normal(50) * 3, np.linspace(-40, 40, 81), [0.0]])
    x_t = torch_ref.leaf(x)
    out_t = getattr(torch.nn, spec.layer_name)(**params)(x_t)
    derivative_t = torch_ref.vjp(out_t, np.ones_like(x), x_t)[0]
    fn, grad_fn = act.ACTIVATIONS[name]  # the pair, as section 1 uses it
    if defaults:
        np.testing.assert_allclose(fn(x), out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grad_fn(x), derivative_t, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(spec(x, **params), out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(spec.grad(x, **params), derivative_t, rtol=1e-12, atol=1e-14)
    layer = Activation(name, **params)
    layer.forward(x)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(dout), dout * derivative_t, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_every_derived_form_computes_the_same_pair(rng, name):
    spec = act.ACTIVATIONS[name]
    x = rng.standard_normal((3, 4))
    params = NON_DEFAULT.get(name, {})
    expected, expected_grad = spec.f(x, **spec.bind((), params)), spec.df(x, **spec.bind((), params))
    np.testing.assert_array_equal(getattr(act, name)(x, **params), expected)
    np.testing.assert_array_equal(getattr(act, f"{name}_grad")(x, **params), expected_grad)
    out, cache = getattr(act, f"{name}_forward")(x, **params)
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(getattr(act, f"{name}_backward")(dout, cache), dout * expected_grad)
    out, cache = act.activation_forward(x, name, **params)
    np.testing.assert_array_equal(act.activation_backward(dout, cache), dout * expected_grad)
    layer = layers.ACTIVATION_LAYERS[spec.layer_name](*params.values())  # parameters by position too
    np.testing.assert_array_equal(layer.forward(x), expected)
    np.testing.assert_array_equal(layer.backward(dout), dout * expected_grad)


def test_layer_classes_are_generated_one_per_activation():
    assert list(layers.ACTIVATION_LAYERS) == [s.layer_name for s in act.ACTIVATIONS.values()]
    for spec in act.ACTIVATIONS.values():
        cls = getattr(layers, spec.layer_name)
        assert cls is layers.ACTIVATION_LAYERS[spec.layer_name]
        assert issubclass(cls, Activation) and cls.__module__ == "scratch.layers"
        assert list(inspect.signature(cls).parameters) == list(spec.params)
        assert cls().name == spec.name and cls().kwargs == spec.params
    assert repr(LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(Activation("relu")) == "Activation('relu')"
    assert Softplus(beta=2).kwargs == {"beta": 2, "threshold": 20.0}


def test_layers_copy_and_pickle():
    layer = LeakyReLU(0.3)
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert type(clone) is LeakyReLU and clone.kwargs == {"negative_slope": 0.3}
        assert clone.spec is act.ACTIVATIONS["leaky_relu"]
        np.testing.assert_array_equal(clone.forward(np.array([-1.0, 2.0])), [-0.3, 2.0])


def test_bad_names_and_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("swish")
    with pytest.raises(TypeError, match="no parameter"):
        Activation("relu", alpha=1.0)
    with pytest.raises(TypeError, match="no parameter"):
        act.elu(np.ones(2), slope=2.0)
    with pytest.raises(TypeError, match="takes 1 parameter"):
        LeakyReLU(0.1, 0.2)
    with pytest.raises(TypeError, match="twice"):
        LeakyReLU(0.1, negative_slope=0.2)


def test_relu_derivative_at_zero_is_zero_like_torch():
    assert act.relu_grad(np.array([0.0]))[0] == 0
    assert isinstance(ReLU(), Activation)


def test_activations_keep_float32():
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    for name, (fn, grad_fn) in act.ACTIVATIONS.items():
        assert fn(x).dtype == np.float32, name
        assert grad_fn(x).dtype == np.float32, name
        layer = Activation(name)
        assert layer.forward(x).dtype == layer.backward(np.ones_like(x)).dtype == np.float32, name
