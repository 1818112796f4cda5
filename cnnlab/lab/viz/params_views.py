"""Dense versus convolutional parameter counts (``cnnlab.lab.explain.parameter_comparison``),
on a linear and a log axis side by side, with each dense / conv ratio written on its pair.

A log axis alone makes 150,529,000 and 1,792 look like neighbours; the linear panel shows
the gap as it is, the log panel keeps the small counts visible.
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.viz._common import finish, new_figure

__all__ = ["parameter_figure", "ratio_label"]

_DENSE, _CONV = "tab:red", "tab:blue"


def ratio_label(ratio: float) -> str:
    """A dense / conv ratio as written on the bars.

    Example:
        >>> ratio_label(150_529_000 / 1_792)
        '84,001× fewer'
    """
    return f"{ratio:,.0f}× fewer"


def parameter_figure(rows, *, save=None):
    """Dense and conv parameter counts per tutorial case: linear axis (left), log axis (right).

    Args:
        rows: :class:`cnnlab.lab.explain.ParameterCase` list.
        save: optional PNG/SVG path.

    Returns:
        the Figure; each panel's first ``len(rows)`` bars are the dense counts, the next
        ones the conv counts of the cases that have a convolution.
    """
    fig = new_figure(16, 5.2)
    ax_lin, ax_log = fig.subplots(1, 2)
    for ax, log in ((ax_lin, False), (ax_log, True)):
        _bars(ax, rows, log)
    ax_lin.legend(fontsize=9, loc="center left")
    fig.suptitle("parameters: a dense layer grows with the image, a convolution does not "
                 "(ratio = dense / conv)", fontsize=12)
    return finish(fig, save)


def _bars(ax, rows, log: bool) -> None:
    """One panel: dense and conv bars per case, counts on the bars and the ratio above each pair."""
    pos = np.arange(len(rows))
    dense = np.array([r.dense_params for r in rows], dtype=np.float64)
    ax.bar(pos - 0.2, dense, width=0.4, color=_DENSE, label="dense layer on the flattened image")
    with_conv = [k for k, r in enumerate(rows) if r.conv_params]
    ax.bar(pos[with_conv] + 0.2, [rows[k].conv_params for k in with_conv], width=0.4, color=_CONV,
           label="convolution")
    top = dense.max() * (30 if log else 1.25)
    for k, r in enumerate(rows):
        _count(ax, k - 0.2, r.dense_params, log)
        if r.conv_params:
            _count(ax, k + 0.2, r.conv_params, log)
            ax.text(k, top / (4 if log else 1.08), ratio_label(r.ratio), ha="center", va="center", fontsize=10,
                    fontweight="bold")
        else:
            ax.text(k + 0.2, (30 if log else top * 0.05), "no conv\nin this\nexample", ha="center", va="bottom",
                    fontsize=8, color="gray")
    ax.set_yscale("log" if log else "linear")
    ax.set_ylim(10 if log else 0, top)
    ax.set_xticks(pos, [r.name.replace(" vs ", "\nvs ").replace(" -> ", "\n-> ", 1) for r in rows], fontsize=8)
    ax.set_ylabel("parameters (log scale)" if log else "parameters (linear scale)")
    ax.set_title("log axis: every count visible" if log else "linear axis: the gap as it is", fontsize=10)
    if not log:
        ax.ticklabel_format(axis="y", style="plain")
        ax.yaxis.set_major_formatter(lambda v, _: f"{v / 1e6:,.0f}M")


def _count(ax, x: float, value: int, log: bool) -> None:
    """Write a count just above its bar (on a linear axis a tiny bar's label sits on the axis)."""
    y = value * 1.15 if log else value
    ax.text(x, y, f"{value:,}", ha="center", va="bottom", fontsize=8, rotation=0)
