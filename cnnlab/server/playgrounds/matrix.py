"""Playground 7, convolution as a matrix: the sparse, weight-shared matrix M with M @ x = conv(x).

The matrix and its weight-index map come from :func:`cnnlab.lab.explain.conv_matrix.conv_matrix`;
the convolution it is checked against is cnnlab's ``conv2d_forward``.
"""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import letter_x
from cnnlab.lab.explain.conv_matrix import conv_matrix
from cnnlab.ops.conv import conv2d_forward
from cnnlab.server.playgrounds.grids import get_grid
from cnnlab.server.validation import BadRequest, check_fields, get_int

MAX_INPUT = 8  # an (H_out*W_out) x (H*W) matrix of up to 64 columns stays drawable


def conv_as_matrix(data: dict) -> dict:
    """The convolution matrix of ``kernel`` on an ``image``, and the proof that it is a convolution.

    Request: ``image`` (H, W) up to 8x8 (default the 6x6 X), ``kernel`` (KH, KW) (default
    ``[[1, 2, 3], [4, 5, 6], [7, 8, 9]]``, nine distinct weights), ``stride`` 1-2, ``padding`` 0-1.
    Returns ``matrix`` M (H_out*W_out, H*W), ``index`` (kernel entry u*KW + v per slot, -1 for
    the structural zeros), ``windows`` (per row: the input cells it covers and its output cell),
    ``product`` = M @ x.ravel(), ``conv`` (H_out, W_out) from ``conv2d_forward``, and the counts.
    """
    check_fields(data, {"image", "kernel", "stride", "padding"})
    x = get_grid(data, "image", max_side=MAX_INPUT, max_channels=1)[0] if "image" in data else letter_x()
    w = get_grid(data, "kernel", max_side=5, max_channels=1)[0] if "kernel" in data else np.arange(1.0, 10.0).reshape(3, 3)
    stride = get_int(data, "stride", 1, 2, default=1)
    padding = get_int(data, "padding", 0, 1, default=0)
    (H, W), (KH, KW) = x.shape, w.shape
    if KH > H + 2 * padding or KW > W + 2 * padding:
        raise BadRequest(f"kernel {KH}x{KW} is larger than the padded input {H + 2 * padding}x{W + 2 * padding}")
    M, index = conv_matrix(w, (H, W), stride, padding, return_index=True)  # (H_out*W_out, H*W) each
    out, _ = conv2d_forward(x[None, None], w[None, None], None, stride=(stride, stride), padding=(padding, padding))
    out = out[0, 0]  # (H_out, W_out)
    product = M @ x.ravel()  # (H_out*W_out,)
    W_out = out.shape[1]
    windows = [{"cells": [[int(c) // W, int(c) % W] for c in np.flatnonzero(index[r] >= 0)],
                "out": [r // W_out, r % W_out]} for r in range(M.shape[0])]
    return {"matrix": M.tolist(), "index": index.tolist(), "image": x.tolist(), "kernel": w.tolist(),
            "stride": stride, "padding": padding, "windows": windows,
            "product": product.tolist(), "conv": out.tolist(), "conv_flat": out.ravel().tolist(),
            "max_abs_difference": float(np.abs(product - out.ravel()).max()),
            "counts": {"entries": int(M.size), "slots": int((index >= 0).sum()), "empty": int((index < 0).sum()),
                       "nonzero": int(np.count_nonzero(M)), "distinct_weights": int(w.size), "rows": M.shape[0],
                       "cols": M.shape[1], "per_row": [int(n) for n in (index >= 0).sum(axis=1)]}}
