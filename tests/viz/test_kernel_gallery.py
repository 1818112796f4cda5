"""kernels.png: readable size and digits, the tutorial's diagonal kernel, valid convolution
(no zero-border artefact) and the 7x7 edge example's numbers written in the cells."""
import numpy as np

from cnnlab.datasets.worked_examples import TUTORIAL_DIAGONAL
from cnnlab.lab import viz
from cnnlab.lab.filters import KERNELS, apply_kernel
from cnnlab.lab.viz.filters import GALLERY


def _gallery():
    digit = np.zeros((28, 28))
    digit[6:22, 12:16] = 1.0
    return viz.kernel_gallery({"digit": digit, "synthetic edges": viz.edge_test_image(28)})


def _axes_titled(fig, title):
    return [ax for ax in fig.axes if ax.get_title() == title]


def test_the_gallery_is_readable():
    fig = _gallery()
    width = fig.get_size_inches()[0] * fig.dpi
    assert width <= 1600
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.texts]
    assert sizes and min(sizes) >= 9


def test_the_gallery_uses_the_tutorials_diagonal_and_valid_convolution():
    assert "diagonal_edge" in GALLERY
    assert np.array_equal(KERNELS["diagonal_edge"], TUTORIAL_DIAGONAL)
    fig = _gallery()
    (ax,) = _axes_titled(fig, "diagonal edge (tutorial)")
    assert np.array_equal(ax.images[0].get_array(), TUTORIAL_DIAGONAL)
    assert [t.get_text() for t in ax.texts] == ["2", "1", "0", "1", "0", "-1", "0", "-1", "-2"]
    shown = [np.asarray(im.get_array()) for ax in _axes_titled(fig, "on synthetic edges") for im in ax.images]
    expected = apply_kernel(viz.edge_test_image(28), KERNELS["diagonal_edge"])  # (26, 26): no padding
    assert expected.shape == (26, 26) and any(np.array_equal(a, expected) for a in shown)
    assert "padding 0" in fig.get_suptitle()


def test_the_edge_example_writes_the_tutorials_numbers():
    fig = _gallery()
    (image_ax,) = [ax for ax in fig.axes if ax.get_title().startswith("7x7 edge image")]
    assert [t.get_text() for t in image_ax.texts][:7] == ["10", "10", "10", "0", "0", "0", "0"]
    (out_ax,) = [ax for ax in fig.axes if ax.get_title().startswith("valid output 5x5")]
    assert [t.get_text() for t in out_ax.texts] == ["0", "30", "30", "0", "0"] * 5
