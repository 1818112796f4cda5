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


def test_pooling_demo_prints_the_erratum_and_the_routing(tmp_path):
    from cnnlab.lab import demos
    lines = []
    r = demos.run_demo("pooling", tmp_path, print_fn=lines.append)
    text = "\n".join(lines)
    assert "max pool 2x2: [[6, 8], [9, 11]]  (erratum: the tutorial prints [[3, 4], [9, 11]])" in text
    assert r["numbers"]["example_dx"] == [[0, 0, 0, 0], [0, 2, 0, 5], [3, 0, 0, 0], [0, 0, 7, 0]]
    assert {p.rsplit("/", 1)[-1] for p in r["files"]} == {"pooling.png", "pool_example.png"}


# ----- receptive field ---------------------------------------------------------------------------------------------
def _pooled_stack():
    from cnnlab.layers import Conv2d, MaxPool2d
    from cnnlab.models import Sequential
    return Sequential([Conv2d(1, 1, 3, padding=1, rng=0), MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0),
                       MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0)], input_shape=(1, 28, 28))


@pytest.mark.parametrize("unit", [None, (0, 0), (6, 6), (0, 5)])
def test_receptive_boxes_nest_inside_the_image_and_coverage_is_their_area(unit):
    wins = viz.receptive_windows(_pooled_stack(), unit=unit)
    for win in wins:
        r0, c0, r1, c1 = win["box"]
        assert 0 <= r0 < r1 <= 28 and 0 <= c0 < c1 <= 28  # clipped to the image
        assert win["coverage"] == pytest.approx((r1 - r0) * (c1 - c0) / 784)
    for inner, outer in zip(wins, wins[1:]):
        (a0, b0, a1, b1), (o0, p0, o1, p1) = inner["box"], outer["box"]
        assert o0 <= a0 and p0 <= b0 and a1 <= o1 and b1 <= p1  # each field inside the next layer's
    if unit == (0, 0):  # a corner unit: its 18x18 field is cut by the image border
        assert wins[-1]["top_left"] == (-7, -7)  # 7 rows and columns of its field lie in the padding
        assert wins[-1]["box"] == (0, 0, 11, 11) and wins[-1]["coverage"] == pytest.approx(121 / 784)


def test_receptive_table_has_output_sizes_pixels_and_coverage():
    from cnnlab.layers import Conv2d
    from cnnlab.models import Sequential
    m = Sequential([Conv2d(1, 1, 3, padding=1, rng=0) for _ in range(3)], input_shape=(1, 28, 28))
    table = viz.receptive_table(viz.receptive_windows(m))
    assert [row[3] for row in table[2:]] == ["3x3 = 9", "5x5 = 25", "7x7 = 49"]  # not the tutorial's 9, 15, 21
    assert [row[2] for row in table[2:]] == ["floor((28+2*1-3)/1)+1 = 28"] * 3
    assert [row[5] for row in table[2:]] == [f"{100 * n / 784:.1f}%" for n in (9, 25, 49)]
    table = viz.receptive_table(viz.receptive_windows(_pooled_stack()))
    assert [row[2].split(" = ")[1] for row in table[2:]] == ["28", "14", "14", "7", "7"]
    assert [row[4] for row in table[1:]] == ["1", "1", "2", "2", "4", "4"]
    with pytest.raises(ValueError, match="7x7 output"):
        viz.receptive_windows(_pooled_stack(), unit=(7, 0))


def test_receptive_field_demo_states_the_erratum(tmp_path):
    from cnnlab.lab import demos
    lines = []
    r = demos.run_demo("receptive-field", tmp_path, print_fn=lines.append)
    text = "\n".join(lines)
    assert '"9, 15, 21 pixels"' in text and "3x3, 5x5, 7x7 = 9, 25, 49 pixels" in text
    assert r["numbers"]["three_3x3_convs coverage"] == pytest.approx([n / 784 for n in (1, 9, 25, 49)])


# ----- explain_pixel -----------------------------------------------------------------------------------------------
def _help_examples():
    """(layer, (i, j), channel) of every ``cnnlab explain ... mnist:0`` example in the command's help."""
    import re
    from cnnlab.lab.commands import EXPLAIN_EPILOG
    found = []
    for line in EXPLAIN_EPILOG.splitlines():
        m = re.search(r"cnnlab explain \S+ mnist:0 --layer (\d+) --at (\d+),(\d+)(?: --channel (\d+))?", line)
        if m:
            found.append((int(m[1]), (int(m[2]), int(m[3])), int(m[4] or 0)))
    return found


def test_the_explain_help_examples_land_on_the_digits_ink():
    from cnnlab.lab.commands import load_image_arg
    from cnnlab.models.zoo import get_model
    model = get_model("simple_cnn")
    x, label = load_image_arg("mnist:0", model)
    examples = _help_examples()
    assert len(examples) == 2 and label == 7
    for layer, at, channel in examples:
        e = explain.explain_pixel(model, x, layer, at=at, channel=channel)
        assert np.count_nonzero(e.patch) >= 3, (layer, at)  # the window holds ink, not blank background
        assert e.pre_activation != 0 and e.pre_activation != pytest.approx(e.bias)
        if layer == 0:
            assert x[0, at[0], at[1]] > 0.2  # the very pixel under the window's centre is ink


def _multi_channel_explanation():
    from cnnlab.layers import Conv2d, ReLU
    from cnnlab.models import Sequential
    rng = np.random.default_rng(1)
    m = Sequential([Conv2d(1, 3, 3, padding=1, rng=rng, dtype=np.float64), ReLU(),
                    Conv2d(3, 2, 3, padding=1, rng=rng, dtype=np.float64)], input_shape=(1, 6, 6))
    m.layers[2].bias.data[:] = [0.25, -0.5]
    return explain.explain_pixel(m, rng.standard_normal((1, 6, 6)), 2, at=(2, 3), channel=1)


def test_per_channel_partial_sums_add_up_with_the_bias_to_the_value():
    e = _multi_channel_explanation()
    assert e.channel_sums.shape == (3,)
    assert np.allclose(e.channel_sums, [e.terms[c].sum() for c in range(3)])
    assert e.channel_sums.sum() + e.bias == pytest.approx(e.pre_activation, abs=1e-12)
    assert e.pre_activation == pytest.approx(e.model_pre_activation, abs=1e-12)
    assert "per input channel (3 channels x 3x3 products each)" in str(e)
    fig = viz.pixel_figure(e)
    waterfall = next(ax for ax in fig.axes if ax.get_ylabel() == "running total")
    bars = waterfall.patches
    heights = [b.get_height() for b in bars]
    assert heights[:3] == pytest.approx(e.channel_sums.tolist()) and heights[3] == pytest.approx(e.bias)
    assert bars[3].get_y() + heights[3] == pytest.approx(e.pre_activation)  # the running total ends at the value
    assert heights[4] == pytest.approx(e.pre_activation)


def test_pixel_figure_puts_zero_at_a_stated_end_of_its_colour_scales_and_leaves_no_empty_slot():
    e = _multi_channel_explanation()  # layer input is a ReLU output: non-negative
    fig = viz.pixel_figure(e)
    c = int(np.argmax(np.abs(e.channel_sums)))
    patch = next(im for ax in fig.axes for im in ax.images if np.array_equal(im.get_array(), e.patch[c]))
    assert patch.norm.vmin == 0 and patch.get_cmap().name == "Greens"  # the lab's map for values >= 0: 0 = white
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert "value (0 = white)" in labels and "weight (0 = white)" in labels
    for im in (im for ax in fig.axes for im in ax.images):
        n = im.norm
        assert (n.vmin == 0) or (n.vmin == -n.vmax), (n.vmin, n.vmax)  # 0 is black or the white middle
    empty = [ax for ax in fig.axes if ax.get_visible() and not (ax.images or ax.patches or ax.texts or ax.lines)
             and ax.get_label() != "<colorbar>"]
    assert not empty
    assert e.pool is None and len(fig.axes) == 5 + 3 + 6  # 5 forward, 3 backward panels (no pool), 6 colour bars


def test_small_grids_write_their_numbers_at_9_points_or_more():
    from cnnlab.layers import Conv2d, ReLU
    from cnnlab.models import Sequential
    m = Sequential([Conv2d(1, 2, 3, padding=1, rng=0, dtype=np.float64), ReLU()], input_shape=(1, 8, 8))
    e = explain.explain_pixel(m, np.random.default_rng(0).random((1, 8, 8)), 0, at=(3, 3))
    sizes = [t.get_fontsize() for ax in viz.pixel_figure(e).axes if ax.images for t in ax.texts]
    assert sizes and min(sizes) >= 9


# ----- BatchNorm and Dropout ---------------------------------------------------------------------------------------
def test_batchnorm_numbers_normalize_each_channel_of_a_batch():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (16, 3, 5, 5)) * np.array([0.1, 1.0, 5.0])[None, :, None, None] \
        + np.array([-2.0, 0.0, 7.0])[None, :, None, None]
    d = viz.batchnorm_numbers(x)
    assert np.allclose(d["mean_before"], x.mean(axis=(0, 2, 3))) and np.allclose(d["std_before"], x.std(axis=(0, 2, 3)))
    assert np.allclose(d["mean_after"], 0, atol=1e-12)
    assert np.allclose(d["std_after"], np.sqrt(d["std_before"] ** 2 / (d["std_before"] ** 2 + 1e-5)), rtol=1e-12)
    assert np.allclose(d["std_after"], 1, atol=1e-3)
    want = (x - d["mean_before"][None, :, None, None]) / np.sqrt(d["std_before"][None, :, None, None] ** 2 + 1e-5)
    assert np.allclose(d["after"], want, atol=1e-12)
    fig = viz.batchnorm_figure(x)
    texts = [t.get_text() for ax in fig.axes[3:] for t in ax.texts]
    assert texts == [f"mean +0.000\nstd  {v:.3f}" for v in d["std_after"]]
    assert all(float(t.split()[-1]) == pytest.approx(1, abs=2e-3) for t in texts)
    counts = [sum(bar.get_height() for bar in ax.containers[0]) for ax in fig.axes]
    assert counts == [16 * 25] * 6  # every value of every channel is in its histogram
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        viz.batchnorm_numbers(np.zeros((4, 3)))


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_dropout_keeps_values_scaled_by_one_over_one_minus_p(p):
    x = np.arange(1, 37, dtype=np.float64).reshape(6, 6) / 10
    d = viz.dropout_numbers(x, p, seed=3)
    assert d["scale"] == pytest.approx(1 / (1 - p))
    assert np.allclose(d["output"][d["keep"]], x[d["keep"]] / (1 - p)) and np.all(d["output"][~d["keep"]] == 0)
    assert d["kept_fraction"] == d["keep"].mean() and 0 < d["kept_fraction"] < 1
    fig = viz.dropout_figure(x, (p,), seed=3)
    arrays = [np.asarray(im.get_array()) for ax in fig.axes for im in ax.images]
    assert np.array_equal(arrays[0], x) and np.array_equal(arrays[1], d["keep"].astype(float))
    assert np.array_equal(arrays[2], d["output"])
    mask_texts = [t.get_text() for t in fig.axes[2].texts] if fig.axes[2].images else []
    assert mask_texts.count("0") == int((~d["keep"]).sum())


def test_batchnorm_and_dropout_demos_print_their_numbers(tmp_path):
    from cnnlab.lab import demos
    lines = []
    bn = demos.run_demo("batchnorm", tmp_path, print_fn=lines.append)["numbers"]
    assert np.allclose(bn["mean_after"], 0, atol=1e-9) and np.allclose(bn["std_after"], 1, atol=1e-3)
    assert len(set(np.round(bn["std_before"], 3))) == 4  # four channels on four different scales
    dr = demos.run_demo("dropout", tmp_path, print_fn=lines.append)["numbers"]
    assert dr["p=0.5"]["scale"] == 2 and dr["p=0.2"]["scale"] == pytest.approx(1.25)
    text = "\n".join(lines)
    assert "after: mean" in text and "kept values x 1/(1-0.5) = x 2" in text
    assert (tmp_path / "batchnorm.png").is_file() and (tmp_path / "dropout.png").is_file()


def test_every_figure_draws_inputs_as_ink_and_zero_as_white():
    """The lab's one colour convention (viz._style): no figure draws 0 as black with a plain grey map."""
    from cnnlab.lab.filters import KERNELS
    from cnnlab.models import zoo

    rng = np.random.default_rng(0)
    image = rng.random((8, 8))
    m = zoo.simple_cnn(seed=0)
    x = rng.random((1, 28, 28)).astype(np.float32)
    probs = np.array([[0.7, 0.3], [0.2, 0.8]])
    figures = {"pipeline": viz.pipeline_figure(image, KERNELS["sharpen"]),
               "receptive": viz.receptive_field_figure(m, image=x[0]),
               "dropout": viz.dropout_figure(image, (0.5,), seed=0),
               "predictions": viz.prediction_grid(rng.random((2, 1, 6, 6)), np.array([0, 1]), probs, n=2),
               "probabilities": viz.probabilities_figure(probs[0], image=image),
               "saliency": viz.saliency_figure(m, x)}
    for name, fig in figures.items():
        maps = [im.get_cmap().name for ax in fig.axes for im in ax.images]
        assert maps and "gray" not in maps, (name, maps)
    relu, pool = (next(im for ax in figures["pipeline"].axes for im in ax.images if ax.get_title().startswith(t))
                  for t in ("4. ReLU", "5. max pool"))
    assert relu.get_cmap().name == pool.get_cmap().name == "Greens" and relu.norm.vmin == 0  # never negative
    fig = viz.pooling_figure(np.maximum(rng.standard_normal((4, 4)), 0))
    assert {im.get_cmap().name for ax in fig.axes for im in ax.images} == {"Greens"}
    first = {name: next(im for ax in fig.axes for im in ax.images).get_cmap().name for name, fig in figures.items()}
    assert {first[k] for k in ("pipeline", "receptive", "predictions", "probabilities", "saliency")} == {"gray_r"}


def test_an_input_title_says_white_is_zero_only_when_it_is():
    from cnnlab.lab.viz._style import input_note
    assert input_note(np.array([0.0, 1.0])) == "white = 0, black = max"
    assert input_note(np.array([-0.2, 1.0])) == "white = min, black = max"  # noisy toys: 0 is a light grey
    fig = viz.probabilities_figure(np.array([0.4, 0.6]), image=np.array([[-0.2, 1.0], [0.0, 0.5]]))
    assert "white = min" in fig.axes[0].get_title()


def test_explain_pixel_draws_a_first_layer_input_as_the_image():
    from cnnlab.datasets import worked_examples as we
    from cnnlab.models import zoo

    m = zoo.ox_tutorial_cnn()
    e = explain.explain_pixel(m, we.letter_o()[None].astype(np.float32), 0, at=(0, 0), channel=0)
    fig = viz.pixel_figure(e)
    first = next(im for ax in fig.axes for im in ax.images)
    assert first.get_cmap().name == "gray_r" and first.norm.vmin == 0  # the letter as ink, as in every figure
    patch = next(im for ax in fig.axes for im in ax.images if np.array_equal(im.get_array(), e.patch[0]))
    assert patch.get_cmap().name == "gray_r"
