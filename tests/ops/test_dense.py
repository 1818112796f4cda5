"""Dense op vs torch.nn.functional.linear (weight transposed) and central differences."""
import numpy as np
import pytest
import torch

from cnnlab.ops.dense import dense_backward, dense_forward
from cnnlab.testing import numerical_gradient, rel_error


@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_linear(n, bias):
    rng = np.random.default_rng(n)
    x, w, b = rng.standard_normal((n, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((n, 3))
    out, cache = dense_forward(x, w, b if bias else None)
    dx, dw, db = dense_backward(dout, cache)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w.T.copy(), requires_grad=True)  # torch Linear weight is (out, in)
    bt = torch.tensor(b, requires_grad=True) if bias else None
    ot = torch.nn.functional.linear(xt, wt, bt)
    ot.backward(torch.from_numpy(dout))
    assert rel_error(out, ot.detach().numpy()) < 1e-14
    assert rel_error(dx, xt.grad.numpy()) < 1e-14
    assert rel_error(dw, wt.grad.numpy().T) < 1e-14
    if bias:
        assert rel_error(db, bt.grad.numpy()) < 1e-14
    else:
        assert db is None


def test_central_differences():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    g = rng.standard_normal((4, 2))
    dx, dw, db = dense_backward(g, dense_forward(x, w, b)[1])
    loss = lambda: float(np.sum(dense_forward(x, w, b)[0] * g))  # noqa: E731
    for analytic, arr in ((dx, x), (dw, w), (db, b)):
        assert rel_error(analytic, numerical_gradient(loss, arr)) < 1e-6


def test_float32_preserved():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3), (3, 4), (4,)))
    out, cache = dense_forward(x, w, b)
    grads = dense_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
