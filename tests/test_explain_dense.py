"""explain_dense: a Dense unit (a logit) read off the model, forward and backward."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab.lab.explain import explain_dense, explain_pixel
from cnnlab.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU
from cnnlab.models import Sequential
from cnnlab.testing import numerical_gradient, rel_error


def _model():
    return Sequential([Conv2d(1, 2, 3, padding=1, rng=0, dtype=np.float64), ReLU(), MaxPool2d(2), Flatten(),
                       Dense(2 * 4 * 4, 3, rng=1, dtype=np.float64)], input_shape=(1, 8, 8))


def test_logit_is_the_sum_of_its_products_plus_bias_and_its_gradient_is_right():
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, (1, 1, 8, 8))
    e = explain_dense(model, x, 4, unit=2)
    logit = float(model.forward(x)[0, 2])
    assert e.pre_activation == pytest.approx(logit, rel=1e-12)
    assert e.model_value == pytest.approx(logit, rel=1e-12)
    np.testing.assert_allclose(e.terms, e.layer_input * model.layers[4].weight.data[:, 2])
    numeric = numerical_gradient(lambda: float(model.forward(x)[0, 2]), x)[0]  # (1, 8, 8)
    assert rel_error(e.grad_input, numeric) < 1e-6
    assert [name for name, _ in e.backward_steps][-1] == model.layers[0].name
    assert "unit 2" in str(e)


def test_parameter_gradients_and_caches_are_left_as_they_were():
    model = _model()
    x = np.random.default_rng(1).uniform(0, 1, (1, 8, 8))
    model.layers[0].weight.grad = marker = np.full_like(model.layers[0].weight.data, 7.0)
    explain_dense(model, x, 4, unit=0)
    assert model.layers[0].weight.grad is marker


def test_explain_pixel_still_agrees_with_the_model_after_the_shared_backward():
    model = _model()
    x = np.random.default_rng(2).uniform(0, 1, (1, 8, 8))
    e = explain_pixel(model, x, 0, at=(3, 4), channel=1)
    assert e.pre_activation == pytest.approx(e.model_pre_activation, rel=1e-12)
    numeric = numerical_gradient(lambda: float(model.layers[0].forward(x[None])[0, 1, 3, 4]), x)
    assert rel_error(e.grad_input, numeric) < 1e-6


@pytest.mark.parametrize("layer, unit, words", [(0, 0, "Dense layers are at indices \\[4\\]"),
                                                 (4, 3, "3 output units"), (9, 0, "layer_index must be")])
def test_bad_arguments_are_named(layer, unit, words):
    with pytest.raises(ValueError, match=words):
        explain_dense(_model(), np.zeros((1, 8, 8)), layer, unit)
