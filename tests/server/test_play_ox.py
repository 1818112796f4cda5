"""The O-versus-X page in Chromium shows cnnlab's numbers, and its controls change them."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import OX_BIAS, OX_FILTER, letter_o, letter_x
from cnnlab.ops.activation import relu_forward
from cnnlab.ops.conv import conv2d_forward
from cnnlab.ops.pool import maxpool2d_forward


def pipeline(image, kernel, bias):
    conv, _ = conv2d_forward(image[None, None], np.asarray(kernel, float)[None, None], np.array([bias]))
    relu, _ = relu_forward(conv)
    pooled, _ = maxpool2d_forward(relu, 2, 2)
    return conv[0, 0], pooled.ravel()


def shown_grid(section, label):
    table = section.locator(f"table[aria-label='{label}']")
    rows = table.locator("tr")
    return np.array([[float(t) for t in rows.nth(r).locator("td").all_inner_texts()] for r in range(rows.count())])


def shown_flat(section, letter):
    return [float(t) for t in section.locator(f"ol[aria-label='{letter} flattened'] .num").all_inner_texts()]


def wait_request(page, n):
    page.wait_for_selector(f"#page-play-ox[data-request='{n}']")


def test_the_pages_numbers_are_cnnlabs_and_the_filter_changes_them(page, open_playground, shot):
    section = open_playground("ox")
    wait_request(page, 1)
    for letter, image in (("O", letter_o()), ("X", letter_x())):
        conv, flat = pipeline(image, OX_FILTER, OX_BIAS)
        np.testing.assert_array_equal(shown_grid(section, f"{letter} conv"), conv)
        assert shown_flat(section, letter) == flat.tolist()
    # the tutorial's ring filter gives both letters [2, 2, 2, 2]: the page says they cannot be told apart
    assert shown_flat(section, "O") == shown_flat(section, "X") == [2, 2, 2, 2]
    assert "equal" in section.locator(".ox-note").inner_text()
    shot(page, "play_ox")

    cell = section.locator("table[aria-label='filter'] td[data-row='1'][data-col='1'] input")
    cell.fill("3")
    cell.press("Enter")
    wait_request(page, 2)
    kernel = np.array(OX_FILTER, float)
    kernel[1, 1] = 3
    flat_o, flat_x = (pipeline(im, kernel, OX_BIAS)[1].tolist() for im in (letter_o(), letter_x()))
    assert shown_flat(section, "O") == flat_o and shown_flat(section, "X") == flat_x
    assert flat_o != flat_x and "differ" in section.locator(".ox-note").inner_text()
    probs = [float(t) for t in section.locator("table[aria-label='X scores'] td.prob").all_inner_texts()]
    assert probs[1] > probs[0]  # fitted on these features, the dense layer now calls the X an X
    shot(page, "play_ox_centre3")


def test_shifting_the_letters_moves_their_features(page, open_playground, shot):
    section = open_playground("ox")
    wait_request(page, 1)
    section.locator("button", has_text="corner").click()
    wait_request(page, 2)
    page.select_option("#ox-shift-cols", "1")
    wait_request(page, 3)
    kernel = [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    shifted = np.zeros((6, 6))
    shifted[:, 1:] = letter_x()[:, :-1]  # zero-filled shift right by one column
    conv, flat = pipeline(shifted, kernel, OX_BIAS)
    np.testing.assert_array_equal(shown_grid(section, "X input"), shifted)
    np.testing.assert_array_equal(shown_grid(section, "X conv"), conv)
    assert shown_flat(section, "X") == flat.tolist()
    assert flat.tolist() != pipeline(letter_x(), kernel, OX_BIAS)[1].tolist()
    assert section.locator("ol[aria-label='X flattened'] .was").count() > 0  # the unshifted values are shown
    shot(page, "play_ox_shifted")
