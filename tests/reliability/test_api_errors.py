"""Bad input everywhere: one table over the public API.

Every row calls one public function with one wrong thing (type, rank, channel layout, sample
count, label range or type, empty array, NaN/Inf, zero/negative size, absurd hyperparameter,
kernel larger than the input, unwritable path, ...) and states

* the exception type,
* a regex the message must match, naming what was expected and what was received,
* and, implicitly, that nothing changed: weights, gradients, caches, optimizer state,
  BatchNorm running statistics, Dropout generators and files are snapshotted before the call
  and compared after it.

A row is a function returning ``(call, subjects)``; ``subjects`` are the objects (layers,
models, optimizers, folders) whose state is snapshotted. Rows for known bugs in files owned by
other engineers are marked ``xfail(strict=True)`` with the bug in the reason.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from cnnlab.models import zoo
from cnnlab.training.callbacks import CSVLogger, EarlyStopping
from cnnlab.datasets import (
    add_channel_axis, load_image, load_image_folder, load_mnist, one_hot, read_idx, to_float, train_val_split,
    write_idx,
)
from cnnlab.models.io import ModelFileError, load_model, read_archive, write_archive
from cnnlab.layers import (
    AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten, GlobalAvgPool2d, LeakyReLU, MaxPool2d,
    ReLU, Sigmoid, Softmax, Tanh,
)
from cnnlab.layers.base import Layer
from cnnlab.training.losses import CrossEntropyLoss, get_loss
from cnnlab.models import Sequential
from cnnlab.engines import avgpool2d_forward, conv2d_forward, maxpool2d_forward
from cnnlab.ops.shapes import conv_output_size
from cnnlab.training.optim import SGD, Adam, AdamW, Optimizer, get_optimizer

F32 = np.float32


# ===== snapshots =====================================================================================
def _arr(a):
    return None if a is None else (a.shape, a.dtype.str, a.tobytes())


def _layer_state(layer: Layer):
    state = {k: _arr(np.asarray(v)) for k, v in layer.state_dict().items()}
    grads = {p.name: _arr(p.grad) for p in layer.parameters()}
    rng = getattr(layer, "rng", None)
    return (state, grads, id(layer._cache), repr(rng.bit_generator.state) if rng is not None else None)


def _opt_state(opt: Optimizer):
    sd = opt.state_dict()
    return (repr(sd["config"]), sd["step"], {k: _arr(v) for k, v in sd["buffers"].items()}, repr(sd["counters"]),
            id(opt.params) if opt.params is not None else None)


def _folder_state(folder: Path):
    """Every file under ``folder`` (names, sizes, contents): a failed call leaves no temp file behind."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def snapshot(subjects):
    snap = []
    for s in subjects:
        if isinstance(s, Sequential):
            opt = getattr(s, "optimizer", None)
            snap.append(("model", [_layer_state(layer) for layer in s.layers], len(s.layers),
                         None if opt is None else (id(opt), _opt_state(opt)), id(getattr(s, "loss_fn", None)),
                         repr(getattr(s, "metrics", None))))
        elif isinstance(s, Layer):
            snap.append(("layer", _layer_state(s)))
        elif isinstance(s, Optimizer):
            snap.append(("optimizer", _opt_state(s)))
        elif isinstance(s, CrossEntropyLoss):
            snap.append(("loss", _arr(s._dlogits)))
        elif isinstance(s, Path):
            snap.append(("folder", _folder_state(s)))
        else:  # pragma: no cover - a mistake in the table
            raise TypeError(f"cannot snapshot {type(s).__name__}")
    return snap


# ===== fixtures of the rows ==========================================================================
def rand(*shape, dtype=F32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def ox_data(n=8):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 6, 6), dtype=F32), (np.arange(n) % 2).astype(np.int64)


def tiny_model(seed=0):
    """(N, 1, 6, 6) -> conv 2x3x3 -> (2, 4, 4) -> pool -> (2, 2, 2) -> Dense(8, 2); independent of the zoo."""
    return Sequential([Conv2d(1, 2, 3, rng=seed), ReLU(), MaxPool2d(2), Flatten(), Dense(8, 2, rng=seed)],
                      input_shape=(1, 6, 6), name="tiny")


def compiled_ox(optimizer="adam", **kw):
    """A compiled tiny model with optimizer state (one step taken), so state changes are visible."""
    model = tiny_model()
    model.compile(optimizer, lr=kw.pop("lr", 0.05), **kw)
    x, y = ox_data()
    model.fit(x, y, epochs=1, batch_size=8, seed=0, verbose=0, doctor=False)
    return model


def compiled_bn():
    model = Sequential([Conv2d(1, 2, 3, rng=0), BatchNorm2d(2), ReLU(), Flatten(), Dense(32, 2, rng=0),
                        Dropout(0.5, rng=0)], input_shape=(1, 6, 6))
    model.compile("sgd", lr=0.1, momentum=0.9)
    x, y = ox_data()
    model.fit(x, y, epochs=1, batch_size=4, seed=0, verbose=0, doctor=False)
    return model


def trained_layer(layer, x):
    """A layer after forward/backward, so it has a cache, gradients and (BN) moved running stats."""
    out = layer.forward(x, training=True)
    layer.backward(np.ones_like(out))
    return layer


def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir(exist_ok=True)
    return d


# ===== rows ==============================================================================================
# Each row: (id, build(tmp_path) -> (call, subjects), exception, match)
ROWS = []


def row(id_, exc, match, *, xfail=None):
    def deco(build):
        marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
        ROWS.append(pytest.param(build, exc, match, id=id_, marks=marks))
        return build
    return deco


def simple(id_, exc, match, call, subjects=(), *, xfail=None):
    """A row whose call needs no tmp_path."""
    row(id_, exc, match, xfail=xfail)(lambda tmp: (call(), list(subjects) if not callable(subjects) else subjects()))


# ----- layer constructors: wrong types, zero/negative sizes, absurd hyperparameters ----------------
_CTOR = [
    ("conv-in-channels-0", lambda: Conv2d(0, 4, 3), ValueError, r"in_channels must be >= 1; received 0"),
    ("conv-out-channels-neg", lambda: Conv2d(1, -1, 3), ValueError, r"out_channels must be >= 1; received -1"),
    ("conv-in-channels-str", lambda: Conv2d("1", 4, 3), TypeError, r"in_channels must be an int; received '1'"),
    ("conv-in-channels-bool", lambda: Conv2d(True, 4, 3), TypeError, r"in_channels must be an int; received True"),
    ("conv-in-channels-float", lambda: Conv2d(1.0, 4, 3), TypeError, r"in_channels must be an int; received 1.0"),
    ("conv-kernel-0", lambda: Conv2d(1, 4, 0), ValueError, r"kernel_size must be >= 1; received 0"),
    ("conv-kernel-float", lambda: Conv2d(1, 4, 3.0), TypeError, r"kernel_size must be an int or a pair of ints; received 3\.0"),
    ("conv-kernel-triple", lambda: Conv2d(1, 4, (3, 3, 3)), TypeError, r"kernel_size must be an int or a pair.*received \(3, 3, 3\)"),
    ("conv-stride-0", lambda: Conv2d(1, 4, 3, stride=0), ValueError, r"stride must be >= 1; received 0"),
    ("conv-padding-neg", lambda: Conv2d(1, 4, 3, padding=-1), ValueError, r"padding must be >= 0; received -1"),
    ("conv-padding-word", lambda: Conv2d(1, 4, 3, padding="full"), ValueError, r"padding must be an int, a pair, 'valid' or 'same'; received 'full'"),
    ("conv-same-stride2", lambda: Conv2d(1, 4, 3, stride=2, padding="same"), ValueError, r"padding='same' needs stride 1; received stride=\(2, 2\)"),
    ("conv-same-even-kernel", lambda: Conv2d(1, 4, 2, padding="same"), ValueError, r"needs odd kernel sizes.*received kernel_size=\(2, 2\)"),
    ("conv-bias-str", lambda: Conv2d(1, 4, 3, bias="yes"), TypeError, r"bias must be True or False; received 'yes'"),
    ("conv-dtype-int", lambda: Conv2d(1, 4, 3, dtype=np.int32), ValueError, r"dtype must be float32 or float64; received int32"),
    ("conv-impl", lambda: Conv2d(1, 4, 3, impl="gpu"), ValueError, r"unknown convolution impl 'gpu'; expected one of 'fast', 'im2col', 'naive'"),
    ("conv-rng-str", lambda: Conv2d(1, 4, 3, rng="x"), TypeError, r"rng must be a numpy.random.Generator, an int seed or None; received 'x'"),
    ("conv-init-unknown", lambda: Conv2d(1, 4, 3, weight_init="bogus"), ValueError, r"unknown initializer 'bogus'; known initializers: .*he_normal"),
    ("dense-in-0", lambda: Dense(0, 3), ValueError, r"Dense in_features must be >= 1; received 0"),
    ("dense-out-neg", lambda: Dense(3, -2), ValueError, r"Dense out_features must be >= 1; received -2"),
    ("dense-in-float", lambda: Dense(3.5, 2), TypeError, r"Dense in_features must be an int; received 3\.5"),
    ("dense-bias-str", lambda: Dense(3, 2, bias="no"), TypeError, r"Dense bias must be True or False; received 'no'"),
    ("dense-dtype-f16", lambda: Dense(3, 2, dtype=np.float16), ValueError, r"Dense dtype must be float32 or float64; received float16"),
    ("maxpool-kernel-0", lambda: MaxPool2d(0), ValueError, r"MaxPool2d kernel_size must be >= 1; received 0"),
    ("maxpool-stride-neg", lambda: MaxPool2d(2, stride=-1), ValueError, r"MaxPool2d stride must be >= 1; received -1"),
    ("maxpool-padding-over-half", lambda: MaxPool2d(2, padding=2), ValueError, r"padding must be at most half the kernel size, 1 .*received padding=2"),
    ("maxpool-impl", lambda: MaxPool2d(2, impl="x"), ValueError, r"unknown pooling impl 'x'; expected one of"),
    ("avgpool-kernel-str", lambda: AvgPool2d("2"), TypeError, r"kernel_size must be an int or a pair of ints; received '2'"),
    ("bn2d-features-0", lambda: BatchNorm2d(0), ValueError, r"BatchNorm2d num_features must be >= 1; received 0"),
    ("bn2d-momentum-neg", lambda: BatchNorm2d(3, momentum=-0.1), ValueError, r"momentum must be in \[0\.0, 1\.0\]; received -0\.1"),
    ("bn2d-momentum-2", lambda: BatchNorm2d(3, momentum=2), ValueError, r"momentum must be in \[0\.0, 1\.0\]; received 2\.0"),
    ("bn2d-eps-0", lambda: BatchNorm2d(3, eps=0), ValueError, r"eps must be in \(0\.0, inf\); received 0\.0"),
    ("bn2d-eps-nan", lambda: BatchNorm2d(3, eps=float("nan")), ValueError, r"eps must be finite; received nan"),
    ("bn1d-features-str", lambda: BatchNorm1d("3"), TypeError, r"BatchNorm1d num_features must be an int; received '3'"),
    ("dropout-p-1", lambda: Dropout(1.0), ValueError, r"must be in \[0, 1\); received 1\.0"),
    ("dropout-p-neg", lambda: Dropout(-0.1), ValueError, r"must be in \[0\.0, 1\.0\); received -0\.1"),
    ("dropout-p-1.5", lambda: Dropout(1.5), ValueError, r"must be in \[0\.0, 1\.0\); received 1\.5"),
    ("dropout-p-nan", lambda: Dropout(float("nan")), ValueError, r"must be finite; received nan"),
    ("dropout-p-str", lambda: Dropout("0.5"), TypeError, r"must be a number; received '0\.5'"),
    ("leakyrelu-slope-str", lambda: LeakyReLU("a"), TypeError, r"negative_slope must be a number; received 'a'"),
    ("leakyrelu-slope-inf", lambda: LeakyReLU(float("inf")), ValueError, r"negative_slope must be finite; received inf"),
]
for _id, _call, _exc, _match in _CTOR:
    simple(f"ctor-{_id}", _exc, _match, lambda c=_call: c)


# ----- layer forward: wrong type, rank, layout, dtype, empty, kernel larger than input -------------
def _fwd(id_, make_layer, x, exc, match, *, training=True, xfail=None):
    def build(tmp):
        layer = make_layer()
        # give the layer a cache, grads and moved running stats first, so "unchanged" means something
        ok_shape = getattr(make_layer, "ok_shape", None)
        if ok_shape is not None:
            trained_layer(layer, rand(*ok_shape, dtype=getattr(make_layer, "ok_dtype", F32)))
        return (lambda: layer.forward(x() if callable(x) else x, training=training)), [layer]
    row(f"forward-{id_}", exc, match, xfail=xfail)(build)


def _maker(fn, ok_shape, ok_dtype=F32):
    fn.ok_shape, fn.ok_dtype = ok_shape, ok_dtype
    return fn


conv13 = _maker(lambda: Conv2d(1, 4, 3, rng=0), (2, 1, 8, 8))
conv33 = _maker(lambda: Conv2d(3, 4, 3, rng=0), (2, 3, 8, 8))
bn3 = _maker(lambda: BatchNorm2d(3), (4, 3, 5, 5))
bn1d3 = _maker(lambda: BatchNorm1d(3), (4, 3))
dense43 = _maker(lambda: Dense(4, 3, rng=0), (2, 4))
pool2 = _maker(lambda: MaxPool2d(2), (1, 1, 4, 4))
avg2 = _maker(lambda: AvgPool2d(3, stride=1, padding=1), (1, 1, 4, 4))
gap = _maker(lambda: GlobalAvgPool2d(), (1, 2, 4, 4))
drop = _maker(lambda: Dropout(0.5, rng=0), (2, 3))

_fwd("conv-nhwc", conv33, np.zeros((2, 8, 8, 3), F32), ValueError,
     r"expected input of shape \(N, 3, H, W\); received \(2, 8, 8, 3\)\. cnnlab is channels-first: try x\.transpose\(0, 3, 1, 2\)")
_fwd("conv-rank3", conv13, np.zeros((2, 8, 8), F32), ValueError,
     r"expected input of shape \(N, C, H, W\) \(4 dimensions\); received shape \(2, 8, 8\).*x\[:, None\]")
_fwd("conv-rank5", conv13, np.zeros((1, 2, 1, 8, 8), F32), ValueError, r"\(4 dimensions\); received shape \(1, 2, 1, 8, 8\)")
_fwd("conv-wrong-channels", conv33, np.zeros((2, 2, 8, 8), F32), ValueError, r"expected input of shape \(N, 3, H, W\); received \(2, 2, 8, 8\)")
_fwd("conv-list", conv13, [[1.0]], TypeError, r"must be a numpy\.ndarray; received list")
_fwd("conv-uint8", conv13, np.zeros((2, 1, 8, 8), np.uint8), TypeError, r"floating-point array .*received dtype uint8.*astype\(np\.float32\) / 255")
_fwd("conv-float64-into-float32", conv13, np.zeros((2, 1, 8, 8)), TypeError, r"dtype float64 but the layer's parameters are float32")
_fwd("conv-float16", conv13, np.zeros((2, 1, 8, 8), np.float16), TypeError, r"dtype float16 but the layer's parameters are float32")
_fwd("conv-empty-batch", conv13, np.zeros((0, 1, 8, 8), F32), ValueError, r"is empty \(shape \(0, 1, 8, 8\)\)")
_fwd("conv-empty-width", conv13, np.zeros((2, 1, 8, 0), F32), ValueError, r"is empty \(shape \(2, 1, 8, 0\)\)")
_fwd("conv-kernel-larger-than-input", conv13, np.zeros((2, 1, 2, 2), F32), ValueError,
     r"kernel_size \(3, 3\) is larger than the padded input \(2, 2\)")
_fwd("conv-kernel-larger-one-axis", conv13, np.zeros((2, 1, 8, 2), F32), ValueError, r"larger than the padded input \(8, 2\)")
_fwd("maxpool-kernel-larger", pool2, np.zeros((1, 1, 1, 1), F32), ValueError, r"kernel_size \(2, 2\) is larger than the padded input \(1, 1\)")
_fwd("maxpool-rank3", pool2, np.zeros((1, 4, 4), F32), ValueError, r"\(4 dimensions\); received shape \(1, 4, 4\)")
_fwd("maxpool-int", pool2, np.zeros((1, 1, 4, 4), np.int64), TypeError, r"received dtype int64")
_fwd("avgpool-empty", avg2, np.zeros((1, 0, 4, 4), F32), ValueError, r"is empty \(shape \(1, 0, 4, 4\)\)")
_fwd("avgpool-kernel-larger", _maker(lambda: AvgPool2d(5), (1, 1, 5, 5)), np.zeros((1, 1, 3, 3), F32), ValueError,
     r"kernel_size \(5, 5\) is larger than the padded input \(3, 3\)")
_fwd("gap-rank2", gap, np.zeros((2, 3), F32), ValueError, r"\(N, C, H, W\) \(4 dimensions\); received shape \(2, 3\)")
_fwd("dense-wrong-features", dense43, np.zeros((2, 5), F32), ValueError, r"Dense expected input of shape \(N, 4\); received \(2, 5\)")
_fwd("dense-rank4", dense43, np.zeros((2, 1, 2, 2), F32), ValueError, r"received \(2, 1, 2, 2\)\. Put a Flatten\(\) layer before Dense")
_fwd("dense-rank1", dense43, np.zeros((4,), F32), ValueError, r"received \(4,\)\. For a single sample add the batch axis")
_fwd("dense-float64", dense43, np.zeros((2, 4)), TypeError, r"dtype float64 but the layer's parameters are float32")
_fwd("bn2d-nhwc", bn3, np.zeros((2, 4, 4, 3), F32), ValueError, r"expected input of shape \(N, 3, H, W\); received \(2, 4, 4, 3\)\. cnnlab is channels-first")
_fwd("bn2d-batch-of-one", bn3, np.ones((1, 3, 1, 1), F32), ValueError,
     r"needs more than 1 value per channel; received input of shape \(1, 3, 1, 1\)")
_fwd("bn2d-float64", bn3, np.zeros((2, 3, 2, 2)), TypeError, r"dtype float64 but the layer's parameters are float32")
_fwd("bn1d-wrong-features", bn1d3, np.zeros((2, 4), F32), ValueError, r"expected input of shape \(N, 3\) or \(N, 3, L\); received \(2, 4\)")
_fwd("bn1d-rank4", bn1d3, np.zeros((2, 3, 2, 2), F32), ValueError, r"received \(2, 3, 2, 2\)\. For images use BatchNorm2d")
_fwd("bn1d-batch-of-one", bn1d3, np.ones((1, 3), F32), ValueError, r"received input of shape \(1, 3\) \(1 value per channel\)")
_fwd("dropout-int", drop, np.zeros((2, 3), np.int32), TypeError, r"received dtype int32")
_fwd("dropout-empty", drop, np.zeros((0, 3), F32), ValueError, r"is empty \(shape \(0, 3\)\)")
_fwd("relu-list", _maker(lambda: ReLU(), (2, 3)), [1.0], TypeError, r"ReLU input must be a numpy\.ndarray; received list")
_fwd("sigmoid-bool", _maker(lambda: Sigmoid(), (2, 3)), np.zeros((2, 3), bool), TypeError, r"received dtype bool")
_fwd("tanh-empty", _maker(lambda: Tanh(), (2, 3)), np.zeros((0,), F32), ValueError, r"is empty \(shape \(0,\)\)")
_fwd("softmax-rank1", _maker(lambda: Softmax(), (2, 3)), np.zeros((3,), F32), ValueError,
     r"expected input of shape \(N, K\) .*received shape \(3,\)")
_fwd("flatten-rank1", _maker(lambda: Flatten(), (2, 3, 2, 2)), np.zeros((3,), F32), ValueError,
     r"\(2 or more dimensions\); received shape \(3,\)")


# ----- layer backward: no cache, wrong dout shape or dtype ----------------------------------------
def _bwd(id_, make_layer, dout, exc, match, *, xfail=None):
    def build(tmp):
        layer = make_layer()
        if getattr(make_layer, "ok_shape", None) is not None and not id_.endswith("no-cache"):
            trained_layer(layer, rand(*make_layer.ok_shape))
        return (lambda: layer.backward(dout)), [layer]
    row(f"backward-{id_}", exc, match, xfail=xfail)(build)


_NO_CACHE = r"backward\(\) called before a forward pass that keeps a cache; call forward\(x, training=True\)"
_bwd("conv-no-cache", conv13, np.zeros((2, 4, 6, 6), F32), RuntimeError, _NO_CACHE)
_bwd("conv-wrong-shape", conv13, np.zeros((2, 4, 5, 5), F32), ValueError,
     r"expected dout of shape \(2, 4, 6, 6\).*received \(2, 4, 5, 5\)")
_bwd("conv-wrong-dtype", conv13, np.zeros((2, 4, 6, 6)), (TypeError, ValueError), r"expected dout of .*dtype float32.*received .*float64")
_bwd("maxpool-wrong-shape", pool2, np.zeros((1, 1, 3, 3), F32), ValueError, r"expected .*dout of shape \(1, 1, 2, 2\).*received \(1, 1, 3, 3\)")
_bwd("maxpool-wrong-dtype", pool2, np.zeros((1, 1, 2, 2)), (TypeError, ValueError), r"expected .*dout of .*float32.*received .*float64")
_bwd("maxpool-no-cache", pool2, np.zeros((1, 1, 2, 2), F32), RuntimeError, _NO_CACHE)
_bwd("gap-wrong-shape", gap, np.zeros((1, 3), F32), ValueError, r"expected dout of shape \(1, 2\); received \(1, 3\)")
_bwd("bn-no-cache", bn3, np.ones((2, 3, 2, 2), F32), RuntimeError, _NO_CACHE)
_bwd("dropout-no-cache", drop, np.ones((2, 3), F32), RuntimeError, _NO_CACHE)
_bwd("relu-no-cache", _maker(lambda: ReLU(), (2, 3)), np.ones((2, 3), F32), RuntimeError, _NO_CACHE)
# Known gaps: these backward passes let NumPy's own error (or nothing) through instead of naming
# the expected dout; owned by the layers engineer.
_bwd("dense-wrong-shape", dense43, np.zeros((2, 4), F32), ValueError, r"expected dout of shape \(2, 3\).*received \(2, 4\)")
_bwd("dense-wrong-dtype", dense43, np.zeros((2, 3)), (TypeError, ValueError), r"float32.*float64")
_bwd("bn-wrong-shape", bn3, np.ones((4, 3, 6, 6), F32), ValueError, r"expected dout of shape \(4, 3, 5, 5\).*received \(4, 3, 6, 6\)")
_bwd("dropout-wrong-shape", drop, np.ones((2, 4), F32), ValueError, r"expected dout of shape \(2, 3\).*received \(2, 4\)")
_bwd("relu-wrong-shape", _maker(lambda: ReLU(), (2, 3)), np.ones((2, 4), F32), ValueError,
     r"expected dout of shape \(2, 3\).*received \(2, 4\)")
_bwd("flatten-wrong-size", _maker(lambda: Flatten(), (2, 3, 2, 2)), np.ones((2, 13), F32), ValueError,
     r"expected dout of shape \(2, 12\).*received \(2, 13\)")


# ----- pure ops ----------------------------------------------------------------------------------------
simple("op-conv-channel-mismatch", ValueError, r"x has 2 channels \(shape \(1, 2, 5, 5\)\) but w expects 3",
       lambda: (lambda: conv2d_forward(rand(1, 2, 5, 5), rand(4, 3, 3, 3), None)))
simple("op-conv-mixed-dtypes", TypeError, r"one dtype \(no silent upcasts\); received x float32, w float64",
       lambda: (lambda: conv2d_forward(rand(1, 3, 5, 5), rand(4, 3, 3, 3, dtype=np.float64), None)))
simple("op-conv-bias-shape", ValueError, r"expected b of shape \(4,\); received \(3,\)",
       lambda: (lambda: conv2d_forward(rand(1, 3, 5, 5), rand(4, 3, 3, 3), rand(3))))
simple("op-conv-kernel-larger", ValueError, r"kernel size 7 is larger than the padded input size 5",
       lambda: (lambda: conv2d_forward(rand(1, 3, 5, 5), rand(4, 3, 7, 7), None)))
simple("op-conv-int-input", TypeError, r"x must be a float32 or float64 numpy array; received int64",
       lambda: (lambda: conv2d_forward(np.zeros((1, 3, 5, 5), np.int64), rand(4, 3, 3, 3), None)))
simple("op-conv-impl", ValueError, r"unknown convolution impl 'cuda'",
       lambda: (lambda: conv2d_forward(rand(1, 3, 5, 5), rand(4, 3, 3, 3), None, impl="cuda")))
simple("op-maxpool-rank3", ValueError, r"expected x of shape \(N, C, H, W\); received shape \(3, 5, 5\)",
       lambda: (lambda: maxpool2d_forward(rand(3, 5, 5), 2)))
simple("op-avgpool-kernel-larger", ValueError, r"kernel size 6 is larger than the padded input size 5",
       lambda: (lambda: avgpool2d_forward(rand(1, 1, 5, 5), 6)))
simple("op-conv-output-size-kernel", ValueError, r"kernel size 9 is larger than the padded input size 8 \(input 6 \+ 2\*padding 1\)",
       lambda: (lambda: conv_output_size(6, 9, 1, 1)))


# ----- Sequential ----------------------------------------------------------------------------------------
simple("sequential-non-layer", TypeError, r"Sequential layer 1 must be a cnnlab Layer; received str",
       lambda: (lambda: Sequential([Conv2d(1, 2, 3), "relu"])))
simple("sequential-shape-mismatch", ValueError,
       r"layer 2 \(Dense\(10, 2\)\) cannot take input of shape \(72,\).*expected per-sample input of shape \(10,\); received \(72,\)",
       lambda: (lambda: Sequential([Conv2d(1, 2, 3), Flatten(), Dense(10, 2)], input_shape=(1, 8, 8))))
simple("sequential-kernel-larger-than-input", ValueError, r"layer 0 .*cannot take input of shape \(1, 3, 3\).*larger than the padded input",
       lambda: (lambda: Sequential([Conv2d(1, 2, 5)], input_shape=(1, 3, 3))))
simple("sequential-nhwc-input-shape", ValueError, r"expected per-sample input of shape \(3, H, W\); received \(28, 28, 3\)\. cnnlab is channels-first",
       lambda: (lambda: Sequential([Conv2d(3, 2, 3)], input_shape=(28, 28, 3))))
simple("sequential-input-shape-zero", ValueError, r"input_shape.*positive.*received \(0, 8, 8\)",
       lambda: (lambda: Sequential([Flatten()], input_shape=(0, 8, 8))))
simple("sequential-input-shape-str", (TypeError, ValueError), r"input_shape.*received 'abc'",
       lambda: (lambda: Sequential([Flatten()], input_shape="abc")))


def _model_rows():
    def m():
        return tiny_model()

    def seq(id_, call, exc, match, xfail=None):
        def build(tmp):
            model = compiled_ox()
            return (lambda: call(model)), [model]
        row(f"sequential-{id_}", exc, match, xfail=xfail)(build)

    seq("forward-nhwc", lambda mdl: mdl.forward(np.zeros((2, 6, 6, 1), F32), training=True), ValueError,
        r"model expected input of shape \(N, 1, 6, 6\); received \(2, 6, 6, 1\)\. cnnlab is channels-first")
    seq("forward-no-channel-axis", lambda mdl: mdl.forward(np.zeros((2, 6, 6), F32), training=True), ValueError,
        r"model expected input of shape \(N, 1, 6, 6\); received \(2, 6, 6\)\. Add the channel axis")
    seq("forward-float64", lambda mdl: mdl.forward(np.zeros((2, 1, 6, 6)), training=True), TypeError,
        r"dtype float64 but the layer's parameters are float32")
    seq("forward-empty", lambda mdl: mdl.forward(np.zeros((0, 1, 6, 6), F32), training=True), ValueError,
        r"is empty \(shape \(0, 1, 6, 6\)\)")
    seq("add-non-layer", lambda mdl: mdl.add(3), TypeError, r"Sequential\.add expects a cnnlab Layer; received int")
    seq("add-wrong-shape", lambda mdl: mdl.add(Dense(7, 2)), ValueError,
        r"layer 5 \(Dense\(7, 2\)\) cannot take input of shape \(2,\)")
    seq("load-state-missing-keys", lambda mdl: mdl.load_state_dict({"0.weight": np.zeros((1, 1, 3, 3), F32)}), ValueError,
        r"model state mismatch: missing keys \['0\.bias', '4\.bias', '4\.weight'\]")
    seq("load-state-wrong-shape", lambda mdl: mdl.load_state_dict(
        {k: (np.zeros((3, 1, 3, 3), F32) if k == "0.weight" else v.copy()) for k, v in mdl.state_dict().items()}),
        ValueError, r"model state '0\.weight' expected shape \(2, 1, 3, 3\), dtype float32; received shape \(3, 1, 3, 3\)")
    seq("load-state-wrong-dtype", lambda mdl: mdl.load_state_dict(
        {k: (v.astype(np.float64) if k == "4.bias" else v.copy()) for k, v in mdl.state_dict().items()}),
        ValueError, r"model state '4\.bias' expected shape \(2,\), dtype float32; received shape \(2,\), dtype float64")
    seq("astype-int", lambda mdl: mdl.astype(np.int32), ValueError, r"dtype must be float32 or float64; received int32")
    simple("sequential-backward-before-forward", RuntimeError, r"Dense\.backward\(\) called before a forward pass",
           lambda: (lambda mdl=m(): (lambda: mdl.backward(np.zeros((2, 2), F32))))())
    simple("sequential-summary-no-input-shape", ValueError, r"this model has no input_shape; pass input_shape=\(C, H, W\)",
           lambda: (lambda: Sequential([Flatten(), Dense(4, 2)]).summary(print_fn=None)))


_model_rows()


# ----- compile -------------------------------------------------------------------------------------------
def _compile_rows():
    def comp(id_, kwargs, exc, match):
        def build(tmp):
            model = compiled_ox()
            return (lambda: model.compile(**kwargs)), [model]
        row(f"compile-{id_}", exc, match)(build)

    comp("unknown-optimizer", {"optimizer": "rmsprop"}, ValueError, r"unknown optimizer 'rmsprop'; known optimizers: sgd, adam, adamw")
    comp("lr-zero", {"optimizer": "sgd", "lr": 0}, ValueError, r"SGD lr must be in \(0\.0, inf\); received 0\.0")
    comp("lr-negative", {"optimizer": "adam", "lr": -1e-3}, ValueError, r"Adam lr must be in \(0\.0, inf\); received -0\.001")
    comp("lr-nan", {"optimizer": "adam", "lr": float("nan")}, ValueError, r"Adam lr must be finite; received nan")
    comp("momentum-negative", {"optimizer": "sgd", "lr": 0.1, "momentum": -0.5}, ValueError, r"SGD momentum must be in \[0\.0, 1\.0\); received -0\.5")
    comp("momentum-one", {"optimizer": "sgd", "lr": 0.1, "momentum": 1.0}, ValueError, r"SGD momentum must be in \[0\.0, 1\.0\); received 1\.0")
    comp("setting-of-other-optimizer", {"optimizer": "sgd", "lr": 0.1, "betas": (0.9, 0.99)}, TypeError, r"SGD has no setting 'betas'; its settings are")
    comp("unknown-loss", {"optimizer": "sgd", "lr": 0.1, "loss": "mse"}, ValueError, r"unknown loss 'mse'; known losses: cross_entropy")
    comp("unknown-metric", {"optimizer": "sgd", "lr": 0.1, "metrics": ["f1"]}, ValueError, r"unknown metric 'f1'; available metrics: accuracy")
    comp("loss-not-a-loss", {"optimizer": "sgd", "lr": 0.1, "loss": 3}, TypeError, r"loss must be a name \(cross_entropy\) or an object .*received int")
    simple("compile-no-parameters", ValueError, r"no trainable parameters",
           lambda: (lambda: Sequential([Flatten()], input_shape=(1, 2, 2)).compile("sgd", lr=0.1)))


_compile_rows()


# ----- fit / evaluate / predict -----------------------------------------------------------------------
def _data_rows():
    x, y = ox_data()
    x_nan = x.copy()
    x_nan[3, 0, 2, 2] = np.nan
    x_inf = x.copy()
    x_inf[1, 0, 0, 0] = -np.inf
    bad_x = [
        ("list", lambda: x.tolist(), TypeError, r"x must be a numpy\.ndarray; received list"),
        ("uint8", lambda: (x * 255).astype(np.uint8), TypeError, r"x has dtype uint8.*x\.astype\('float32'\) / 255"),
        ("float64", lambda: x.astype(np.float64), TypeError, r"x has dtype float64 but the model's weights are float32"),
        ("nhwc", lambda: x.transpose(0, 2, 3, 1), ValueError,
         r"x must have shape \(N, 1, 6, 6\) for this model; received \(8, 6, 6, 1\)\. cnnlab is channels-first"),
        ("no-channel-axis", lambda: x[:, 0], ValueError, r"x must have shape \(N, 1, 6, 6\) .*received \(8, 6, 6\)\. Add the channel axis"),
        ("rank1", lambda: np.zeros(36, F32), ValueError, r"x must have shape \(N, 1, 6, 6\) for this model; received \(36,\)"),
        ("empty", lambda: x[:0], ValueError, r"x holds no samples \(shape \(0, 1, 6, 6\)\)"),
        ("nan", lambda: x_nan, ValueError, r"x holds 1 NaN or infinite values \(the first at index \(3, 0, 2, 2\)\)"),
        ("inf", lambda: x_inf, ValueError, r"x holds 1 NaN or infinite values \(the first at index \(1, 0, 0, 0\)\)"),
    ]
    bad_y = [
        ("count-mismatch", lambda: y[:7], ValueError, r"x has 8 samples but y has shape \(7,\); expected \(8,\)"),
        ("float-labels", lambda: y.astype(F32), TypeError, r"y must be integer class indices; received dtype float32"),
        ("labels-too-large", lambda: y + 1, ValueError, r"y must be class indices in \[0, 1\] for this model's 2 outputs; received values from 1 to 2"),
        ("labels-negative", lambda: y - 1, ValueError, r"in \[0, 1\] .*received values from -1 to 0"),
        ("one-hot", lambda: np.eye(2, dtype=np.int64)[y], ValueError, r"integer class indices of shape \(8,\); received shape \(8, 2\)\. For one-hot labels use y\.argmax\(1\)"),
        ("list", lambda: list(y), TypeError, r"y must be a numpy\.ndarray; received list"),
    ]

    def data_row(id_, call, exc, match):
        def build(tmp):
            model = compiled_ox()
            folder = workdir(tmp)
            (folder / "afile").write_text("x")
            return (lambda: call(model, folder)), [model, folder]
        row(id_, exc, match)(build)

    for name, mk, exc, match in bad_x:
        yy = y[:0] if name == "empty" else y
        data_row(f"fit-x-{name}", lambda mdl, d, mk=mk, yy=yy: mdl.fit(mk(), yy, verbose=0, checkpoint=d / "c.npz"), exc, match)
        data_row(f"evaluate-x-{name}", lambda mdl, d, mk=mk, yy=yy: mdl.evaluate(mk(), yy), exc, match)
        data_row(f"predict-x-{name}", lambda mdl, d, mk=mk: mdl.predict(mk()), exc, match)
    for name, mk, exc, match in bad_y:
        data_row(f"fit-y-{name}", lambda mdl, d, mk=mk: mdl.fit(x, mk(), verbose=0, checkpoint=d / "c.npz"), exc, match)
        data_row(f"evaluate-y-{name}", lambda mdl, d, mk=mk: mdl.evaluate(x, mk()), exc, match)

    fit_settings = [
        ("epochs-0", {"epochs": 0}, ValueError, r"epochs must be >= 1; received 0"),
        ("batch-size-negative", {"batch_size": -1}, ValueError, r"batch_size must be >= 1; received -1"),
        ("batch-size-float", {"batch_size": 2.5}, TypeError, r"batch_size must be an int; received 2\.5"),
        ("validation-split-1", {"validation_split": 1.0}, ValueError, r"validation_split must be in \[0\.0, 1\.0\); received 1\.0"),
        ("validation-split-empty", {"validation_split": 0.01}, ValueError, r"leaves 0 for validation and 8 for training; both need at least 1"),
        ("verbose-3", {"verbose": 3}, ValueError, r"verbose must be 0 .*received 3"),
        ("seed-negative", {"seed": -1}, TypeError, r"seed must be a non-negative int or None; received -1"),
        ("augment-str", {"augment": "yes"}, TypeError, r"augment must be None, a maximum shift .*received 'yes'"),
        ("callback-not-callback", {"callbacks": [3]}, TypeError, r"callbacks\[0\] must be a cnnlab\.callbacks\.Callback; received int"),
        ("early-stopping-no-val", {"callbacks": [EarlyStopping("val_loss")]}, ValueError,
         r"EarlyStopping monitors 'val_loss' but fit logs only loss, accuracy, lr\. Pass validation_split"),
        ("validation-data-not-pair", {"validation_data": (x,)}, TypeError, r"validation_data must be a pair \(x_val, y_val\)"),
        ("validation-data-nan", {"validation_data": (x_nan, y)}, ValueError, r"x_val holds 1 NaN or infinite values"),
        ("validation-labels-out-of-range", {"validation_data": (x, y + 5)}, ValueError, r"y_val must be class indices in \[0, 1\] .*received values from 5 to 6"),
        ("resume-missing-file", {"resume_from": "/nonexistent/ckpt.npz"}, ModelFileError, r"no model file at /nonexistent/ckpt\.npz"),
        ("checkpoint-folder-missing", {"checkpoint": "/nonexistent/dir/c.npz"}, FileNotFoundError,
         r"cannot write the checkpoint /nonexistent/dir/c\.npz: folder /nonexistent/dir does not exist"),
    ]
    for name, kw, exc, match in fit_settings:
        data_row(f"fit-{name}", lambda mdl, d, kw=kw: mdl.fit(x, y, **{"verbose": 0, "checkpoint": d / "c.npz", **kw}), exc, match)

    def csv_under_file(mdl, d):
        return mdl.fit(x, y, verbose=0, callbacks=[CSVLogger(d / "afile" / "log.csv")])
    data_row("fit-csvlogger-under-a-file", csv_under_file, (FileNotFoundError, NotADirectoryError), r"afile")

    def ckpt_under_file(mdl, d):
        return mdl.fit(x, y, verbose=0, checkpoint=d / "afile" / "c.npz")
    data_row("fit-checkpoint-under-a-file", ckpt_under_file, (FileNotFoundError, NotADirectoryError), r"afile")

    data_row("evaluate-batch-size-0", lambda mdl, d: mdl.evaluate(x, y, batch_size=0), ValueError, r"batch_size must be >= 1; received 0")
    data_row("predict-batch-size-0", lambda mdl, d: mdl.predict(x, batch_size=0), ValueError, r"batch_size must be >= 1; received 0")
    data_row("predict-scalar", lambda mdl, d: mdl.predict(np.float32(1)), TypeError, r"x must be a numpy\.ndarray; received float32")

    def fit_uncompiled(tmp):
        model = tiny_model()
        return (lambda: model.fit(x, y, verbose=0)), [model]
    row("fit-uncompiled", RuntimeError, r"the model is not compiled: call model\.compile")(fit_uncompiled)

    def resume_other_model(tmp):
        d = workdir(tmp)
        other = tiny_model(seed=1)
        other = Sequential(other.layers[:-1] + [Dense(8, 2, bias=False, rng=0)], input_shape=(1, 6, 6))  # no bias
        other.compile("adam", lr=0.05)
        other.fit(x, y, epochs=1, verbose=0, seed=0, doctor=False, checkpoint=d / "other.npz")
        model = compiled_ox()
        return (lambda: model.fit(x, y, epochs=3, verbose=0, resume_from=d / "other.npz")), [model, d]
    row("fit-resume-from-other-model", ValueError, r"was written for a different model .*this model is tiny")(resume_other_model)

    def resume_done(tmp):
        d = workdir(tmp)
        model = compiled_ox()
        model.fit(x, y, epochs=2, verbose=0, seed=0, doctor=False, checkpoint=d / "c.npz")
        return (lambda: model.fit(x, y, epochs=2, verbose=0, resume_from=d / "c.npz")), [model, d]
    row("fit-resume-already-done", ValueError, r"has already completed 2 epochs and epochs=2; pass a larger epochs")(resume_done)

    def resume_weights_only(tmp):
        d = workdir(tmp)
        model = compiled_ox()
        model.save(d / "m.npz")
        return (lambda: model.fit(x, y, epochs=2, verbose=0, resume_from=d / "m.npz")), [model, d]
    row("fit-resume-from-weights-only-file", ValueError, r"is a model file without the training loop's state")(resume_weights_only)


_data_rows()


# ----- optimizers ----------------------------------------------------------------------------------------------
_OPT = [
    ("sgd-lr-0", lambda: SGD(lr=0), ValueError, r"SGD lr must be in \(0\.0, inf\); received 0\.0"),
    ("sgd-lr-negative", lambda: SGD(lr=-1), ValueError, r"SGD lr must be in \(0\.0, inf\); received -1\.0"),
    ("sgd-lr-inf", lambda: SGD(lr=float("inf")), ValueError, r"SGD lr must be finite; received inf"),
    ("sgd-lr-str", lambda: SGD(lr="0.1"), TypeError, r"SGD lr must be a number; received '0\.1'"),
    ("sgd-momentum-negative", lambda: SGD(lr=0.1, momentum=-0.1), ValueError, r"SGD momentum must be in \[0\.0, 1\.0\); received -0\.1"),
    ("sgd-weight-decay-negative", lambda: SGD(lr=0.1, weight_decay=-1), ValueError, r"SGD weight_decay must be in \[0\.0, inf\); received -1\.0"),
    ("sgd-nesterov-without-momentum", lambda: SGD(lr=0.1, nesterov=True), ValueError, r"nesterov=True needs momentum > 0; received momentum=0\.0"),
    ("sgd-nesterov-str", lambda: SGD(lr=0.1, momentum=0.9, nesterov="yes"), TypeError, r"nesterov must be True or False; received 'yes'"),
    ("adam-beta1-one", lambda: Adam(lr=0.1, betas=(1.0, 0.9)), ValueError, r"Adam beta1 must be in \[0\.0, 1\.0\); received 1\.0"),
    ("adam-beta2-negative", lambda: Adam(lr=0.1, betas=(0.9, -0.1)), ValueError, r"Adam beta2 must be in \[0\.0, 1\.0\); received -0\.1"),
    ("adam-betas-triple", lambda: Adam(lr=0.1, betas=(0.9, 0.9, 0.9)), TypeError, r"Adam betas must be a pair \(beta1, beta2\); received \(0\.9, 0\.9, 0\.9\)"),
    ("adam-eps-0", lambda: Adam(eps=0), ValueError, r"Adam eps must be in \(0\.0, inf\); received 0\.0"),
    ("adamw-weight-decay-negative", lambda: AdamW(weight_decay=-0.1), ValueError, r"AdamW weight_decay must be in \[0\.0, inf\); received -0\.1"),
    ("get-unknown", lambda: get_optimizer("rmsprop"), ValueError, r"unknown optimizer 'rmsprop'"),
    ("get-not-a-name", lambda: get_optimizer(3), TypeError, r"optimizer must be a name \(sgd, adam, adamw\) or an Optimizer; received int"),
    ("params-model", lambda: SGD(zoo.ox_cnn(), lr=0.1), TypeError, r"expected a list of Parameters; received a Sequential\. Pass model\.parameters\(\)"),
    ("params-empty", lambda: SGD([], lr=0.1), ValueError, r"received an empty parameter list"),
    ("params-array", lambda: SGD(np.zeros(3), lr=0.1), TypeError, r"received a single ndarray\. Wrap it in a list"),
    ("params-arrays", lambda: SGD([np.zeros(3)], lr=0.1), TypeError, r"parameter 0 must be a cnnlab Parameter; received ndarray"),
    ("step-without-params", lambda: SGD(lr=0.1).step(), RuntimeError, r"SGD has no parameters: pass them to the constructor"),
]
for _id, _call, _exc, _match in _OPT:
    simple(f"optimizer-{_id}", _exc, _match, lambda c=_call: c)


def _opt_rows():
    def opt_row(id_, mutate, exc, match, optimizer="adam", prepare=None):
        def build(tmp):
            model = compiled_ox(optimizer, **({"momentum": 0.9} if optimizer == "sgd" else {}))
            if prepare is not None:
                prepare(model)
            return (lambda: mutate(model)), [model]
        row(f"optimizer-{id_}", exc, match)(build)

    def set_lr(mdl, v):
        mdl.optimizer.lr = v

    opt_row("lr-setter-negative", lambda m: set_lr(m, -1.0), ValueError, r"Adam lr must be in \(0\.0, inf\); received -1\.0")
    opt_row("lr-setter-zero", lambda m: set_lr(m, 0.0), ValueError, r"Adam lr must be in \(0\.0, inf\); received 0\.0")

    def grads(fn):
        def prepare(m):
            params = m.parameters()
            for p in params:
                p.grad = np.ones_like(p.data)
            fn(params)
        return prepare

    opt_row("step-grad-wrong-shape", lambda m: m.optimizer.step(), ValueError,
            r"parameter 2 \(weight\) has shape \(8, 2\) but its grad has shape \(3, 2\)",
            prepare=grads(lambda ps: setattr(ps[2], "grad", np.zeros((3, 2), F32))))
    opt_row("step-grad-float64", lambda m: m.optimizer.step(), TypeError,
            r"parameter 3 \(bias\) is float32 but its grad is float64", optimizer="sgd",
            prepare=grads(lambda ps: setattr(ps[-1], "grad", np.zeros(2))))
    opt_row("load-state-other-optimizer", lambda m: m.optimizer.load_state_dict(SGD(m.parameters(), lr=0.1).state_dict()), ValueError,
            r"Adam\.load_state_dict received the state of a 'sgd' optimizer; expected 'adam'")
    opt_row("load-state-junk", lambda m: m.optimizer.load_state_dict([1, 2]), ValueError,
            r"expected a dict with keys name, config, step, buffers .*received list")

    def wrong_buffer(m):
        sd = m.optimizer.state_dict()
        sd["buffers"]["0.exp_avg"] = np.zeros((9,), F32)
        m.optimizer.load_state_dict(sd)
    opt_row("load-state-wrong-buffer-shape", wrong_buffer, ValueError,
            r"state '0\.exp_avg' expected an array of shape \(2, 1, 3, 3\) and dtype float32 \(parameter 0\); received \(9,\) float32")

    def bad_lr(m):
        sd = m.optimizer.state_dict()
        sd["config"]["lr"] = -1
        m.optimizer.load_state_dict(sd)
    opt_row("load-state-bad-lr", bad_lr, ValueError, r"Adam lr must be in \(0\.0, inf\); received -1\.0")


_opt_rows()


# ----- losses ----------------------------------------------------------------------------------------------------
def _loss_rows():
    def loss_row(id_, logits, labels, exc, match):
        def build(tmp):
            ce = CrossEntropyLoss()
            ce.forward(rand(2, 3), np.array([0, 2]))  # a kept gradient that must survive
            return (lambda: ce.forward(logits, labels)), [ce]
        row(f"loss-{id_}", exc, match)(build)

    loss_row("logits-rank1", np.zeros(3, F32), np.array([0]), ValueError, r"expected logits of shape \(N, K\) .*received shape \(3,\)\. For a single sample")
    loss_row("logits-rank4", np.zeros((2, 3, 2, 2), F32), np.array([0, 1]), ValueError, r"received shape \(2, 3, 2, 2\)\. Flatten or pool")
    loss_row("logits-int", np.zeros((2, 3), np.int32), np.array([0, 1]), TypeError, r"logits must be a floating-point array .*received dtype int32")
    loss_row("labels-float", np.zeros((2, 3), F32), np.array([0.0, 1.0]), TypeError, r"labels must be integer class indices of shape \(2,\); received dtype float64")
    loss_row("labels-out-of-range", np.zeros((2, 3), F32), np.array([0, 3]), ValueError, r"labels must be in \[0, 2\] for 3 classes; received values from 0 to 3")
    loss_row("labels-negative", np.zeros((2, 3), F32), np.array([0, -1]), ValueError, r"received values from -1 to 0")
    loss_row("labels-count", np.zeros((2, 3), F32), np.array([0, 1, 2]), ValueError, r"labels must have shape \(2,\) to match the inputs; received \(3,\)")
    loss_row("empty", np.zeros((0, 3), F32), np.array([], np.int64), ValueError, r"logits is empty \(shape \(0, 3\)\)")
    simple("loss-backward-before-forward", RuntimeError, r"backward\(\) called before forward\(logits, labels\)",
           lambda: (lambda: CrossEntropyLoss().backward()))
    simple("loss-get-unknown", ValueError, r"unknown loss 'mse'; known losses: cross_entropy", lambda: (lambda: get_loss("mse")))


_loss_rows()


# ----- datasets -------------------------------------------------------------------------------------------------------
def _dataset_rows():
    def ds(id_, call, exc, match, xfail=None):
        def build(tmp):
            d = workdir(tmp)
            (d / "afile").write_text("not a folder")
            (d / "text.png").write_text("not a png")
            (d / "empty.png").write_bytes(b"")
            return (lambda: call(d)), [d]
        row(f"datasets-{id_}", exc, match, xfail=xfail)(build)

    ds("read-idx-missing", lambda d: read_idx(d / "nothere"), FileNotFoundError, r"nothere")
    ds("read-idx-not-a-path", lambda d: read_idx(3), TypeError, r"read_idx needs a path or a binary file object; received int")
    ds("read-idx-text-file", lambda d: read_idx(d / "afile"), ValueError, r"is not an IDX file: it must start with two zero bytes; received 0x6e 0x6f")
    ds("write-idx-int64", lambda d: write_idx(d / "a.idx", np.zeros(3, np.int64)), TypeError, r"IDX cannot store dtype int64; supported: uint8")
    ds("write-idx-0d", lambda d: write_idx(d / "a.idx", np.array(3, np.uint8)), ValueError, r"1 to 8 dimensions; received shape \(\)")
    ds("write-idx-list", lambda d: write_idx(d / "a.idx", [1, 2]), TypeError, r"write_idx array must be a numpy\.ndarray; received list")
    ds("write-idx-9d", lambda d: write_idx(d / "a.idx", np.zeros((1,) * 9, np.uint8)), ValueError, r"1 to 8 dimensions; received shape \(1, 1, 1")
    ds("image-folder-missing", lambda d: load_image_folder(d / "nothere"), FileNotFoundError, r"image folder .*nothere does not exist")
    ds("image-folder-is-file", lambda d: load_image_folder(d / "afile"), NotADirectoryError, r"image folder .*afile is a file")
    ds("image-folder-no-classes", lambda d: load_image_folder(d), ValueError, r"has no class sub-folders; expected .*<class name>/<image files>")
    ds("image-folder-size-0", lambda d: load_image_folder(d, image_size=0), ValueError, r"image_size must be a positive int or a pair .*received \(0, 0\)")
    ds("image-folder-size-negative", lambda d: load_image_folder(d, image_size=(-1, 3)), ValueError, r"received \(-1, 3\)")
    ds("image-missing", lambda d: load_image(d / "nothere.png"), FileNotFoundError, r"image file .*nothere\.png does not exist")
    ds("image-not-an-image", lambda d: load_image(d / "text.png"), ValueError, r"cannot read image file .*text\.png")
    ds("image-zero-bytes", lambda d: load_image(d / "empty.png"), ValueError, r"image file .*empty\.png is empty \(0 bytes\)")
    ds("mnist-path-missing", lambda d: load_mnist(d / "nothere"), FileNotFoundError, r"MNIST folder .*nothere \(path=\) does not exist")
    ds("mnist-path-lacks-files", lambda d: load_mnist(d), FileNotFoundError, r"MNIST folder .* \(path=\) lacks train-images-idx3-ubyte\.gz")
    ds("mnist-unknown-kind", lambda d: load_mnist(kind="cifar"), ValueError, r"unknown dataset kind 'cifar'; known: mnist, fashion_mnist, kmnist")
    ds("to-float-list", lambda d: to_float([1, 2]), TypeError, r"to_float input must be a numpy\.ndarray; received list")
    ds("one-hot-out-of-range", lambda d: one_hot(np.array([0, 5]), 3), ValueError, r"in \[0, 2\] for 3 classes; received values from 0 to 5")
    ds("train-val-split-fraction", lambda d: train_val_split(np.zeros((4, 2)), np.zeros(4, np.int64), 1.5), ValueError,
       r"val_fraction must be in \(0, 1\); received 1\.5")
    ds("add-channel-axis-rank2", lambda d: add_channel_axis(np.zeros((2, 3), F32)), ValueError, r"\(N, H, W\).*received .*\(2, 3\)")


_dataset_rows()


# ----- save / load -------------------------------------------------------------------------------------------------------
def _io_rows():
    def io_row(id_, call, exc, match, xfail=None):
        def build(tmp):
            d = workdir(tmp)
            model = compiled_ox()
            model.save(d / "good.npz")
            (d / "afile").write_text("x")
            return (lambda: call(model, d)), [model, d]
        row(f"io-{id_}", exc, match, xfail=xfail)(build)

    io_row("save-missing-folder", lambda m, d: m.save(d / "nothere" / "a.npz"), FileNotFoundError,
           r"cannot save to .*nothere/a\.npz: folder .*nothere does not exist")
    io_row("save-under-a-file", lambda m, d: m.save(d / "afile" / "a.npz"), (FileNotFoundError, NotADirectoryError), r"afile")
    io_row("save-extra-model-key", lambda m, d: m.save(d / "good.npz", extra_arrays={"model/x": np.zeros(2)}), ValueError,
           r"extra array key 'model/x' may not start with 'model/'")
    io_row("save-object-array", lambda m, d: m.save(d / "good.npz", extra_arrays={"x": np.array([object()])}), ValueError,
           r"cannot save array 'x': only numeric arrays are stored; received object")
    io_row("save-string-array", lambda m, d: m.save(d / "good.npz", extra_arrays={"x": np.array(["a"])}), ValueError,
           r"only numeric arrays are stored; received <U1")
    io_row("save-reserved-key", lambda m, d: m.save(d / "good.npz", extra_arrays={"__cnnlab__": np.zeros(2)}), ValueError,
           r"array key '__cnnlab__' is reserved")
    io_row("save-header-not-json", lambda m, d: m.save(d / "good.npz", extra={"x": object()}), TypeError,
           r"header entry 'x': .*JSON.*received object")
    io_row("write-archive-not-dict", lambda m, d: write_archive(d / "good.npz", {"a": 1}, [np.zeros(2)]), TypeError,
           r"arrays must be a dict of name -> numpy array; received list")
    io_row("load-missing", lambda m, d: load_model(d / "nothere.npz"), ModelFileError, r"no model file at .*nothere\.npz")
    io_row("load-folder", lambda m, d: load_model(d), ModelFileError, r"no model file at ")
    io_row("load-text-file", lambda m, d: load_model(d / "afile"), ModelFileError, r"afile is not a valid cnnlab model file")
    io_row("load-not-a-path", lambda m, d: load_model(3), TypeError, r"expected str, bytes or os\.PathLike object, not int")

    def plain_npz(tmp):
        d = workdir(tmp)
        np.savez(d / "plain.npz", a=np.zeros(2))
        return (lambda: read_archive(d / "plain.npz")), [d]
    row("io-read-archive-plain-npz", ModelFileError, r"has no cnnlab header: it is not a cnnlab model file")(plain_npz)


_io_rows()


# ===== the test ==============================================================================================================
@pytest.mark.parametrize("build, exc, match", ROWS)
def test_bad_input_raises_clearly_and_changes_nothing(tmp_path, build, exc, match):
    call, subjects = build(tmp_path)
    before = snapshot(subjects)
    with pytest.raises(exc, match=match):
        call()
    assert snapshot(subjects) == before, "state changed although the call was refused"


def test_table_is_large_and_ids_unique():
    ids = [p.id for p in ROWS]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 200


def _fit_ox(checkpoint=None, callbacks=None):
    model = zoo.ox_cnn()
    model.compile("sgd", lr=0.1)
    x = np.zeros((4, 1, 6, 6), np.float32)
    return model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0, checkpoint=checkpoint, callbacks=callbacks)


@pytest.mark.parametrize("write", [
    lambda parent: zoo.ox_cnn().save(parent / "m.npz"),
    lambda parent: _fit_ox(checkpoint=parent / "c.npz"),
    lambda parent: _fit_ox(callbacks=[CSVLogger(parent / "log.csv")]),
], ids=["save", "fit-checkpoint", "csv-logger"])
def test_a_path_under_a_file_is_named_as_such(tmp_path, write):
    parent = tmp_path / "notes.txt"
    parent.write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError, match=r"notes\.txt is a file, not a folder"):
        write(parent)
