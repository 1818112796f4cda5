"""End-to-end: the lab's Draw, Why, Train and Model pages in a real Chromium.

The browser fixtures (``lab``, ``browser``, ``page``, ``shot``) are in conftest.py: they skip,
with the reason, where Playwright or /usr/bin/chromium is missing, fail a test on any console
error, and save screenshots to $CNNLAB_SCREENSHOTS or a temporary folder.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from cnnlab.server.encode import array_from_json as decode


def _settle(page):
    page.wait_for_function("() => !window.labState.busy && !window.labState.pending")


def _draw_seven(page):
    page.click("#clear")
    box = page.locator("#draw-canvas").bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + 70, y0 + 60)
    page.mouse.down()
    page.mouse.move(x0 + 210, y0 + 62, steps=12)
    page.mouse.move(x0 + 130, y0 + 235, steps=16)
    page.mouse.up()
    time.sleep(0.3)
    _settle(page)


def test_draw_shows_what_model_predict_gives(page, lab, shot):
    app, _ = lab
    _draw_seven(page)
    state = page.evaluate("window.labState.draw")
    pixels = np.asarray(state["pixels"]["data"], np.uint8).reshape(28, 28)
    assert pixels.max() == 255 and pixels.min() == 0  # the strokes arrived, preprocessed like cnnlab predict
    model = app.state.live.model
    with app.state.live.lock:
        expected = model.predict((pixels[None, None] / np.float32(255)).astype(np.float32))[0]
    shown = page.locator("#probabilities li .pct").all_inner_texts()
    assert shown == [f"{100 * p:.2f}%" for p in expected]
    data_p = [float(v) for v in page.locator("#probabilities li").evaluate_all("els => els.map(e => e.dataset.p)")]
    np.testing.assert_allclose(data_p, expected, rtol=1e-6, atol=1e-7)
    assert page.locator("#predicted").get_attribute("data-class") == str(int(np.argmax(expected)))
    assert page.locator("#feature-maps .layer").count() == 6
    assert page.locator("#feature-maps .layer[data-layer='3'] .maps canvas").count() == 64
    shot(page, "draw")


def test_an_upload_goes_through_predicts_preprocessing(page, tmp_path):
    from PIL import Image, ImageDraw

    from cnnlab.datasets import load_image

    img = Image.new("RGB", (120, 90), (250, 250, 245))
    ImageDraw.Draw(img).ellipse((35, 10, 85, 80), outline=(20, 20, 30), width=9)  # a "0", photographed
    path = tmp_path / "zero.jpg"
    img.save(path, "JPEG")
    before = int(page.locator("#predicted").get_attribute("data-request"))
    page.set_input_files("#upload", str(path))
    page.wait_for_selector(f"#predicted[data-request='{before + 1}']")
    pixels = np.asarray(page.evaluate("window.labState.draw.pixels.data"), np.uint8).reshape(28, 28)
    assert np.array_equal(pixels, load_image(path))


def test_click_a_unit_forward_sum_equals_the_feature_map_value(page, lab, shot):
    app, _ = lab
    _draw_seven(page)
    layer0 = page.evaluate("window.labState.draw.layers[0]")
    maps = decode(layer0["maps"])  # (32, 28, 28) as the page received them
    c = 4
    i, j = (int(v) for v in np.unravel_index(int(np.argmax(maps[c])), maps[c].shape))  # an inked, busy unit
    grid = page.locator("#feature-maps .layer[data-layer='0'] .maps canvas").nth(c)
    box = grid.bounding_box()
    grid.click(position={"x": (j + 0.5) * box["width"] / 28, "y": (i + 0.5) * box["height"] / 28})
    page.wait_for_selector("#why-title[data-count='1']")
    why = page.evaluate("window.labState.why")
    assert why["layer"] == 0 and why["channel"] == c and why["at"] == [i, j]
    pixels = np.asarray(page.evaluate("window.labState.draw.pixels.data"), np.uint8).reshape(28, 28)
    with app.state.live.lock:
        maps = app.state.live.model.intermediate_outputs((pixels[None, None] / np.float32(255)).astype(np.float32))
    value = float(maps[0][0, c, i, j])
    shown_sum = float(page.locator("#why-sum").inner_text())
    shown_value = float(page.locator("#why-value").inner_text())
    assert shown_sum == pytest.approx(value, rel=1e-5, abs=1e-5)
    assert shown_value == pytest.approx(value, rel=1e-5, abs=1e-5)
    assert page.locator("#why-window .grid3").count() == 3  # patch, filter, products
    shot(page, "why")
    # a deeper unit, through a max pool: the pool's choice is stated
    page.click("#tab-draw")
    page.locator("#feature-maps .layer[data-layer='5'] .maps canvas").nth(10).click(position={"x": 28, "y": 28})
    page.wait_for_selector("#why-title[data-count='2']")
    assert "max pool" in page.locator("#why-forward").inner_text()
    assert page.locator("#why-steps figure").count() == 4  # after conv2, pool1 (the routing), relu1, conv1
    shot(page, "why_deep")


def test_a_toy_training_runs_to_completion_from_the_page(page, shot):
    page.click("#tab-train")
    page.select_option("#t-model", "lines_cnn")
    page.fill("#t-epochs", "4")
    page.click("#t-start")
    page.wait_for_selector("#t-status[data-state='completed']", timeout=60_000)
    assert int(page.locator("#t-loss").get_attribute("data-points")) > 4
    assert int(page.locator("#t-acc").get_attribute("data-points")) > 4
    assert "test accuracy" in page.locator("#t-status").inner_text()
    assert page.locator("#t-filters .maps canvas").count() >= 4
    shot(page, "train")
    page.click("#t-use")
    page.wait_for_selector("#model-label:has-text('lines_cnn')")
    page.wait_for_selector("#page-draw:not([hidden])")
    _settle(page)
    assert len(page.evaluate("window.labState.draw.probabilities")) == 2


def test_model_page(page, shot):
    page.click("#tab-model")
    page.wait_for_selector("#m-layers tr >> nth=10")
    assert "421,642" in page.locator("#m-title").inner_text()
    assert page.locator("#m-filters canvas.mosaic").count() == 2
    shot(page, "model")
