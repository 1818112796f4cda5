"""Convolution step by step: one window, its numbers and the multiply-add; and an animated GIF
of the whole feature map filling in. Every output value comes from ``cnnlab.ops.conv``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from matplotlib.backends.backend_agg import FigureCanvasAgg

from cnnlab.ops.shapes import to_pair
from cnnlab.lab.viz._common import as_2d_image, box, finish, new_figure, show, symmetric_norm, write_numbers
from cnnlab.ops.conv import conv2d_forward

__all__ = ["conv_step_numbers", "conv_step", "conv_animation"]


def _conv_full(image: np.ndarray, kernel: np.ndarray, bias: float, stride, padding) -> np.ndarray:
    out, _ = conv2d_forward(image[None, None], kernel[None, None], np.array([bias]), stride=stride, padding=padding)
    return out[0, 0]  # (H_out, W_out)


def conv_step_numbers(image, kernel, at=(0, 0), *, bias: float = 0.0, stride=1, padding=0) -> dict:
    """The numbers of one convolution step, in float64.

    Args:
        image: 2-D input (H, W) (uint8 images are scaled to [0, 1]).
        kernel: 2-D filter (KH, KW).
        at: output position (i, j).
        bias: added to the sum.
        stride, padding: int or pair.

    Returns:
        dict with ``window`` (KH, KW) (zeros in the padding), ``origin`` (top-left input
        row/col of the window, negative inside the padding), ``terms`` = window * kernel,
        ``sum`` = terms.sum() + bias, ``output`` (the full map from ``conv2d_forward``) and
        ``value`` = output[i, j]. ``sum`` equals ``value`` up to rounding.

    Example:
        >>> d = conv_step_numbers(np.arange(16.0).reshape(4, 4), np.ones((3, 3)), at=(1, 1))
        >>> d["sum"], float(d["value"])
        (90.0, 90.0)
    """
    image = as_2d_image(image)
    kernel = np.asarray(kernel, dtype=np.float64)
    stride, padding = to_pair(stride, "stride"), to_pair(padding, "padding", minimum=0)
    output = _conv_full(image, kernel, float(bias), stride, padding)
    i, j = (int(v) for v in at)
    if not (0 <= i < output.shape[0] and 0 <= j < output.shape[1]):
        raise ValueError(f"position at={tuple(at)} is outside the {output.shape[0]}x{output.shape[1]} output.")
    kh, kw = kernel.shape
    padded = np.pad(image, ((padding[0],) * 2, (padding[1],) * 2))  # (H+2ph, W+2pw)
    r0, c0 = i * stride[0], j * stride[1]
    window = padded[r0:r0 + kh, c0:c0 + kw]
    terms = window * kernel
    return {"window": window, "origin": (r0 - padding[0], c0 - padding[1]), "kernel": kernel, "terms": terms,
            "bias": float(bias), "sum": float(terms.sum() + bias), "output": output, "value": output[i, j],
            "at": (i, j), "stride": stride, "padding": padding, "image": image}


def _sum_text(d: dict, max_terms: int = 9) -> str:
    parts = [f"({x:.3g})({k:.3g})" for x, k in zip(d["window"].ravel(), d["kernel"].ravel())]
    if len(parts) > max_terms:
        parts = parts[:max_terms] + [f"... {len(parts) - max_terms} more"]
    lines, line = [], ""
    for part in parts:
        if len(line) + len(part) > 70:
            lines.append(line)
            line = ""
        line += ("" if not line else " + ") + part
    lines.append(line)
    bias = f" + bias ({d['bias']:.3g})"
    return " + \n".join(lines) + bias + f" = {d['sum']:.4f}"


def conv_step(image, kernel, at=(0, 0), *, bias: float = 0.0, stride=1, padding=0, save=None):
    """One convolution step: the window on the input, the kernel, the window's numbers, their
    products, the multiply-add written out, and the feature map filled in up to this step.

    Args:
        image: 2-D input (H, W); numbers are written in cells for inputs up to 12x12.
        kernel: 2-D filter (KH, KW).
        at: output position (i, j) to show.
        bias: the filter's bias.
        stride, padding: int or pair.
        save: optional PNG/SVG path.

    Returns:
        the ``matplotlib.figure.Figure``.
    """
    d = conv_step_numbers(image, kernel, at, bias=bias, stride=stride, padding=padding)
    img, out, (i, j) = d["image"], d["output"], d["at"]
    kh, kw = d["kernel"].shape
    small = max(img.shape) + 2 * max(d["padding"]) <= 12
    fig = new_figure(15, 4.1)
    gs = fig.add_gridspec(2, 5, height_ratios=[3.2, 0.9])
    ax_in = fig.add_subplot(gs[0, 0])
    ph, pw = d["padding"]
    shown = np.pad(img, ((ph, ph), (pw, pw)))  # padding drawn as zeros around the image
    cmap_in = "gray_r" if small else "gray"  # small: dark ink on white, so the numbers stay readable
    lo, hi = float(min(shown.min(), 0.0)), float(max(shown.max(), 1e-12))
    show(ax_in, shown, title=f"input {img.shape[0]}x{img.shape[1]}" + (f" + padding {ph}" if ph or pw else "")
         + f"\nwindow at output ({i}, {j})", cmap=cmap_in, colorbar="pixel value", vmin=lo, vmax=hi,
         numbers="{:.2g}" if small else False)
    if ph or pw:
        box(ax_in, ph, pw, img.shape[0], img.shape[1], color="tab:blue", lw=1.2, linestyle="--")
    box(ax_in, i * d["stride"][0], j * d["stride"][1], kh, kw, color="red", lw=2.5)
    show(fig.add_subplot(gs[0, 1]), d["kernel"], title=f"kernel {kh}x{kw}", diverging=True, colorbar="weight",
         numbers="{:.2g}")
    show(fig.add_subplot(gs[0, 2]), d["window"], title="window (input under the kernel)", cmap=cmap_in,
         colorbar="pixel value", vmin=lo, vmax=hi, numbers="{:.2g}")
    show(fig.add_subplot(gs[0, 3]), d["terms"], title="window x kernel (elementwise)", diverging=True,
         colorbar="product", numbers="{:.2g}")
    partial = np.full(out.shape, np.nan)
    flat = i * out.shape[1] + j + 1
    partial.ravel()[:flat] = out.ravel()[:flat]
    ax_out = fig.add_subplot(gs[0, 4])
    im = ax_out.imshow(partial, cmap="RdBu_r", interpolation="nearest",
                       norm=symmetric_norm(out))
    ax_out.set_xticks([])
    ax_out.set_yticks([])
    ax_out.set_title(f"feature map {out.shape[0]}x{out.shape[1]} (filled up to ({i}, {j}))", fontsize=10)
    cb = fig.colorbar(im, ax=ax_out, fraction=0.046, pad=0.03)
    cb.set_label("output value", fontsize=8)
    if max(out.shape) <= 12:
        filled = np.where(np.isnan(partial), 0.0, partial)
        write_numbers(ax_out, filled, "{:.2g}", im)
        for t, v in zip(ax_out.texts, partial.ravel()):
            t.set_visible(bool(np.isfinite(v)))
    box(ax_out, i, j, 1, 1, color="red", lw=2.5)
    ax_txt = fig.add_subplot(gs[1, :])
    ax_txt.axis("off")
    ax_txt.text(0.0, 0.5, f"output[{i}, {j}] = sum(window x kernel) + bias = " + _sum_text(d)
                + f"\n(cnnlab conv2d_forward gives {float(d['value']):.4f})",
                fontsize=10, family="monospace", va="center", ha="left", transform=ax_txt.transAxes)
    return finish(fig, save)


def conv_animation(image, kernel, save, *, bias: float = 0.0, stride=1, padding=0, max_frames: int = 40,
                   duration_ms: int = 250) -> Path:
    """An animated GIF of the feature map filling in as the window slides over the input.

    Each frame shows the input with the current window and the output map computed so far
    (values from ``cnnlab.ops.conv.conv2d_forward``). Large outputs advance several positions
    per frame so that there are at most ``max_frames`` frames (the last frame is the full map).

    Args:
        image: 2-D input (H, W).
        kernel: 2-D filter (KH, KW).
        save: destination ``.gif`` path.
        bias, stride, padding: as in :func:`conv_step`.
        max_frames: upper bound on the number of frames.
        duration_ms: display time per frame.

    Returns:
        the path of the written GIF.
    """
    path = Path(save)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"conv_animation writes a GIF; save= must end in .gif; received {str(path)!r}.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist.")
    d = conv_step_numbers(image, kernel, (0, 0), bias=bias, stride=stride, padding=padding)
    img, out = d["image"], d["output"]
    kh, kw = d["kernel"].shape
    (sh, sw), (ph, pw) = d["stride"], d["padding"]
    total = out.size
    step = max(1, int(np.ceil(total / max_frames)))
    ends = list(range(step, total, step)) + [total]

    fig = new_figure(8, 4)
    fig.set_dpi(80)
    ax_in, ax_out = fig.subplots(1, 2)
    show(ax_in, np.pad(img, ((ph, ph), (pw, pw))), title="input (window in red)", cmap="gray", colorbar="pixel value")
    rect = box(ax_in, 0, 0, kh, kw, color="red", lw=2.5)
    partial = np.full(out.shape, np.nan)
    im = ax_out.imshow(partial, cmap="RdBu_r", norm=symmetric_norm(out), interpolation="nearest")
    ax_out.set_xticks([])
    ax_out.set_yticks([])
    cb = fig.colorbar(im, ax=ax_out, fraction=0.046, pad=0.03)
    cb.set_label("output value", fontsize=8)
    cell = box(ax_out, 0, 0, 1, 1, color="red", lw=2)
    # Lay the figure out once, then freeze it: each frame is a single Agg draw (no re-layout).
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    fig.set_layout_engine("none")
    frames = []
    for end in ends:
        k = end - 1
        i, j = divmod(k, out.shape[1])
        partial.ravel()[:end] = out.ravel()[:end]
        im.set_data(partial)
        rect.set_xy((j * sw - 0.5, i * sh - 0.5))
        cell.set_xy((j - 0.5, i - 0.5))
        ax_out.set_title(f"feature map: {end}/{total} values", fontsize=10)
        canvas.draw()
        rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        frames.append(rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return path
