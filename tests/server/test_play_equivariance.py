"""The equivariance page in Chromium shows cnnlab's numbers; the shift slider moves the difference to the border."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import edge_image, letter_o
from cnnlab.lab.filters import vertical_edge
from cnnlab.ops.activation import relu_forward
from cnnlab.ops.conv import conv2d_forward
from cnnlab.ops.pool import maxpool2d_forward


def conv_same(image):
    out, _ = conv2d_forward(image[None, None], vertical_edge[None, None].copy(), None, padding=(1, 1))
    return out[0, 0]


def shift_right(a, d):
    out = np.zeros_like(a)
    out[:, d:] = a[:, :a.shape[1] - d]
    return out


def shown_map(section, label):
    rows = section.locator(f"table[aria-label='{label}'] tr")
    return np.array([[float(t) for t in rows.nth(r).locator("td").all_text_contents()] for r in range(rows.count())])


def set_shift(page, value, n):
    page.fill("#eq-shift", str(value))
    page.wait_for_selector(f"#page-play-equivariance[data-shift='{value}'][data-request='{n}']")


def test_shift_5_differs_only_at_the_border(page, open_playground, shot):
    section = open_playground("equivariance")
    page.wait_for_selector("#page-play-equivariance[data-request='1']")
    image = np.kron(edge_image() / 10, np.ones((4, 4)))  # the page's "edge" preset, built independently
    conv = conv_same(image)
    np.testing.assert_array_equal(shown_map(section, "x"), image)
    np.testing.assert_allclose(shown_map(section, "conv x"), conv)
    shot(page, "play_equivariance")

    set_shift(page, 0, 2)
    assert section.locator("#eq-max-diff").inner_text() == "0"
    set_shift(page, 5, 3)
    conv_shifted = conv_same(shift_right(image, 5))
    diff = conv_shifted - shift_right(conv, 5)
    np.testing.assert_allclose(shown_map(section, "conv of shifted"), conv_shifted)
    np.testing.assert_allclose(shown_map(section, "difference"), diff)
    cols = sorted(set(np.nonzero(diff)[1]))
    assert cols == [4]  # the strip the zero fill uncovered, nothing else
    assert float(section.locator("#eq-max-diff").inner_text()) == np.abs(diff).max() > 0
    assert section.locator("#eq-max-outside").inner_text() == "0"
    assert "columns 4" in section.locator("#eq-where").inner_text()
    section.locator("table[aria-label='difference'] td[data-row='3'][data-col='4']").hover()
    assert section.locator(".eq-readout").inner_text().endswith(f": {diff[3, 4]:g}")
    shot(page, "play_equivariance_shift5")


def test_pooling_keeps_even_shifts_and_loses_odd_ones(page, open_playground, shot):
    section = open_playground("equivariance")
    page.wait_for_selector("#page-play-equivariance[data-request='1']")
    page.select_option("#eq-preset", "O")
    page.wait_for_selector("#page-play-equivariance[data-request='2']")
    set_shift(page, 4, 3)
    assert section.locator("#eq-pool-inside").inner_text() == "0"
    set_shift(page, 3, 4)
    assert float(section.locator("#eq-pool-inside").inner_text()) > 0
    image = np.zeros((28, 28))
    image[5:23, 5:23] = np.kron(letter_o(), np.ones((3, 3)))
    pooled, _ = maxpool2d_forward(relu_forward(conv_same(shift_right(image, 3))[None, None])[0], 2, 2)
    np.testing.assert_allclose(shown_map(section, "pooled of shifted"), pooled[0, 0])
    assert "not a multiple" in section.locator(".eq-verdict").inner_text()
    shot(page, "play_equivariance_pool_odd")


def test_the_kernel_menu_is_cnnlabs_and_changes_the_maps(page, open_playground):
    from cnnlab.lab.filters import KERNELS

    section = open_playground("equivariance")
    page.wait_for_selector("#page-play-equivariance[data-request='1']")
    values = section.locator("#eq-kernel option").evaluate_all("opts => opts.map(o => o.value)")
    assert values == sorted(KERNELS)
    page.select_option("#eq-kernel", "horizontal_edge")
    page.wait_for_selector("#page-play-equivariance[data-request='2']")
    image = np.kron(edge_image() / 10, np.ones((4, 4)))
    out, _ = conv2d_forward(image[None, None], KERNELS["horizontal_edge"][None, None].copy(), None, padding=(1, 1))
    np.testing.assert_allclose(shown_map(section, "conv x"), out[0, 0])


def test_an_mnist_digit_shifted_8_px(page, open_playground, shot):
    from cnnlab.datasets import load_mnist

    section = open_playground("equivariance")
    page.wait_for_selector("#page-play-equivariance[data-request='1']")
    page.select_option("#eq-preset", "digit")
    page.wait_for_selector("#page-play-equivariance[data-request='2']")
    page.fill("#eq-digit", "3")
    page.press("#eq-digit", "Enter")
    page.wait_for_selector("#page-play-equivariance[data-request='3']")
    set_shift(page, 8, 4)
    (_, _), (x_test, _) = load_mnist()
    image = x_test[3] / 255.0
    np.testing.assert_allclose(shown_map(section, "x"), image, atol=5e-4)  # the page writes 3 decimals
    diff = conv_same(shift_right(image, 8)) - shift_right(conv_same(image), 8)
    assert float(section.locator("#eq-max-diff").inner_text()) == round(float(np.abs(diff).max()), 3)
    shot(page, "play_equivariance_digit")


def test_a_left_shift_moves_the_map_left(page, open_playground, shot):
    section = open_playground("equivariance")
    page.wait_for_selector("#page-play-equivariance[data-request='1']")
    page.select_option("#eq-direction", "left")
    page.wait_for_selector("#page-play-equivariance[data-request='2']")
    image = np.kron(edge_image() / 10, np.ones((4, 4)))
    moved = np.zeros_like(image)
    moved[:, :-5] = image[:, 5:]  # 5 px left, zero fill on the right
    np.testing.assert_array_equal(shown_map(section, "shift x"), moved)
    conv, conv_moved = conv_same(image), conv_same(moved)
    shifted_conv = np.zeros_like(conv)
    shifted_conv[:, :-5] = conv[:, 5:]
    np.testing.assert_allclose(shown_map(section, "difference"), conv_moved - shifted_conv)
    assert section.locator("#eq-max-outside").inner_text() == "0"
    assert "5 px left" in section.inner_text() and "2 cells left" in section.inner_text()
    shot(page, "play_equivariance_left")
