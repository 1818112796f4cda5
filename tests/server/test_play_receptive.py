"""The receptive-field playground in Chromium: its sizes and fields are cnnlab's, the tutorial's
3/5/7 appear with the erratum, the controls change the result, and bad stacks get the server's message."""
from __future__ import annotations

import numpy as np

from cnnlab.layers import Conv2d, MaxPool2d
from cnnlab.lab.explain import receptive_field
from cnnlab.models import Sequential
from cnnlab.models.zoo import simple_cnn
from cnnlab.server.playgrounds.receptive import presets, receptive_fields


def table(section):
    """Per layer row of the table: (output size, receptive field, jump, coverage) as shown."""
    rows = section.locator("table.rf-layers tbody tr")
    return [tuple(rows.nth(i).locator(f"td.{c} .value").inner_text() for c in ("out", "rf", "jump", "cover"))
            for i in range(rows.count())]


def cnnlab_rows(layers, H, W):
    """The same numbers from cnnlab: a forward pass on zeros for the sizes, receptive_field for r and j."""
    model = Sequential(layers, input_shape=(1, H, W))
    x = np.zeros((1, 1, H, W), np.float32)
    rows, _ = receptive_field(model)
    out = [(f"{H}×{W}", "1×1", "1", "1×1")]
    for layer, row in zip(layers, rows[1:]):
        x = layer.forward(x)
        r = row.size
        out.append((f"{x.shape[2]}×{x.shape[3]}", f"{r[0]}×{r[1]}", str(row.jump[0]), f"{min(r[0], H)}×{min(r[1], W)}"))
    return out


def wait_redraw(page, before):
    page.wait_for_function(
        "b => document.querySelector('#page-play-receptive table.rf-layers').innerText !== b", arg=before)


def click_and_wait(page, section, selector):
    before = section.locator("table.rf-layers").inner_text()
    section.locator(selector).click()
    wait_redraw(page, before)


def edit(page, section, selector, value):
    before = section.locator("table.rf-layers").inner_text()
    section.locator(selector).fill(str(value))
    section.locator(selector).press("Enter")
    wait_redraw(page, before)


def test_three_3x3_convs_see_3_5_7_with_the_erratum(page, open_playground, shot):
    section = open_playground("receptive")
    assert table(section) == cnnlab_rows([Conv2d(1, 1, 3, rng=0) for _ in range(3)], 7, 7)
    assert [row[1] for row in table(section)] == ["1×1", "3×3", "5×5", "7×7"]
    covers = section.locator("table.rf-layers td.cover .formula").all_inner_texts()
    assert [c.split(" = ")[1] for c in covers[1:]] == ["9 px", "25 px", "49 px"]
    erratum = section.locator(".rf-erratum").inner_text()
    assert "9, 15, 21" in erratum and "3x3, 5x5, 7x7 = 9, 25, 49" in erratum
    assert "floor((7 + 2*0 - 3) / 1) + 1" in section.locator("tr[data-layer='1'] td.out").inner_text()
    legend = section.locator(".rf-legend li").all_inner_texts()
    assert len(legend) == 4 and "rows 0…6, cols 0…6" in legend[-1]
    shot(page, "play_receptive")


def test_simple_cnn_preset_matches_the_model(page, open_playground, shot):
    section = open_playground("receptive")
    click_and_wait(page, section, "button[data-preset='simple_cnn']")
    spatial = [layer for layer in simple_cnn(seed=0).layers if layer.window() is not None]
    assert table(section) == cnnlab_rows(spatial, 28, 28)
    assert [row[0] for row in table(section)] == ["28×28", "28×28", "14×14", "14×14", "7×7"]
    shot(page, "play_receptive_simple_cnn")


def test_adding_a_layer_and_changing_stride_change_the_sizes(page, open_playground, shot):
    section = open_playground("receptive")
    edit(page, section, ".rf-height", 16)
    edit(page, section, ".rf-width", 16)
    click_and_wait(page, section, ".rf-add-pool")
    assert section.locator("table.rf-layers tbody tr").count() == 5
    layers = [Conv2d(1, 1, 3, rng=0) for _ in range(3)] + [MaxPool2d(2)]
    assert table(section) == cnnlab_rows(layers, 16, 16)
    assert [row[0] for row in table(section)] == ["16×16", "14×14", "12×12", "10×10", "5×5"]
    edit(page, section, "li[data-layer='1'] .rf-stride", 2)
    layers[0] = Conv2d(1, 1, 3, stride=2, rng=0)
    assert table(section) == cnnlab_rows(layers, 16, 16)
    assert [row[0] for row in table(section)] == ["16×16", "7×7", "5×5", "3×3", "1×1"]
    assert [row[2] for row in table(section)] == ["1", "2", "2", "2", "4"]
    shot(page, "play_receptive_added_pool_stride_2")


def test_clicking_a_unit_moves_the_boxes(page, open_playground, shot):
    section = open_playground("receptive")
    click_and_wait(page, section, "button[data-preset='simple_cnn']")
    legend_before = section.locator(".rf-legend").inner_text()
    section.locator(".rf-units").click(position={"x": 2, "y": 2})  # unit (0, 0) of the 7x7 output
    page.wait_for_function("b => document.querySelector('#page-play-receptive .rf-legend').innerText !== b",
                           arg=legend_before)
    preset = next(p for p in presets() if p["name"] == "simple_cnn")
    body = receptive_fields({"height": 28, "layers": preset["layers"], "unit": [0, 0]})
    legend = section.locator(".rf-legend li").all_inner_texts()
    for link, text in zip(body["chain"], legend):
        t, l, b, r = link["box"]
        assert f"unit ({link['unit'][0]}, {link['unit'][1]}): rows {t}…{b}, cols {l}…{r}" in text
    assert "rows -3…6" in legend[-1]  # the last field reaches 3 pixels into the padding
    assert section.locator(".rf-unit-row").input_value() == "0"
    shot(page, "play_receptive_corner_unit")


def test_a_stack_that_does_not_fit_shows_the_servers_message(page, open_playground, expected_console_errors, shot):
    expected_console_errors.append("400 (Bad Request)")  # Chromium logs the refused request; the page shows it
    section = open_playground("receptive")
    section.locator(".rf-height").fill("5")
    section.locator(".rf-height").press("Enter")
    page.wait_for_selector("#page-play-receptive .rf-error:not([hidden])")
    message = section.locator(".rf-error").inner_text()
    assert "layer 3 (conv 3x3, stride 1, padding 0) gets a 1x3 input" in message and "fewer than 1" in message
    assert page.locator("#message").is_hidden()  # shown once, beside the stack
    shot(page, "play_receptive_error")
    section.locator(".rf-height").fill("7")
    section.locator(".rf-height").press("Enter")
    page.wait_for_selector("#page-play-receptive .rf-error[hidden]", state="attached")
    assert [row[1] for row in table(section)] == ["1×1", "3×3", "5×5", "7×7"]
    section.locator(".rf-add-pool").click()  # a 2x2 pool on the 1x1 output does not fit
    page.wait_for_selector("#page-play-receptive .rf-error:not([hidden])")
    assert "layer 4 (pool 2x2, stride 2, padding 0) gets a 1x1 input" in section.locator(".rf-error").inner_text()
    assert section.locator(".rf-stack li").count() == 4  # the refused stack stays editable
    section.locator("li[data-layer='4'] .rf-remove").click()
    page.wait_for_selector("#page-play-receptive .rf-error[hidden]", state="attached")
    assert section.locator(".rf-stack li").count() == 3
