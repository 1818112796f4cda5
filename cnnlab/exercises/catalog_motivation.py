"""The coding exercises and the challenge of 04 "Motivation for Convolutions".

Sobel edges on a checkerboard, translation equivariance with a 5-pixel shift, the 16x36
matrix of a 3x3 convolution on a 6x6 input, and the challenge: the learner's own conv, ReLU
and dense functions inside a cnnlab ``Sequential``, gradient-checked, then trained on MNIST
digits 0 and 1 at 14x14.
"""
from __future__ import annotations

import time

import numpy as np

from cnnlab.exercises._core import Case, Exercise, header, register, rng
from cnnlab.exercises.catalog_conv import conv_single
from cnnlab.lab.explain import conv_matrix as _conv_matrix

SOBEL_V = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


# ----- Sobel on a checkerboard --------------------------------------------------------------------
def _board(n):
    return (np.indices((n, n)).sum(axis=0) % 2).astype(np.float64)


def _edges(image, v=SOBEL_V):
    return conv_single(image, v), conv_single(image, v.T)


def _sobel_cases():
    r = rng(11)
    img = r.standard_normal((6, 7))
    board = _board(8)
    return [Case("the two Sobel kernels", "sobel_kernels", (), (SOBEL_V, SOBEL_V.T), names=("vertical", "horizontal"),
                 variants={"not_transposed": (SOBEL_V, SOBEL_V), "sign_flipped": (-SOBEL_V, -SOBEL_V.T)}),
            Case("an 8x8 checkerboard, 0 at the top-left", "checkerboard", (8,), board,
                 variants={"inverted": 1 - board}),
            Case("a 5x5 checkerboard", "checkerboard", (5,), _board(5), variants={"inverted": 1 - _board(5)}),
            Case("edges of the 8x8 checkerboard", "edge_maps", (board,), _edges(board), names=("vertical", "horizontal"),
                 variants={"sign_flipped": tuple(-e for e in _edges(board)),
                           "not_transposed": (_edges(board)[0], _edges(board)[0])}),
            Case("edges of a random 6x7 image", "edge_maps", (img,), _edges(img), names=("vertical", "horizontal"),
                 variants={"sign_flipped": tuple(-e for e in _edges(img)),
                           "not_transposed": (_edges(img)[0], _edges(img)[0])})]


register(Exercise(
    "sobel", "Vertical and horizontal Sobel edges on a checkerboard",
    "04 Motivation for Convolutions, Coding Exercise 1", ("sobel_kernels", "checkerboard", "edge_maps"),
    header("sobel", "Sobel edge detectors on a checkerboard", "04 Coding Exercise 1") + '''
import numpy as np


def sobel_kernels():
    """The vertical-edge Sobel kernel (-1 0 1 / -2 0 2 / -1 0 1) and the horizontal one.

    Returns: (vertical, horizontal), each (3, 3) float.
    Hint (tutorial): the horizontal kernel is the transpose of the vertical one.
    """
    # TODO
    raise NotImplementedError("sobel_kernels")


def checkerboard(n=8):
    """An n x n board of 0s and 1s, 0 at the top-left, alternating along rows and columns.

    Shape: (n, n) float. Hint (tutorial): the parity of row index + column index.
    """
    # TODO
    raise NotImplementedError("checkerboard")


def edge_maps(image):
    """Valid cross-correlation of ``image`` with both Sobel kernels.

    Shape: image (H, W) -> (vertical_edges, horizontal_edges), each (H - 2, W - 2).
    """
    # TODO: reuse your convolve2d, or write the two loops here
    raise NotImplementedError("edge_maps")
''',
    _sobel_cases,
    {"not_transposed": "Your horizontal kernel equals the vertical one: transpose it (.T).",
     "sign_flipped": "Your results have the opposite sign: the vertical kernel is -1 0 1 in each row "
                     "(and cross-correlation does not flip it).",
     "inverted": "Your board is inverted: the top-left square (row 0 + column 0 = even) is 0."},
))


# ----- translation equivariance --------------------------------------------------------------------
def _wrap_conv(image, kernel):
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    return conv_single(np.pad(image, ((ph, ph), (pw, pw)), mode="wrap"), kernel)


def _zero_shift(image, k):
    out = np.zeros_like(image)
    out[:, k:] = image[:, :image.shape[1] - k]
    return out


def _equivariance_gap(m, image, kernel, k):
    """max |conv(shift(x)) - shift(conv(x))| with the learner's own functions: exactly 0 when right."""
    a = m.conv_same_wrap(m.shift_right(image.copy(), k), kernel.copy())
    b = m.shift_right(m.conv_same_wrap(image.copy(), kernel.copy()), k)
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def _equi_cases():
    r = rng(12)
    x, kern, k53 = r.standard_normal((10, 12)), r.standard_normal((3, 3)), r.standard_normal((5, 3))
    small = np.arange(12.0).reshape(3, 4)
    return [Case("shift a 3x4 image right by 1", "shift_right", (small, 1), np.roll(small, 1, axis=1),
                 variants={"zero_fill": _zero_shift(small, 1), "shift_left": np.roll(small, -1, axis=1)}),
            Case("shift a 10x12 image right by 5", "shift_right", (x, 5), np.roll(x, 5, axis=1),
                 variants={"zero_fill": _zero_shift(x, 5), "shift_left": np.roll(x, -5, axis=1)}),
            Case("3x3 'same' conv with wrap-around on 10x12", "conv_same_wrap", (x, kern), _wrap_conv(x, kern),
                 variants={"zero_padding": conv_single(x, kern, 1, 1)}),
            Case("5x3 kernel, 'same' with wrap-around", "conv_same_wrap", (x, k53), _wrap_conv(x, k53),
                 variants={"zero_padding": conv_single(x, k53, 1, (2, 1))}),
            Case("equivariance: conv(shift(x, 5)) == shift(conv(x), 5) with your functions", "conv_same_wrap",
                 (x, kern, 5), 0.0, call=lambda m: _equivariance_gap(m, x, kern, 5))]


register(Exercise(
    "equivariance", "Translation equivariance: shift by 5 pixels, convolve, compare",
    "04 Motivation for Convolutions, Coding Exercise 2 ('Translation equivariance')",
    ("shift_right", "conv_same_wrap"),
    header("equivariance", "Translation equivariance with a 5-pixel shift", "04 Coding Exercise 2") + '''
import numpy as np


def shift_right(image, k):
    """Move the image k pixels to the right, wrapping around: column j goes to (j + k) % W.

    Shape: image (H, W) -> (H, W).
    Hint (tutorial): roll the image (numpy has a roll function).
    """
    # TODO
    raise NotImplementedError("shift_right")


def conv_same_wrap(image, kernel):
    """'Same'-size cross-correlation with wrap-around (circular) padding, odd kernel sizes.

    Rule: pad KH // 2 rows and KW // 2 columns on each side with the pixels from the opposite
    edge (np.pad mode="wrap"), then a valid cross-correlation.
    Shape: image (H, W), kernel (KH, KW) -> (H, W).

    With both functions right, conv_same_wrap(shift_right(x, 5), k) equals
    shift_right(conv_same_wrap(x, k), 5) exactly: convolution is translation equivariant.
    """
    # TODO
    raise NotImplementedError("conv_same_wrap")
''',
    _equi_cases,
    {"zero_fill": "Your shift fills the vacated columns with zeros: wrap them around (np.roll) so the "
                  "comparison is exact everywhere, not only away from the border.",
     "shift_left": "Your shift moves the image left: column j must go to column j + k.",
     "zero_padding": "You padded with zeros: wrap-around padding (np.pad(..., mode='wrap')) makes equivariance "
                     "exact at the border too."},
))


# ----- the 16x36 matrix ------------------------------------------------------------------------------
def _matrix_cases():
    r = rng(13)
    k1 = np.arange(1.0, 10).reshape(3, 3)
    k2 = r.standard_normal((3, 3))
    x = r.standard_normal((6, 6))

    def product(m):
        return np.asarray(m.conv_matrix(k2.copy())) @ x.ravel()

    out = []
    for label, k in [("kernel 1..9", k1), ("a random kernel", k2)]:
        M = _conv_matrix(k, (6, 6))
        out.append(Case(label, "conv_matrix", (k,), M, variants={
            "flipped": _conv_matrix(k[::-1, ::-1], (6, 6)), "transposed": M.T,
            "kernel_transposed": _conv_matrix(k.T, (6, 6))}))
    out.append(Case("M @ x.ravel() equals the 4x4 convolution of a random 6x6 x", "conv_matrix", (k2,),
                    conv_single(x, k2).ravel(), call=product))
    return out


register(Exercise(
    "conv_matrix", "A fully connected layer that is a 3x3 convolution on a 6x6 input (16x36)",
    "04 Motivation for Convolutions, Coding Exercise 3 ('Convolution as a sparse matrix')", ("conv_matrix",),
    header("conv_matrix", "The 16x36 matrix of a 3x3 convolution on 6x6", "04 Coding Exercise 3") + '''
import numpy as np


def conv_matrix(kernel):
    """The (16, 36) matrix M with M @ x.ravel() == convolve2d(x, kernel).ravel() for 6x6 x.

    Rule: row r = 4*i + j is output pixel (i, j); its window covers input pixels
    (i + u, j + v), i.e. columns 6*(i + u) + (j + v), which hold kernel[u, v]; all else is 0.
    Shape: kernel (3, 3) -> M (16, 36).
    Hint (tutorial): every row has 9 non-zeros, and all rows share the same 9 values.
    """
    # TODO
    raise NotImplementedError("conv_matrix")
''',
    _matrix_cases,
    {"flipped": "Your rows hold the kernel rotated 180 degrees: column 6*(i+u) + (j+v) holds kernel[u, v].",
     "transposed": "Your matrix is (36, 16): one ROW per output pixel, one column per input pixel.",
     "kernel_transposed": "Your rows hold the transposed kernel: u walks down rows (x 6), v along columns."},
))
