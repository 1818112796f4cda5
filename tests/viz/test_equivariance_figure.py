"""equivariance.png: the exercise's 5-pixel shift, conv(shift x) beside shift(conv x) on one scale,
their difference on a symmetric scale with its maximum written (nonzero only at the border), and a
two-colour legend (not a colour bar) for the changed / unchanged panel."""
import numpy as np

from cnnlab.lab import explain, viz
from cnnlab.lab.filters import KERNELS


def _result():
    img = np.zeros((20, 20))
    img[6:20, 4:9] = 1.0  # reaches the bottom edge: a downward shift pushes part of it out of the frame
    return explain.translation_equivariance(img, KERNELS["vertical_edge"])


def _axis(fig, start):
    (ax,) = [ax for ax in fig.axes if ax.get_title().startswith(start)]
    return ax


def test_the_default_shift_is_the_exercises_5_pixels():
    r = _result()
    assert r.shift == (5, 0) and r.per_shift[-1]["shift"] == (5, 0)
    assert np.array_equal(r.shifted, explain.shift_image(r.image, 5, 0))
    assert r.conv_max_error < 1e-12


def test_the_two_maps_share_a_scale_and_the_difference_is_only_at_the_border():
    r = _result()
    fig = viz.equivariance_figure(r)
    conv_shift = [ax for ax in fig.axes if ax.get_title() == "conv(shift(x))"][0].images[0]
    shift_conv = [ax for ax in fig.axes if ax.get_title() == "shift(conv(x))"][0].images[0]
    assert np.array_equal(conv_shift.get_array(), r.fmap_shifted)
    assert np.array_equal(shift_conv.get_array(), explain.shift_image(r.fmap, 5, 0))
    assert (conv_shift.norm.vmin, conv_shift.norm.vmax) == (shift_conv.norm.vmin, shift_conv.norm.vmax)
    diff_ax = _axis(fig, "conv(shift(x)) - shift(conv(x))")
    diff = np.asarray(diff_ax.images[0].get_array())
    biggest = float(np.abs(diff).max())
    assert biggest > 0 and f"max |difference| = {biggest:.3g}" in diff_ax.get_title()
    assert diff_ax.images[0].norm.vmin == -biggest and diff_ax.images[0].norm.vmax == biggest
    rows = np.flatnonzero(np.abs(diff).max(axis=1) > 1e-12)
    assert rows.min() >= 20 - 2  # only the last rows, where the bar left the frame


def test_the_binary_panel_has_a_legend_not_a_colour_bar():
    fig = viz.equivariance_figure(_result())
    ax = _axis(fig, "pooled value at the same position")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["same value", "changed"]
    assert ax.images[0].get_cmap().N == 2
    assert sum(c.get_label() == "<colorbar>" for c in fig.axes) == 7  # 5 on top, 2 pooled maps
