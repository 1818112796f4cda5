"""cnnlab.lab.viz: every picture shows cnnlab's own numbers; figures are headless, saved by suffix,
with colour bars and zero-centred diverging maps."""
import matplotlib
import numpy as np
import pytest
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from PIL import Image

from cnnlab.lab import explain, viz
from cnnlab.models import zoo
from cnnlab.lab.filters import KERNELS, apply_kernel
from cnnlab.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU
from cnnlab.models import Sequential
from cnnlab.ops.conv import conv2d_forward
from cnnlab.ops.pool import avgpool2d_forward, maxpool2d_forward
from cnnlab.testing import numerical_gradient, rel_error


def _colorbars(fig) -> int:
    return sum(ax.get_label() == "<colorbar>" for ax in fig.axes)


def _images(fig):
    return [im for ax in fig.axes for im in ax.images]


def _tiny_model(dtype=np.float64):
    rng = np.random.default_rng(0)
    return Sequential([Conv2d(1, 3, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2), Flatten(),
                       Dense(3 * 4 * 4, 4, rng=rng, dtype=dtype)], input_shape=(1, 8, 8), name="tiny")


# ----- saving ----------------------------------------------------------------------------------------------
def test_figures_are_headless_and_saved_by_suffix(tmp_path):
    backend = matplotlib.get_backend()
    fig = viz.conv_matrix_figure(np.ones((3, 3)), (4, 4), save=tmp_path / "m.png")
    assert isinstance(fig, Figure) and matplotlib.get_backend() == backend
    w, h = fig.get_size_inches() * fig.dpi
    with Image.open(tmp_path / "m.png") as im:
        assert im.format == "PNG" and im.size == (round(w), round(h))
    viz.finish(fig, tmp_path / "m.svg")
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="must end in one of"):
        viz.finish(fig, tmp_path / "m.jpg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        viz.finish(fig, tmp_path / "missing" / "m.png")


# ----- convolution step by step ----------------------------------------------------------------------------
def test_conv_step_numbers_are_cnnlabs_convolution():
    rng = np.random.default_rng(0)
    img, k = rng.random((6, 7)), rng.standard_normal((3, 3))
    for at, stride, padding in (((1, 2), 1, 0), ((0, 0), 1, 1), ((2, 1), 2, 1)):
        d = viz.conv_step_numbers(img, k, at, bias=0.5, stride=stride, padding=padding)
        out, _ = conv2d_forward(img[None, None], k[None, None], np.array([0.5]), stride=stride, padding=padding)
        assert np.array_equal(d["output"], out[0, 0])
        assert d["sum"] == pytest.approx(float(out[0, 0][at]), abs=1e-12)
        assert np.array_equal(d["terms"], d["window"] * k)
    d = viz.conv_step_numbers(img, k, (0, 0), padding=1)
    assert np.all(d["window"][0] == 0) and np.all(d["window"][:, 0] == 0) and d["origin"] == (-1, -1)
    with pytest.raises(ValueError, match="outside the 4x5 output"):
        viz.conv_step_numbers(img, k, (4, 0))


def test_conv_step_figure_draws_the_window_and_the_partial_map(tmp_path):
    img = np.eye(6)
    k = np.array([[1.0, -1, 0], [0, 1, -1], [0, 0, 1]])
    fig = viz.conv_step(img, k, at=(1, 2), bias=0.25, save=tmp_path / "s.png")
    assert _colorbars(fig) == 5
    text = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    value = viz.conv_step_numbers(img, k, (1, 2), bias=0.25)["sum"]
    assert f"= {value:.4g}" in text and "bias (0.25)" in text
    partial = np.ma.filled(_images(fig)[-1].get_array().astype(float), np.nan).ravel()  # (16,) filled up to (1, 2)
    out = viz.conv_step_numbers(img, k, (1, 2), bias=0.25)["output"].ravel()
    assert np.array_equal(partial[:7], out[:7]) and np.isnan(partial[7:]).all()


def test_conv_animation_writes_a_gif_with_one_frame_per_step(tmp_path):
    path = viz.conv_animation(np.eye(5), np.ones((3, 3)), tmp_path / "c.gif")
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 9
    path = viz.conv_animation(np.random.default_rng(0).random((12, 12)), np.ones((3, 3)), tmp_path / "d.gif",
                              padding=1, max_frames=12)
    with Image.open(path) as im:
        assert im.n_frames == 12
    with pytest.raises(ValueError, match=".gif"):
        viz.conv_animation(np.eye(5), np.ones((3, 3)), tmp_path / "c.png")


# ----- kernels and basics ------------------------------------------------------------------------------------
def test_kernel_gallery_shows_apply_kernel_responses():
    img = viz.edge_test_image(16)
    resp = viz.kernel_responses(img)
    for name in viz.filters.GALLERY:
        assert np.array_equal(resp[name], apply_kernel(img, KERNELS[name]))  # valid: no zero-border artefact
    gx, gy = resp["sobel_x"], resp["sobel_y"]
    assert np.allclose(resp["sobel_magnitude"], np.sqrt(gx ** 2 + gy ** 2))
    fig = viz.kernel_gallery({"edges": img}, {"sobel_x": KERNELS["sobel_x"], "sobel_y": KERNELS["sobel_y"]})
    shown = [im.get_array() for im in _images(fig)]
    assert any(np.array_equal(a, resp["sobel_x"]) for a in shown)
    assert any(np.array_equal(a, resp["sobel_magnitude"]) for a in shown)
    assert _colorbars(fig) == 3  # one per response


def test_diverging_maps_are_centred_at_zero():
    fig = viz.relu_figure(np.array([[-3.0, 1.0], [2.0, -0.5]]))
    norms = [im.norm for im in _images(fig)]
    assert all(isinstance(n, TwoSlopeNorm) and n.vcenter == 0 and n.vmin == -n.vmax for n in norms)


def test_relu_and_pooling_figures_show_the_ops_outputs():
    rng = np.random.default_rng(0)
    fmap = rng.standard_normal((6, 6))
    fig = viz.relu_figure(fmap)
    before, after = (im.get_array() for im in _images(fig))
    assert np.array_equal(before, fmap) and np.array_equal(after, np.maximum(fmap, 0))
    assert _colorbars(fig) == 2
    fig = viz.pooling_figure(fmap, 2)
    inp, mx, av = (np.asarray(im.get_array()) for im in _images(fig))
    assert np.array_equal(mx, maxpool2d_forward(fmap[None, None], 2)[0][0, 0])
    assert np.allclose(av, avgpool2d_forward(fmap[None, None], 2)[0][0, 0])
    assert _colorbars(fig) == 3


def test_pipeline_numbers_and_flatten():
    img = np.random.default_rng(0).random((8, 8))
    d = viz.pipeline_numbers(img, KERNELS["vertical_edge"])
    assert np.array_equal(d["conv"], apply_kernel(img, KERNELS["vertical_edge"], padding=1))
    assert np.array_equal(d["pool"], maxpool2d_forward(np.maximum(d["conv"], 0)[None, None], 2)[0][0, 0])
    assert np.array_equal(d["flat"], d["pool"].ravel())
    fig = viz.flatten_figure(np.arange(2 * 3 * 3.0).reshape(2, 3, 3))
    bars = [p.get_height() for p in fig.axes[-1].patches]
    assert bars == list(np.arange(18.0))
    written = [t.get_text() for t in fig.axes[-1].texts]  # a short vector: every value on its bar
    assert written == [f"{v:g}" for v in range(18)]
    fig = viz.flatten_figure(np.ones((3, 7, 7)))  # 147 bars: too many to write
    assert len(fig.axes[-1].texts) == 0
    viz.pipeline_figure(img, KERNELS["sharpen"])


# ----- model views --------------------------------------------------------------------------------------------
def test_feature_maps_are_the_models_own_activations():
    m = zoo.simple_cnn()
    x = np.random.default_rng(0).random((1, 28, 28)).astype(np.float32)
    outs = m.intermediate_outputs(x[None])
    fig = viz.feature_maps(m, x, max_channels=4)
    seen = 0
    for ax in fig.axes:
        label = ax.get_label()
        if label.startswith("layer"):
            i, c = (int(part.lstrip("layerchanel")) for part in label.split("/"))
            assert np.array_equal(ax.images[0].get_array(), outs[i][0, c])
            seen += 1
    assert viz.feature_map_layers(m) == [0, 1, 2, 3, 4, 5]  # conv, ReLU, pool, twice: the ReLU maps too
    assert seen == 4 * len(viz.feature_map_layers(m)) == 24
    assert _colorbars(fig) == 1 + 6
    with pytest.raises(TypeError, match="dtype"):
        viz.feature_maps(m, x.astype(np.float64))


def test_filters_and_probabilities():
    m = _tiny_model()
    fig = viz.filters_figure(m)
    w = m.layers[0].weight.data
    for f, im in enumerate(_images(fig)):
        assert np.array_equal(im.get_array(), w[f, 0])
    assert _colorbars(fig) == 1
    x = np.random.default_rng(0).random((1, 8, 8))
    probs = viz.class_probabilities(m, x)
    logits = m.forward(x[None])[0]
    assert probs.sum() == pytest.approx(1.0) and np.argmax(probs) == np.argmax(logits)
    fig = viz.probabilities_figure(probs, class_names="abcd", true_label=1, image=x[0])
    assert [p.get_height() for p in fig.axes[1].patches] == pytest.approx(list(probs))
    assert _images(fig)[0].get_cmap().name == "gray_r"  # inputs as ink on paper, as everywhere in the lab
    fig = viz.filters_before_after(w * 0, m)
    change = _images(fig)[-1].get_array()
    assert np.array_equal(change, w[-1, 0])


def test_saliency_is_cnnlabs_input_gradient():
    m = _tiny_model()
    x = np.random.default_rng(1).random((1, 1, 8, 8))
    grads = [p.grad for p in m.parameters()]
    g, k = viz.input_gradient(m, x, class_index=2)
    assert k == 2 and [p.grad for p in m.parameters()] == grads

    def f():
        return float(m.forward(x)[0, 2])

    assert rel_error(g, numerical_gradient(f, x)[0]) < 1e-6
    assert np.array_equal(viz.saliency_map(m, x, 2), np.abs(g).max(axis=0))
    fig = viz.saliency_figure(m, x[0], 2)
    assert np.array_equal(_images(fig)[2].get_array(), np.abs(g).max(axis=0))
    assert _colorbars(fig) == 4
    assert _images(fig)[0].get_cmap().name == "gray_r" and _images(fig)[3].get_cmap().name == "gray_r"


# ----- training views -------------------------------------------------------------------------------------------
def test_training_curves_plot_the_history():
    h = {"loss": [1.0, 0.5, 0.2], "accuracy": [0.5, 0.8, 0.9], "val_loss": [1.1, 0.6, 0.4],
         "val_accuracy": [0.4, 0.7, 0.85]}
    fig = viz.training_curves(h)
    ax_loss, ax_acc = fig.axes
    assert [list(line.get_ydata()) for line in ax_loss.lines] == [h["loss"], h["val_loss"]]
    assert [list(line.get_ydata()) for line in ax_acc.lines] == [h["accuracy"], h["val_accuracy"]]
    with pytest.raises(ValueError, match="no 'loss'"):
        viz.training_curves({"accuracy": [1.0]})


def test_confusion_matrix_prediction_grid_and_mistakes():
    y = np.array([0, 1, 2, 2, 1, 0])
    probs = np.eye(3)[[0, 2, 2, 1, 1, 0]] * 0.7 + 0.1
    pred = probs.argmax(1)
    cm = viz.confusion_matrix(y, pred, 3)
    assert cm.tolist() == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
    fig = viz.confusion_matrix_figure(y, pred, num_classes=3)
    assert np.array_equal(_images(fig)[0].get_array(), cm)
    images = np.random.default_rng(0).random((6, 1, 5, 5))
    fig = viz.prediction_grid(images, y, probs)
    colors = [ax.title.get_color() for ax in fig.axes if ax.get_visible() and ax.images]
    assert colors == ["green" if a == b else "red" for a, b in zip(y, pred)]
    assert {im.get_cmap().name for im in _images(fig)} == {"gray_r"}
    assert set(viz.most_confused(y, probs).tolist()) == {1, 3}
    viz.most_confused_figure(images, y, probs)
    viz.most_confused_figure(images, y, np.eye(3)[y])  # no mistakes: a message panel


# ----- explanations, receptive fields, matrices, equivariance -----------------------------------------------------
def test_pixel_figure_shows_the_explanation():
    m = _tiny_model()
    x = np.random.default_rng(0).standard_normal((1, 8, 8))
    e = explain.explain_pixel(m, x, 0, at=(2, 3), channel=1)
    fig = viz.pixel_figure(e)
    arrays = [np.asarray(im.get_array()) for im in _images(fig)]
    assert any(np.array_equal(a, e.terms[0]) for a in arrays)
    assert any(np.array_equal(a, e.grad_layer_input[0]) for a in arrays)
    lines = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts).splitlines()
    assert any(line.startswith("= pre-activation") and line.endswith(f" {e.pre_activation:.5g}") for line in lines)


def test_receptive_windows_are_nested_and_drawn():
    m = Sequential([Conv2d(1, 1, 3, padding=1, rng=0), MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0),
                    MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0)], input_shape=(1, 28, 28))
    wins = viz.receptive_windows(m)
    assert [w["size"][0] for w in wins] == [1, 3, 4, 8, 10, 18]
    for inner, outer in zip(wins, wins[1:]):
        for ax in (0, 1):
            assert outer["top_left"][ax] <= inner["top_left"][ax]
            assert inner["top_left"][ax] + inner["size"][ax] <= outer["top_left"][ax] + outer["size"][ax]
    fig = viz.receptive_field_figure(m)
    boxes = [(p.get_y() + 0.5, p.get_x() + 0.5, p.get_height(), p.get_width()) for p in fig.axes[0].patches]
    assert sorted(boxes) == sorted((w["box"][0], w["box"][1], w["box"][2] - w["box"][0], w["box"][3] - w["box"][1])
                                   for w in wins)


def test_conv_matrix_figure_shows_the_matrix():
    k = np.arange(9.0).reshape(3, 3) - 4
    fig = viz.conv_matrix_figure(k, (5, 5), padding=1)
    M, index = explain.conv_matrix(k, (5, 5), 1, 1, return_index=True)
    arrays = [np.asarray(im.get_array()) for im in _images(fig)]
    assert np.array_equal(arrays[1], index) and np.array_equal(arrays[2], M)
    rows, _ = explain.parameter_comparison(print_fn=None)
    fig = viz.parameter_figure(rows)
    assert [p.get_height() for p in fig.axes[0].patches][:4] == [r.dense_params for r in rows]


def test_equivariance_figure():
    img = np.zeros((20, 20))
    img[4:12, 5:9] = 1.0
    r = explain.translation_equivariance(img, KERNELS["vertical_edge"])
    fig = viz.equivariance_figure(r)
    arrays = [np.asarray(im.get_array()) for im in _images(fig)]
    assert np.array_equal(arrays[2], r.fmap_shifted)  # conv(shift x)
    assert np.max(np.abs(arrays[4])) < 1e-12  # conv(shift x) - shift(conv x): nothing left the frame here
    assert _colorbars(fig) == 7


def test_an_all_zero_saliency_says_why():
    from cnnlab.datasets import worked_examples as we

    m = zoo.ox_tutorial_cnn()  # the ring filter, bias -2: ReLU keeps 2s, so the gradient reaches the pixels
    fig = viz.saliency_figure(m, we.letter_x()[None].astype(np.float32), class_names="OX")
    assert np.abs(_images(fig)[2].get_array()).max() > 0 and "all zero" not in fig.texts[0].get_text()
    m.layers[0].bias.data[...] = -100  # every unit dead after ReLU: no path from any pixel to the score
    fig = viz.saliency_figure(m, we.letter_x()[None].astype(np.float32), class_names="OX")
    assert np.abs(_images(fig)[2].get_array()).max() == 0 and "all zero" in fig.texts[0].get_text()
