"""A convolution is a matrix multiplication: the picture of its sparse (Toeplitz) matrix
(``cnnlab.lab.explain.conv_matrix``), showing how few entries are nonzero (sparsity) and that
every row reuses the same few weights (weight sharing).
"""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm, ListedColormap

from cnnlab.lab.viz._common import finish, new_figure, show
from cnnlab.lab.explain import conv_matrix

__all__ = ["conv_matrix_figure"]


def conv_matrix_figure(kernel, input_shape=(5, 5), *, stride=1, padding=0, save=None):
    """The kernel, the matrix coloured by which kernel weight each entry is, and its values.

    Args:
        kernel: 2-D filter (KH, KW) with at most 20 entries for distinct colours.
        input_shape: (H, W) of the (small) input.
        stride, padding: of the convolution.
        save: optional PNG/SVG path.

    Returns:
        the Figure.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    M, index = conv_matrix(kernel, input_shape, stride, padding, return_index=True)
    kh, kw = kernel.shape
    n_k = kh * kw
    base = colormaps["tab20"] if n_k > 10 else colormaps["tab10"]
    colors = ["white"] + [base(k % base.N) for k in range(n_k)]
    cmap = ListedColormap(colors)
    norm = BoundaryNorm(np.arange(-1.5, n_k, 1.0), cmap.N)
    nnz = int(np.count_nonzero(index >= 0))
    rows, cols = M.shape
    cell = min(0.3, 6.5 / cols)  # inches per matrix cell
    fig = new_figure(2.4 + 2 * (cols * cell + 1.3), max(3.4, rows * cell + 2.0))
    gs = fig.add_gridspec(1, 3, width_ratios=[2.2, cols * cell + 0.3, cols * cell + 1.3])
    ax_k = fig.add_subplot(gs[0, 0])
    ax_k.imshow(np.arange(n_k).reshape(kh, kw), cmap=cmap, norm=norm, interpolation="nearest")
    for u in range(kh):
        for v in range(kw):
            ax_k.text(v, u, f"w{u}{v}\n{kernel[u, v]:.2g}", ha="center", va="center", fontsize=8)
    ax_k.set_xticks([])
    ax_k.set_yticks([])
    ax_k.set_title(f"kernel {kh}x{kw}\n(one colour per weight)", fontsize=10)
    ax_i = fig.add_subplot(gs[0, 1])
    ax_i.imshow(index, cmap=cmap, norm=norm, interpolation="nearest", aspect="equal")
    ax_i.set_title(f"which weight sits where: every row reuses\nthe same {n_k} weights (weight sharing)", fontsize=10)
    ax_i.set_xlabel(f"input pixel (flattened {input_shape[0]}x{input_shape[1]} = {cols})")
    ax_i.set_ylabel(f"output position ({rows})")
    ax_m = fig.add_subplot(gs[0, 2])
    show(ax_m, M, diverging=True, colorbar="matrix entry", ticks=True,
         title=f"M: only {nnz} of {M.size} entries ({nnz / M.size:.0%}) can hold a weight;\nthe rest are always 0 (sparsity)")
    ax_m.set_xlabel("input pixel")
    ax_m.set_ylabel("output position")
    fig.suptitle(f"convolution as a matrix: conv(x).ravel() = M @ x.ravel(), M is {rows}x{cols}; "
                 f"the backward pass multiplies by M.T", fontsize=11)
    return finish(fig, save)

