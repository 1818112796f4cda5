"""Classic 3x3 kernels and apply_kernel / sobel_magnitude."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.lab import filters as kernels
from cnnlab.lab.filters import KERNELS, apply_kernel, sobel_magnitude


def test_vertical_edge_worked_example():
    image = np.zeros((7, 7))
    image[:, :3] = 10
    fmap = apply_kernel(image, kernels.vertical_edge)
    assert fmap.shape == (5, 5)
    np.testing.assert_array_equal(fmap, np.tile([0.0, 30, 30, 0, 0], (5, 1)))


def test_catalogue_values():
    assert set(KERNELS) == {"vertical_edge", "horizontal_edge", "diagonal_edge", "diagonal_edge_main", "diagonal_edge_anti", "sobel_x",
                            "sobel_y", "box_blur", "gaussian_blur", "sharpen", "identity", "laplacian"}
    for name, k in KERNELS.items():
        assert k.shape == (3, 3) and k.dtype == np.float64, name
        assert k is getattr(kernels, name)
    np.testing.assert_array_equal(kernels.vertical_edge, [[1, 0, -1]] * 3)
    np.testing.assert_array_equal(kernels.horizontal_edge, kernels.vertical_edge.T)
    np.testing.assert_array_equal(kernels.gaussian_blur * 16, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    np.testing.assert_array_equal(kernels.sobel_y, kernels.sobel_x.T)
    np.testing.assert_array_equal(kernels.diagonal_edge, [[2, 1, 0], [1, 0, -1], [0, -1, -2]])  # the tutorial's
    sums = {name: float(k.sum()) for name, k in KERNELS.items()}
    for name in ("box_blur", "gaussian_blur", "sharpen", "identity"):
        assert sums[name] == pytest.approx(1.0), name  # keep brightness
    for name in ("vertical_edge", "horizontal_edge", "diagonal_edge", "diagonal_edge_main", "diagonal_edge_anti", "sobel_x", "sobel_y",
                 "laplacian"):
        assert sums[name] == 0.0, name  # flat areas give 0


def test_constants_are_read_only():
    with pytest.raises(ValueError, match="read-only"):
        kernels.sobel_x[0, 0] = 5


def test_each_kernel_does_what_it_says():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((8, 9))
    np.testing.assert_array_equal(apply_kernel(image, "identity", padding=1), image)
    flat = np.full((6, 6), 3.0)
    np.testing.assert_allclose(apply_kernel(flat, "box_blur"), 3.0)
    np.testing.assert_allclose(apply_kernel(flat, "gaussian_blur"), 3.0)
    np.testing.assert_allclose(apply_kernel(flat, "sharpen"), 3.0)
    ramp = np.add.outer(2.0 * np.arange(6), 0.5 * np.arange(7))  # 2 per row down, 0.5 per column right
    np.testing.assert_allclose(apply_kernel(ramp, "sobel_x"), 8 * 0.5)  # (1+2+1) * 2 steps * slope
    np.testing.assert_allclose(apply_kernel(ramp, "sobel_y"), 8 * 2.0)
    np.testing.assert_allclose(apply_kernel(ramp, "laplacian"), 0.0, atol=1e-12)
    top_bright = np.zeros((6, 6))
    top_bright[:3] = 1
    assert apply_kernel(top_bright, "horizontal_edge").max() == 3.0
    upper_right = np.triu(np.ones((6, 6)), 1)  # bright above the main diagonal
    assert apply_kernel(upper_right, "diagonal_edge_main").max() == 3.0
    np.testing.assert_array_equal(apply_kernel(upper_right, "diagonal_edge_anti"), 0.0)
    upper_left = np.fliplr(upper_right)
    assert apply_kernel(upper_left, "diagonal_edge_anti").max() == 3.0
    np.testing.assert_array_equal(apply_kernel(upper_left, "diagonal_edge_main"), 0.0)


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (1, "same")])
def test_apply_kernel_matches_pytorch_conv2d(name, stride, padding):
    image = np.random.default_rng(1).standard_normal((9, 8))
    want = TF.conv2d(torch.tensor(image)[None, None], torch.tensor(KERNELS[name])[None, None], stride=stride,
                     padding=padding)[0, 0].numpy()
    np.testing.assert_allclose(apply_kernel(image, KERNELS[name], stride, padding), want, rtol=1e-12, atol=1e-12)


def test_apply_kernel_dtypes():
    assert apply_kernel(np.ones((5, 5), dtype=np.float32), "sobel_x").dtype == np.float32
    assert apply_kernel(np.ones((5, 5), dtype=np.float64), "sobel_x").dtype == np.float64
    pixels = np.full((5, 5), 200, dtype=np.uint8)  # uint8 must not wrap around
    np.testing.assert_array_equal(apply_kernel(pixels, "laplacian"), 0.0)
    assert apply_kernel(pixels, "box_blur").dtype == np.float64
    assert apply_kernel([[1, 2, 3]] * 3, "identity")[0, 0] == 2.0


def test_sobel_magnitude():
    image = np.random.default_rng(2).standard_normal((7, 6)).astype(np.float32)
    t = torch.tensor(image)[None, None]
    gx = TF.conv2d(t, torch.tensor(kernels.sobel_x, dtype=torch.float32)[None, None], padding=1)[0, 0].numpy()
    gy = TF.conv2d(t, torch.tensor(kernels.sobel_y, dtype=torch.float32)[None, None], padding=1)[0, 0].numpy()
    mag = sobel_magnitude(image)
    assert mag.shape == image.shape and mag.dtype == np.float32
    np.testing.assert_allclose(mag, np.hypot(gx, gy), rtol=1e-5, atol=1e-5)
    assert sobel_magnitude(image, padding=0).shape == (5, 4)
    np.testing.assert_array_equal(sobel_magnitude(np.ones((4, 4)), padding="valid"), 0.0)


def test_errors():
    with pytest.raises(ValueError, match="unknown kernel 'emboss'; known kernels: box_blur"):
        apply_kernel(np.ones((5, 5)), "emboss")
    with pytest.raises(ValueError, match=r"2-D image \(H, W\).*received shapes \(1, 5, 5\)"):
        apply_kernel(np.ones((1, 5, 5)), "sobel_x")
    with pytest.raises(ValueError, match="kernel size 3 is larger than the padded input size 2"):
        apply_kernel(np.ones((2, 2)), "sobel_x")
