"""cnnlab.lab.explain: the numbers behind the tutorials' explanations, checked against cnnlab's ops,
real layers and finite differences."""
import numpy as np
import pytest

from cnnlab.lab import explain
from cnnlab.models import zoo
from cnnlab.layers import AvgPool2d, Conv2d, Dense, GlobalAvgPool2d, MaxPool2d, ReLU
from cnnlab.models import Sequential
from cnnlab.ops.conv import conv2d_backward, conv2d_forward
from cnnlab.ops.shapes import conv_output_size
from cnnlab.testing import numerical_gradient, rel_error


# ----- output size ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n,k,s,p", [(28, 3, 1, 1), (28, 2, 2, 0), (7, 3, 2, 0), (224, 7, 2, 3), (10, 4, 3, 1)])
def test_output_size_matches_the_formula_and_writes_it_out(n, k, s, p):
    size, text = explain.output_size(n, k, s, p)
    assert size == conv_output_size(n, k, s, p)
    assert f"floor(({n} + 2*{p} - {k}) / {s}) + 1" in text
    assert text.endswith(f"= {size}")


def test_output_size_rejects_a_kernel_larger_than_the_input():
    with pytest.raises(ValueError, match="larger than the padded input"):
        explain.output_size(2, 5)


# ----- receptive field ---------------------------------------------------------------------------------
def _stack(*layers, shape=(1, 28, 28)):
    return Sequential(list(layers), input_shape=shape)


def test_receptive_field_of_stacked_3x3_convs_is_1_3_5_7():
    m = _stack(*[Conv2d(1, 1, 3, padding=1, rng=0) for _ in range(3)])
    rows, text = explain.receptive_field(m)
    assert [r.size for r in rows] == [(1, 1), (3, 3), (5, 5), (7, 7)]
    assert [r.jump for r in rows] == [(1, 1)] * 4
    assert "7x7" in text and "conv2d_3" in text


def test_pooling_makes_the_receptive_field_grow_faster():
    m = _stack(Conv2d(1, 1, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0),
               MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0))
    rows, _ = explain.receptive_field(m)
    assert [r.size[0] for r in rows] == [1, 3, 4, 8, 10, 18]
    assert [r.jump[0] for r in rows] == [1, 1, 2, 2, 4, 4]
    assert [r.start[0] for r in rows] == [0.0, 0.0, 0.5, 0.5, 1.5, 1.5]
    # the same three convolutions without pooling see only 7 pixels
    assert rows[-1].size[0] > 7


def test_receptive_field_equals_the_support_of_cnnlabs_backward():
    # Linear layers with positive weights: d(unit)/d(input) is nonzero exactly on the field.
    layers = [Conv2d(1, 1, 3, padding=1, rng=0, dtype=np.float64), AvgPool2d(2),
              Conv2d(1, 1, 3, padding=1, rng=0, dtype=np.float64), AvgPool2d(2),
              Conv2d(1, 1, 3, padding=1, rng=0, dtype=np.float64)]
    for layer in layers:
        if isinstance(layer, Conv2d):
            layer.weight.data[...] = 1.0
    m = _stack(*layers, shape=(1, 32, 32))
    rows, _ = explain.receptive_field(m)
    x = np.zeros((1, 1, 32, 32))
    out = m.forward(x, requires_grad=True)  # (1, 1, 8, 8)
    i, j = 4, 3
    dout = np.zeros_like(out)
    dout[0, 0, i, j] = 1
    g = m.backward(dout)[0, 0]
    r_idx, c_idx = np.nonzero(g)
    assert (r_idx.max() - r_idx.min() + 1, c_idx.max() - c_idx.min() + 1) == rows[-1].size == (18, 18)
    centre = (rows[-1].start[0] + i * rows[-1].jump[0], rows[-1].start[1] + j * rows[-1].jump[1])
    assert ((r_idx.max() + r_idx.min()) / 2, (c_idx.max() + c_idx.min()) / 2) == centre


def test_receptive_field_of_simple_cnn_and_global_pooling():
    rows, _ = explain.receptive_field(zoo.simple_cnn())
    assert [r.size[0] for r in rows] == [1, 3, 4, 8, 10]
    rows, _ = explain.receptive_field(zoo.bn_cnn())
    assert rows[-1].layer.endswith("(GlobalAvgPool2d)") and rows[-1].size == (42, 42)
    with pytest.raises(ValueError, match="input_shape"):
        explain.receptive_field(Sequential([Conv2d(1, 1, 3, rng=0), GlobalAvgPool2d()]))


# ----- parameter counts ---------------------------------------------------------------------------------
def test_parameter_comparison_numbers():
    rows, text = explain.parameter_comparison(print_fn=None)
    assert [r.dense_params for r in rows] == [78_500, 100_480, 150_529_000, 6_291_968]
    assert [r.conv_params for r in rows] == [None, 160, 1_792, 4_864]
    for number in ("78,500", "100,480", "150,529,000", "6,291,968", "160", "1,792", "4,864"):
        assert number in text
    assert rows[2].ratio == pytest.approx(150_529_000 / 1_792)


def test_parameter_formulas_equal_real_layers():
    assert explain.dense_parameters(28 * 28, 100) == Dense(784, 100, rng=0).num_parameters() == 78_500
    assert explain.dense_parameters(28 * 28, 128) == Dense(784, 128, rng=0).num_parameters() == 100_480
    assert explain.dense_parameters(3 * 64 * 64, 512) == Dense(3 * 64 * 64, 512, rng=0).num_parameters()
    assert explain.dense_parameters(10, 3, bias=False) == Dense(10, 3, bias=False, rng=0).num_parameters()
    for cin, cout, k in ((1, 16, 3), (3, 64, 3), (3, 64, 5), (2, 5, 4)):
        assert explain.conv_parameters(cin, cout, k) == Conv2d(cin, cout, k, rng=0).num_parameters()
    assert explain.conv_parameters(3, 4, 3, bias=False) == Conv2d(3, 4, 3, bias=False, rng=0).num_parameters()


def test_parameter_comparison_prints_the_table(capsys):
    explain.parameter_comparison()
    assert "150,529,000" in capsys.readouterr().out


# ----- the convolution matrix -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,kshape,stride,padding", [
    ((5, 5), (3, 3), 1, 0), ((6, 7), (3, 3), 1, 1), ((7, 6), (3, 2), 2, 1), ((8, 8), (5, 5), (2, 3), (2, 0)),
])
def test_conv_matrix_is_the_convolution_forward_and_backward(shape, kshape, stride, padding):
    rng = np.random.default_rng(0)
    k = rng.standard_normal(kshape)
    x = rng.standard_normal(shape)
    M = explain.conv_matrix(k, shape, stride, padding)
    out, cache = conv2d_forward(x[None, None], k[None, None], None, stride=stride, padding=padding)
    assert M.shape == (out.size, x.size)
    assert np.max(np.abs(M @ x.ravel() - out.ravel())) < 1e-12
    dout = rng.standard_normal(out.shape)
    dx, _, _ = conv2d_backward(dout, cache)
    assert np.max(np.abs(M.T @ dout.ravel() - dx.ravel())) < 1e-12


def test_conv_matrix_shows_weight_sharing_and_sparsity():
    k = np.arange(1.0, 10.0).reshape(3, 3)
    M, index = explain.conv_matrix(k, (6, 6), return_index=True)
    assert M.shape == index.shape == (16, 36)
    assert np.count_nonzero(index >= 0) == 16 * 9  # every window sees 9 real pixels
    for row, idx in zip(M, index):
        assert sorted(row[idx >= 0]) == list(k.ravel())  # the same 9 weights in every row
    assert np.all(M[index < 0] == 0)
    rows, cols, vals, mshape = explain.conv_matrix_triplets(k, (6, 6))
    dense = np.zeros(mshape)
    dense[rows, cols] = vals
    assert np.array_equal(dense, M)


def test_conv_matrix_keeps_float32_and_checks_shapes():
    assert explain.conv_matrix(np.ones((3, 3), np.float32), (4, 4)).dtype == np.float32
    with pytest.raises(ValueError, match="2-D kernel"):
        explain.conv_matrix(np.ones((1, 3, 3)), (4, 4))
    with pytest.raises(ValueError, match="input_shape"):
        explain.conv_matrix(np.ones((3, 3)), (1, 4, 4))


# ----- translation equivariance ---------------------------------------------------------------------------
def test_shift_image_fills_with_zeros():
    a = np.arange(9.0).reshape(3, 3)
    assert explain.shift_image(a, 1, -1).tolist() == [[0, 0, 0], [1, 2, 0], [4, 5, 0]]


def test_convolution_is_equivariant_and_pooling_adds_local_invariance():
    rng = np.random.default_rng(1)
    img = np.zeros((24, 24))
    img[4:20, 4:20] = rng.random((16, 16)) > 0.6  # a binary pattern with a zero border
    kernel = rng.standard_normal((3, 3))
    r = explain.translation_equivariance(img, kernel)
    assert r.conv_max_error < 1e-12
    assert len(r.per_shift) == 4 + 1 and r.shift == (5, 0)  # four 1-pixel shifts, then the exercise's 5 pixels
    assert r.pool_unchanged_fraction > r.conv_unchanged_fraction
    assert r.pool_relative_change < r.conv_relative_change
    assert r.pooled.shape == (12, 12)


# ----- descriptions ----------------------------------------------------------------------------------------
def test_explain_layer_fills_in_the_numbers():
    text = explain.explain_layer(Conv2d(1, 32, 3, padding=1, rng=0), (1, 28, 28))
    assert text.splitlines()[0] == ("Conv2d: slides 32 filters of size 1x3x3 over the 1x28x28 input with stride 1 "
                                    "and padding 1 -> 32x28x28; 32*(1*3*3)+32 = 320 parameters")
    assert "floor((28 + 2*1 - 3) / 1) + 1" in text
    assert "64*(32*3*3)+64 = 18,496 parameters" in Conv2d(32, 64, 3, padding=1, rng=0).explain((32, 14, 14))
    assert "3136*128 weights + 128 biases = 401,536 parameters" in Dense(3136, 128, rng=0).explain((3136,))
    assert "32x28x28 -> 32x14x14; 0 parameters" in MaxPool2d(2).explain((32, 28, 28))
    assert "slides 4 filters" in explain.explain_layer(Conv2d(2, 4, 3, rng=0))  # no input shape


def test_explain_model_lists_every_layer_and_the_total():
    m = zoo.simple_cnn()
    text = m.explain()
    lines = [line for line in text.splitlines() if line[:4].strip().rstrip(".").isdigit()]
    assert len(lines) == len(m.layers)
    assert text.splitlines()[-1] == "Total: 421,642 parameters"
    assert "64x7x7 values out as one vector of 64*7*7 = 3,136 numbers" in text
    assert "2*16 = 32 parameters" in zoo.bn_cnn().explain()
    assert "probability 0.5" in zoo.keras_tutorial_cnn().explain()


# ----- one pixel --------------------------------------------------------------------------------------------
def _small_model(dtype=np.float64):
    rng = np.random.default_rng(3)
    return Sequential([Conv2d(1, 2, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
                       Conv2d(2, 3, 3, stride=2, padding=1, rng=rng, dtype=dtype), ReLU()], input_shape=(1, 8, 8))


def test_explain_pixel_sum_equals_the_models_own_output_float64():
    m = _small_model()
    x = np.random.default_rng(0).standard_normal((1, 8, 8))
    for layer, at, ch in ((0, (3, 5), 1), (0, (0, 0), 0), (3, (1, 0), 2), (3, (0, 1), 0)):
        e = explain.explain_pixel(m, x, layer, at=at, channel=ch)
        assert abs(e.pre_activation - e.model_pre_activation) < 1e-12
        assert e.terms.sum() + e.bias == pytest.approx(e.pre_activation, abs=1e-12)
        assert e.activation == pytest.approx(max(e.pre_activation, 0.0), abs=1e-12)


def test_explain_pixel_float32_and_the_window_with_padding():
    m = zoo.simple_cnn()
    x = np.random.default_rng(0).random((1, 28, 28)).astype(np.float32)
    e = explain.explain_pixel(m, x, 0, at=(0, 27), channel=5)
    assert e.pre_activation == pytest.approx(e.model_pre_activation, rel=1e-5, abs=1e-6)
    assert list(e.window_rows) == [-1, 0, 1] and list(e.window_cols) == [26, 27, 28]
    assert np.all(e.patch[:, 0, :] == 0) and np.all(e.patch[:, :, 2] == 0)  # padding rows/cols
    assert np.array_equal(e.patch[0, 1:, :2], x[0, :2, 26:])
    assert np.array_equal(e.kernel, m.layers[0].weight.data[5])


def test_explain_pixel_backward_spread_equals_conv_backward():
    m = _small_model()
    x = np.random.default_rng(1).standard_normal((1, 1, 8, 8))
    e = explain.explain_pixel(m, x, 3, at=(1, 1), channel=2)
    conv = m.layers[3]
    layer_in = m.intermediate_outputs(x)[2]
    out, cache = conv2d_forward(layer_in, conv.weight.data, conv.bias.data, stride=conv.stride, padding=conv.padding)
    dout = np.zeros_like(out)
    dout[0, 2, 1, 1] = 1
    dx, _, _ = conv2d_backward(dout, cache)
    assert np.array_equal(e.grad_layer_input, dx[0])
    # the spread is the filter placed on the window (stride 2, padding 1: rows/cols 1..3)
    expected = np.zeros_like(dx[0])
    expected[:, 1:4, 1:4] = conv.weight.data[2]
    assert np.array_equal(e.grad_layer_input, expected)


def test_explain_pixel_gradient_to_the_input_matches_finite_differences():
    m = _small_model()
    x = np.random.default_rng(2).standard_normal((1, 1, 8, 8))
    e = explain.explain_pixel(m, x, 3, at=(1, 0), channel=1)

    def f():
        return float(m.intermediate_outputs(x)[3][0, 1, 1, 0])

    num = numerical_gradient(f, x)[0]
    assert rel_error(e.grad_input, num) < 1e-6
    assert [name for name, _ in e.backward_steps] == ["conv2d_2", "maxpool2d_1", "relu_1", "conv2d_1"]
    # max pooling routes the gradient to one input per window: at most one nonzero per 2x2 block
    g_pool_in = e.backward_steps[1][1]  # d / d(ReLU output), (2, 8, 8)
    blocks = (g_pool_in != 0).reshape(2, 4, 2, 4, 2).sum(axis=(2, 4))
    assert blocks.max() <= 1


def test_explain_pixel_pool_routing_uses_cnnlabs_backward():
    m = _small_model()
    x = np.random.default_rng(4).standard_normal((1, 1, 8, 8))
    act = m.intermediate_outputs(x)[1][0]  # (2, 8, 8)
    for i in range(8):
        for j in range(8):
            e = explain.explain_pixel(m, x, 0, at=(i, j), channel=0)
            p = e.pool
            assert p["cell"] == (i // 2, j // 2)
            win = act[0, 2 * (i // 2):2 * (i // 2) + 2, 2 * (j // 2):2 * (j // 2) + 2]
            assert p["max"] == win.max()
            if p["is_max"]:
                assert e.activation == win.max() and p["argmax"] == (i, j)


def test_explain_pixel_leaves_the_model_as_it_was_and_checks_arguments():
    m = _small_model()
    x = np.random.default_rng(0).standard_normal((1, 8, 8))
    grads = [p.grad for p in m.parameters()]
    explain.explain_pixel(m, x, 3, at=(0, 0))
    assert [p.grad for p in m.parameters()] == grads
    assert all(layer._cache is None for layer in m.layers)
    with pytest.raises(ValueError, match=r"layer 1 is ReLU. Conv2d layers are at indices \[0, 3\]"):
        explain.explain_pixel(m, x, 1)
    with pytest.raises(ValueError, match="received channel 0 at \\(8, 0\\)"):
        explain.explain_pixel(m, x, 0, at=(8, 0))
    with pytest.raises(ValueError, match="one input"):
        explain.explain_pixel(m, np.zeros((2, 1, 8, 8)), 0)
    text = str(explain.explain_pixel(m, x, 0, at=(2, 2)))
    assert "bias" in text and "model's own output" in text
