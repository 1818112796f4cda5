"""Every playground tab opens in Chromium: its module loads, builds its page, and logs no error."""
from __future__ import annotations

import pytest

PLAYGROUNDS = ["conv", "pool", "ox", "receptive", "params", "equivariance", "matrix"]


@pytest.mark.parametrize("name", PLAYGROUNDS)
def test_the_playground_tab_opens(page, open_playground, name):
    section = open_playground(name)
    assert section.is_visible()
    assert page.locator("#page-draw").is_hidden()
    assert page.locator(f"#tab-play-{name}").get_attribute("aria-selected") == "true"
