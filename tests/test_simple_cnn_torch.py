"""The whole tutorial MNIST model beside PyTorch on real digits: logits and every gradient.

Real MNIST digits have flat zero backgrounds, so many max-pool windows hold tied maxima;
this is where a pooling backward that sends the gradient to every tied position (instead of
the first maximum, as PyTorch does) shows up.
"""
import numpy as np
import torch

from cnnlab.datasets import load_mnist
from cnnlab.layers import Conv2d, Dense
from cnnlab.training.losses import CrossEntropyLoss
from cnnlab.models.zoo import simple_cnn


def _torch_twin(model):
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
    ).double()
    ours = [l for l in model.layers if isinstance(l, (Conv2d, Dense))]
    theirs = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            w = a.weight.data.T if isinstance(a, Dense) else a.weight.data  # Dense is (in, out)
            b.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            b.bias.copy_(torch.from_numpy(a.bias.data))
    return net, ours, theirs


def test_simple_cnn_matches_pytorch_on_real_mnist_digits():
    (x_train, y_train), _ = load_mnist()
    x = (x_train[:32, None] / 255.0).astype(np.float64)
    y = y_train[:32].astype(np.int64)
    model = simple_cnn(seed=0).astype(np.float64)
    net, ours, theirs = _torch_twin(model)

    loss_fn = CrossEntropyLoss()
    logits = model.forward(x, training=True)
    loss = loss_fn.forward(logits, y)
    model.backward(loss_fn.backward())

    xt = torch.from_numpy(x)
    logits_t = net(xt)
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.from_numpy(y))
    loss_t.backward()

    np.testing.assert_allclose(logits, logits_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert abs(loss - loss_t.item()) < 1e-12
    for a, b in zip(ours, theirs):
        dw = a.weight.grad.T if isinstance(a, Dense) else a.weight.grad
        np.testing.assert_allclose(dw, b.weight.grad.numpy(), rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(a.bias.grad, b.bias.grad.numpy(), rtol=1e-9, atol=1e-13)


def test_first_pool_really_sees_ties_on_mnist():
    # Guard the premise of the test above: real digits give tied maxima in many windows.
    (x_train, _), _ = load_mnist()
    x = (x_train[:32, None] / 255.0).astype(np.float64)
    model = simple_cnn(seed=0).astype(np.float64)
    relu_out = model.intermediate_outputs(x)[1]  # (32, 32, 28, 28)
    windows = relu_out.reshape(32, 32, 14, 2, 14, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4)
    tied = (windows == windows.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert tied.mean() > 0.2
