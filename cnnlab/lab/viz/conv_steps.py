"""Convolution step by step: one window, its numbers and the multiply-add; and an animated GIF
of the window sliding and the feature map filling in. Every output value comes from
``cnnlab.ops.conv``.

The PNG (:func:`conv_step`) and every GIF frame (:func:`conv_animation`) are the same view
(:func:`step_view` drawn at one position by :func:`show_step`): the input with the window
(zero padding hatched), the window's numbers, the kernel, their products, the sum plus bias
written out, and the output filled in up to this position. Inputs are ink on paper
(0 white, the largest value black) in both.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from matplotlib.backends.backend_agg import FigureCanvasAgg

from cnnlab.ops.shapes import to_pair
from cnnlab.lab.viz._common import as_2d_image, box, finish, new_figure, write_numbers
from cnnlab.lab.viz._style import INPUT_CMAP, INPUT_NOTE, input_norm, mark_padding, value_style
from cnnlab.ops.conv import conv2d_forward

__all__ = ["conv_step_numbers", "conv_step", "conv_animation", "step_view", "show_step", "frame_positions"]

#: inputs and outputs up to this size get their numbers written in the cells
NUMBERS_UP_TO = 12


def _conv_full(image: np.ndarray, kernel: np.ndarray, bias: float, stride, padding) -> np.ndarray:
    out, _ = conv2d_forward(image[None, None], kernel[None, None], np.array([bias]), stride=stride, padding=padding)
    return out[0, 0]  # (H_out, W_out)


def _window(d: dict, i: int, j: int) -> np.ndarray:
    """The (KH, KW) patch of the padded input under the kernel for output (i, j)."""
    (kh, kw), (sh, sw) = d["kernel"].shape, d["stride"]
    return d["padded"][i * sh:i * sh + kh, j * sw:j * sw + kw]


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
        ``sum`` = terms.sum() + bias, ``output`` (the full map from ``conv2d_forward``),
        ``value`` = output[i, j] and ``padded`` (H + 2ph, W + 2pw). ``sum`` equals
        ``value`` up to rounding.

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
    padded = np.pad(image, ((padding[0],) * 2, (padding[1],) * 2))  # (H+2ph, W+2pw)
    d = {"kernel": kernel, "bias": float(bias), "output": output, "value": output[i, j], "at": (i, j),
         "stride": stride, "padding": padding, "image": image, "padded": padded,
         "origin": (i * stride[0] - padding[0], j * stride[1] - padding[1])}
    d["window"] = _window(d, i, j)
    d["terms"] = d["window"] * kernel
    d["sum"] = float(d["terms"].sum() + bias)
    return d


def _sum_text(window: np.ndarray, kernel: np.ndarray, bias: float, total: float, max_terms: int = 9) -> str:
    """``(x1)(k1) + (x2)(k2) + ... + bias (b) = total``, wrapped at about 70 characters."""
    parts = [f"({x:.3g})({k:.3g})" for x, k in zip(window.ravel(), kernel.ravel())]
    if len(parts) > max_terms:
        parts = parts[:max_terms] + [f"... {len(parts) - max_terms} more"]
    lines, line = [], ""
    for part in parts:
        if len(line) + len(part) > 70:
            lines.append(line)
            line = ""
        line += ("" if not line else " + ") + part
    lines.append(line)
    return " + \n".join(lines) + f" + bias ({bias:.3g}) = {total:.4g}"


# ----- the view: built once, then drawn at any position ---------------------------------------------
def _grid(ax, a, title: str, **style):
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return ax.imshow(a, interpolation="nearest", **style)


def _colorbar(fig, im, ax, label: str) -> None:
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)


def _numbers(ax, a, im) -> None:
    """Replace the cell numbers of ``ax`` with those of ``a``; NaN cells stay blank."""
    for t in list(ax.texts):
        t.remove()
    write_numbers(ax, np.round(np.nan_to_num(a), 3), "{:.4g}", im)  # 3 decimals: 0.004, not 0.00392
    for t, v in zip(ax.texts, np.ravel(a)):
        t.set_visible(bool(np.isfinite(v)))


def step_view(d: dict, fig) -> dict:
    """Lay out the step view of :func:`conv_step_numbers`'s ``d`` on ``fig``; draw it with :func:`show_step`.

    Returns:
        the view: its axes (labelled ``"input"``, ``"window"``, ``"kernel"``, ``"products"``,
        ``"output"``, ``"equation"``), images, the window rectangle and the output cell box.
    """
    kernel, out, padded, img = d["kernel"], d["output"], d["padded"], d["image"]
    gs = fig.add_gridspec(2, 5, height_ratios=[3.2, 0.8])
    axes = {name: fig.add_subplot(gs[0, c], label=name)
            for c, name in enumerate(("input", "window", "kernel", "products", "output"))}
    axes["equation"] = fig.add_subplot(gs[1, :], label="equation")
    axes["equation"].axis("off")
    pixels = {"cmap": INPUT_CMAP, "norm": input_norm(padded)}
    pad = f", padding {max(d['padding'])} hatched" if any(d["padding"]) else ""
    im_in = _grid(axes["input"], padded, f"input {img.shape[0]}x{img.shape[1]}{pad}\n({INPUT_NOTE})", **pixels)
    _colorbar(fig, im_in, axes["input"], "pixel value")
    if max(padded.shape) <= NUMBERS_UP_TO:
        _numbers(axes["input"], padded, im_in)
    mark_padding(axes["input"], img.shape, d["padding"])
    im_k = _grid(axes["kernel"], kernel, f"kernel {kernel.shape[0]}x{kernel.shape[1]}", **value_style(kernel))
    _colorbar(fig, im_k, axes["kernel"], "weight")
    _numbers(axes["kernel"], kernel, im_k)
    extremes = np.outer(kernel.ravel(), [pixels["norm"].vmin, pixels["norm"].vmax])  # every possible product
    view = {"axes": axes, "d": d, "images": {
        "window": _grid(axes["window"], d["window"], "window (input under the kernel)", **pixels),
        "products": _grid(axes["products"], d["terms"], "window x kernel (elementwise)", **value_style(extremes)),
        "output": _grid(axes["output"], np.full(out.shape, np.nan), "", **value_style(out))}}
    for name, label in (("window", "pixel value"), ("products", "product"), ("output", "output value")):
        _colorbar(fig, view["images"][name], axes[name], label)
    view["rect"] = box(axes["input"], 0, 0, *kernel.shape, color="red", lw=2.5)
    view["cell"] = box(axes["output"], 0, 0, 1, 1, color="red", lw=2.5)
    view["equation"] = axes["equation"].text(0.0, 0.5, "", fontsize=10, family="monospace", va="center", ha="left",
                                             transform=axes["equation"].transAxes)
    return view


def show_step(view: dict, k: int) -> dict:
    """Draw ``view`` at output position number ``k`` (row-major); the output is filled up to it.

    Returns:
        the numbers drawn: ``at``, ``window``, ``terms``, ``sum``, ``partial`` (NaN not yet computed).
    """
    d, axes, images = view["d"], view["axes"], view["images"]
    out, (sh, sw) = d["output"], d["stride"]
    i, j = divmod(int(k), out.shape[1])
    window = _window(d, i, j)
    terms = window * d["kernel"]
    total = float(terms.sum() + d["bias"])
    partial = np.full(out.shape, np.nan)
    partial.ravel()[:k + 1] = out.ravel()[:k + 1]
    view["rect"].set_xy((j * sw - 0.5, i * sh - 0.5))
    view["cell"].set_xy((j - 0.5, i - 0.5))
    for name, a in (("window", window), ("products", terms), ("output", partial)):
        images[name].set_data(a)
        if name != "output" or max(out.shape) <= NUMBERS_UP_TO:
            _numbers(axes[name], a, images[name])
    axes["window"].set_title(f"window at output ({i}, {j})", fontsize=10)
    axes["output"].set_title(f"feature map {out.shape[0]}x{out.shape[1]}: {k + 1} of {out.size} values",
                             fontsize=10)
    view["equation"].set_text(f"output[{i}, {j}] = sum(window x kernel) + bias = "
                              + _sum_text(window, d["kernel"], d["bias"], total)
                              + f"\n(cnnlab conv2d_forward gives {float(out[i, j]):.4g})")
    return {"at": (i, j), "window": window, "terms": terms, "sum": total, "partial": partial}


def conv_step(image, kernel, at=(0, 0), *, bias: float = 0.0, stride=1, padding=0, save=None):
    """One convolution step: the window on the input, its numbers, the kernel, their products,
    the multiply-add written out, and the feature map filled in up to this step.

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
    fig = new_figure(15, 4.1)
    view = step_view(d, fig)
    show_step(view, d["at"][0] * d["output"].shape[1] + d["at"][1])
    return finish(fig, save)


def frame_positions(total: int, max_frames: int) -> list[int]:
    """Output positions (row-major numbers) shown by the frames: every position when there are
    at most ``max_frames``, else evenly spaced ones ending at the last.

    Example:
        >>> frame_positions(4, 10), frame_positions(10, 4)
        ([0, 1, 2, 3], [2, 5, 8, 9])
    """
    step = max(1, int(np.ceil(total / max_frames)))
    return [end - 1 for end in range(step, total, step)] + [total - 1]


def conv_animation(image, kernel, save, *, bias: float = 0.0, stride=1, padding=0, max_frames: int = 40,
                   duration_ms: int = 600, title: str | None = None) -> Path:
    """An animated GIF of the window sliding and the feature map filling in.

    Each frame is :func:`conv_step` at one position: the input with the window (padding
    hatched), the window's numbers, the kernel, the products, ``sum + bias = value`` and the
    output so far (values from ``cnnlab.ops.conv.conv2d_forward``). Large outputs skip
    positions (see :func:`frame_positions`); the last frame is the full map.

    Args:
        image: 2-D input (H, W).
        kernel: 2-D filter (KH, KW).
        save: destination ``.gif`` path.
        bias, stride, padding: as in :func:`conv_step`.
        max_frames: upper bound on the number of frames.
        duration_ms: display time per frame.
        title: a line above the frames (what is convolved with what).

    Returns:
        the path of the written GIF.
    """
    path = Path(save)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"conv_animation writes a GIF; save= must end in .gif; received {str(path)!r}.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist.")
    d = conv_step_numbers(image, kernel, (0, 0), bias=bias, stride=stride, padding=padding)
    fig = new_figure(15, 4.4)
    fig.set_dpi(80)
    if title:
        fig.suptitle(title, fontsize=11)
    view = step_view(d, fig)
    show_step(view, 0)
    # Lay the figure out once, then freeze it: each frame is a single Agg draw (no re-layout).
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    fig.set_layout_engine("none")
    frames = []
    for k in frame_positions(d["output"].size, max_frames):
        show_step(view, k)
        canvas.draw()
        rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        frames.append(rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return path
