"""The convolution-matrix page in Chromium shows cnnlab's matrix; hovering a row lights up its window."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import letter_x
from cnnlab.ops.conv import conv2d_forward

KERNEL = np.arange(1.0, 10.0).reshape(3, 3)  # the page's default: nine distinct weights


def shown_matrix(section):
    rows = section.locator("table.mx-matrix tr[data-row]")
    out = []
    for r in range(rows.count()):
        texts = rows.nth(r).locator("td:not(.mx-out)").all_inner_texts()
        out.append([float(t) if t else 0.0 for t in texts])
    return np.array(out)


def test_the_matrix_is_the_convolution(page, open_playground, shot):
    section = open_playground("matrix")
    page.wait_for_selector("#page-play-matrix[data-request='1']")
    M = shown_matrix(section)
    assert M.shape == (16, 36)
    x = letter_x()
    conv, _ = conv2d_forward(x[None, None], KERNEL[None, None], None)
    np.testing.assert_array_equal(M @ x.ravel(), conv.ravel())  # the drawn matrix really is the convolution
    for r in range(16):  # row r holds the kernel, row by row, at the window of output (r // 4, r % 4)
        i, j = divmod(r, 4)
        expected = np.zeros((6, 6))
        expected[i:i + 3, j:j + 3] = KERNEL
        np.testing.assert_array_equal(M[r], expected.ravel())
    product = [float(t) for t in section.locator("table.mx-matrix td.mx-out").all_inner_texts()]
    assert product == conv.ravel().tolist()
    assert section.locator("#mx-diff").inner_text() == "0"
    counts = section.locator(".mx-counts").inner_text()
    assert "16 × 36 = 576 entries" in counts and "144 hold a kernel weight" in counts and "9 distinct weights" in counts
    shot(page, "play_matrix")


def test_hovering_row_7_lights_its_window_and_output(page, open_playground, shot):
    section = open_playground("matrix")
    page.wait_for_selector("#page-play-matrix[data-request='1']")
    section.locator("table.mx-matrix tr[data-row='7']").hover()
    window = section.locator("table[aria-label='input'] td.window")
    cells = sorted((int(c.get_attribute("data-row")), int(c.get_attribute("data-col"))) for c in window.all())
    assert cells == [(r, c) for r in range(1, 4) for c in range(3, 6)]  # row 7 = output (1, 3)
    chosen = section.locator("table[aria-label='conv'] td.chosen")
    assert (chosen.get_attribute("data-row"), chosen.get_attribute("data-col")) == ("1", "3")
    shot(page, "play_matrix_row7")
    section.locator("table.mx-matrix tr[data-row='0']").focus()  # the keyboard reaches the same view
    assert section.locator("table[aria-label='conv'] td.chosen").get_attribute("data-col") == "0"


def test_editing_the_kernel_changes_the_matrix(page, open_playground, shot):
    section = open_playground("matrix")
    page.wait_for_selector("#page-play-matrix[data-request='1']")
    cell = section.locator("table[aria-label='kernel'] td[data-row='0'][data-col='0'] input")
    cell.fill("-4")
    cell.press("Enter")
    page.wait_for_selector("#page-play-matrix[data-request='2']")
    kernel = KERNEL.copy()
    kernel[0, 0] = -4
    M = shown_matrix(section)
    assert (M == -4).sum() == 16  # the edited weight changes in every row at once: it is shared
    conv, _ = conv2d_forward(letter_x()[None, None], kernel[None, None], None)
    assert section.locator("#mx-conv").inner_text() == "[" + ", ".join(f"{v:g}" for v in conv.ravel()) + "]"
    shot(page, "play_matrix_edited")
