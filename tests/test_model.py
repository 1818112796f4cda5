"""Sequential: shapes before data, summary numbers, config round trip, state handling."""
import weakref

import numpy as np
import pytest

from cnnlab.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU
from cnnlab.models import Sequential
from cnnlab.models.zoo import MODELS, bn_cnn, get_model, keras_tutorial_cnn, lenet5, simple_cnn


def test_simple_cnn_summary_counts_421642_parameters_before_any_data():
    model = simple_cnn()
    text = model.summary(print_fn=None)
    assert "Total params: 421,642" in text
    per_layer = [layer.num_parameters() for layer in model.layers if layer.num_parameters()]
    assert per_layer == [320, 18_496, 401_536, 1_290]
    assert model.layer_shapes() == [(32, 28, 28), (32, 28, 28), (32, 14, 14), (64, 14, 14), (64, 14, 14),
                                     (64, 7, 7), (3136,), (128,), (128,), (10,)]
    assert "(None, 64, 7, 7)" in text


def test_conv_3_to_64_3x3_has_1792_parameters():
    assert Conv2d(3, 64, 3).num_parameters() == 1_792


@pytest.mark.parametrize("builder, expected", [(keras_tutorial_cnn, 93_322), (lenet5, 61_706), (bn_cnn, 24_058)])
def test_zoo_parameter_counts(builder, expected):
    model = builder()
    assert model.num_parameters() == expected
    assert model.layer_shapes()[-1] == (10,)


def test_same_seed_same_weights_and_different_seed_different_weights():
    a, b, c = simple_cnn(seed=3), simple_cnn(seed=3), simple_cnn(seed=4)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert np.array_equal(pa.data, pb.data)
    assert not np.array_equal(a.parameters()[0].data, c.parameters()[0].data)


def test_forward_backward_shapes_and_dtype():
    model = simple_cnn()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    out = model.forward(x, training=True)
    assert out.shape == (3, 10) and out.dtype == np.float32
    dx = model.backward(np.ones_like(out))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_intermediate_outputs_match_forward():
    model = simple_cnn()
    x = np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32)
    outs = model.intermediate_outputs(x)
    assert len(outs) == len(model.layers)
    np.testing.assert_array_equal(outs[-1], model.forward(x))


def test_iter_outputs_holds_one_layer_output_at_a_time():
    # the same arrays as intermediate_outputs, but an output the caller drops is freed once the
    # next layer has run (the doctor's dead-ReLU check walks a whole batch this way)
    model = Sequential([Conv2d(1, 4, 3, padding=1, rng=0), ReLU(), Conv2d(4, 4, 3, padding=1, rng=1), ReLU(),
                        MaxPool2d(2)], input_shape=(1, 8, 8))
    x = np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(np.float32)
    want = model.intermediate_outputs(x)
    refs = []
    for i, out in enumerate(model.iter_outputs(x)):
        np.testing.assert_array_equal(out, want[i])
        refs.append(weakref.ref(out))
        if i >= 1:
            assert refs[i - 1]() is None, f"layer {i - 1}'s output is still held"
    assert len(refs) == 5
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, 8, 8\)"):
        model.iter_outputs(np.zeros((3, 8, 8, 1), np.float32))  # checked at the call, before any layer runs


def test_wrong_input_shape_names_expected_and_suggests_transpose():
    model = Sequential([Conv2d(3, 4, 3, rng=0), ReLU()], input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, 8, 8\); received \(2, 8, 8, 3\).*transpose"):
        model.forward(np.zeros((2, 8, 8, 3), np.float32))


def test_mismatched_layers_fail_at_construction_naming_the_layer():
    with pytest.raises(ValueError, match=r"layer 3 \(Dense"):
        Sequential([Conv2d(1, 4, 3, rng=0), MaxPool2d(2), Flatten(), Dense(100, 10, rng=0)], input_shape=(1, 28, 28))


def test_add_rejects_a_misfit_layer_and_leaves_model_unchanged():
    model = Sequential([Conv2d(1, 4, 3, rng=0)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError):
        model.add(Conv2d(3, 4, 3, rng=0))
    assert len(model) == 1


def test_non_layer_is_rejected():
    with pytest.raises(TypeError, match="must be a cnnlab Layer; received int"):
        Sequential([Conv2d(1, 2, 3), 5])


def test_config_round_trip_rebuilds_same_architecture():
    for name, builder in MODELS.items():
        model = builder()
        clone = Sequential.from_config(model.get_config())
        assert [repr(l) for l in clone.layers] == [repr(l) for l in model.layers], name
        assert clone.num_parameters() == model.num_parameters()
        assert clone.input_shape == model.input_shape


def test_from_config_rejects_unknown_class():
    with pytest.raises(ValueError, match="unknown class 'Evil'"):
        Sequential.from_config({"layers": [{"class": "Evil", "config": {}}]})


def test_load_state_dict_checks_everything_before_changing_anything():
    model, other = simple_cnn(seed=0), simple_cnn(seed=1)
    state = {k: v.copy() for k, v in other.state_dict().items()}
    state["7.weight"] = np.zeros((3, 3), np.float32)  # wrong shape for the Dense layer
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"7.weight' expected shape \(3136, 128\)"):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_astype_float64_runs_end_to_end():
    model = simple_cnn().astype(np.float64)
    out = model.forward(np.zeros((1, 1, 28, 28)), training=True)
    assert out.dtype == np.float64
    assert model.backward(np.ones_like(out)).dtype == np.float64


def test_float64_input_to_float32_model_is_a_clear_error():
    with pytest.raises(TypeError, match="float64.*float32"):
        simple_cnn().forward(np.zeros((1, 1, 28, 28)))


def test_get_model_unknown_name():
    with pytest.raises(ValueError, match="unknown model 'resnet'; choose one of: simple_cnn"):
        get_model("resnet")
