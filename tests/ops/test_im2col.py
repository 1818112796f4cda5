"""im2col / col2im: patch extraction by hand, the adjoint property, the wide layout."""
import numpy as np
import pytest

from cnnlab.engines.wide import col2im_wide, from_wide, im2col_wide, to_wide, wide_geometry
from cnnlab.ops.im2col import col2im, im2col

# (N, C, H, W, KH, KW, stride, padding)
CONFIGS = [
    (2, 3, 5, 6, 3, 3, (1, 1), (1, 1)),
    (1, 2, 7, 5, 3, 2, (2, 1), (1, 0)),
    (2, 1, 6, 6, 2, 2, (2, 2), (0, 0)),
    (1, 2, 4, 5, 1, 1, (1, 1), (0, 0)),
    (2, 2, 5, 5, 5, 5, (1, 1), (2, 2)),
    (1, 1, 3, 8, 3, 4, (3, 2), (2, 1)),
]


def _patches_by_hand(x, kernel, stride, padding):
    """cols[(c, i, j), (n, oh, ow)] built one patch at a time."""
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    H_out, W_out = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    cols = np.zeros((C * KH * KW, N * H_out * W_out), dtype=x.dtype)
    for n in range(N):
        for oh in range(H_out):
            for ow in range(W_out):
                patch = xp[n, :, oh * sh:oh * sh + KH, ow * sw:ow * sw + KW]
                cols[:, (n * H_out + oh) * W_out + ow] = patch.reshape(-1)
    return cols


@pytest.mark.parametrize("N, C, H, W, KH, KW, stride, padding", CONFIGS)
def test_im2col_matches_patches_taken_by_hand(N, C, H, W, KH, KW, stride, padding):
    x = np.random.default_rng(0).standard_normal((N, C, H, W))
    np.testing.assert_array_equal(im2col(x, (KH, KW), stride, padding), _patches_by_hand(x, (KH, KW), stride, padding))


@pytest.mark.parametrize("N, C, H, W, KH, KW, stride, padding", CONFIGS)
def test_im2col_and_col2im_are_adjoint(N, C, H, W, KH, KW, stride, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W))
    cols = im2col(x, (KH, KW), stride, padding)
    y = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * y)  # <im2col(x), y>
    rhs = np.sum(x * col2im(y, x.shape, (KH, KW), stride, padding))  # <x, col2im(y)>
    assert lhs == pytest.approx(rhs, rel=1e-12)


STRIDE1 = [c for c in CONFIGS if c[6] == (1, 1)] + [(2, 3, 4, 4, 3, 3, (1, 1), (0, 0)), (1, 1, 3, 2, 1, 2, (1, 1), (1, 2)),
                                                    (1, 2, 5, 4, 3, 5, (1, 1), (1, 2)), (2, 1, 4, 6, 2, 4, (1, 1), (0, 1))]


@pytest.mark.parametrize("N, C, H, W, KH, KW, stride, padding", STRIDE1)
def test_wide_im2col_is_classic_im2col_plus_garbage_columns(N, C, H, W, KH, KW, stride, padding):
    x = np.random.default_rng(2).standard_normal((N, C, H, W))
    geo = wide_geometry(H, W, (KH, KW), padding)
    wide = im2col_wide(x, (KH, KW), padding)  # (K, N*H_out*Wr)
    assert wide.shape == (C * KH * KW, N * geo.H_out * geo.Wr)
    valid = wide.reshape(-1, N, geo.H_out, geo.Wr)[..., :geo.W_out].reshape(C * KH * KW, -1)
    np.testing.assert_array_equal(valid, im2col(x, (KH, KW), (1, 1), padding))


@pytest.mark.parametrize("N, C, H, W, KH, KW, stride, padding", STRIDE1)
def test_wide_im2col_and_col2im_are_adjoint_even_on_garbage_columns(N, C, H, W, KH, KW, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, C, H, W))
    cols = im2col_wide(x, (KH, KW), padding)
    y = rng.standard_normal(cols.shape)  # nonzero garbage and wrapped entries too
    y_before = y.copy()
    assert np.sum(cols * y) == pytest.approx(np.sum(x * col2im_wide(y, x.shape, (KH, KW), padding)), rel=1e-12)
    np.testing.assert_array_equal(y, y_before)  # not overwritten unless asked


def test_wide_geometry_has_no_garbage_for_same_convolutions():
    geo = wide_geometry(28, 28, (3, 3), (1, 1))
    assert (geo.H_out, geo.W_out, geo.Wr, geo.L) == (28, 28, 28, 28 * 28)
    assert wide_geometry(14, 14, (3, 3), (0, 0)).Wr == 14  # valid: 2 garbage columns per row
    assert wide_geometry(3, 3, (1, 1), (2, 2)).Wr == 7  # padding wider than the kernel reach


def test_wide_im2col_zeroes_reads_that_wrap_to_the_neighbouring_row():
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # no zeros in the image
    cols = im2col_wide(x, (3, 3), (1, 1))  # (9, 16)
    left_neighbour = cols[3].reshape(4, 4)  # offset (1, 0): the pixel left of each output
    np.testing.assert_array_equal(left_neighbour[:, 0], 0)  # zero padding, not the row above's end
    np.testing.assert_array_equal(left_neighbour[:, 1:], x[0, 0, :, :3])


def test_to_wide_and_from_wide_round_trip_with_zero_garbage():
    a = np.random.default_rng(4).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for padding, garbage in [((1, 1), 0), ((2, 0), 2)]:
        geo = wide_geometry(4 - 2 * padding[0] + 2, 5 - 2 * padding[1] + 2, (3, 3), padding)
        assert (geo.H_out, geo.W_out, geo.Wr - geo.W_out) == (4, 5, garbage)
        wide = to_wide(a, geo)
        assert wide.shape == (3, 2 * geo.L) and wide.dtype == np.float32
        np.testing.assert_array_equal(from_wide(wide, 2, geo), a)
        assert np.all(wide.reshape(3, 2, 4, geo.Wr)[..., 5:] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_preserve_dtype(dtype):
    x = np.ones((1, 2, 4, 4), dtype=dtype)
    for cols, back in [(im2col(x, (3, 3), (1, 1), (1, 1)), lambda c: col2im(c, x.shape, (3, 3), (1, 1), (1, 1))),
                       (im2col_wide(x, (3, 3), (1, 1)), lambda c: col2im_wide(c, x.shape, (3, 3), (1, 1)))]:
        assert cols.dtype == dtype and back(cols).dtype == dtype


def test_col2im_counts_how_many_patches_cover_each_pixel():
    x_shape = (1, 1, 4, 4)
    cols = np.ones((9, 4))
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]], dtype=float)
    np.testing.assert_array_equal(col2im(cols, x_shape, (3, 3))[0, 0], expected)
    # the same count through the wide layout (garbage columns zeroed, as the backward pass does)
    geo = wide_geometry(4, 4, (3, 3), (0, 0))
    wide_ones = to_wide(np.ones((1, 1, 2, 2)), geo)  # (1, L) with zeros in the 2 garbage columns per row
    np.testing.assert_array_equal(col2im_wide(np.repeat(wide_ones, 9, axis=0), x_shape, (3, 3))[0, 0], expected)
