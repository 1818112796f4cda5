"""cnnlab's learning lab: every picture and number of the CNN tutorials, produced by cnnlab's
own ops and models.

``run_demo(name, out_dir)`` prints a demo's numbers, writes its figures and returns both;
``train_toy`` trains the tutorials' toy CNNs (O vs X, vertical vs horizontal lines) to 100%
held-out accuracy from a fixed seed; ``visualize`` draws what a trained model sees for one
image; ``write_report`` writes a self-contained HTML training report.

Example:
    >>> sorted(DEMOS)[:3]
    ['convolution', 'equivariance', 'kernels']
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from cnnlab import explain, viz

__all__ = ["DEMOS", "TOYS", "run_demo", "train_toy", "toy_data", "mnist_digit", "visualize", "write_report"]


# ----- data ----------------------------------------------------------------------------------------
_MNIST_CACHE: dict = {}


def mnist_digit(index: int = 0) -> tuple[np.ndarray, int]:
    """One MNIST test digit as float64 in [0, 1] (28, 28), and its label (cached after the first call)."""
    if "test" not in _MNIST_CACHE:
        from cnnlab.datasets import load_mnist

        _, (x_test, y_test) = load_mnist(verify=False)
        _MNIST_CACHE["test"] = (x_test, y_test)
    x_test, y_test = _MNIST_CACHE["test"]
    return x_test[index].astype(np.float64) / 255.0, int(y_test[index])


def _kernel(*names: str) -> tuple[str, np.ndarray]:
    """The first of ``names`` present in ``cnnlab.kernels.KERNELS``, as float64."""
    from cnnlab.kernels import KERNELS

    for name in names:
        if name in KERNELS:
            return name, np.asarray(KERNELS[name], dtype=np.float64)
    raise KeyError(f"none of {names} in cnnlab.kernels.KERNELS (known: {sorted(KERNELS)}).")


# ----- toys ----------------------------------------------------------------------------------------
#: toy name -> class names, data sizes and training settings (seed 0 reaches 100% held-out accuracy)
TOYS = {
    "ox": {"classes": ("O", "X"), "n_train": 200, "n_test": 200, "epochs": 40, "batch_size": 16, "lr": 0.02},
    "lines": {"classes": ("vertical", "horizontal"), "n_train": 400, "n_test": 200, "epochs": 15, "batch_size": 16,
              "lr": 0.02},
}


def toy_data(name: str, seed: int = 0):
    """Training and held-out data of a toy: ``(x_train, y_train), (x_test, y_test)``.

    The test set is drawn from an independent generator (``seed + 1000``), so it holds fresh
    noise and positions.
    """
    from cnnlab.datasets.toys import lines_dataset, ox_dataset

    cfg = _toy_config(name)
    if name == "ox":
        train = ox_dataset(cfg["n_train"] // 2, seed=seed)
        test = ox_dataset(cfg["n_test"] // 2, seed=seed + 1000)
    else:
        train = lines_dataset(cfg["n_train"], seed=seed)
        test = lines_dataset(cfg["n_test"], seed=seed + 1000)
    return train, test


def _toy_config(name: str) -> dict:
    if name not in TOYS:
        raise ValueError(f"unknown toy {name!r}; choose one of: {', '.join(TOYS)}.")
    return TOYS[name]


def train_toy(name: str, seed: int = 0, *, verbose: int = 0):
    """Train a toy CNN (``"ox"`` or ``"lines"``) with a fixed seed.

    Args:
        name: ``"ox"`` (``zoo.ox_cnn`` on 6x6 letters) or ``"lines"`` (``zoo.lines_cnn`` on 8x8 lines).
        seed: seeds the weights, the data and the shuffling.
        verbose: passed to ``fit``.

    Returns:
        ``(model, history, test_accuracy)``, the accuracy on held-out examples.
    """
    from cnnlab import zoo

    cfg = _toy_config(name)
    (x, y), (xt, yt) = toy_data(name, seed)
    model = zoo.ox_cnn(seed=seed) if name == "ox" else zoo.lines_cnn(seed=seed)
    model.compile("adam", lr=cfg["lr"])
    history = model.fit(x, y, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed, verbose=verbose,
                        validation_data=(xt, yt))
    _, acc = model.evaluate(xt, yt)
    return model, history, float(acc)


# ----- demos ---------------------------------------------------------------------------------------
def _out(out_dir) -> Path:
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save(fig, path: Path, files: list) -> None:
    viz.finish(fig, path)
    files.append(str(path))


def _demo_convolution(out: Path, say) -> dict:
    from cnnlab.datasets.toys import ox_templates

    # The filter the O/X model learned, on a clean X: a real model's numbers, small enough to read.
    model, _, _ = train_toy("ox")
    conv = model.layers[0]
    kernel = conv.weight.data[0, 0].astype(np.float64)
    bias = float(conv.bias.data[0])
    x_img = ox_templates()[1].astype(np.float64)
    out_map = model.intermediate_outputs(x_img[None, None].astype(model.dtype))[0][0, 0]
    at = tuple(int(v) for v in np.unravel_index(int(np.argmax(out_map)), out_map.shape))
    d = viz.conv_step_numbers(x_img, kernel, at=at, bias=bias)
    files: list = []
    _save(viz.conv_step(x_img, kernel, at=at, bias=bias), out / "convolution_step.png", files)
    files.append(str(viz.conv_animation(x_img, kernel, out / "convolution.gif", bias=bias)))
    digit, label = mnist_digit(0)
    vname, vkernel = _kernel("vertical_edge", "sobel_x")
    edge = viz.conv_step_numbers(digit, vkernel, padding=1)["output"]
    at_digit = tuple(int(v) for v in np.unravel_index(int(np.argmax(edge)), edge.shape))  # the strongest edge
    _save(viz.conv_step(digit, vkernel, at=at_digit, padding=1), out / "convolution_step_mnist.png", files)
    files.append(str(viz.conv_animation(digit, vkernel, out / "convolution_mnist.gif", padding=1, max_frames=28)))
    sizes = {f"{n},{k},{s},{p}": explain.output_size(n, k, s, p)
             for n, k, s, p in ((6, 3, 1, 0), (28, 3, 1, 1), (28, 2, 2, 0), (7, 3, 2, 0), (224, 3, 1, 1))}
    say(f"filter 0 of the trained ox model on a clean 6x6 X; output{list(at)}:")
    say("  " + " + ".join(f"{a:.3g}*{b:.3g}" for a, b in zip(d["window"].ravel(), d["kernel"].ravel()))
        + f" + bias {bias:.3g} = {d['sum']:.6g}  (conv2d_forward: {float(d['value']):.6g}; "
          f"the model's own layer: {float(out_map[at]):.6g})")
    say("feature map:\n" + np.array2string(d["output"], precision=2))
    for key, (size, text) in sizes.items():
        say(f"output size n,k,s,p = {key}: {text}")
    return {"numbers": {"at": list(at), "step_sum": d["sum"], "step_value": float(d["value"]),
                        "model_value": float(out_map[at]), "feature_map": d["output"].tolist(),
                        "output_sizes": {k: v[0] for k, v in sizes.items()}, "mnist_label": label},
            "files": files}


def _demo_kernels(out: Path, say) -> dict:
    digit, label = mnist_digit(0)
    images = {f"MNIST digit ({label})": digit, "synthetic edges": viz.edge_test_image(28)}
    files: list = []
    _save(viz.kernel_gallery(images), out / "kernels.png", files)
    numbers = {}
    for img_name, img in images.items():
        resp = viz.kernel_responses(img)
        numbers[img_name] = {k: {"min": float(v.min()), "max": float(v.max())} for k, v in resp.items()}
        say(f"{img_name}: " + ", ".join(f"{k} [{v.min():.2f}, {v.max():.2f}]" for k, v in resp.items()))
    return {"numbers": numbers, "files": files}


def _edge_map(digit: np.ndarray) -> tuple[str, np.ndarray]:
    from cnnlab.viz._common import conv_image

    name, k = _kernel("vertical_edge", "sobel_x")
    return name, conv_image(digit, k, 0.0, 1, 1)


def _demo_relu(out: Path, say) -> dict:
    digit, _ = mnist_digit(0)
    kname, fmap = _edge_map(digit)
    files: list = []
    _save(viz.relu_figure(fmap), out / "relu.png", files)
    from cnnlab.ops.activation import relu_forward

    after = relu_forward(fmap)[0]
    n_neg = int(np.sum(fmap < 0))
    say(f"'{kname}' feature map of a digit: {n_neg} of {fmap.size} values negative, min {fmap.min():.3f}; "
        f"after ReLU min {after.min():.3f}, {int(np.sum(after == 0))} zeros")
    return {"numbers": {"negatives_before": n_neg, "min_before": float(fmap.min()), "min_after": float(after.min()),
                        "zeros_after": int(np.sum(after == 0))}, "files": files}


def _busiest_crop(a: np.ndarray, size: int) -> np.ndarray:
    best, where = -1.0, (0, 0)
    for r in range(0, a.shape[0] - size + 1, 2):
        for c in range(0, a.shape[1] - size + 1, 2):
            s = float(np.abs(a[r:r + size, c:c + size]).sum())
            if s > best:
                best, where = s, (r, c)
    return a[where[0]:where[0] + size, where[1]:where[1] + size]


def _demo_pooling(out: Path, say) -> dict:
    from cnnlab.ops.activation import relu_forward
    from cnnlab.viz._common import pool_maps

    digit, _ = mnist_digit(0)
    _, fmap = _edge_map(digit)
    crop = np.round(_busiest_crop(relu_forward(fmap)[0], 8), 2)
    files: list = []
    _save(viz.pooling_figure(crop, 2), out / "pooling.png", files)
    mx, av = pool_maps(crop, 2, "max"), pool_maps(crop, 2, "avg")
    say("8x8 crop of a ReLU feature map:\n" + np.array2string(crop, precision=2))
    say("max pool 2x2:\n" + np.array2string(mx, precision=2))
    say("average pool 2x2:\n" + np.array2string(av, precision=3))
    return {"numbers": {"input": crop.tolist(), "max": mx.tolist(), "avg": av.tolist()}, "files": files}


def _demo_pipeline(out: Path, say) -> dict:
    digit, label = mnist_digit(0)
    kname, kernel = _kernel("vertical_edge", "sobel_x")
    d = viz.pipeline_numbers(digit, kernel)
    files: list = []
    _save(viz.pipeline_figure(digit, kernel, kernel_name=kname.replace("_", " ")), out / "pipeline.png", files)
    maps = np.stack([viz.pipeline_numbers(digit, _kernel(*names)[1], pool=4)["pool"]
                     for names in (("vertical_edge", "sobel_x"), ("horizontal_edge", "sobel_y"), ("sharpen",))])
    _save(viz.flatten_figure(maps), out / "flatten.png", files)  # 3 filters -> (3, 7, 7) -> 147 numbers
    shapes = {k: list(v.shape) for k, v in d.items()}
    say(f"digit {label}: " + " -> ".join(f"{k} {'x'.join(map(str, s))}" for k, s in shapes.items()))
    return {"numbers": {"shapes": shapes, "flat_sum": float(d["flat"].sum())}, "files": files}


def _toy_demo(name: str, out: Path, say) -> dict:
    model, history, acc = train_toy(name)
    cfg = TOYS[name]
    (x, y), (xt, yt) = toy_data(name)
    files: list = []
    probs = _predict(model, xt)
    _save(viz.training_curves(history), out / f"{name}_curves.png", files)
    _save(viz.filters_figure(model), out / f"{name}_filters.png", files)
    before = _fresh_model(name).layers[0].weight.data
    _save(viz.filters_before_after(before, model.layers[0].weight.data), out / f"{name}_filters_before_after.png", files)
    for label in range(2):
        k = int(np.flatnonzero(yt == label)[0])
        _save(viz.feature_maps(model, xt[k]), out / f"{name}_feature_maps_{cfg['classes'][label]}.png", files)
    _save(viz.prediction_grid(xt, yt, probs, class_names=cfg["classes"], n=16), out / f"{name}_predictions.png", files)
    k0 = int(np.flatnonzero(yt == 1)[0])
    _save(viz.probabilities_figure(probs[k0], class_names=cfg["classes"], true_label=int(yt[k0]), image=xt[k0, 0]),
          out / f"{name}_probabilities.png", files)
    _save(viz.saliency_figure(model, xt[k0], class_names=cfg["classes"]), out / f"{name}_saliency.png", files)
    e = explain.explain_pixel(model, xt[k0], 0, at=_strongest(model, xt[k0]), channel=0)
    _save(viz.pixel_figure(e), out / f"{name}_explain_pixel.png", files)
    say(model.explain())
    say(f"{name}: held-out accuracy {acc:.2%} on {len(yt)} examples after {len(history.history['loss'])} epochs; "
        f"final training loss {history.history['loss'][-1]:.4f}")
    say(str(e))
    return {"numbers": {"test_accuracy": acc, "epochs": len(history.history["loss"]),
                        "final_loss": history.history["loss"][-1], "parameters": model.num_parameters(),
                        "pixel_pre_activation": e.pre_activation, "pixel_model_value": e.model_pre_activation},
            "files": files}


def _fresh_model(name: str):
    from cnnlab import zoo

    return zoo.ox_cnn(seed=0) if name == "ox" else zoo.lines_cnn(seed=0)


def _strongest(model, x) -> tuple[int, int]:
    """Position of the largest first-layer response of filter 0 (an interesting pixel to explain)."""
    out = model.intermediate_outputs(x[None])[0][0, 0]
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(out)), out.shape))


def _demo_equivariance(out: Path, say) -> dict:
    digit, _ = mnist_digit(0)
    kname, kernel = _kernel("vertical_edge", "sobel_x")
    r = explain.translation_equivariance(digit, kernel)
    files: list = []
    _save(viz.equivariance_figure(r), out / "equivariance.png", files)
    say(f"kernel '{kname}' on a digit: max |conv(shift x) - shift(conv x)| = {r.conv_max_error:.2e}")
    say(f"active values unchanged at the same position under 1-pixel shifts: conv+ReLU "
        f"{r.conv_unchanged_fraction:.1%}, after 2x2 max pooling {r.pool_unchanged_fraction:.1%}")
    return {"numbers": {"conv_max_error": r.conv_max_error, "conv_unchanged_fraction": r.conv_unchanged_fraction,
                        "pool_unchanged_fraction": r.pool_unchanged_fraction, "per_shift": r.per_shift},
            "files": files}


def _demo_sparse(out: Path, say) -> dict:
    from cnnlab.ops.conv import conv2d_backward, conv2d_forward

    kname, kernel = _kernel("sobel_x", "vertical_edge")
    rng = np.random.default_rng(0)
    numbers, files = {}, []
    for shape, padding, fname in (((6, 6), 0, "sparse_matrix.png"), ((5, 5), 1, "sparse_matrix_padded.png")):
        x = rng.standard_normal(shape)
        M = explain.conv_matrix(kernel, shape, 1, padding)
        out_conv, cache = conv2d_forward(x[None, None], kernel[None, None], None, stride=1, padding=padding)
        dout = rng.standard_normal(out_conv.shape)
        dx, _, _ = conv2d_backward(dout, cache)
        fwd_err = float(np.max(np.abs(M @ x.ravel() - out_conv.ravel())))
        bwd_err = float(np.max(np.abs(M.T @ dout.ravel() - dx.ravel())))
        _save(viz.conv_matrix_figure(kernel, shape, padding=padding), out / fname, files)
        _, index = explain.conv_matrix(kernel, shape, 1, padding, return_index=True)
        slots = int(np.count_nonzero(index >= 0))
        key = f"{shape[0]}x{shape[1]} padding {padding}"
        numbers[key] = {"shape": list(M.shape), "weight_slots": slots, "fraction": slots / M.size,
                        "forward_error": fwd_err, "backward_error": bwd_err}
        say(f"'{kname}' on a {key} input: M is {M.shape[0]}x{M.shape[1]}; {slots} of {M.size} entries "
            f"({slots / M.size:.0%}) hold one of the {kernel.size} weights; |M x - conv(x)| = {fwd_err:.1e}, "
            f"|M.T dout - dx| = {bwd_err:.1e}")
    say("M (6x6 input, no padding) =\n" + np.array2string(explain.conv_matrix(kernel, (6, 6)), max_line_width=250,
                                                            formatter={"float_kind": lambda v: f"{v:g}"}))
    return {"numbers": numbers, "files": files}


def _demo_receptive(out: Path, say) -> dict:
    from cnnlab import zoo
    from cnnlab.layers import Conv2d, MaxPool2d, ReLU
    from cnnlab.models import Sequential

    stacked = Sequential([Conv2d(1, 1, 3, padding=1, rng=0), ReLU(), Conv2d(1, 1, 3, padding=1, rng=0), ReLU(),
                          Conv2d(1, 1, 3, padding=1, rng=0), ReLU()], input_shape=(1, 28, 28), name="three_3x3_convs")
    pooled = Sequential([Conv2d(1, 1, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0),
                         ReLU(), MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0)], input_shape=(1, 28, 28),
                        name="convs_with_pooling")
    files: list = []
    numbers = {}
    digit, _ = mnist_digit(0)
    for model in (stacked, pooled, zoo.simple_cnn()):
        rows, text = explain.receptive_field(model)
        numbers[model.name] = [r.size[0] for r in rows]
        say(f"{model.name}:\n{text}")
        _save(viz.receptive_field_figure(model, image=digit), out / f"receptive_field_{model.name}.png", files)
    return {"numbers": numbers, "files": files}


def _demo_params(out: Path, say) -> dict:
    rows, text = explain.parameter_comparison(print_fn=say)
    files: list = []
    _save(viz.parameter_figure(rows), out / "params.png", files)
    return {"numbers": {r.name: {"dense": r.dense_params, "conv": r.conv_params} for r in rows}, "files": files}


#: demo name -> function(out_dir, say) -> {"numbers": ..., "files": [...]}
DEMOS = {
    "convolution": _demo_convolution,
    "kernels": _demo_kernels,
    "relu": _demo_relu,
    "pooling": _demo_pooling,
    "pipeline": _demo_pipeline,
    "ox": lambda out, say: _toy_demo("ox", out, say),
    "lines": lambda out, say: _toy_demo("lines", out, say),
    "equivariance": _demo_equivariance,
    "sparse-matrix": _demo_sparse,
    "receptive-field": _demo_receptive,
    "params": _demo_params,
}


def run_demo(name: str, out_dir, *, print_fn=print) -> dict:
    """Run one demo: print its numbers, write its figures into ``out_dir``.

    Args:
        name: one of :data:`DEMOS`.
        out_dir: folder for the figures (created if missing).
        print_fn: where the numbers are printed; None for silence.

    Returns:
        ``{"name": name, "numbers": {...}, "files": [paths written]}``.
    """
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; choose one of: {', '.join(DEMOS)}.")
    out = _out(out_dir)
    say = print_fn if print_fn is not None else (lambda *_: None)
    result = DEMOS[name](out, say)
    say("wrote " + ", ".join(result["files"]))
    return {"name": name, **result}


# ----- a trained model, one image ------------------------------------------------------------------
def _predict(model, x, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, K) from the model's forward pass (softmax unless it ends in Softmax)."""
    from cnnlab.ops.activation import softmax

    outs = [model.forward(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    out = np.concatenate(outs).astype(np.float64)
    return out if type(model.layers[-1]).__name__ == "Softmax" else softmax(out, axis=1)


def visualize(model, image, out_dir, *, class_names=None, label: int | None = None) -> dict:
    """What ``model`` sees in ``image``: feature maps, first-layer filters, class probabilities
    and the saliency map, written into ``out_dir``.

    Args:
        model: a ``Sequential`` with a known ``input_shape``.
        image: one input (C, H, W) (or (H, W) for one channel) of the model's dtype, scaled
            as the model was trained.
        out_dir: destination folder (created if missing).
        class_names: names of the classes.
        label: the true class, if known.

    Returns:
        ``{"numbers": {"probabilities": [...], "predicted": k}, "files": [...]}``.
    """
    out = _out(out_dir)
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[None]  # (1, H, W)
    probs = viz.class_probabilities(model, x)
    files: list = []
    _save(viz.feature_maps(model, x), out / "feature_maps.png", files)
    _save(viz.filters_figure(model), out / "filters.png", files)
    _save(viz.probabilities_figure(probs, class_names=class_names, true_label=label,
                                   image=x[0] if x.shape[0] == 1 else x.mean(axis=0)), out / "probabilities.png", files)
    _save(viz.saliency_figure(model, x, class_names=class_names), out / "saliency.png", files)
    return {"numbers": {"probabilities": probs.tolist(), "predicted": int(np.argmax(probs))}, "files": files}


# ----- HTML report ---------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #444;padding-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}
th{background:#f0f0f0} td{overflow-wrap:anywhere}
pre{background:#f6f6f6;padding:.8em;font-size:.85em;white-space:pre-wrap;overflow-wrap:anywhere}
img{max-width:100%;height:auto;border:1px solid #ddd;margin:.4em 0} .big{font-size:1.3em;font-weight:bold}
"""


def _img_tag(fig, alt: str) -> str:
    data = base64.b64encode(viz.png_bytes(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def format_value(value) -> str:
    """A setting or metric for a reader: 4 significant digits, exponent form for tiny or huge
    floats (3.81e-05, never 0.0000), ints and text as they are.

    >>> format_value(3.8106e-05), format_value(0.99334), format_value(0.001), format_value(64), format_value(0.0)
    ('3.811e-05', '0.9933', '0.001', '64', '0')
    """
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _table(rows) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(format_value(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def write_report(out_dir, model, history, x_test, y_test, settings: dict | None = None, *, class_names=None,
                 filename: str = "report.html", title: str | None = None) -> Path:
    """A self-contained HTML report of a training run (images embedded, inline CSS, no links).

    Sections: run settings, test accuracy, model summary and plain-language explanation,
    training curves, confusion matrix, prediction grid, most confident mistakes, learned
    filters, feature maps and saliency of the first test image.

    Args:
        out_dir: destination folder (created if missing).
        model: the trained ``Sequential``.
        history: its ``History`` (or a dict of metric lists).
        x_test: test inputs (N, C, H, W) of the model's dtype; y_test: labels (N,).
        settings: run settings to list (epochs, batch size, lr, seed, ...).
        class_names: names of the classes.
        filename: report file name.
        title: page title.

    Returns:
        the path of the written report.
    """
    from cnnlab.callbacks import atomic_write_text

    out = _out(out_dir)
    x_test = np.asarray(x_test)
    y_test = np.asarray(y_test)
    if x_test.shape[0] != y_test.shape[0] or x_test.shape[0] == 0:
        raise ValueError(f"x_test and y_test must hold the same, nonzero number of samples; received "
                         f"{x_test.shape[0]} and {y_test.shape[0]}.")
    probs = _predict(model, x_test)
    pred = probs.argmax(axis=1)
    acc = float(np.mean(pred == y_test))
    k = probs.shape[1]
    title = title or f"cnnlab training report: {getattr(model, 'name', 'model')}"
    sections = [f"<h1>{html.escape(title)}</h1>",
                f'<p class="big">Test accuracy: {acc:.2%} ({int(np.sum(pred == y_test))} of {len(y_test)})</p>']
    settings = dict(settings or {})
    if settings:
        sections += ["<h2>Run settings</h2>", _table(settings.items())]
    sections += ["<h2>Model</h2>", f"<pre>{html.escape(model.summary(print_fn=None))}</pre>",
                 f"<pre>{html.escape(model.explain())}</pre>"]
    h = viz.history_dict(history)
    if h.get("loss"):
        sections += ["<h2>Training curves</h2>", _img_tag(viz.training_curves(h), "training curves")]
        last = [(key, vals[-1]) for key, vals in h.items() if vals]
        sections.append(_table(last))
    sections += ["<h2>Confusion matrix</h2>",
                 _img_tag(viz.confusion_matrix_figure(y_test, pred, class_names=class_names, num_classes=k),
                          "confusion matrix"),
                 "<h2>Predictions</h2>",
                 _img_tag(viz.prediction_grid(x_test, y_test, probs, class_names=class_names, n=24), "prediction grid"),
                 "<h2>Most confident mistakes</h2>",
                 _img_tag(viz.most_confused_figure(x_test, y_test, probs, class_names=class_names, n=8),
                          "most confused examples")]
    try:
        viz.first_conv_index(model)
        sections += ["<h2>Learned filters (first convolution)</h2>", _img_tag(viz.filters_figure(model), "filters")]
    except ValueError:
        pass
    if viz.feature_map_layers(model):
        sections += [f"<h2>Feature maps of test image 0 (label {html.escape(str(y_test[0]))})</h2>",
                     _img_tag(viz.feature_maps(model, x_test[0]), "feature maps")]
    sections += ["<h2>Saliency of test image 0</h2>",
                 _img_tag(viz.saliency_figure(model, x_test[0], class_names=class_names), "saliency")]
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n")
    page = page.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # non-UTF-8 names: shown as U+FFFD
    path = out / filename
    atomic_write_text(path, page)
    return path
