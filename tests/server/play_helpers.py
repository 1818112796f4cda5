"""Helpers of the playground browser tests: read a page's number grids, set a control and wait
for the server's answer (each page counts its answers in its section's ``data-updates``)."""
from __future__ import annotations

import numpy as np


def read_grid(table) -> np.ndarray:
    """The numbers of a grid table (text cells or <input> cells) as a float array (rows, cols)."""
    rows = table.evaluate("t => [...t.rows].map(r => [...r.cells].map(c => c.querySelector('input') ? "
                          "c.querySelector('input').value : c.textContent))")
    return np.array([[float(v.replace(",", "")) if v.strip() else np.nan for v in row] for row in rows])


def grid_of(section, label) -> np.ndarray:
    """The grid with aria-label ``label`` in ``section``."""
    return read_grid(section.locator(f"table[aria-label='{label}']"))


def updates(section) -> int:
    return int(section.get_attribute("data-updates") or 0)


def wait_for_update(section, before: int) -> None:
    section_id = section.get_attribute("id")
    section.page.wait_for_function(f"document.getElementById('{section_id}').dataset.updates > {before}")


def change(section, selector, value, action="fill"):
    """Set a control (fill a number or select an option) and wait for the page's next server answer."""
    before = updates(section)
    control = section.locator(selector)
    if action == "select":
        control.select_option(value)
    else:
        commit(control, value)
    wait_for_update(section, before)


def commit(control, value) -> None:
    """Type ``value`` into an input and commit it: one change event, as a user's edit. Set
    without focusing it: ``fill`` focuses, and Chromium then sends a second change when the
    focus moves on, whose answer can land while the test waits for the next control's."""
    control.evaluate("(node, value) => { node.value = value; node.dispatchEvent(new Event('change')); }", str(value))


def open_and_wait(open_playground, name: str):
    """Open playground ``name`` and wait for its first server answer; returns its section."""
    section = open_playground(name)
    wait_for_update(section, 0)
    return section
