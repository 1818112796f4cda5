"""Playground 2, pooling: max/average windows forward, and where upstream gradients go backward."""
from __future__ import annotations

import numpy as np

from cnnlab.ops.pool import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward
from cnnlab.server.playgrounds.grids import get_grid
from cnnlab.server.validation import BadRequest, check_fields, get_choice, get_int


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
