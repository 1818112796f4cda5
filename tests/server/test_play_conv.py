"""The Convolution page in Chromium: its numbers are cnnlab's, and its controls change them."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab.datasets import worked_examples as we
from cnnlab.lab import filters
from cnnlab.ops.reference import conv2d_forward_naive
from tests.server.play_helpers import change, commit, grid_of, open_and_wait, updates, wait_for_update


def expected_conv(image, kernel, stride=1, padding=0, bias=0.0) -> np.ndarray:
    x = np.asarray(image, float).reshape(1, -1, *np.shape(image)[-2:])  # (1, C, H, W)
    w = np.asarray(kernel, float).reshape(1, -1, *np.shape(kernel)[-2:])  # (1, C, K, K)
    return conv2d_forward_naive(x, w, np.array([bias]), (stride, stride), (padding, padding))[0][0, 0]


def scrub_to(section, index):
    slider = section.locator(".scrub")
    slider.fill(str(index))


@pytest.fixture
def conv(open_playground):
    return open_and_wait(open_playground, "conv")


def test_the_edge_example_gives_30_at_the_edge(page, conv, shot):
    scrub_to(conv, 24)  # the last position: every output cell is filled in
    np.testing.assert_array_equal(grid_of(conv, "output"), expected_conv(we.edge_image(), filters.vertical_edge))
    assert grid_of(conv, "output")[0].tolist() == [0, 30, 30, 0, 0]
    assert conv.locator(".formula-rows").inner_text() == "floor((7 + 2*0 - 3) / 1) + 1 = 5"
    assert conv.locator(".badge").inner_text() == "valid"
    scrub_to(conv, 1)  # output (0, 1): the window straddles the edge
    assert conv.locator(".equation .value").inner_text() == "30"
    products = grid_of(conv, "products channel 0")
    np.testing.assert_array_equal(products, we.edge_image()[0:3, 1:4] * filters.vertical_edge)
    assert conv.locator("table[aria-label=output] td.unreached").count() == 25 - 2
    inked = conv.locator("table[aria-label='input channel 0'] td.ink")  # inputs as ink: the 10s dark, as in the figures
    assert inked.count() == 21 and {c.get_attribute("data-col") for c in inked.all()} == {"0", "1", "2"}
    shot(page, "play_conv")


def test_stepping_moves_the_window(page, conv):
    scrub_to(conv, 0)
    first = conv.locator("table[aria-label='input channel 0'] td.window")
    assert first.count() == 9 and first.first.get_attribute("data-col") == "0"
    conv.locator("button.step").click()
    assert conv.locator("table[aria-label='input channel 0'] td.window").first.get_attribute("data-col") == "1"
    assert "position 2 of 25" in conv.locator(".where").inner_text()
    assert conv.locator("table[aria-label=output] td.unreached").count() == 23
    conv.locator("button.play-toggle").click()  # Play runs on by itself; Pause stops it
    page.wait_for_function("document.querySelector('#page-play-conv .scrub').value >= 4")
    conv.locator("button.play-toggle").click()
    assert conv.locator("button.play-toggle").inner_text() == "Play"


def test_typed_grid_resizes(page, conv, shot):
    change(conv, ".input-preset", "typed", "select")
    assert grid_of(conv, "input channel 0").shape == (6, 6) and np.all(grid_of(conv, "input channel 0") == 0)
    change(conv, ".rows", 5)
    change(conv, ".cols", 9)
    assert conv.locator(".formula-rows").inner_text() == "floor((5 + 2*0 - 3) / 1) + 1 = 3"
    assert conv.locator(".formula-cols").inner_text() == "floor((9 + 2*0 - 3) / 1) + 1 = 7"
    assert grid_of(conv, "output").shape == (3, 7)


def test_stride_padding_kernel_and_edits_change_the_result(page, conv, shot):
    change(conv, ".stride", 2)
    assert conv.locator(".formula-rows").inner_text() == "floor((7 + 2*0 - 3) / 2) + 1 = 3"
    change(conv, ".padding", 1)
    assert conv.locator(".formula-rows").inner_text() == "floor((7 + 2*1 - 3) / 2) + 1 = 4"
    assert conv.locator("table[aria-label='input channel 0'] td.pad").count() == 9 * 9 - 7 * 7
    change(conv, ".kernel-preset", "diagonal", "select")
    change(conv, ".bias", 1.5)
    image = we.edge_image()
    conv.locator(".scrub").fill("15")
    out = grid_of(conv, "output")
    np.testing.assert_array_equal(out, expected_conv(image, we.TUTORIAL_DIAGONAL, 2, 1, 1.5))
    before = updates(conv)
    cell = conv.locator("table[aria-label='input channel 0'] td[data-row='4'][data-col='5'] input")
    commit(cell, "7")
    wait_for_update(conv, before)
    image[3, 4] = 7
    out = grid_of(conv, "output")
    np.testing.assert_array_equal(out, expected_conv(image, we.TUTORIAL_DIAGONAL, 2, 1, 1.5))
    change(conv, ".padding", 1)
    change(conv, ".stride", 1)
    assert conv.locator(".badge").inner_text() == "same"
    shot(page, "play_conv_padded")


def test_multichannel_partial_sums_add_up(page, conv, shot):
    change(conv, ".input-preset", "rgb", "select")
    change(conv, ".kernel-preset", "diagonal", "select")
    change(conv, ".bias", 0.5)
    conv.locator(".scrub").fill("26")  # output (4, 2): the window meets the red, green and blue edges
    partials = [float(t) for t in conv.locator(".equation .partial").all_inner_texts()]
    value = float(conv.locator(".equation .value").inner_text())
    assert len(partials) == 3 and np.isclose(sum(partials) + 0.5, value)
    assert np.count_nonzero(partials) == 3  # every channel contributes
    presets = page.evaluate("fetch('/api/play/conv-presets').then(r => r.json())")
    rgb = np.array(presets["inputs"]["rgb"]["image"])
    expected = expected_conv(rgb, np.stack([we.TUTORIAL_DIAGONAL] * 3), bias=0.5)
    assert np.isclose(value, expected[4, 2])
    shot(page, "play_conv_multichannel")


def test_learned_filter_and_mnist_digit(page, conv, lab, shot):
    app, _ = lab
    change(conv, ".input-preset", "mnist", "select")
    change(conv, ".kernel-preset", "learned", "select")
    assert conv.locator("label:has(.filter-index)").is_visible()  # only a learned filter has a filter number
    change(conv, ".filter-index", 3)
    layer = app.state.live.model.layers[0]
    w, b = layer.weight.data[3, 0].astype(float), float(layer.bias.data[3])
    presets = page.evaluate("fetch('/api/play/conv-presets').then(r => r.json())")
    digit = np.array(presets["inputs"]["mnist"]["image"][0])
    conv.locator(".scrub").fill("323")
    np.testing.assert_allclose(grid_of(conv, "output"),
                               expected_conv(digit, w, bias=b), atol=5e-4)  # the page writes 3 decimals
    shot(page, "play_conv_mnist_learned")


def test_kernel_size_crops_or_extends_the_kernel(page, conv, shot):
    assert not conv.locator("label:has(.filter-index)").is_visible()
    change(conv, ".kernel-size", 5)  # the 3x3 vertical edge, centred in a 5x5 of zeros
    kernel = np.pad(filters.vertical_edge, 1)
    np.testing.assert_array_equal(grid_of(conv, "kernel channel 0"), kernel)
    assert conv.locator(".kernel-preset").input_value() == "custom"
    assert conv.locator(".formula-rows").inner_text() == "floor((7 + 2*0 - 5) / 1) + 1 = 3"
    conv.locator(".scrub").fill("8")
    out = grid_of(conv, "output")
    np.testing.assert_array_equal(out, expected_conv(we.edge_image(), kernel))
    assert out.tolist() == [[30, 30, 0]] * 3  # the edge still gives 30 where the (centred) 3x3 straddles it
    shot(page, "play_conv_kernel_5")
    change(conv, ".kernel-size", 2)  # even sizes too: the top-left 2x2 of the 5x5
    np.testing.assert_array_equal(grid_of(conv, "kernel channel 0"), kernel[1:3, 1:3])
    assert conv.locator(".formula-rows").inner_text() == "floor((7 + 2*0 - 2) / 1) + 1 = 6"
    change(conv, ".kernel-preset", "sobel_x", "select")
    assert conv.locator(".kernel-size").input_value() == "3"


def test_painting_on_the_input_with_the_mouse(page, conv, shot):
    change(conv, ".input-preset", "typed", "select")  # a blank 6x6
    conv.locator(".paint-mode").check()
    conv.locator(".brush").fill("5")
    cell = lambda r, c: conv.locator(f"table[aria-label='input channel 0'] td[data-row='{r}'][data-col='{c}']")
    before = updates(conv)
    for r in range(1, 5):  # drag down column 2, then release
        box = cell(r, 2).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=3)
        if r == 1:
            page.mouse.down()
    page.mouse.up()
    wait_for_update(conv, before)
    image = np.zeros((6, 6))
    image[1:5, 2] = 5
    np.testing.assert_array_equal(grid_of(conv, "input channel 0"), image)
    conv.locator(".scrub").fill("15")
    out = grid_of(conv, "output")
    np.testing.assert_array_equal(out, expected_conv(image, filters.vertical_edge))
    assert out[0].tolist() == [-10, 0, 10, 0]  # a painted vertical stroke lights up the vertical-edge kernel
    shot(page, "play_conv_painted")
