"""Playground 1, convolution: every output position of one image * one kernel, laid out for the page."""
from __future__ import annotations

import numpy as np

from cnnlab.ops.conv import conv2d_forward
from cnnlab.server.playgrounds.grids import MAX_VALUE, get_grid
from cnnlab.server.validation import BadRequest, check_fields, get_float, get_int


def conv_trace(data: dict) -> dict:
    """Convolution of one image with one kernel, every output position laid out.

    Request: ``image`` (C, H, W) or (H, W); ``kernel`` (C, K, K) or (K, K); ``stride`` 1-3;
    ``padding`` 0-3; ``bias``. Returns the padded input, output (H_out, W_out) from
    ``conv2d_forward`` and per position the window origin, per-channel products and partial sums;
    the output-size formula for rows and columns, and ``label``: "same" when the output keeps the
    input's size, "valid" when there is no padding (else "padded").
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
    formulas = [f"floor(({n} + 2*{padding} - {k}) / {stride}) + 1 = {o}"
                for n, k, o in ((H, KH, out.shape[0]), (W, KW, out.shape[1]))]  # rows, columns
    label = "same" if out.shape == (H, W) else "valid" if padding == 0 else "padded"
    return {"padded": xp.tolist(), "output": out.tolist(), "stride": stride, "padding": padding, "bias": bias,
            "kernel_size": [KH, KW], "input_size": [H, W], "output_size": list(out.shape),
            "formula": formulas[0], "formula_width": formulas[1], "label": label,
            "steps": steps}
