"""CrossEntropyLoss object: PyTorch oracle, input checks naming expected vs received, get_loss."""
import math

import numpy as np
import pytest
import torch

from cnnlab.training.losses import CrossEntropyLoss, get_loss
from cnnlab.testing import rel_error


def test_matches_torch_cross_entropy_loss():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((6, 4)) * 5, rng.integers(0, 4, 6)
    loss_fn = CrossEntropyLoss()
    loss = loss_fn.forward(logits, labels)
    d = loss_fn.backward()
    lt = torch.tensor(logits, requires_grad=True)
    tl = torch.nn.CrossEntropyLoss()(lt, torch.from_numpy(labels))
    tl.backward()
    assert isinstance(loss, float) and loss == pytest.approx(tl.item(), rel=1e-14)
    assert rel_error(d, lt.grad.numpy()) < 1e-14
    assert loss_fn(logits, labels) == loss  # callable like forward


def test_extreme_and_uniform_logits():
    loss_fn = CrossEntropyLoss()
    assert loss_fn.forward(np.array([[1e4, -1e4]], np.float32), np.array([1])) == pytest.approx(2e4, rel=1e-6)
    assert np.all(np.isfinite(loss_fn.backward())) and loss_fn.backward().dtype == np.float32
    assert loss_fn.forward(np.zeros((4, 10)), np.zeros(4, np.int64)) == pytest.approx(math.log(10), rel=1e-14)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(logits, labels\)"):
        CrossEntropyLoss().backward()


@pytest.mark.parametrize("logits, labels, err, msg", [
    (np.zeros((2, 3, 4, 4)), np.zeros(2, np.int64), ValueError,
     r"expected logits of shape \(N, K\) \(batch, classes\); received shape \(2, 3, 4, 4\)\. Flatten or pool"),
    (np.zeros(3), np.zeros(1, np.int64), ValueError, r"received shape \(3,\)\. For a single sample add the batch axis"),
    (np.zeros((2, 3), np.int64), np.zeros(2, np.int64), TypeError, r"logits must be a floating-point array"),
    (np.zeros((2, 3)), np.zeros(2), TypeError, r"labels must be integer class indices of shape \(2,\); received dtype float64"),
    (np.zeros((2, 3)), np.zeros(3, np.int64), ValueError, r"labels must have shape \(2,\) to match the inputs; received \(3,\)"),
    (np.zeros((2, 3)), np.array([0, 3]), ValueError, r"labels must be in \[0, 2\] for 3 classes; received values from 0 to 3"),
    (np.zeros((2, 3)), np.array([-1, 0]), ValueError, r"received values from -1 to 0"),
    ([[0.0, 1.0]], np.array([0]), TypeError, r"logits must be a numpy.ndarray; received list"),
])
def test_input_errors_leave_state_unchanged(logits, labels, err, msg):
    loss_fn = CrossEntropyLoss()
    loss_fn.forward(np.zeros((1, 2)), np.array([0]))
    before = loss_fn.backward().copy()
    with pytest.raises(err, match=msg):
        loss_fn.forward(logits, labels)
    np.testing.assert_array_equal(loss_fn.backward(), before)


def test_get_loss():
    assert isinstance(get_loss("cross_entropy"), CrossEntropyLoss)
    assert isinstance(get_loss(), CrossEntropyLoss)
    fn = CrossEntropyLoss()
    assert get_loss(fn) is fn
    with pytest.raises(ValueError, match=r"unknown loss 'mse'; known losses: cross_entropy"):
        get_loss("mse")
    with pytest.raises(TypeError, match=r"loss must be a name .* received int"):
        get_loss(3)
    assert repr(fn) == "CrossEntropyLoss()" and fn.get_config() == {}
