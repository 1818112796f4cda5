"""cnnlab.ops.reference: the flipped-kernel rule as code, equal to every engine's backward."""
import numpy as np
import pytest

from cnnlab.engines import ENGINES, conv2d_backward, conv2d_forward, runtime
from cnnlab.ops.reference import conv2d_dx_flipped_kernel

NAMES = [e for e in ENGINES if e != "numba" or runtime.HAVE_NUMBA] + ["im2col"]


@pytest.mark.parametrize("impl", NAMES)
@pytest.mark.parametrize("H, W, KH, KW, padding", [(6, 5, 3, 3, (0, 0)), (5, 7, 3, 2, (1, 1)), (4, 4, 5, 5, (2, 2)),
                                                   (7, 6, 1, 3, (0, 1))])
def test_flipped_kernel_rule_equals_every_engines_dx(impl, H, W, KH, KW, padding):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, H, W))
    w = rng.standard_normal((4, 3, KH, KW))
    out, cache = conv2d_forward(x, w, rng.standard_normal(4), 1, padding, impl=impl)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = conv2d_backward(dout, cache)
    np.testing.assert_allclose(conv2d_dx_flipped_kernel(dout, w, padding), dx, rtol=1e-12, atol=1e-12)


def test_flipped_kernel_rule_by_hand():
    # a single 1 in dout: correlating with the rotated kernel puts the kernel itself (unrotated) back at that spot
    w = np.array([[1.0, 2.0], [3.0, 4.0]])[None, None]  # (1, 1, 2, 2)
    dout = np.zeros((1, 1, 2, 2)); dout[0, 0, 0, 0] = 1
    dx = conv2d_dx_flipped_kernel(dout, w)
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 0], [3, 4, 0], [0, 0, 0]])
