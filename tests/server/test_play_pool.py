"""The Pooling page in Chromium: cnnlab's pooling numbers, the tutorial's erratum, gradient routing and ties."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab.datasets import worked_examples as we
from cnnlab.ops.reference import avgpool2d_forward_naive, maxpool2d_backward_naive, maxpool2d_forward_naive
from tests.server.play_helpers import change, commit, grid_of, open_and_wait, updates, wait_for_update


@pytest.fixture
def pool(open_playground):
    return open_and_wait(open_playground, "pool")


def test_tutorial_example_and_its_erratum(page, pool, shot):
    pool.locator(".scrub").fill("3")  # the last window: every output cell filled in
    x = we.pool_example()
    expected, _ = maxpool2d_forward_naive(x[None, None], 2)
    np.testing.assert_array_equal(grid_of(pool, "input"), x)
    np.testing.assert_array_equal(grid_of(pool, "output"), expected[0, 0])
    assert grid_of(pool, "output").tolist() == [[6, 8], [9, 11]]
    assert pool.locator(".erratum .printed").inner_text() == "[[3, 4], [9, 11]]"
    pool.locator(".scrub").fill("1")
    chosen = pool.locator("table[aria-label=input] td.chosen")
    assert chosen.count() == 1 and (chosen.get_attribute("data-row"), chosen.get_attribute("data-col")) == ("1", "3")
    assert pool.locator("table[aria-label=input] td.window").count() == 4
    assert pool.locator("table[aria-label=output] td.unreached").count() == 2
    assert pool.locator(".window-value").inner_text() == "8"
    shot(page, "play_pool")


def test_backward_routes_the_upstream_gradient(page, pool, shot):
    pool.locator(".mode").select_option("backward")
    pool.locator(".step").click()  # window 1: upstream 5 goes to the 8 at (1, 3)
    assert pool.locator(".upstream-value").inner_text() == "5"
    assert pool.locator(".routes").inner_text() == "row 1, column 3 gets 5"
    assert grid_of(pool, "input gradient").tolist() == [[0, 0, 0, 0], [0, 2, 0, 5], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert pool.locator("svg.arrows path.route").count() == 1
    pool.locator(".scrub").fill("3")
    x, up = we.pool_example(), we.pool_upstream()
    _, cache = maxpool2d_forward_naive(x[None, None], 2)
    final = maxpool2d_backward_naive(up[None, None], cache)[0, 0]
    np.testing.assert_array_equal(grid_of(pool, "input gradient"), final)
    assert grid_of(pool, "input gradient").tolist() == [[0, 0, 0, 0], [0, 2, 0, 5], [3, 0, 0, 0], [0, 0, 7, 0]]
    shot(page, "play_pool_backward")
    before = updates(pool)  # an edited upstream cell travels too
    cell = pool.locator("table[aria-label=upstream] td[data-row='1'][data-col='1'] input")
    commit(cell, "-4")
    wait_for_update(pool, before)
    assert grid_of(pool, "input gradient")[3, 2] == -4


def test_ties_go_to_the_first_maximum(page, pool, shot):
    change(pool, ".pool-preset", "ties", "select")
    pool.locator(".mode").select_option("backward")
    pool.locator(".scrub").fill("0")
    assert "4 cells hold the maximum" in pool.locator(".ties").inner_text()
    assert pool.locator("table[aria-label=input] td.tie").count() == 4
    chosen = pool.locator("table[aria-label=input] td.chosen")
    assert (chosen.get_attribute("data-row"), chosen.get_attribute("data-col")) == ("0", "0")
    assert pool.locator(".routes").inner_text() == "row 0, column 0 gets 2"
    assert "first in row-major order" in pool.locator(".tie-rule").inner_text()
    assert pool.locator(".erratum-panel").is_hidden()
    shot(page, "play_pool_ties")


def test_average_and_overlapping_windows(page, pool, shot):
    change(pool, ".kind", "avg", "select")
    change(pool, ".stride", 1)
    change(pool, ".size", 3)
    x = we.pool_example()
    pool.locator(".scrub").fill("3")
    expected = avgpool2d_forward_naive(x[None, None], 3, 1)[0][0, 0]
    np.testing.assert_allclose(grid_of(pool, "output"), expected, atol=5e-4)  # the page writes 3 decimals
    pool.locator(".mode").select_option("backward")
    pool.locator(".scrub").fill("1")  # two overlapping windows of ones: the middle columns got 2/9
    np.testing.assert_allclose(grid_of(pool, "input gradient")[0], [1 / 9, 2 / 9, 2 / 9, 1 / 9], atol=5e-4)
    assert pool.locator("table[aria-label='input gradient'] td.routed").count() == 9
    assert pool.locator(".routes").inner_text() == "each of the 9 outlined cells gets 0.111"
    assert pool.locator("svg.arrows path.route").count() == 1
    shot(page, "play_pool_avg_overlap")
