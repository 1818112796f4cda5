"""Playground 2, pooling: max/average windows forward, and where upstream gradients go backward."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets import worked_examples as we
from cnnlab.ops.pool import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward
from cnnlab.server.playgrounds.grids import get_grid
from cnnlab.server.validation import BadRequest, check_fields, get_choice, get_int

RUNNING_LIMIT = 20_000  # windows * H * W: beyond this the per-step input gradients are left out (payload size)


def pool_trace(data: dict) -> dict:
    """Max or average pooling forward, and the backward routing of ``upstream`` gradients.

    Request: ``image`` (H, W); ``kind`` max|avg; ``size`` 1-4; ``stride`` 1-4; optional
    ``upstream`` (H_out, W_out). Returns output, per window its origin and (max) the position
    chosen (first maximum in row-major order: the tie rule of ``maxpool2d_forward``), and the
    input gradient from ``maxpool2d_backward`` / ``avgpool2d_backward``. Per max window ``tied``: every
    position holding the maximum. Per window also its
    ``upstream`` value and ``routes``: [[row, col, amount], ...], the backward op run on that window's
    gradient alone; and, for grids of at most ``RUNNING_LIMIT`` numbers, ``grad_steps``: the input
    gradient after the first k+1 windows (overlapping windows add up).
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
            item = {"out": [oh, ow], "origin": [r, c], "value": float(out[oh, ow]), "upstream": float(up[0, oh, ow]),
                    "routes": _routes(up, cache, backward, oh, ow)}
            if kind == "max":
                k = int(np.argmax(win))  # first maximum, row-major
                item["chosen"] = [r + k // size, c + k % size]
                tied = np.argwhere(win == win.max())  # (ties, 2), row-major
                item["ties"] = len(tied)
                item["tied"] = [[r + int(i), c + int(j)] for i, j in tied]
            windows.append(item)
    result = {"output": out.tolist(), "upstream": up[0].tolist(), "grad_input": dx.tolist(), "kind": kind,
              "size": size, "stride": stride, "windows": windows}
    if len(windows) * H * W <= RUNNING_LIMIT:
        result["grad_steps"] = _running_grads(up, cache, backward)
    return result


def _routes(up, cache, backward, oh: int, ow: int) -> list:
    """Where window (oh, ow)'s upstream gradient lands: [[row, col, amount], ...] from the backward op.

    Shape: up (1, H_out, W_out).
    """
    alone = np.zeros_like(up)
    alone[0, oh, ow] = up[0, oh, ow]
    dx = backward(alone[None], cache)[0, 0]  # (H, W)
    if up[0, oh, ow] == 0:  # a zero gradient still travels: show where it would go
        alone[0, oh, ow] = 1
        where = backward(alone[None], cache)[0, 0] != 0
    else:
        where = dx != 0
    return [[int(r), int(c), float(dx[r, c])] for r, c in zip(*np.nonzero(where))]


def _running_grads(up, cache, backward) -> list:
    """The input gradient after the first k+1 windows (row-major), k = 0 .. H_out*W_out-1. Shape: up (1, H_out, W_out)."""
    flat = up.reshape(-1)
    grads = []
    for k in range(flat.size):
        partial = np.where(np.arange(flat.size) <= k, flat, 0).reshape(up.shape)  # (1, H_out, W_out)
        grads.append(backward(partial[None], cache)[0, 0].tolist())
    return grads


#: A 4x4 input whose windows hold 4, 2, 1 and 2 equal maxima: the tie rule at work.
TIES_EXAMPLE = ((5, 5, 1, 0), (5, 5, 3, 3), (0, 1, 4, 2), (2, 0, 4, 1))


def pool_presets(data: dict) -> dict:
    """The Pooling page's starting grids: the tutorials' 4x4 example (with its upstream gradient
    and erratum) and a grid with ties. Request: ``{}``."""
    check_fields(data, set())
    erratum = {k: np.asarray(v).tolist() for k, v in we.POOL_EXAMPLE_ERRATUM.items()}
    return {"tutorial": {"name": "the tutorials' 4x4 example", "image": we.pool_example().tolist(),
                         "upstream": we.pool_upstream().tolist(), "erratum": erratum},
            "ties": {"name": "4x4 with ties", "image": np.array(TIES_EXAMPLE, dtype=float).tolist(),
                     "upstream": we.pool_upstream().tolist()}}
