"""The parameter-explosion playground in Chromium: its numbers are cnnlab's counts, the tutorials'
rows appear, and the controls change the result."""
from __future__ import annotations

import numpy as np

from cnnlab.lab.explain import conv_parameters, dense_parameters

SETTINGS = ("height", "width", "channels", "hidden", "kernel", "filters")


def shown(section):
    """(dense, conv, ratio text) as the page writes them."""
    return (section.locator(".pp-dense .value").inner_text(), section.locator(".pp-conv .value").inner_text(),
            section.locator(".pp-ratio .value").inner_text())


def expected(s):
    dense = dense_parameters(s["channels"] * s["height"] * s["width"], s["hidden"])
    conv = conv_parameters(s["channels"], s["filters"], s["kernel"])
    return f"{dense:,}", f"{conv:,}", f"{dense / conv:,.0f}×"


def settings(section):
    return {f: int(section.locator(f".pp-{f}").input_value()) for f in SETTINGS}


def set_field(page, section, field, value):
    before = section.locator(".pp-dense .value").inner_text() + section.locator(".pp-conv .value").inner_text()
    section.locator(f".pp-{field}").fill(str(value))
    section.locator(f".pp-{field}").press("Enter")
    page.wait_for_function(
        "before => { const s = document.querySelector('#page-play-params');"
        " return s.querySelector('.pp-dense .value').textContent + s.querySelector('.pp-conv .value').textContent !== before; }",
        arg=before)


def test_counts_are_cnnlabs_and_the_tutorials_values_appear(page, open_playground, shot):
    section = open_playground("params")
    s = settings(section)
    assert shown(section) == expected(s)
    assert shown(section) == ("150,529,000", "1,792", "84,001×")  # the ImageNet row: 3x224x224 -> 1,000 vs 64 3x3 filters
    assert "3*224*224 * 1000 + 1000 = 150,529,000" in section.locator(".pp-dense .formula").inner_text()
    labels = section.locator(".pp-bar-label").all_inner_texts()
    for value in ["78,500", "100,480", "160", "150,529,000", "1,792", "6,291,968", "4,864", "6,220,801,000"]:
        assert value in labels
    assert len(labels) == section.locator(".pp-bar").count()  # every bar has its number
    erratum = section.locator(".pp-erratum").inner_text()
    assert "6,221,801,000" in erratum and "6,220,801,000" in erratum
    shot(page, "play_params")


def test_presets_set_the_controls(page, open_playground, shot):
    section = open_playground("params")
    buttons = section.locator(".pp-presets button")
    seen = set()
    for i in range(buttons.count()):
        before = shown(section)
        buttons.nth(i).click()
        # every row's dense count differs from the one before (and from the opening ImageNet row)
        page.wait_for_function("b => document.querySelector('#page-play-params .pp-dense .value').textContent !== b",
                               arg=before[0])
        s = settings(section)
        assert shown(section)[0] == expected(s)[0]
        seen.add(shown(section)[0])
        if "vs" in buttons.nth(i).inner_text():
            assert shown(section) == expected(s)
    assert {"78,500", "100,480", "150,529,000", "6,291,968", "6,220,801,000"} <= seen
    section.locator(".pp-presets button", has_text="64x64x3").click()
    page.wait_for_function("() => document.querySelector('#page-play-params .pp-conv .value').textContent === '4,864'")
    assert shown(section)[:2] == ("6,291,968", "4,864")
    shot(page, "play_params_preset_64x64")


def test_changing_hidden_units_and_kernel_changes_the_counts(page, open_playground, shot):
    section = open_playground("params")
    set_field(page, section, "hidden", 512)
    assert shown(section) == expected(settings(section))
    assert shown(section)[0] == f"{3 * 224 * 224 * 512 + 512:,}"
    set_field(page, section, "kernel", 5)
    assert shown(section) == expected(settings(section)) and shown(section)[1] == "4,864"
    shot(page, "play_params_hidden_512_kernel_5")


def test_log_toggle_changes_the_chart(page, open_playground, shot):
    section = open_playground("params")
    conv_bar = section.locator(".pp-bar-row.mine.conv .pp-bar")
    dense_bar = section.locator(".pp-bar-row.mine.dense .pp-bar")
    linear = conv_bar.bounding_box()["width"], dense_bar.bounding_box()["width"]
    section.locator(".pp-scale-log").check()
    page.wait_for_selector("#page-play-params .pp-chart[data-scale='log']")
    log = conv_bar.bounding_box()["width"], dense_bar.bounding_box()["width"]
    assert linear[0] <= 2 < 100 < log[0]  # 1,792 is invisible next to 6.2 billion, visible on a log axis
    assert log[0] < log[1]
    assert section.locator(".pp-bar-row.mine.conv .pp-bar-label").inner_text() == "1,792"
    ticks = section.locator(".pp-tick")
    assert ticks.all_inner_texts() == ["1", "10", "100", "1k", "10k", "100k", "1M", "10M", "100M", "1B"]
    x = [(lambda b: b["x"] + b["width"] / 2)(ticks.nth(i).bounding_box()) for i in range(ticks.count())]
    assert np.allclose(np.diff(x), np.diff(x)[0], atol=1)  # a log axis: powers of ten evenly spaced
    box = conv_bar.bounding_box()  # the 1,792 bar ends between the 1k and 10k ticks
    thousand, ten_k = (ticks.nth(i).bounding_box() for i in (3, 4))
    end = box["x"] + box["width"]
    assert thousand["x"] + thousand["width"] / 2 < end < ten_k["x"] + ten_k["width"] / 2
    shot(page, "play_params_log")
    section.locator(".pp-scale-linear").check()
    page.wait_for_selector("#page-play-params .pp-chart[data-scale='linear']")
    assert conv_bar.bounding_box()["width"] == linear[0]
    assert section.locator(".pp-tick").all_inner_texts() == ["0", "1B", "2B", "3B", "4B", "5B", "6B"]
