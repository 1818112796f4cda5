"""Playground 5, parameter explosion: dense versus convolution parameter counts."""
from __future__ import annotations

from functools import lru_cache

from cnnlab.lab.explain import PARAMETER_CASES, conv_parameters, dense_parameters, parameter_comparison
from cnnlab.server.validation import check_fields, get_int

#: the rows of the "Motivation for Convolutions" table that PARAMETER_CASES lacks: 1,000 hidden
#: units on MNIST, CIFAR and an HD frame; the HD row is set beside the ImageNet row's 3->64 3x3
#: convolution, whose count does not change with the image size.
TABLE_CASES = (
    ("MNIST 28x28 -> 1,000", (1, 28, 28), 1000, None),
    ("CIFAR 32x32x3 -> 1,000", (3, 32, 32), 1000, None),
    ("HD 1920x1080x3 -> 1,000 vs conv 3->64 3x3", (3, 1080, 1920), 1000, (3, 64, 3)),
)

#: what the tutorial's table prints for a row, where cnnlab's count differs (quoted, to be corrected)
TUTORIAL_PRINTS = {"HD 1920x1080x3 -> 1,000 vs conv 3->64 3x3": 6_221_801_000}


def ratio_text(ratio: float) -> str:
    """``84000.56`` -> ``"84,001×"``."""
    return f"{ratio:,.0f}×"


@lru_cache(maxsize=1)
def presets() -> tuple[dict, ...]:
    """The tutorials' rows, counted by ``parameter_comparison``, as settings for the page."""
    rows, _ = parameter_comparison(PARAMETER_CASES + TABLE_CASES, print_fn=None)
    out = []
    for r in rows:
        c, h, w = r.input_shape
        out.append({"name": r.name, "input_shape": list(r.input_shape), "channels": c, "height": h, "width": w,
                    "hidden": r.dense_units, "dense": r.dense_params, "dense_formula": r.dense_formula,
                    "conv": r.conv_params, "conv_formula": r.conv_formula,
                    "kernel": r.conv[2] if r.conv else None, "filters": r.conv[1] if r.conv else None,
                    "ratio": r.ratio, "ratio_text": None if r.ratio is None else ratio_text(r.ratio)})
    return tuple(out)


def errata() -> list[dict]:
    """The tutorial's printed count beside cnnlab's, for every row where they differ."""
    found = []
    for p in presets():
        printed = TUTORIAL_PRINTS.get(p["name"])
        if printed is not None and printed != p["dense"]:
            c, h, w = p["input_shape"]
            found.append({"preset": p["name"], "tutorial": printed, "cnnlab": p["dense"],
                          "text": (f"Erratum: the tutorial's table gives {printed:,} parameters for the "
                                   f"{w}x{h}x{c} row; {c}*{w}*{h} = {c * h * w:,} inputs times {p['hidden']:,} "
                                   f"hidden units plus {p['hidden']:,} biases is {p['dense']:,}.")})
    return found


def compact(value: int) -> str:
    """A tick label: ``1_500_000_000`` -> ``"1.5B"``, ``25_000`` -> ``"25k"``, ``100`` -> ``"100"``."""
    for size, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def axis_ticks(largest: int) -> dict:
    """Tick marks of the bar chart whose longest bar is ``largest`` parameters.

    ``log``: every power of ten from 1 up to ``largest``; ``linear``: 0 and multiples of a round
    step (1, 2 or 5 times a power of ten) giving at most 8 ticks up to ``largest``. Each tick is
    ``{"value", "label"}``.

    Example:
        >>> [t["label"] for t in axis_ticks(6_220_801_000)["linear"]]
        ['0', '1B', '2B', '3B', '4B', '5B', '6B']
    """
    log = [10**k for k in range(len(str(int(largest))))]  # 1, 10, ... <= largest
    step = next(m * 10**e for e in range(len(str(int(largest))) + 1) for m in (1, 2, 5) if largest / (m * 10**e) <= 7)
    linear = list(range(0, int(largest) + 1, step))
    return {"max": int(largest), "log": [{"value": v, "label": compact(v)} for v in log],
            "linear": [{"value": v, "label": compact(v)} for v in linear]}


def parameter_counts(data: dict) -> dict:
    """Dense versus convolution parameter counts for one image, plus the tutorials' rows.

    Request: ``channels`` 1-4, ``height``/``width`` 1-4096, ``hidden`` 1-100000, ``kernel`` 1-11,
    ``filters`` 1-1024. Counts from ``cnnlab.lab.explain.dense_parameters`` / ``conv_parameters``.
    Returns the counts with their formulas, ``ratio`` (dense / conv) and ``ratio_text``, the
    tutorials' rows as ``presets``, the ``errata`` of their printed numbers and the chart's ``axis``
    (its largest count and the tick marks of both scales, see :func:`axis_ticks`).
    """
    check_fields(data, {"channels", "height", "width", "hidden", "kernel", "filters"})
    C = get_int(data, "channels", 1, 4, default=1)
    H = get_int(data, "height", 1, 4096, default=28)
    W = get_int(data, "width", 1, 4096, default=28)
    hidden = get_int(data, "hidden", 1, 100_000, default=128)
    k = get_int(data, "kernel", 1, 11, default=3)
    filters = get_int(data, "filters", 1, 1024, default=16)
    dense = dense_parameters(C * H * W, hidden)
    conv = conv_parameters(C, filters, k)
    return {"dense": dense, "dense_formula": f"{C}*{H}*{W} * {hidden} + {hidden} = {dense:,}",
            "conv": conv, "conv_formula": f"{filters} * ({C}*{k}*{k}) + {filters} = {conv:,}",
            "ratio": dense / conv, "ratio_text": ratio_text(dense / conv),
            "presets": list(presets()), "errata": errata(),
            "axis": axis_ticks(max([dense, conv] + [p[k] for p in presets() for k in ("dense", "conv") if p[k]]))}
