"""Ready-made models from the CNN tutorials, each built from one seed.

Every function returns an uncompiled ``Sequential`` with a known ``input_shape`` so
``model.summary()`` works at once. Weights are drawn from ``numpy.random.default_rng(seed)``
layer by layer, so the same seed gives the same weights, bit for bit.
"""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import OX_BIAS, OX_FILTER
from cnnlab.layers import (AvgPool2d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten, GlobalAvgPool2d,
                           MaxPool2d, ReLU, Tanh)
from cnnlab.models.pretrained import load_pretrained
from cnnlab.models.sequential import Sequential


def simple_cnn(num_classes: int = 10, *, seed: int | None = 0, dtype=np.float32, pretrained: bool = False) -> Sequential:
    """The tutorials' MNIST "SimpleCNN": 421,642 parameters for 10 classes.

    ``pretrained=True`` loads the weights shipped with cnnlab (the default ``cnnlab train``
    recipe, 99.47% on the MNIST test set; ``scripts/make_pretrained.py``), after checking
    their SHA-256 (``cnnlab.models.pretrained``); ``seed`` is then unused.

    Conv 1->32 3x3 pad 1, ReLU, MaxPool 2, Conv 32->64 3x3 pad 1, ReLU, MaxPool 2, Flatten,
    Dense 3136->128, ReLU, Dense 128->10.

    Shape:
        input (N, 1, 28, 28) -> logits (N, num_classes)

    Example:
        >>> simple_cnn().num_parameters()
        421642
    """
    if pretrained:
        if num_classes != 10:
            raise ValueError(f"the pretrained simple_cnn has 10 classes; received num_classes={num_classes}.")
        return load_pretrained("simple_cnn", dtype=dtype)
    rng = np.random.default_rng(seed)
    kw = dict(dtype=dtype, rng=rng)
    return Sequential([
        Conv2d(1, 32, 3, padding=1, **kw), ReLU(), MaxPool2d(2),
        Conv2d(32, 64, 3, padding=1, **kw), ReLU(), MaxPool2d(2),
        Flatten(),
        Dense(64 * 7 * 7, 128, **kw), ReLU(),
        Dense(128, num_classes, **kw),
    ], input_shape=(1, 28, 28), name="simple_cnn")


def keras_tutorial_cnn(num_classes: int = 10, *, seed: int | None = 0, dtype=np.float32, dropout: float = 0.5) -> Sequential:
    """The Keras/TensorFlow tutorial CNN: 93,322 parameters for MNIST.

    Conv 32 3x3 valid, ReLU, MaxPool 2, Conv 64 3x3 valid, ReLU, MaxPool 2, Conv 64 3x3 valid,
    ReLU, Flatten, Dense 64, ReLU, Dropout 0.5, Dense 10.

    Shape:
        input (N, 1, 28, 28) -> 26 -> 13 -> 11 -> 5 -> 3 -> logits (N, num_classes)

    Example:
        >>> keras_tutorial_cnn().num_parameters()
        93322
    """
    rng = np.random.default_rng(seed)
    kw = dict(dtype=dtype, rng=rng)
    return Sequential([
        Conv2d(1, 32, 3, **kw), ReLU(), MaxPool2d(2),
        Conv2d(32, 64, 3, **kw), ReLU(), MaxPool2d(2),
        Conv2d(64, 64, 3, **kw), ReLU(),
        Flatten(),
        Dense(64 * 3 * 3, 64, **kw), ReLU(), Dropout(dropout, rng=rng),
        Dense(64, num_classes, **kw),
    ], input_shape=(1, 28, 28), name="keras_tutorial_cnn")


def lenet5(num_classes: int = 10, *, seed: int | None = 0, dtype=np.float32) -> Sequential:
    """LeNet-5 (LeCun et al., 1998) for 28x28 inputs: 61,706 parameters.

    The 32x32 input of the paper is obtained by padding the 28x28 digit by 2 in the first
    convolution. Tanh activations and average pooling (the paper's subsampling layers); the
    paper's sparse C3 connection table and RBF output are replaced by their common modern
    equivalents (a full Conv 6->16 and a Dense output with softmax cross-entropy).

    Shape:
        input (N, 1, 28, 28) -> C1 (6, 28, 28) -> S2 (6, 14, 14) -> C3 (16, 10, 10)
        -> S4 (16, 5, 5) -> F5 120 -> F6 84 -> logits (N, num_classes)

    Example:
        >>> lenet5().num_parameters()
        61706
    """
    rng = np.random.default_rng(seed)
    kw = dict(dtype=dtype, rng=rng, weight_init="glorot_uniform")
    return Sequential([
        Conv2d(1, 6, 5, padding=2, **kw), Tanh(), AvgPool2d(2),
        Conv2d(6, 16, 5, **kw), Tanh(), AvgPool2d(2),
        Flatten(),
        Dense(16 * 5 * 5, 120, **kw), Tanh(),
        Dense(120, 84, **kw), Tanh(),
        Dense(84, num_classes, **kw),
    ], input_shape=(1, 28, 28), name="lenet5")


def bn_cnn(num_classes: int = 10, *, seed: int | None = 0, dtype=np.float32, in_channels: int = 1, image_size: int = 28) -> Sequential:
    """A small all-convolutional net with BatchNorm2d and GlobalAvgPool2d: 24,058 parameters.

    Three blocks of Conv 3x3 (no bias: BatchNorm's beta replaces it), BatchNorm2d, ReLU,
    the first two followed by MaxPool 2; then GlobalAvgPool2d and Dense 64->10.

    Example:
        >>> bn_cnn().num_parameters()
        24058
    """
    rng = np.random.default_rng(seed)
    kw = dict(dtype=dtype, rng=rng)
    return Sequential([
        Conv2d(in_channels, 16, 3, padding=1, bias=False, **kw), BatchNorm2d(16, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1, bias=False, **kw), BatchNorm2d(32, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(32, 64, 3, padding=1, bias=False, **kw), BatchNorm2d(64, dtype=dtype), ReLU(),
        GlobalAvgPool2d(),
        Dense(64, num_classes, **kw),
    ], input_shape=(in_channels, image_size, image_size), name="bn_cnn")


def ox_cnn(*, seed: int | None = 0, dtype=np.float32) -> Sequential:
    """The tutorials' small CNN that tells the 6x6 letters O and X apart: 26 parameters.

    Conv 1->2 3x3 valid, ReLU, MaxPool 4 (the largest response anywhere in the 4x4 map),
    Flatten, Dense 2->2. Each filter learns a pattern one letter holds and the other does not
    (an X's diagonal strokes, an O's corners); the max pool over the whole map makes the
    answer independent of where the letter sits (the data shift it by up to one pixel). A
    single filter with a 2x2 pool (the tutorials' network, :func:`ox_tutorial_cnn`) from a
    random start reaches 100% held-out accuracy only for some seeds; two filters and a global
    max do for most (seed 0 included).

    Shape:
        input (N, 1, 6, 6) -> (2, 4, 4) -> (2, 1, 1) -> 2 -> logits (N, 2)

    Example:
        >>> ox_cnn().num_parameters()
        26
    """
    rng = np.random.default_rng(seed)
    kw = dict(dtype=dtype, rng=rng)
    return Sequential([
        Conv2d(1, 2, 3, **kw), ReLU(), MaxPool2d(4), Flatten(), Dense(2, 2, **kw),
    ], input_shape=(1, 6, 6), name="ox_cnn")


def ox_tutorial_cnn(*, seed: int | None = 0, dtype=np.float32, tutorial_filter: bool = True) -> Sequential:
    """The O-versus-X tutorial's network: one 3x3 filter with a bias, ReLU, 2x2 max pool,
    Flatten, Dense 4->2: 20 parameters.

    With ``tutorial_filter`` (the default) the filter starts as the tutorial's hand-set ring
    (``OX_FILTER``, bias ``OX_BIAS`` = -2) and the dense weights are random; training then
    reshapes the filter. (The ring alone cannot tell the tutorial's O from its X after
    pooling: both give the flattened vector [2, 2, 2, 2].) From a fully random start one
    filter learns the task only for some seeds. The tutorial's trainable version adds a
    hidden layer of 4 units; one dense layer is enough here.

    Shape:
        input (N, 1, 6, 6) -> (1, 4, 4) -> (1, 2, 2) -> 4 -> logits (N, 2)

    Example:
        >>> m = ox_tutorial_cnn()
        >>> m.num_parameters(), m.layers[0].weight.data[0, 0, 1].tolist(), float(m.layers[0].bias.data[0])
        (20, [1.0, 0.0, 1.0], -2.0)
    """
    rng = np.random.default_rng(seed)
    kw = dict(dtype=dtype, rng=rng)
    model = Sequential([
        Conv2d(1, 1, 3, **kw), ReLU(), MaxPool2d(2), Flatten(), Dense(4, 2, **kw),
    ], input_shape=(1, 6, 6), name="ox_tutorial_cnn")
    if tutorial_filter:
        model.layers[0].weight.data[0, 0] = np.asarray(OX_FILTER, dtype=dtype)
        model.layers[0].bias.data[0] = OX_BIAS
    return model


def lines_cnn(*, seed: int | None = 0, dtype=np.float32) -> Sequential:
    """Four 3x3 filters that learn edge detectors to tell vertical from horizontal lines (8x8).

    Conv 1->4 3x3 pad 1, ReLU, GlobalAvgPool2d, Dense 4->2.

    Shape:
        input (N, 1, 8, 8) -> (4, 8, 8) -> 4 -> logits (N, 2)
    """
    rng = np.random.default_rng(seed)
    kw = dict(dtype=dtype, rng=rng)
    return Sequential([
        Conv2d(1, 4, 3, padding=1, **kw), ReLU(), GlobalAvgPool2d(), Dense(4, 2, **kw),
    ], input_shape=(1, 8, 8), name="lines_cnn")


#: name -> builder, for the command line and ``get_model``
MODELS = {f.__name__: f for f in (simple_cnn, keras_tutorial_cnn, lenet5, bn_cnn, ox_cnn, ox_tutorial_cnn, lines_cnn)}


def get_model(name: str, **kwargs) -> Sequential:
    """Build a zoo model by name, e.g. ``get_model("simple_cnn", seed=1)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}.")
    return MODELS[name](**kwargs)
