"""The data drawn by the second half of issue 14's static figures: parameter ratios, integer
epoch ticks, pooling digits and the tutorial's 4x4 routing, receptive-field boxes, the
per-channel breakdown of one conv value, BatchNorm and Dropout pictures."""
import numpy as np
import pytest

from cnnlab.datasets.worked_examples import POOL_EXAMPLE_ERRATUM, pool_example, pool_upstream
from cnnlab.lab import explain, viz


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _cell_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


# ----- params ----------------------------------------------------------------------------------------------------
def test_parameter_figure_has_linear_and_log_panels_with_the_ratios_written():
    rows, _ = explain.parameter_comparison(print_fn=None)
    fig = viz.parameter_figure(rows)
    ax_lin, ax_log = fig.axes
    assert (ax_lin.get_yscale(), ax_log.get_yscale()) == ("linear", "log")
    for ax in (ax_lin, ax_log):
        heights = [p.get_height() for p in ax.patches]
        assert heights[:4] == [r.dense_params for r in rows]
        assert heights[4:] == [r.conv_params for r in rows if r.conv_params]
        assert "84,001× fewer" in _cell_texts(ax) and "628× fewer" in _cell_texts(ax)
        assert any("no conv" in t for t in _cell_texts(ax))  # the case without a conv says so: no empty slot
    assert viz.ratio_label(150_529_000 / 1_792) == "84,001× fewer"


# ----- training curves -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [1, 2, 3, 7, 40])
def test_training_curves_tick_whole_epochs_only(epochs):
    h = {"loss": list(np.linspace(1, 0.1, epochs)), "accuracy": list(np.linspace(0.5, 1, epochs))}
    fig = viz.training_curves(h)
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


# ----- pooling -----------------------------------------------------------------------------------------------------
def test_decimals_keep_distinct_values_distinct():
    assert viz.decimals_for([2.59, 2.62]) == 2
    assert viz.decimals_for([0.5, 1.5]) == 1
    assert viz.decimals_for([1.06251, 1.06259], most=4) == 4
    assert viz.number_format([2.59, 2.62]) == "{:.2f}"


def test_pooling_figure_writes_distinct_labels_for_distinct_values():
    fmap = np.array([[2.59, 2.62, 0.0, 0.1], [0.0, 1.0, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0], [1.2, 0.0, 0.0, 0.5]])
    fig = viz.pooling_figure(fmap, 2)
    ax_in, ax_max, ax_avg = [ax for ax in fig.axes if ax.images]
    labels = _cell_texts(ax_in)
    assert len(labels) == fmap.size
    by_value = {}
    for v, t in zip(fmap.ravel(), labels):
        by_value.setdefault(t, set()).add(v)
    assert all(len(vs) == 1 for vs in by_value.values()), by_value  # no label stands for two values
    assert "2.59" in labels and "2.62" in labels
    avg = np.asarray(ax_avg.images[0].get_array())
    assert len(set(_cell_texts(ax_avg))) == len(set(avg.ravel().tolist()))


def test_pool_example_figure_is_the_tutorials_4x4_with_its_routing_and_erratum():
    r = viz.pool_routing(pool_example(), pool_upstream())
    assert r["output"].tolist() == [list(row) for row in POOL_EXAMPLE_ERRATUM["correct"]]
    assert r["dx"].tolist() == [[0, 0, 0, 0], [0, 2, 0, 5], [3, 0, 0, 0], [0, 0, 7, 0]]
    fig = viz.pool_routing_figure(pool_example(), pool_upstream(), printed=POOL_EXAMPLE_ERRATUM["printed"])
    arrays = [np.asarray(im.get_array()) for ax in fig.axes for im in ax.images]
    assert np.array_equal(arrays[1], r["output"]) and np.array_equal(arrays[3], r["dx"])
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "erratum: the tutorial prints [[3, 4], [9, 11]]" in titles
    with pytest.raises(ValueError, match="pooled shape"):
        viz.pool_routing(pool_example(), np.ones((3, 3)))
