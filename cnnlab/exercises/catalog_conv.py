"""Exercises on convolution: the output-size formula, convolve2d, conv2d forward and backward.

Sources: 01 "From Pixels to Patterns" (edge example, padding and stride, backprop through
convolutions) and 03 "CNNs Deep Dive" (convolve2d with stride and padding, layer classes).
"""
from __future__ import annotations

import numpy as np

from cnnlab.exercises._core import Case, Exercise, distinct, header, register, rng
from cnnlab.ops.reference import conv2d_backward_naive, conv2d_forward_naive
from cnnlab.ops.shapes import conv_output_size

EDGE_7x7 = np.array([[10, 10, 10, 0, 0, 0, 0]] * 7, dtype=np.float64)  # 01: a vertical edge
EDGE_KERNEL = np.array([[1, 0, -1]] * 3, dtype=np.float64)


def conv_ref(x, w, b=None, stride=1, padding=0):
    """Reference batched cross-correlation. x (N, C, H, W), w (F, C, KH, KW) -> (N, F, Ho, Wo)."""
    s, p = (stride, stride) if np.isscalar(stride) else stride, (padding, padding) if np.isscalar(padding) else padding
    return conv2d_forward_naive(x, w, b, s, p)[0]


def conv_single(image, kernel, stride=1, padding=0):
    """Reference single-channel version: (H, W), (KH, KW) -> (H_out, W_out)."""
    return conv_ref(image[None, None], kernel[None, None], None, stride, padding)[0, 0]


# ----- 1. the output-size formula ---------------------------------------------------------------
def _size_cases():
    cases = []
    for n, k, s, p, label in [(7, 3, 1, 0, "01's edge example: 7x7, 3x3 -> 5"),
                              (28, 3, 1, 1, "'same' padding keeps 28"),
                              (10, 3, 1, 2, "padding 2 grows 10 to 12"),
                              (32, 5, 2, 2, "stride 2 with padding 2"),
                              (6, 3, 2, 1, "floor: (6 + 2 - 3) / 2 is 2.5"),
                              (7, 2, 2, 0, "floor: a last partial window is dropped"),
                              (5, 5, 1, 0, "kernel as large as the input -> 1"),
                              (224, 7, 2, 3, "a ResNet stem: 224 -> 112")]:
        cases.append(Case(label, "conv_output_size", (n, k, s, p), conv_output_size(n, k, s, p), variants={
            "no_plus_one": (n + 2 * p - k) // s,
            "padding_once": (n + p - k) // s + 1,
            "no_floor": (n + 2 * p - k) / s + 1,
        }))
    return cases


register(Exercise(
    "output_size", "The output-size formula of a convolution or pooling window",
    "01 From Pixels to Patterns, 'Padding and Stride'; 03 CNNs Deep Dive, calc_output_size",
    ("conv_output_size",),
    header("output_size", "The output-size formula", "01 'Padding and Stride'") + '''

def conv_output_size(n, kernel, stride=1, padding=0):
    """Number of window positions along one axis.

    Args:
        n: input length (height or width), int.
        kernel: window length, int.
        stride: step between windows, int >= 1.
        padding: zeros added on EACH side, int >= 0.

    Returns:
        an int. The window may only sit where it fits entirely inside the padded input;
        a last partial window is dropped.

    Hint (tutorial): 7x7 input, 3x3 kernel, stride 1, no padding -> 5.
    """
    # TODO: count the window positions; return an int
    raise NotImplementedError("conv_output_size")
''',
    _size_cases,
    {"no_plus_one": "You count the steps between windows, not the windows: add 1 for the first position.",
     "padding_once": "Padding is added on BOTH sides: the padded length is n + 2*padding.",
     "no_floor": "Use integer (floor) division: a partial last window does not count, and the size is an int."},
))


# ----- 2. convolve2d, valid, single channel ------------------------------------------------------
def _valid_variants(image, kernel):
    return {"flipped": conv_single(image, kernel[::-1, ::-1]),
            "off_by_one": conv_single(image, kernel)[:-1, :-1]}


def _valid_cases():
    r = rng(1)
    out = []
    inputs = [("01's 7x7 vertical edge -> rows of 0 30 30 0 0", EDGE_7x7, EDGE_KERNEL),
              ("3x3 image, 2x2 kernel 1..4", np.arange(9.0).reshape(3, 3), np.arange(1.0, 5).reshape(2, 2)),
              ("non-square image 5x8, non-square kernel 2x3", r.standard_normal((5, 8)), r.standard_normal((2, 3))),
              ("float32 in -> float32 out", r.standard_normal((6, 6)).astype(np.float32),
               r.standard_normal((3, 3)).astype(np.float32)),
              ("kernel as large as the image", r.standard_normal((4, 4)), r.standard_normal((4, 4))),
              ("random 12x10, 5x3", r.standard_normal((12, 10)), r.standard_normal((5, 3)))]
    for label, image, kernel in inputs:
        out.append(Case(label, "convolve2d", (image, kernel), conv_single(image, kernel),
                        variants=_valid_variants(image, kernel)))
    return out


_CONV_HINT_FLIP = ("Your output equals the result with the kernel rotated 180 degrees. In CNNs 'convolution' "
                   "is cross-correlation: out[i, j] = sum(image[i:i+KH, j:j+KW] * kernel), no flip.")

register(Exercise(
    "convolve2d", "convolve2d: a single-channel valid convolution (cross-correlation)",
    "01 From Pixels to Patterns, 'Concrete Example: Edge Detection'; 03 CNNs Deep Dive, convolve2d",
    ("convolve2d",),
    header("convolve2d", "convolve2d, single channel, no padding, stride 1", "01 'Concrete Example: Edge Detection'") + '''
import numpy as np


def convolve2d(image, kernel):
    """Slide ``kernel`` over ``image``; at each position multiply element-wise and sum.

    Rule: out[i, j] = sum over (u, v) of image[i + u, j + v] * kernel[u, v]  (no kernel flip).

    Shape:
        image: (H, W). kernel: (KH, KW). out: (H - KH + 1, W - KW + 1), dtype of image.

    Hint (tutorial): the 7x7 image with 10s in its first three columns and the kernel
    [[1, 0, -1]] * 3 give rows of 0 30 30 0 0.
    """
    # TODO: allocate the output (mind its size and dtype), then fill it window by window
    raise NotImplementedError("convolve2d")
''',
    _valid_cases,
    {"flipped": _CONV_HINT_FLIP,
     "off_by_one": "Your output is one row and one column short: there are H - KH + 1 positions, not H - KH."},
))


# ----- 3. convolve2d with stride and padding -----------------------------------------------------
def _sp_cases():
    r = rng(2)
    out = []
    specs = [("01's edge with padding 1 -> 7x7", EDGE_7x7, EDGE_KERNEL, 1, 1),
             ("4x4, 2x2 kernel, stride 2", np.arange(16.0).reshape(4, 4), np.ones((2, 2)), 2, 0),
             ("stride 2 and padding 1 on 5x5", r.standard_normal((5, 5)), r.standard_normal((3, 3)), 2, 1),
             ("stride 3 leaves a partial window", r.standard_normal((8, 8)), r.standard_normal((3, 3)), 3, 0),
             ("non-square 6x9, kernel 3x2, padding 2", r.standard_normal((6, 9)), r.standard_normal((3, 2)), 1, 2),
             ("float32, stride 2, padding 2", r.standard_normal((7, 7)).astype(np.float32),
              r.standard_normal((3, 3)).astype(np.float32), 2, 2)]
    for label, image, kernel, s, p in specs:
        variants = {"stride_ignored": conv_single(image, kernel, 1, p),
                    "padding_ignored": conv_single(image, kernel, s, 0),
                    "flipped": conv_single(image, kernel[::-1, ::-1], s, p),
                    "pad_one_side": conv_single(np.pad(image, ((p, 0), (p, 0))), kernel, s, 0)}
        out.append(Case(label, "convolve2d", (image, kernel, s, p), conv_single(image, kernel, s, p),
                        variants=variants))
    return out


register(Exercise(
    "convolve2d_stride_padding", "convolve2d with stride and zero padding",
    "03 CNNs Deep Dive, convolve2d_full and calc_output_size; 01 'Padding and Stride'",
    ("convolve2d",),
    header("convolve2d_stride_padding", "convolve2d with stride and padding", "03 CNNs Deep Dive") + '''
import numpy as np


def convolve2d(image, kernel, stride=1, padding=0):
    """Cross-correlate ``image`` with ``kernel`` after padding with zeros, stepping by ``stride``.

    Rule: pad ``padding`` zeros on every side, then
    out[i, j] = sum(padded[i*stride : i*stride + KH, j*stride : j*stride + KW] * kernel).

    Shape:
        image: (H, W). kernel: (KH, KW).
        out: (H_out, W_out) with H_out = (H + 2*padding - KH) // stride + 1 (same for W),
        dtype of image.

    Hint (tutorial): padding 1 keeps a 7x7 image 7x7 under a 3x3 kernel; stride 2 halves it.
    """
    # TODO: pad (np.pad), compute H_out and W_out, then fill each output pixel
    raise NotImplementedError("convolve2d")
''',
    _sp_cases,
    {"stride_ignored": "Your output is what stride 1 gives: move the window by `stride` pixels (i*stride).",
     "padding_ignored": "Your output ignores `padding`: pad the image with zeros on all four sides first.",
     "flipped": _CONV_HINT_FLIP,
     "pad_one_side": "You padded only the top and left: np.pad(image, padding) pads both sides of each axis."},
))


# ----- 4. conv2d forward, batched, several channels ----------------------------------------------
def _fwd_cases():
    r = rng(3)
    specs = [("one image, one channel, 01's edge", EDGE_7x7[None, None], EDGE_KERNEL[None, None], np.array([1.0]), 1, 0),
             ("batch 2, 3 channels in, 2 filters", r.standard_normal((2, 3, 5, 5)), r.standard_normal((2, 3, 3, 3)),
              r.standard_normal(2), 1, 0),
             ("batch 1, stride 2, padding 1", r.standard_normal((1, 2, 6, 6)), r.standard_normal((4, 2, 3, 3)),
              r.standard_normal(4), 2, 1),
             ("non-square input 5x7 and kernel 2x3", r.standard_normal((3, 2, 5, 7)), r.standard_normal((3, 2, 2, 3)),
              r.standard_normal(3), 1, 1),
             ("float32", r.standard_normal((2, 3, 6, 6)).astype(np.float32),
              r.standard_normal((2, 3, 3, 3)).astype(np.float32), r.standard_normal(2).astype(np.float32), 1, 0)]
    out = []
    for label, x, w, b, s, p in specs:
        out.append(Case(label, "conv2d_forward", (x, w, b, s, p), conv_ref(x, w, b, s, p), variants={
            "no_bias": conv_ref(x, w, None, s, p),
            "flipped": conv_ref(x, w[:, :, ::-1, ::-1], b, s, p),
            "first_channel_only": conv_ref(x[:, :1], w[:, :1], b, s, p)}))
    return out


register(Exercise(
    "conv2d_forward", "conv2d forward: a batch of multi-channel images through several filters",
    "01 From Pixels to Patterns, '1. Convolutional Layer'; 03 CNNs Deep Dive, the Conv layer class",
    ("conv2d_forward",),
    header("conv2d_forward", "conv2d forward, batched and multi-channel", "01 '1. Convolutional Layer'") + '''
import numpy as np


def conv2d_forward(x, w, b, stride=1, padding=0):
    """Every filter looks at every input channel; the channel results add up, plus a bias.

    Rule: out[n, f, i, j] = b[f] + sum over (c, u, v) of
          padded_x[n, c, i*stride + u, j*stride + v] * w[f, c, u, v]

    Shape:
        x: (N, C, H, W). w: (F, C, KH, KW). b: (F,).
        out: (N, F, H_out, W_out), H_out = (H + 2*padding - KH) // stride + 1; dtype of x.

    Hint (tutorial): a filter for 3-channel input is itself 3 channels deep; its output is one map.
    """
    # TODO: pad the two spatial axes only, then compute every output value
    raise NotImplementedError("conv2d_forward")
''',
    _fwd_cases,
    {"no_bias": "Every output value of filter f gets the bias b[f] added.",
     "flipped": _CONV_HINT_FLIP,
     "first_channel_only": "Only channel 0 counts in your output: sum the products over ALL input channels c."},
))


# ----- 5. conv2d backward -------------------------------------------------------------------------
def conv_backward_ref(dout, x, w, b, s, p):
    _, cache = conv2d_forward_naive(x, w, b, (s, s), (p, p))
    return conv2d_backward_naive(dout, cache)


def _bwd_cases():
    r = rng(4)
    specs = [("1 image, 1 channel, 3x3 on 4x4, no padding", 1, 1, 1, 4, 4, 3, 3, 1, 0),
             ("padding 1: dx must drop the padded border", 2, 2, 2, 5, 5, 3, 3, 1, 1),
             ("stride 2, padding 1", 2, 3, 2, 6, 6, 3, 3, 2, 1),
             ("non-square 4x6 input, 2x3 kernel, batch 3", 3, 2, 3, 4, 6, 2, 3, 1, 0),
             ("batch 1, 4 channels, stride 2", 1, 4, 2, 7, 7, 3, 3, 2, 0)]
    out = []
    for label, N, C, F, H, W, KH, KW, s, p in specs:
        x, w, b = r.standard_normal((N, C, H, W)), r.standard_normal((F, C, KH, KW)), r.standard_normal(F)
        dout = r.standard_normal(conv_ref(x, w, b, s, p).shape)
        dx, dw, db = conv_backward_ref(dout, x, w, b, s, p)
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        variants = {
            "dx_not_flipped": (conv_backward_ref(dout, x, w[:, :, ::-1, ::-1], b, s, p)[0], dw, db),
            "dx_padding_kept": (conv_backward_ref(dout, xp, w, b, s, 0)[0], dw, db),
            "db_not_summed": (dx, dw, dout[0].sum(axis=(1, 2))),
            "db_mean": (dx, dw, dout.mean(axis=(0, 2, 3))),
            "dw_one_sample": (dx, conv_backward_ref(dout[:1], x[:1], w, b, s, p)[1], db)}
        if N == 1:  # the batch mistakes are invisible with one image
            del variants["db_not_summed"], variants["dw_one_sample"]
        if p == 0:
            del variants["dx_padding_kept"]
        out.append(Case(label, "conv2d_backward", (dout, x, w, b, s, p), (dx, dw, db),
                        variants=variants, names=("dx", "dw", "db")))
    return out


register(Exercise(
    "conv2d_backward", "conv2d backward: dx, dw and db",
    "01 From Pixels to Patterns, 'Gradient for Convolution'; 03 CNNs Deep Dive, Conv.backward",
    ("conv2d_backward",),
    header("conv2d_backward", "conv2d backward (dx, dw, db)", "01 'Gradient for Convolution'") + '''
import numpy as np


def conv2d_backward(dout, x, w, b, stride=1, padding=0):
    """Gradients of the loss with respect to x, w and b, given dout = dL/d(out).

    Rule (out[n, f, i, j] = b[f] + sum_{c,u,v} xp[n, c, i*s + u, j*s + v] * w[f, c, u, v]):
        db[f]          = sum over n, i, j of dout[n, f, i, j]
        dw[f, c, u, v] = sum over n, i, j of dout[n, f, i, j] * xp[n, c, i*s + u, j*s + v]
        dxp[n, c, i*s + u, j*s + v] += dout[n, f, i, j] * w[f, c, u, v]   (for all f, i, j, u, v)
        dx = dxp without its padded border.

    Shape:
        dout: (N, F, H_out, W_out). x, dx: (N, C, H, W). w, dw: (F, C, KH, KW). b, db: (F,).
    Returns:
        (dx, dw, db)

    Hint (tutorial): for stride 1, dx is a full convolution of dout with the kernel rotated
    by 180 degrees; with loops, just scatter each dout value back through the same window.
    """
    # TODO: pad x, loop over output positions, accumulate into dxp and dw; sum dout for db
    raise NotImplementedError("conv2d_backward")
''',
    _bwd_cases,
    {"dx_not_flipped": "dx matches the result with an unrotated kernel: dx is the FULL convolution of dout with "
                       "the kernel rotated 180 degrees (or scatter dout[n,f,i,j]*w[f] back into its window).",
     "dx_padding_kept": "dx has the padded shape: cut the padded border off (dxp[:, :, p:p+H, p:p+W]).",
     "db_not_summed": "db uses only the first image: sum dout over the batch AND every position (axes 0, 2, 3).",
     "db_mean": "db is an average: the bias adds to every output value, so its gradient is the SUM of dout.",
     "dw_one_sample": "dw uses only the first image: accumulate the contribution of every image in the batch."},
))
