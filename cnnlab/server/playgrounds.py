"""Computations behind the lab's playgrounds: the page only draws what these return.

Every number comes from cnnlab's ops (``cnnlab.ops.conv``, ``cnnlab.ops.pool``); the step-by-step
trace (window, products, sum) is the same arithmetic laid out per output position so the page
can animate it.
"""
from __future__ import annotations

from numbers import Real

import numpy as np

from cnnlab.ops.conv import conv2d_forward
from cnnlab.ops.pool import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward
from cnnlab.server.validation import BadRequest, check_fields, get_choice, get_float, get_int

MAX_SIDE = 32  # grids the page can draw cell by cell
MAX_VALUE = 1e4


def get_grid(data: dict, name: str, max_side: int = MAX_SIDE, max_channels: int = 3) -> np.ndarray:
    """Field ``name``: a (C, H, W) or (H, W) nested list of finite numbers -> float64 (C, H, W)."""
    value = data.get(name)
    if value is None:
        raise BadRequest(f"missing field {name!r} (a grid: list of rows of numbers)")
    try:
        arr = np.asarray(value, dtype=object)
    except ValueError:
        arr = None
    if arr is None or arr.ndim not in (2, 3) or arr.size == 0:
        raise BadRequest(f"{name} must be a rectangular grid (rows of numbers, or channels of rows); received {value!r:.80}")
    flat = arr.reshape(-1)
    for v in flat:
        if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v) or abs(v) > MAX_VALUE:
            raise BadRequest(f"{name} must hold finite numbers with |v| <= {MAX_VALUE:g}; received {v!r}")
    grid = arr.astype(np.float64)
    if grid.ndim == 2:
        grid = grid[None]
    C, H, W = grid.shape
    if C > max_channels or H > max_side or W > max_side:
        raise BadRequest(f"{name} must be at most {max_channels} channels of {max_side}x{max_side}; received {C}x{H}x{W}")
    return grid


def conv_trace(data: dict) -> dict:
    """Convolution of one image with one kernel, every output position laid out.

    Request: ``image`` (C, H, W) or (H, W); ``kernel`` (C, K, K) or (K, K); ``stride`` 1-3;
    ``padding`` 0-3; ``bias``. Returns the padded input, output (H_out, W_out) from
    ``conv2d_forward`` and per position the window origin, per-channel products and partial sums.
    """
    check_fields(data, {"image", "kernel", "stride", "padding", "bias"})
    x = get_grid(data, "image")
    w = get_grid(data, "kernel", max_side=7)
    stride = get_int(data, "stride", 1, 3, default=1)
    padding = get_int(data, "padding", 0, 3, default=0)
    bias = get_float(data, "bias", -MAX_VALUE, MAX_VALUE, default=0.0)
    C, H, W = x.shape
    if w.shape[0] != C:
        raise BadRequest(f"kernel has {w.shape[0]} channel(s) but image has {C}; they must match")
    KH, KW = w.shape[1:]
    if KH > H + 2 * padding or KW > W + 2 * padding:
        raise BadRequest(f"kernel {KH}x{KW} is larger than the padded input {H + 2 * padding}x{W + 2 * padding}")
    out, _ = conv2d_forward(x[None], w[None], np.array([bias]), stride=(stride, stride), padding=(padding, padding))
    out = out[0, 0]  # (H_out, W_out)
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))  # (C, Hp, Wp): the zero border
    steps = []
    for oh in range(out.shape[0]):
        for ow in range(out.shape[1]):
            r, c = oh * stride, ow * stride
            products = xp[:, r:r + KH, c:c + KW] * w  # (C, KH, KW)
            steps.append({"out": [oh, ow], "origin": [r, c], "products": products.tolist(),
                          "partial_sums": products.sum(axis=(1, 2)).tolist(), "value": float(out[oh, ow])})
    return {"padded": xp.tolist(), "output": out.tolist(), "stride": stride, "padding": padding, "bias": bias,
            "kernel_size": [KH, KW],
            "formula": f"floor(({H} + 2*{padding} - {KH}) / {stride}) + 1 = {out.shape[0]}",
            "steps": steps}


def pool_trace(data: dict) -> dict:
    """Max or average pooling forward, and the backward routing of ``upstream`` gradients.

    Request: ``image`` (H, W); ``kind`` max|avg; ``size`` 1-4; ``stride`` 1-4; optional
    ``upstream`` (H_out, W_out). Returns output, per window its origin and (max) the position
    chosen (first maximum in row-major order: the tie rule of ``maxpool2d_forward``), and the
    input gradient from ``maxpool2d_backward`` / ``avgpool2d_backward``.
    """
    check_fields(data, {"image", "kind", "size", "stride", "upstream"})
    x = get_grid(data, "image", max_channels=1)
    kind = get_choice(data, "kind", ("max", "avg"), default="max")
    size = get_int(data, "size", 1, 4, default=2)
    stride = get_int(data, "stride", 1, 4, default=size)
    H, W = x.shape[1:]
    if size > H or size > W:
        raise BadRequest(f"pool size {size} is larger than the image {H}x{W}")
    forward, backward = (maxpool2d_forward, maxpool2d_backward) if kind == "max" else (avgpool2d_forward, avgpool2d_backward)
    out, cache = forward(x[None], size, stride)
    out = out[0, 0]
    if "upstream" in data:
        up = get_grid(data, "upstream", max_channels=1)
        if up.shape[1:] != out.shape:
            raise BadRequest(f"upstream must be {out.shape[0]}x{out.shape[1]} (the output); received {up.shape[1]}x{up.shape[2]}")
    else:
        up = np.ones((1,) + out.shape)
    dx = backward(up[None], cache)[0, 0]
    windows = []
    for oh in range(out.shape[0]):
        for ow in range(out.shape[1]):
            r, c = oh * stride, ow * stride
            win = x[0, r:r + size, c:c + size]
            item = {"out": [oh, ow], "origin": [r, c], "value": float(out[oh, ow])}
            if kind == "max":
                k = int(np.argmax(win))  # first maximum, row-major
                item["chosen"] = [r + k // size, c + k % size]
                item["ties"] = int((win == win.max()).sum())
            windows.append(item)
    return {"output": out.tolist(), "upstream": up[0].tolist(), "grad_input": dx.tolist(), "kind": kind,
            "size": size, "stride": stride, "windows": windows}


def parameter_counts(data: dict) -> dict:
    """Dense versus convolution parameter counts for one image, plus the tutorials' rows.

    Request: ``channels`` 1-4, ``height``/``width`` 1-4096, ``hidden`` 1-100000, ``kernel`` 1-11,
    ``filters`` 1-1024. Counts from ``cnnlab.explain.dense_parameters`` / ``conv_parameters``.
    """
    from cnnlab.explain import conv_parameters, dense_parameters, parameter_comparison

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
