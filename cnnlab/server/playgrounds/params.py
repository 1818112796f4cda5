"""Playground 5, parameter explosion: dense versus convolution parameter counts."""
from __future__ import annotations

from cnnlab.lab.explain import conv_parameters, dense_parameters, parameter_comparison
from cnnlab.server.validation import check_fields, get_int


def parameter_counts(data: dict) -> dict:
    """Dense versus convolution parameter counts for one image, plus the tutorials' rows.

    Request: ``channels`` 1-4, ``height``/``width`` 1-4096, ``hidden`` 1-100000, ``kernel`` 1-11,
    ``filters`` 1-1024. Counts from ``cnnlab.lab.explain.dense_parameters`` / ``conv_parameters``.
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
    rows, _ = parameter_comparison(print_fn=lambda *a, **kw: None)
    return {"dense": dense, "dense_formula": f"{C}*{H}*{W} * {hidden} + {hidden} = {dense:,}",
            "conv": conv, "conv_formula": f"{filters} * ({C}*{k}*{k}) + {filters} = {conv:,}",
            "ratio": dense / conv,
            "presets": [{"name": r.name, "input_shape": list(r.input_shape), "hidden": r.dense_units,
                         "dense": r.dense_params, "conv": r.conv_params,
                         "kernel": r.conv[2] if r.conv else None, "filters": r.conv[1] if r.conv else None}
                        for r in rows]}
