"""The O/X stage figure (pipeline.png, ox_feature_maps.png): the tutorial's crisp letters side by
side, one colour scale per stage shared by O and X, the ReLU stage shown, the small pool and
flatten outputs drawn with their numbers, sequential maps where nothing is negative."""
import numpy as np
import pytest
from matplotlib.colors import TwoSlopeNorm

from cnnlab.datasets import worked_examples as we
from cnnlab.lab.viz.ox_views import ox_stages, ox_stages_figure
from cnnlab.models import zoo


def _letters():
    return {"O": we.letter_o(), "X": we.letter_x()}


def _model():
    m = zoo.ox_tutorial_cnn(dtype=np.float64)
    m.layers[0].weight.data[0, 0] = [[1.0, 0, 1], [0, -1, 0], [1, 0, 1]]  # some negative responses
    m.layers[0].bias.data[0] = -0.5
    return m


def _axes(fig, stage):
    return {ax.get_label().split("/")[1]: ax for ax in fig.axes if ax.get_label().startswith(stage + "/")}


def test_the_stages_are_the_models_own_activations():
    m = _model()
    stages = ox_stages(m, _letters())
    assert list(stages) == ["input", "0: conv + bias", "1: ReLU", "2: max pool", "3: flatten", "probabilities"]
    x = np.stack([we.letter_o(), we.letter_x()])[:, None]
    outs = m.intermediate_outputs(x)
    for k, name in enumerate(("O", "X")):
        assert np.array_equal(stages["0: conv + bias"][name], outs[0][k, 0])
        assert np.array_equal(stages["1: ReLU"][name], np.maximum(outs[0][k, 0], 0))
        assert stages["2: max pool"][name].shape == (2, 2)
        assert np.array_equal(stages["3: flatten"][name], outs[3][k][None])  # (1, 4): four numbers per letter
        assert stages["probabilities"][name].sum() == pytest.approx(1.0)
    assert np.array_equal(stages["input"]["O"], we.letter_o())  # crisp, not the noisy toy


def test_o_and_x_share_one_scale_per_stage_and_the_numbers_are_written():
    fig = ox_stages_figure(_model(), _letters())
    stages = ox_stages(_model(), _letters())
    for stage, arrays in stages.items():
        axes = _axes(fig, stage)
        assert set(axes) == {"O", "X"}, stage
        o, x = axes["O"].images[0], axes["X"].images[0]
        assert (o.norm.vmin, o.norm.vmax) == (x.norm.vmin, x.norm.vmax), stage
        both = np.concatenate([a.ravel() for a in arrays.values()])
        if both.min() < 0:
            assert isinstance(o.norm, TwoSlopeNorm) and o.norm.vmax == pytest.approx(np.abs(both).max())
        elif stage != "probabilities":
            assert both.max() > 0 and o.norm.vmin == 0 and o.norm.vmax == pytest.approx(both.max()), stage
        for name, ax in axes.items():
            assert len(ax.texts) == arrays[name].size
            assert [float(t.get_text()) for t in ax.texts] == pytest.approx(arrays[name].ravel(), abs=0.006)
    colorbars = sum(ax.get_label() == "<colorbar>" for ax in fig.axes)
    assert colorbars == len(stages)  # one per stage, not one per letter


def test_the_pool_stage_is_drawn_smaller_than_the_conv_stage():
    fig = ox_stages_figure(_model(), _letters())
    conv_w = _axes(fig, "0: conv + bias")["O"].get_position().width
    pool_w = _axes(fig, "2: max pool")["O"].get_position().width
    assert pool_w < conv_w


def test_the_ring_filter_stops_at_flatten_and_shows_equal_vectors():
    stages = ox_stages(zoo.ox_tutorial_cnn(), _letters(), dense=False)
    assert "probabilities" not in stages
    assert stages["3: flatten"]["O"].tolist() == stages["3: flatten"]["X"].tolist() == [[2, 2, 2, 2]]
    with pytest.raises(ValueError, match="one channel per stage"):
        ox_stages(zoo.ox_cnn(), _letters())
