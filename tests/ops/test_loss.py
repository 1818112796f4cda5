"""Softmax cross-entropy op vs torch.nn.functional.cross_entropy; stability; accuracy."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.ops.loss import accuracy, softmax_cross_entropy
from cnnlab.testing import numerical_gradient, rel_error


def torch_ce(logits, labels):
    lt = torch.tensor(logits, requires_grad=True)
    loss = TF.cross_entropy(lt, torch.from_numpy(labels))
    loss.backward()
    return loss.item(), lt.grad.numpy()


@pytest.mark.parametrize("n, k", [(1, 2), (7, 10), (5, 3)])
def test_matches_torch(n, k):
    rng = np.random.default_rng(n * k)
    logits = rng.standard_normal((n, k)) * 3
    labels = rng.integers(0, k, n)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    tloss, tgrad = torch_ce(logits, labels)
    assert isinstance(loss, float)
    assert loss == pytest.approx(tloss, rel=1e-14)
    assert rel_error(dlogits, tgrad) < 1e-14
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-16)


def test_huge_logits_are_finite_and_exact():
    logits = np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
    labels = np.array([0, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dlogits = softmax_cross_entropy(logits, labels)
    # per-sample losses: 0, 2e4, 2e4 -> mean 4e4 / 3
    assert loss == pytest.approx(4e4 / 3, rel=1e-15)
    assert np.all(np.isfinite(dlogits))
    tloss, tgrad = torch_ce(logits, labels)
    assert loss == pytest.approx(tloss, rel=1e-15)
    assert rel_error(dlogits, tgrad) < 1e-15


@pytest.mark.parametrize("k", [2, 10, 1000])
def test_all_equal_logits_give_ln_k(k):
    loss, dlogits = softmax_cross_entropy(np.full((3, k), 7.5), np.array([0, k - 1, k // 2]))
    assert loss == pytest.approx(math.log(k), rel=1e-14)


def test_central_differences():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((4, 5)), np.array([0, 4, 2, 2])
    _, d = softmax_cross_entropy(logits, labels)
    num = numerical_gradient(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert rel_error(d, num) < 1e-6


def test_float32_gradient_dtype():
    loss, d = softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 1]))
    assert d.dtype == np.float32 and isinstance(loss, float)


def test_accuracy():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [5.0, -1.0]])
    assert accuracy(scores, np.array([1, 0, 0, 1])) == 0.5
    assert accuracy(scores, np.array([1, 0, 1, 0])) == 1.0
    assert isinstance(accuracy(scores, np.array([0, 0, 0, 0])), float)
