"""What ``cnnlab bench`` times and how much arithmetic it is: the layer rows and the FLOP model."""
from __future__ import annotations

__all__ = ["MNIST_TRAIN", "MNIST_TEST", "LAYERS", "FLOPS_FWD", "FLOPS_TRAIN", "OPTIMIZERS", "layer_flops",
           "RGB_SIZES", "RGB_BATCH", "rgb_block_name", "rgb_block_flops", "rgb_block_iters"]

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000

#: layer rows: name -> (kind, settings, per-sample input shape). ``no_dx``: the layer's input
#: gradient is not computed (a first layer: its input is the data), in both frameworks.
LAYERS = {
    "conv1 1->32 3x3 @28 (no dx)": ("conv", dict(cin=1, cout=32, no_dx=True), (1, 28, 28)),
    "relu @32x28x28": ("relu", {}, (32, 28, 28)),
    "maxpool 2 @32x28x28": ("maxpool", {}, (32, 28, 28)),
    "conv1+relu+pool fused (no dx)": ("fused", dict(cin=1, cout=32, no_dx=True), (1, 28, 28)),
    "conv2 32->64 3x3 @14": ("conv", dict(cin=32, cout=64), (32, 14, 14)),
    "relu @64x14x14": ("relu", {}, (64, 14, 14)),
    "maxpool 2 @64x14x14": ("maxpool", {}, (64, 14, 14)),
    "conv2+relu+pool fused": ("fused", dict(cin=32, cout=64), (32, 14, 14)),
    "flatten @64x7x7": ("flatten", {}, (64, 7, 7)),
    "dense 3136->128": ("dense", dict(cin=3136, cout=128), (3136,)),
    "relu @128": ("relu", {}, (128,)),
    "dense 128->10": ("dense", dict(cin=128, cout=10), (128,)),
    "bn_cnn conv 1->16 nobias @28 (no dx)": ("conv", dict(cin=1, cout=16, bias=False, no_dx=True), (1, 28, 28)),
    "bn_cnn batchnorm2d 16 @28": ("bn", dict(c=16), (16, 28, 28)),
    "bn_cnn conv 16->32 nobias @14": ("conv", dict(cin=16, cout=32, bias=False), (16, 14, 14)),
    "bn_cnn batchnorm2d 32 @14": ("bn", dict(c=32), (32, 14, 14)),
    "bn_cnn conv 32->64 nobias @7": ("conv", dict(cin=32, cout=64, bias=False), (32, 7, 7)),
    "bn_cnn batchnorm2d 64 @7": ("bn", dict(c=64), (64, 7, 7)),
    "bn_cnn globalavgpool @64x7x7": ("gap", {}, (64, 7, 7)),
    "bn_cnn dense 64->10": ("dense", dict(cin=64, cout=10), (64,)),
    "sgd+momentum step (421,642 params)": ("optim", dict(opt="sgd"), ()),
    "adam step (421,642 params)": ("optim", dict(opt="adam"), ()),
}

#: forward FLOPs per image of simple_cnn's GEMM work: conv1, conv2, dense1, dense2 (2 per multiply-add)
FLOPS_CONV1 = 2 * 32 * 9 * 28 * 28
FLOPS_FWD = FLOPS_CONV1 + 2 * 64 * 288 * 14 * 14 + 2 * 3136 * 128 + 2 * 128 * 10
#: training: forward, dW of every layer, dX of every layer but the first
FLOPS_TRAIN = 3 * FLOPS_FWD - FLOPS_CONV1

OPTIMIZERS = {"sgd": ("SGD+momentum", dict(lr=0.01, momentum=0.9)), "adam": ("Adam", dict(lr=1e-3))}


def layer_flops(kind: str, s: dict, shape: tuple, batch: int) -> float | None:
    """GEMM FLOPs of one forward + backward (None for layers without matrix products)."""
    if kind in ("conv", "fused"):
        fwd = 2 * batch * s["cout"] * s["cin"] * 9 * shape[1] * shape[2]
        return fwd * (2 if s.get("no_dx") else 3)
    if kind == "dense":
        return 3 * 2 * batch * s["cin"] * s["cout"]
    return None


#: the plain two-conv RGB block users build for pictures: Conv2d(3, 64, 3, padding=1), ReLU,
#: Conv2d(64, 64, 3, padding=1), ReLU, MaxPool2d(2), forward + backward through ``Sequential``
#: (no input gradient: the input is data), at these input sizes (px) and this batch
RGB_SIZES = (32, 64, 128, 224)
RGB_BATCH = 16


def rgb_block_name(size: int) -> str:
    return f"RGB block 3->64->64 3x3 + relu + pool @{size}x{size}"


def rgb_block_flops(size: int, batch: int) -> float:
    """GEMM FLOPs of one forward + backward of the RGB block: conv1 forward + dW (no dX), conv2 all three."""
    conv1 = 2 * batch * 64 * 3 * 9 * size * size
    conv2 = 2 * batch * 64 * 64 * 9 * size * size
    return 2 * conv1 + 3 * conv2


def rgb_block_iters(size: int) -> int:
    """Timed calls per repeat: fewer for large inputs (one 224 px call takes seconds)."""
    return 10 if size <= 32 else 5 if size <= 64 else 2

