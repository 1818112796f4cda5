"""Activation, BatchNorm, Dropout, Dense and Flatten layers: gradient checks, PyTorch oracles,
running statistics, errors, configs and dtypes."""
import json

import numpy as np
import pytest
import torch

from cnnlab.layers.activation import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from cnnlab.layers.dense import Dense
from cnnlab.layers.dropout import Dropout
from cnnlab.layers.normalization import BatchNorm1d, BatchNorm2d
from cnnlab.layers.reshape import Flatten
from cnnlab.testing import check_layer_gradients, rel_error

F64 = np.float64


def off_kink(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)


def randomize_bn(bn, seed=0):
    """Non-trivial gamma, beta and running statistics, so every term is exercised."""
    rng = np.random.default_rng(seed)
    c = bn.num_features
    bn.weight.data = rng.uniform(0.5, 1.5, c)
    bn.bias.data = rng.standard_normal(c)
    bn.running_mean = rng.standard_normal(c)
    bn.running_var = rng.uniform(0.5, 2.0, c)
    return bn


class FixedMask:
    """Dropout made deterministic for gradient checks: the rng is reseeded before each forward."""

    param_names = ()

    def __init__(self, layer, seed=7):
        self.layer, self.seed = layer, seed

    def forward(self, x, *, training=False, requires_grad=None):
        self.layer.rng = np.random.default_rng(self.seed)
        return self.layer.forward(x, training=training, requires_grad=requires_grad)

    def backward(self, dout):
        return self.layer.backward(dout)


# ----- gradient checks ------------------------------------------------------------------
GRAD_CASES = [
    ("relu", lambda: ReLU(), (3, 2, 3, 5), True),
    ("leaky", lambda: LeakyReLU(0.2), (1, 7), True),
    ("sigmoid", lambda: Sigmoid(), (3, 5), True),
    ("tanh", lambda: Tanh(), (2, 3, 3), True),
    ("softmax", lambda: Softmax(), (4, 5), True),
    ("softmax_4d", lambda: Softmax(), (2, 3, 2, 2), True),
    ("bn2d_train", lambda: randomize_bn(BatchNorm2d(3, dtype=F64)), (2, 3, 3, 5), True),
    ("bn2d_train_batch1", lambda: randomize_bn(BatchNorm2d(2, dtype=F64)), (1, 2, 3, 3), True),
    ("bn2d_eval", lambda: randomize_bn(BatchNorm2d(3, dtype=F64)), (2, 3, 3, 5), False),
    ("bn2d_eval_batch1", lambda: randomize_bn(BatchNorm2d(3, dtype=F64)), (1, 3, 1, 1), False),
    ("bn1d_train", lambda: randomize_bn(BatchNorm1d(5, dtype=F64)), (7, 5), True),
    ("bn1d_train_3d", lambda: randomize_bn(BatchNorm1d(3, dtype=F64)), (2, 3, 4), True),
    ("bn1d_eval", lambda: randomize_bn(BatchNorm1d(5, dtype=F64)), (1, 5), False),
    ("dropout", lambda: FixedMask(Dropout(0.3)), (3, 4, 5), True),
    ("dense", lambda: Dense(7, 3, dtype=F64, rng=0), (5, 7), True),
    ("dense_batch1_nobias", lambda: Dense(4, 3, bias=False, dtype=F64, rng=0), (1, 4), True),
    ("flatten", lambda: Flatten(), (2, 3, 2, 3), True),
]


@pytest.mark.parametrize("name, make, shape, training", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_central_differences(name, make, shape, training):
    layer = make()
    errors = check_layer_gradients(layer, off_kink(shape, seed=len(name)), training=training)
    assert set(errors) >= {"x", *[n for n in getattr(layer, "param_names", ()) if getattr(layer, n) is not None]}
    assert max(errors.values()) <= 1e-6, errors


# ----- PyTorch oracles --------------------------------------------------------------------
def torch_run(module, x, dout, training):
    module.train(training)
    xt = torch.tensor(x, requires_grad=True)
    out = module(xt)
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), xt.grad.numpy()


ACT_CASES = [
    (ReLU(), torch.nn.ReLU()),
    (LeakyReLU(), torch.nn.LeakyReLU()),
    (LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)),
    (Sigmoid(), torch.nn.Sigmoid()),
    (Tanh(), torch.nn.Tanh()),
    (Softmax(), torch.nn.Softmax(dim=1)),
]


@pytest.mark.parametrize("ours, theirs", ACT_CASES, ids=[type(c[0]).__name__ for c in ACT_CASES])
def test_activations_match_torch(ours, theirs):
    x = off_kink((2, 3, 4, 5)) * 3
    dout = np.random.default_rng(1).standard_normal(x.shape)
    out = ours.forward(x, training=True)
    dx = ours.backward(dout)
    tout, tdx = torch_run(theirs, x, dout, True)
    assert rel_error(out, tout) < 1e-14 and rel_error(dx, tdx) < 1e-13


@pytest.mark.parametrize("n", [1, 6])
def test_dense_matches_torch_linear(n):
    layer = Dense(5, 4, dtype=F64, rng=3)
    layer.bias.data = np.random.default_rng(0).standard_normal(4)
    lin = torch.nn.Linear(5, 4).double()
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(layer.weight.data.T))  # the single transpose
        lin.bias.copy_(torch.from_numpy(layer.bias.data))
    x = np.random.default_rng(2).standard_normal((n, 5))
    dout = np.random.default_rng(3).standard_normal((n, 4))
    out = layer.forward(x, training=True)
    dx = layer.backward(dout)
    tout, tdx = torch_run(lin, x, dout, True)
    assert rel_error(out, tout) < 1e-14 and rel_error(dx, tdx) < 1e-14
    assert rel_error(layer.weight.grad, lin.weight.grad.numpy().T) < 1e-14
    assert rel_error(layer.bias.grad, lin.bias.grad.numpy()) < 1e-14


def test_flatten_matches_torch():
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 5))
    dout = np.random.default_rng(1).standard_normal((3, 40))
    layer = Flatten()
    out = layer.forward(x, training=True)
    dx = layer.backward(dout)
    tout, tdx = torch_run(torch.nn.Flatten(), x, dout, True)
    assert np.array_equal(out, tout) and np.array_equal(dx, tdx)


BN_CASES = [
    (BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 3), {}),
    (BatchNorm2d, torch.nn.BatchNorm2d, (1, 3, 2, 3), {"momentum": 0.25, "eps": 1e-3}),
    (BatchNorm1d, torch.nn.BatchNorm1d, (6, 3), {}),
    (BatchNorm1d, torch.nn.BatchNorm1d, (2, 3, 5), {"momentum": 0.5}),
]


@pytest.mark.parametrize("ours_cls, torch_cls, shape, kw", BN_CASES)
def test_batchnorm_matches_torch_over_several_steps(ours_cls, torch_cls, shape, kw):
    c = shape[1]
    ours = ours_cls(c, dtype=F64, **kw)
    theirs = torch_cls(c, **kw).double()
    rng = np.random.default_rng(0)
    gamma, beta = rng.uniform(0.5, 1.5, c), rng.standard_normal(c)
    ours.weight.data, ours.bias.data = gamma.copy(), beta.copy()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(gamma))
        theirs.bias.copy_(torch.from_numpy(beta))
    for step in range(4):
        x = rng.standard_normal(shape) * (step + 1) + step  # the statistics move
        dout = rng.standard_normal(shape)
        out = ours.forward(x, training=True)
        dx = ours.backward(dout)
        theirs.zero_grad()
        tout, tdx = torch_run(theirs, x, dout, True)
        assert rel_error(out, tout) < 1e-13 and rel_error(dx, tdx) < 1e-12
        assert rel_error(ours.weight.grad, theirs.weight.grad.numpy()) < 1e-13
        assert rel_error(ours.bias.grad, theirs.bias.grad.numpy()) < 1e-13
        assert rel_error(ours.running_mean, theirs.running_mean.numpy()) < 1e-14
        assert rel_error(ours.running_var, theirs.running_var.numpy()) < 1e-14
    # inference with the accumulated running statistics, forward and backward
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    out = ours.forward(x, training=False, requires_grad=True)
    dx = ours.backward(dout)
    theirs.zero_grad()
    tout, tdx = torch_run(theirs, x, dout, False)
    assert rel_error(out, tout) < 1e-13 and rel_error(dx, tdx) < 1e-13
    assert rel_error(ours.weight.grad, theirs.weight.grad.numpy()) < 1e-13
    assert rel_error(ours.bias.grad, theirs.bias.grad.numpy()) < 1e-13
    assert rel_error(ours.running_var, theirs.running_var.numpy()) < 1e-14  # unchanged by eval


# ----- BatchNorm state and errors ---------------------------------------------------------
def test_batchnorm_updates_running_stats_only_in_training():
    bn = BatchNorm2d(2)
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 4)).astype(np.float32) + 3
    bn(x)  # inference
    bn(x, requires_grad=True)  # saliency-style: still inference
    assert bn.running_mean.tolist() == [0.0, 0.0] and bn.running_var.tolist() == [1.0, 1.0]
    bn(x, training=True)
    assert np.all(bn.running_mean > 0.2) and bn.running_mean.dtype == np.float32
    assert bn.running_var.dtype == np.float32


def test_batchnorm_defaults_and_attributes():
    bn = BatchNorm2d(4)
    assert bn.param_names == ("weight", "bias") and bn.buffer_names == ("running_mean", "running_var")
    assert bn.weight.data.tolist() == [1.0] * 4 and bn.bias.data.tolist() == [0.0] * 4
    assert bn.running_mean.tolist() == [0.0] * 4 and bn.running_var.tolist() == [1.0] * 4
    assert all(a.dtype == np.float32 for a in bn.state_dict().values())
    assert bn.num_parameters() == 8


def test_batchnorm_training_batch_of_one_raises_and_leaves_state_unchanged():
    bn = BatchNorm1d(3)
    bn(np.ones((2, 3), np.float32), training=True)
    before = (bn.running_mean.copy(), bn.running_var.copy(), bn._cache)
    with pytest.raises(ValueError, match=r"more than 1 value per channel; received input of shape \(1, 3\)"):
        bn(np.ones((1, 3), np.float32), training=True)
    assert np.array_equal(bn.running_mean, before[0]) and np.array_equal(bn.running_var, before[1])
    assert bn._cache is before[2]
    assert bn(np.ones((1, 3), np.float32)).shape == (1, 3)  # inference with one sample is fine


def test_batchnorm2d_input_errors():
    bn = BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, H, W\); received \(2, 8, 8, 3\)\. "
                                         r"cnnlab is channels-first"):
        bn(np.ones((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) \(4 dimensions\); received shape \(2, 3\)"):
        bn(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"dtype float64 but the layer's parameters are float32"):
        bn(np.ones((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"expected per-sample input of shape \(3, H, W\); received \(4, 5, 5\)"):
        bn.output_shape((4, 5, 5))
    assert bn.output_shape((3, 5, 5)) == (3, 5, 5)


def test_batchnorm1d_input_errors():
    bn = BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\) or \(N, 4, L\); received \(2, 5\)"):
        bn(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"For images use BatchNorm2d"):
        bn(np.ones((2, 4, 3, 3), np.float32))
    assert bn.output_shape((4,)) == (4,) and bn.output_shape((4, 9)) == (4, 9)
    with pytest.raises(ValueError, match=r"received \(5,\)"):
        bn.output_shape((5,))


@pytest.mark.parametrize("kw, err, msg", [
    ({"num_features": 0}, ValueError, r"num_features must be >= 1; received 0"),
    ({"num_features": 2.0}, TypeError, r"num_features must be an int"),
    ({"num_features": 2, "momentum": 1.5}, ValueError, r"momentum must be in \[0.0, 1.0\]; received 1.5"),
    ({"num_features": 2, "eps": 0}, ValueError, r"eps must be in \(0.0, inf\); received 0.0"),
    ({"num_features": 2, "dtype": np.int32}, ValueError, r"dtype must be float32 or float64; received int32"),
])
def test_batchnorm_hyperparameter_errors(kw, err, msg):
    with pytest.raises(err, match=msg):
        BatchNorm2d(**kw)


# ----- Dropout ----------------------------------------------------------------------------
def test_dropout_identity_at_inference_and_scaled_mask_in_training():
    drop = Dropout(0.25, rng=0)
    x = np.random.default_rng(1).standard_normal((50, 40)).astype(np.float32)
    assert drop(x) is x
    out = drop(x, training=True)
    kept = out != 0
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[kept], x[kept] / np.float32(0.75), rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.03  # 2000 draws, std 0.01
    dx = drop.backward(np.ones_like(x))
    assert np.array_equal(dx != 0, kept)


def test_dropout_follows_torch_conventions():
    """Same meaning of p (drop probability) and the same 1 / (1 - p) scaling as torch.nn.Dropout."""
    x = np.full((200, 200), 3.0)
    torch.manual_seed(0)
    theirs = torch.nn.Dropout(0.7).train()(torch.from_numpy(x)).numpy()
    ours = Dropout(0.7, rng=0)(x, training=True)
    assert set(np.unique(ours).tolist()) == set(np.unique(theirs).tolist()) == {0.0, 3.0 / 0.3}
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.02  # both ~0.7 of 40,000
    assert np.array_equal(torch.nn.Dropout(0.7).eval()(torch.from_numpy(x)).numpy(), Dropout(0.7)(x))


def test_dropout_mean_preserved_statistically():
    drop = Dropout(0.5, rng=123)
    x = np.full((100, 1000), 2.0)
    assert abs(drop(x, training=True).mean() - 2.0) < 0.03  # std of the mean ~0.0063


def test_dropout_same_seed_same_mask_and_owns_rng():
    a, b = Dropout(0.5, rng=5), Dropout(0.5, rng=np.random.default_rng(5))
    x = np.ones((4, 6))
    assert isinstance(a.rng, np.random.Generator)
    assert np.array_equal(a(x, training=True), b(x, training=True))


def test_dropout_backward_after_inference_with_requires_grad():
    drop = Dropout(0.5)
    x = np.ones((2, 2))
    drop(x, requires_grad=True)
    assert np.array_equal(drop.backward(x * 3), x * 3)


@pytest.mark.parametrize("p, err, msg", [
    (1, ValueError, r"p is the probability of dropping a unit and must be in \[0, 1\); received 1.0"),
    (-0.2, ValueError, r"must be in \[0.0, 1.0\); received -0.2"),
    (2.0, ValueError, r"received 2.0"),
    (None, TypeError, r"must be a number; received None"),
])
def test_dropout_invalid_p(p, err, msg):
    with pytest.raises(err, match=msg):
        Dropout(p)


def test_dropout_invalid_rng():
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator, an int seed or None"):
        Dropout(0.5, rng="seed")


# ----- Dense ------------------------------------------------------------------------------
def test_dense_layout_init_and_determinism():
    layer = Dense(1000, 300, rng=0)
    assert layer.weight.shape == (1000, 300) and layer.bias.shape == (300,)
    assert layer.weight.data.dtype == np.float32 and layer.bias.data.dtype == np.float32
    assert abs(layer.weight.data.std() / np.sqrt(2 / 1000) - 1) < 0.02  # He normal
    assert np.all(layer.bias.data == 0)
    assert np.array_equal(Dense(1000, 300, rng=0).weight.data, layer.weight.data)
    assert not np.array_equal(Dense(1000, 300, rng=1).weight.data, layer.weight.data)
    glorot = Dense(100, 50, weight_init="glorot_uniform", rng=0).weight.data
    assert np.abs(glorot).max() <= np.sqrt(6 / 150)
    assert Dense(3, 2, bias=False).parameters()[0].name == "weight" and Dense(3, 2, bias=False).bias is None


def test_dense_custom_initializer_callable():
    def fives(shape, fan_in, fan_out, rng, dtype):
        return np.full(shape, 5, dtype=dtype)

    layer = Dense(2, 3, weight_init=fives, dtype=F64)
    assert layer.weight.data.tolist() == [[5.0] * 3] * 2 and layer.weight.data.dtype == F64
    with pytest.raises(ValueError, match=r"cannot name the custom initializer"):
        layer.get_config()


def test_dense_input_errors_and_state_unchanged():
    layer = Dense(12, 4, rng=0)
    layer(np.ones((2, 12), np.float32), training=True)
    cache = layer._cache
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 12\); received \(2, 3, 2, 2\)\. "
                                         r"Put a Flatten\(\) layer before Dense to turn \(N, 3, 2, 2\) into \(N, 12\)"):
        layer(np.ones((2, 3, 2, 2), np.float32), training=True)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 12\); received \(2, 5\)"):
        layer(np.ones((2, 5), np.float32), training=True)
    with pytest.raises(ValueError, match=r"received \(12,\)\. For a single sample add the batch axis"):
        layer(np.ones(12, np.float32))
    with pytest.raises(TypeError, match=r"dtype float64 but the layer's parameters are float32"):
        layer(np.ones((2, 12)))
    with pytest.raises(TypeError, match=r"floating-point array .*received dtype int64"):
        layer(np.ones((2, 12), np.int64))
    assert layer._cache is cache
    with pytest.raises(ValueError, match=r"Dense\(12, 4\) expected per-sample input of shape \(12,\); "
                                         r"received \(3, 2, 2\)\. Put a Flatten"):
        layer.output_shape((3, 2, 2))
    assert layer.output_shape((12,)) == (4,)


@pytest.mark.parametrize("kw, err, msg", [
    ({"in_features": 0, "out_features": 3}, ValueError, r"in_features must be >= 1; received 0"),
    ({"in_features": 2, "out_features": 3, "weight_init": "he"}, ValueError,
     r"unknown initializer 'he'; known initializers: .*glorot_uniform.*he_normal"),
    ({"in_features": 2, "out_features": 3, "bias": "yes"}, TypeError, r"bias must be True or False; received 'yes'"),
    ({"in_features": 2, "out_features": 3, "dtype": np.float16}, ValueError, r"dtype must be float32 or float64"),
])
def test_dense_hyperparameter_errors(kw, err, msg):
    with pytest.raises(err, match=msg):
        Dense(**kw)


# ----- shared layer contract --------------------------------------------------------------
ALL_LAYERS = [
    (ReLU(), (3, 4, 4)), (LeakyReLU(0.2), (5,)), (Sigmoid(), (2, 3)), (Tanh(), (6,)), (Softmax(), (10,)),
    (BatchNorm2d(3), (3, 4, 4)), (BatchNorm1d(5), (5,)), (Dropout(0.2, rng=0), (3, 4, 4)),
    (Dense(6, 4, rng=0), (6,)), (Flatten(), (3, 4, 4)),
]


@pytest.mark.parametrize("layer, shape", ALL_LAYERS, ids=[type(c[0]).__name__ for c in ALL_LAYERS])
def test_float32_preserved_output_shape_and_no_cache_at_inference(layer, shape):
    x = off_kink((2, *shape)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32
    assert out.shape == (2, *layer.output_shape(shape))
    assert layer._cache is None  # prediction never holds activations
    with pytest.raises(RuntimeError, match=r"backward\(\) called before a forward pass that keeps a cache"):
        layer.backward(np.ones_like(out))
    out = layer(x, training=True)
    dx = layer.backward(np.ones_like(out))
    assert dx.dtype == np.float32 and dx.shape == x.shape
    assert all(p.grad.dtype == np.float32 and p.grad.shape == p.shape for p in layer.parameters())


@pytest.mark.parametrize("cls", [ReLU, Sigmoid, Tanh, Softmax, Flatten, LeakyReLU])
def test_parameter_free_layers_accept_float64(cls):
    x = off_kink((2, 3, 2))
    out = cls()(x, training=True)
    assert out.dtype == F64


@pytest.mark.parametrize("layer, expected_repr", [
    (ReLU(), "ReLU()"), (LeakyReLU(), "LeakyReLU()"), (LeakyReLU(0.2), "LeakyReLU(negative_slope=0.2)"),
    (Softmax(), "Softmax()"), (BatchNorm2d(16), "BatchNorm2d(16)"),
    (BatchNorm1d(8, eps=1e-3, momentum=0.01, dtype=F64), "BatchNorm1d(8, eps=0.001, momentum=0.01, dtype=float64)"),
    (Dropout(), "Dropout()"), (Dropout(0.25), "Dropout(p=0.25)"),
    (Dense(128, 10), "Dense(128, 10)"),
    (Dense(128, 10, bias=False, weight_init="glorot_uniform"), "Dense(128, 10, bias=False, weight_init='glorot_uniform')"),
    (Flatten(), "Flatten()"),
])
def test_repr_and_config_round_trip(layer, expected_repr):
    assert repr(layer) == expected_repr
    config = json.loads(json.dumps(layer.get_config()))
    rebuilt = type(layer)(**config)
    assert repr(rebuilt) == expected_repr
    assert rebuilt.get_config() == layer.get_config()
    for name in layer.param_names:
        if getattr(layer, name) is not None:
            assert getattr(rebuilt, name).shape == getattr(layer, name).shape
            assert getattr(rebuilt, name).data.dtype == getattr(layer, name).data.dtype


def test_astype_float64_then_gradients_in_float64():
    bn = BatchNorm2d(2).astype(np.float64)
    dense = Dense(3, 2, rng=0).astype(np.float64)
    assert bn.running_var.dtype == F64 and dense.weight.data.dtype == F64
    assert bn.get_config()["dtype"] == "float64" and dense.get_config()["dtype"] == "float64"
    dense.reset_parameters(np.random.default_rng(0))
    assert dense.weight.data.dtype == F64


def test_softmax_layer_errors_and_rows_sum_to_one():
    sm = Softmax()
    p = sm(np.random.default_rng(0).standard_normal((4, 7)))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)
    with pytest.raises(ValueError, match=r"Softmax expected input of shape \(N, K\).*received shape \(7,\)"):
        sm(np.ones(7))


def test_flatten_errors_and_output_shape():
    with pytest.raises(ValueError, match=r"Flatten expected input with a batch axis.*received shape \(5,\)"):
        Flatten()(np.ones(5))
    assert Flatten().output_shape((64, 7, 7)) == (3136,)


def test_activation_rejects_integer_input():
    with pytest.raises(TypeError, match=r"ReLU input must be a floating-point array.*received dtype int64"):
        ReLU()(np.ones((2, 2), np.int64))


def test_leaky_relu_slope_validation():
    with pytest.raises(TypeError, match=r"negative_slope must be a number; received 'a'"):
        LeakyReLU("a")
