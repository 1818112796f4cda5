"""The convolution step PNG and GIF: the tutorials' numbers, one colour convention, the window
always on the (padded) input, and every frame showing the kernel, the products and the sum."""
import numpy as np
import pytest
from PIL import Image

from cnnlab.datasets import worked_examples as we
from cnnlab.lab import viz
from cnnlab.lab.filters import KERNELS
from cnnlab.lab.viz._common import new_figure
from cnnlab.lab.viz._style import INPUT_CMAP
from cnnlab.lab.viz.conv_steps import frame_positions, show_step, step_view


def _axis(fig, label):
    return next(ax for ax in fig.axes if ax.get_label() == label)


def _texts(ax):
    return [t.get_text() for t in ax.texts if t.get_visible()]


def _view(image, kernel, **kw):
    d = viz.conv_step_numbers(image, kernel, **kw)
    fig = new_figure(15, 4.1)
    return fig, step_view(d, fig)


def test_the_edge_example_gives_the_tutorials_0_30_30_0_0():
    fig, view = _view(we.edge_image(), KERNELS["vertical_edge"])
    drawn = show_step(view, 1)
    assert drawn["sum"] == 30 and drawn["at"] == (0, 1)
    assert _texts(_axis(fig, "products")) == ["10", "0", "0"] * 3
    assert "= 30" in view["equation"].get_text() and "bias (0)" in view["equation"].get_text()
    show_step(view, 24)
    assert _texts(_axis(fig, "output")) == ["0", "30", "30", "0", "0"] * 5


def test_the_ring_filter_on_the_letters_matches_the_tutorial():
    ring = np.array(we.OX_FILTER, dtype=float)
    o = viz.conv_step_numbers(we.letter_o(), ring, bias=we.OX_BIAS)
    x = viz.conv_step_numbers(we.letter_x(), ring, bias=we.OX_BIAS)
    assert o["output"][0].tolist() == [2, 1, 1, 2] and o["output"][1].tolist() == [1, -2, -2, 1]
    assert x["output"][1].tolist() == [1, 2, 2, 1] and x["sum"] == 0


def test_inputs_are_ink_on_paper_in_the_png_and_in_every_frame(tmp_path):
    fig = viz.conv_step(we.letter_x(), KERNELS["vertical_edge"], at=(1, 2))
    for label in ("input", "window"):
        im = _axis(fig, label).images[0]
        assert im.get_cmap().name == INPUT_CMAP and im.norm.vmin == 0 and im.norm.vmax == 1
    fig, view = _view(np.random.default_rng(0).random((12, 12)), np.ones((3, 3)), padding=1)
    assert view["images"]["window"].get_cmap().name == INPUT_CMAP


@pytest.mark.parametrize("shape, padding, stride", [((28, 28), 0, 1), ((9, 9), 1, 1), ((9, 9), 2, 2)])
def test_the_window_never_leaves_the_padded_input(shape, padding, stride):
    fig, view = _view(np.ones(shape), np.ones((3, 3)), padding=padding, stride=stride)
    h, w = view["d"]["padded"].shape
    patches = _axis(fig, "input").patches
    assert sum(p.get_label() == "zero padding" for p in patches) == (4 if padding else 0)
    for k in frame_positions(view["d"]["output"].size, 28):
        show_step(view, k)
        x, y = view["rect"].get_xy()
        assert -0.5 <= x and x + 3 <= w - 0.5 and -0.5 <= y and y + 3 <= h - 0.5


def test_every_frame_shows_kernel_products_and_the_sum():
    image, kernel = we.letter_o(), np.array(we.OX_FILTER, dtype=float)
    fig, view = _view(image, kernel, bias=we.OX_BIAS)
    for k in range(16):
        drawn = show_step(view, k)
        i, j = drawn["at"]
        assert np.array_equal(view["images"]["products"].get_array(), image[i:i + 3, j:j + 3] * kernel)
        assert len(_texts(_axis(fig, "products"))) == 9 and len(_texts(_axis(fig, "kernel"))) == 9
        assert f"bias (-2) = {drawn['sum']:.4g}" in view["equation"].get_text()
        assert np.isfinite(drawn["partial"]).sum() == k + 1


def test_conv_animation_writes_one_frame_per_position(tmp_path):
    path = viz.conv_animation(we.edge_image(), KERNELS["vertical_edge"], tmp_path / "e.gif")
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 25
    assert frame_positions(676, 28)[-1] == 675 and len(frame_positions(676, 28)) == 28
