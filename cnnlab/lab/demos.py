"""cnnlab's learning lab: every picture and number of the CNN tutorials, produced by cnnlab's
own ops and models.

``run_demo(name, out_dir)`` prints a demo's numbers, writes its figures and returns both;
``train_toy`` trains the tutorials' toy CNNs (O vs X, vertical vs horizontal lines) to 100%
held-out accuracy from a fixed seed; ``visualize`` draws what a trained model sees for one
image; ``write_report`` writes a self-contained HTML training report.

Example:
    >>> sorted(DEMOS)[:3]
    ['batchnorm', 'convolution', 'dropout']
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.datasets import load_mnist, worked_examples
from cnnlab.datasets.toys import lines_dataset, ox_dataset, ox_templates
from cnnlab.datasets.worked_examples import POOL_EXAMPLE_ERRATUM, pool_example, pool_upstream
from cnnlab.lab import explain, viz
from cnnlab.lab.filters import KERNELS
from cnnlab.lab.report import out_folder, probabilities_of, save_figure, visualize, write_report  # noqa: F401
from cnnlab.lab.viz import conv_image, pool_maps
from cnnlab.lab.viz.equivariance import shift_words
from cnnlab.lab.viz.ox_views import ox_stages, ox_stages_figure
from cnnlab.layers import Conv2d, MaxPool2d, ReLU
from cnnlab.models import Sequential, zoo
from cnnlab.ops.activation import relu_forward
from cnnlab.ops.conv import conv2d_backward, conv2d_forward

__all__ = ["DEMOS", "TOYS", "run_demo", "train_toy", "toy_data", "mnist_digit", "visualize", "write_report"]


# ----- data ----------------------------------------------------------------------------------------
_MNIST_CACHE: dict = {}


def mnist_digit(index: int = 0) -> tuple[np.ndarray, int]:
    """One MNIST test digit as float64 in [0, 1] (28, 28), and its label (cached after the first call)."""
    if "test" not in _MNIST_CACHE:
        _, (x_test, y_test) = load_mnist(verify=False)
        _MNIST_CACHE["test"] = (x_test, y_test)
    x_test, y_test = _MNIST_CACHE["test"]
    return x_test[index].astype(np.float64) / 255.0, int(y_test[index])


def _kernel(*names: str) -> tuple[str, np.ndarray]:
    """The first of ``names`` present in ``cnnlab.lab.filters.KERNELS``, as float64."""
    for name in names:
        if name in KERNELS:
            return name, np.asarray(KERNELS[name], dtype=np.float64)
    raise KeyError(f"none of {names} in cnnlab.lab.filters.KERNELS (known: {sorted(KERNELS)}).")


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
        name: ``"ox"`` (``zoo.ox_tutorial_cnn``, the tutorial's one-filter network, on 6x6 letters) or
            ``"lines"`` (``zoo.lines_cnn`` on 8x8 lines).
        seed: seeds the weights, the data and the shuffling.
        verbose: passed to ``fit``.

    Returns:
        ``(model, history, test_accuracy)``, the accuracy on held-out examples.
    """
    cfg = _toy_config(name)
    (x, y), (xt, yt) = toy_data(name, seed)
    model = zoo.ox_tutorial_cnn(seed=seed) if name == "ox" else zoo.lines_cnn(seed=seed)
    model.compile("adam", lr=cfg["lr"])
    history = model.fit(x, y, epochs=cfg["epochs"], batch_size=cfg["batch_size"], seed=seed, verbose=verbose,
                        validation_data=(xt, yt))
    _, acc = model.evaluate(xt, yt)
    return model, history, float(acc)


# ----- demos ---------------------------------------------------------------------------------------
def _demo_convolution(out: Path, say) -> dict:
    # The tutorials' own hand calculations: the 7x7 edge (rows 0 30 30 0 0) and the O/X ring filter.
    files: list = []
    vertical = np.asarray(KERNELS["vertical_edge"], dtype=np.float64)
    edge = worked_examples.edge_image()
    d = viz.conv_step_numbers(edge, vertical, at=(0, 1))
    save_figure(viz.conv_step(edge, vertical, at=(0, 1)), out / "convolution_step.png", files)
    files.append(str(viz.conv_animation(edge, vertical, out / "convolution.gif",
                                        title="the 7x7 vertical-edge image and the vertical-edge kernel")))
    ring, bias = np.asarray(worked_examples.OX_FILTER, dtype=np.float64), worked_examples.OX_BIAS
    ox_maps = {}
    for name, letter in (("O", worked_examples.letter_o()), ("X", worked_examples.letter_x())):
        ox_maps[name] = viz.conv_step_numbers(letter, ring, bias=bias)["output"]
        save_figure(viz.conv_step(letter, ring, bias=bias), out / f"convolution_step_{name.lower()}.png", files)
        files.append(str(viz.conv_animation(letter, ring, out / f"convolution_{name.lower()}.gif", bias=bias,
                                            title=f"the letter {name} and the O/X tutorial's ring filter, bias {bias:g}")))
    digit, label = mnist_digit(0)
    edge_map = viz.conv_step_numbers(digit, vertical)["output"]  # valid: the window never leaves the digit
    at_digit = tuple(int(v) for v in np.unravel_index(int(np.argmax(edge_map)), edge_map.shape))
    save_figure(viz.conv_step(digit, vertical, at=at_digit), out / "convolution_step_mnist.png", files)
    files.append(str(viz.conv_animation(digit, vertical, out / "convolution_mnist.gif", max_frames=28,
                                        title=f"an MNIST {label} and the vertical-edge kernel (valid: no padding)")))
    sizes = {f"{n},{k},{s},{p}": explain.output_size(n, k, s, p)
             for n, k, s, p in ((6, 3, 1, 0), (28, 3, 1, 1), (28, 2, 2, 0), (7, 3, 2, 0), (224, 3, 1, 1))}
    say("7x7 vertical-edge image, kernel [[1, 0, -1]] x 3, valid: output[0, 1] = "
        + " + ".join(f"{a:g}*({b:g})" for a, b in zip(d["window"].ravel(), d["kernel"].ravel()))
        + f" = {d['sum']:g} (conv2d_forward: {float(d['value']):g})")
    say("feature map (every row 0 30 30 0 0):\n" + np.array2string(d["output"], precision=0))
    for name, fmap in ox_maps.items():
        say(f"letter {name}, ring filter, bias {bias:g}:\n" + np.array2string(fmap, precision=0))
    for key, (size, text) in sizes.items():
        say(f"output size n,k,s,p = {key}: {text}")
    return {"numbers": {"at": [0, 1], "step_sum": d["sum"], "step_value": float(d["value"]),
                        "feature_map": d["output"].tolist(), "ox_feature_maps": {k: v.tolist() for k, v in ox_maps.items()},
                        "output_sizes": {k: v[0] for k, v in sizes.items()}, "mnist_label": label},
            "files": files}


def _demo_kernels(out: Path, say) -> dict:
    digit, label = mnist_digit(0)
    images = {f"MNIST digit ({label})": digit, "synthetic edges": viz.edge_test_image(28)}
    files: list = []
    save_figure(viz.kernel_gallery(images), out / "kernels.png", files)
    numbers = {}
    for img_name, img in images.items():
        resp = viz.kernel_responses(img)
        numbers[img_name] = {k: {"min": float(v.min()), "max": float(v.max())} for k, v in resp.items()}
        say(f"{img_name}: " + ", ".join(f"{k} [{v.min():.2f}, {v.max():.2f}]" for k, v in resp.items()))
    return {"numbers": numbers, "files": files}


def _edge_map(digit: np.ndarray) -> tuple[str, np.ndarray]:
    name, k = _kernel("vertical_edge", "sobel_x")
    return name, conv_image(digit, k, 0.0, 1, 1)


def _demo_relu(out: Path, say) -> dict:
    digit, _ = mnist_digit(0)
    kname, fmap = _edge_map(digit)
    files: list = []
    save_figure(viz.relu_figure(fmap), out / "relu.png", files)
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
    digit, _ = mnist_digit(0)
    _, fmap = _edge_map(digit)
    crop = np.round(_busiest_crop(relu_forward(fmap)[0], 8), 2)
    files: list = []
    save_figure(viz.pooling_figure(crop, 2), out / "pooling.png", files)
    mx, av = pool_maps(crop, 2, "max"), pool_maps(crop, 2, "avg")
    say("8x8 crop of a ReLU feature map:\n" + np.array2string(crop, precision=2))
    say("max pool 2x2:\n" + np.array2string(mx, precision=2))
    say("average pool 2x2:\n" + np.array2string(av, precision=3))
    printed = np.array(POOL_EXAMPLE_ERRATUM["printed"], dtype=np.float64)
    r = viz.pool_routing(pool_example(), pool_upstream())
    save_figure(viz.pool_routing_figure(pool_example(), pool_upstream(), printed=printed), out / "pool_example.png",
                files)
    say("the tutorial's 4x4 example, max pool 2x2: " + str(r["output"].astype(int).tolist())
        + f"  (erratum: the tutorial prints {printed.astype(int).tolist()})")
    say(f"upstream gradient {r['upstream'].astype(int).tolist()} routed to each window's max:\n"
        + np.array2string(r["dx"].astype(int)))
    return {"numbers": {"input": crop.tolist(), "max": mx.tolist(), "avg": av.tolist(),
                        "example_max": r["output"].tolist(), "example_dx": r["dx"].tolist()}, "files": files}


def _letters() -> dict:
    """The O/X tutorial's crisp 6x6 letters, by name."""
    return {"O": worked_examples.letter_o(), "X": worked_examples.letter_x()}


def _demo_pipeline(out: Path, say) -> dict:
    # The tutorial's network on its own letters: first its hand-set ring filter, then trained.
    files: list = []
    ring = zoo.ox_tutorial_cnn()
    save_figure(ox_stages_figure(ring, _letters(), dense=False, title="the tutorial's ring filter (bias -2): O and X "
                                 "both flatten to [2, 2, 2, 2], so no dense layer can tell them apart"),
                out / "pipeline_ring_filter.png", files)
    model, _, acc = train_toy("ox")
    stages = ox_stages(model, _letters())
    save_figure(ox_stages_figure(model, _letters(), title=f"the tutorial's network after training on the ox toy "
                                 f"({acc:.0%} held out): conv -> ReLU -> max pool -> flatten -> dense"),
                out / "pipeline.png", files)
    names, maps = _flatten_maps()
    save_figure(viz.flatten_figure(maps, names=names), out / "flatten.png", files)  # (3, 2, 2) -> 12 numbers
    shapes = {stage: list(next(iter(v.values())).shape) for stage, v in stages.items()}
    flat = {name: a.ravel().tolist() for name, a in stages["3: flatten"].items()}
    probs = {name: a.ravel().tolist() for name, a in stages["probabilities"].items()}
    ring_flat = {name: a.ravel().tolist() for name, a in ox_stages(ring, _letters(), dense=False)["3: flatten"].items()}
    say("stages: " + " -> ".join(f"{k} {'x'.join(map(str, v))}" for k, v in shapes.items()))
    say(f"the ring filter flattens O to {ring_flat['O']} and X to {ring_flat['X']}")
    for name in flat:
        say(f"trained, letter {name}: flattened {np.round(flat[name], 3).tolist()} -> P(O), P(X) = "
            f"{np.round(probs[name], 3).tolist()}")
    say(f"the tutorial's X through {', '.join(names)}: (3, 2, 2) pooled maps flatten to "
        f"{maps.ravel().tolist()}")
    return {"numbers": {"shapes": shapes, "flat": flat, "probabilities": probs, "ring_flat": ring_flat,
                        "test_accuracy": acc, "flatten_x": maps.ravel().tolist()}, "files": files}


def _flatten_maps() -> tuple[list[str], np.ndarray]:
    """The tutorial's X through three 3x3 filters, ReLU and 2x2 max pool: names and maps (3, 2, 2).

    Three small channels keep the flattened vector short enough (12 numbers) to read every value.
    """
    filters = [("ring, bias -2", worked_examples.OX_FILTER, worked_examples.OX_BIAS),
               ("diagonal edge", worked_examples.TUTORIAL_DIAGONAL, 0.0),
               ("\\ line, bias -1", np.eye(3), -1.0)]
    maps = np.stack([viz.pipeline_numbers(worked_examples.letter_x(), np.asarray(k, dtype=np.float64), bias=b,
                                          padding=0)["pool"] for _, k, b in filters])  # (3, 2, 2)
    return [name for name, _, _ in filters], maps


def _toy_demo(name: str, out: Path, say) -> dict:
    model, history, acc = train_toy(name)
    cfg = TOYS[name]
    (x, y), (xt, yt) = toy_data(name)
    files: list = []
    probs = probabilities_of(model, xt)
    save_figure(viz.training_curves(history), out / f"{name}_curves.png", files)
    save_figure(viz.filters_figure(model), out / f"{name}_filters.png", files)
    before = _fresh_model(name).layers[0].weight.data
    save_figure(viz.filters_before_after(before, model.layers[0].weight.data), out / f"{name}_filters_before_after.png", files)
    shown, shown_y = xt, yt  # the examples drawn: held-out toys, or for "ox" the tutorial's own letters
    if name == "ox":  # the tutorial's crisp letters; pipeline.png has them unshifted, so here moved 1 px
        moved = {f"{k}, 1 px right": explain.shift_image(v, 0, 1) for k, v in _letters().items()}
        save_figure(ox_stages_figure(model, moved, title="the trained network on the tutorial's O and X moved 1 px "
                                     "right (zero fill: the right column falls off)"), out / "ox_feature_maps.png", files)
        shown, shown_y = _shifted_letters()
        probs = probabilities_of(model, shown)
    else:
        for label in range(2):
            k = int(np.flatnonzero(yt == label)[0])
            save_figure(viz.feature_maps(model, xt[k]), out / f"{name}_feature_maps_{cfg['classes'][label]}.png",
                        files)
    save_figure(viz.prediction_grid(shown, shown_y, probs, class_names=cfg["classes"], n=16),
                out / f"{name}_predictions.png", files)
    # ox: the tutorial's unshifted O, where the trained filter fires (on the X every unit is 0 after
    # ReLU, so its saliency is all zero); lines: the first horizontal line
    k0 = 0 if name == "ox" else int(np.flatnonzero(shown_y == 1)[0])
    x0 = shown[k0]  # (1, H, W)
    save_figure(viz.probabilities_figure(probs[k0], class_names=cfg["classes"], true_label=int(shown_y[k0]),
                                         image=x0[0]), out / f"{name}_probabilities.png", files)
    save_figure(viz.saliency_figure(model, x0, class_names=cfg["classes"]), out / f"{name}_saliency.png", files)
    e = explain.explain_pixel(model, x0, 0, at=_strongest(model, x0), channel=0)
    save_figure(viz.pixel_figure(e), out / f"{name}_explain_pixel.png", files)
    say(model.explain())
    say(f"{name}: held-out accuracy {acc:.2%} on {len(yt)} examples after {len(history.history['loss'])} epochs; "
        f"final training loss {history.history['loss'][-1]:.4f}")
    say(str(e))
    correct = int((probs.argmax(axis=1) == shown_y).sum())
    say(f"{name}: {correct} of {len(shown_y)} drawn examples predicted right")
    return {"numbers": {"test_accuracy": acc, "epochs": len(history.history["loss"]),
                        "final_loss": history.history["loss"][-1], "parameters": model.num_parameters(),
                        "pixel_pre_activation": e.pre_activation, "pixel_model_value": e.model_pre_activation,
                        "shown_labels": shown_y.tolist(), "shown_probabilities": probs.tolist(),
                        "shown_correct": correct},
            "files": files}


#: the 1-pixel moves of the tutorial's letters drawn in ox_predictions.png: none, then the 7 others
#: of right / left / down / up / diagonal that keep most of the letter
_MOVES = ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (1, -1))


def _shifted_letters() -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's O and X, each unshifted and moved by 1 pixel (zero fill): x (16, 1, 6, 6), y (16,) (0 = O)."""
    letters = [worked_examples.letter_o(), worked_examples.letter_x()]
    x = np.stack([explain.shift_image(letter, dy, dx) for letter in letters for dy, dx in _MOVES])
    y = np.repeat(np.arange(2), len(_MOVES))
    return x[:, None].astype(np.float32), y.astype(np.int64)


def _fresh_model(name: str):
    return zoo.ox_tutorial_cnn(seed=0) if name == "ox" else zoo.lines_cnn(seed=0)


def _strongest(model, x) -> tuple[int, int]:
    """Position of the largest first-layer response of filter 0 (an interesting pixel to explain)."""
    out = model.intermediate_outputs(x[None])[0][0, 0]
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(out)), out.shape))


def _demo_equivariance(out: Path, say) -> dict:
    digit, _ = mnist_digit(0)
    kname, kernel = _kernel("vertical_edge", "sobel_x")
    r = explain.translation_equivariance(digit, kernel)
    files: list = []
    save_figure(viz.equivariance_figure(r), out / "equivariance.png", files)
    say(f"kernel '{kname}' on a digit shifted {shift_words(*r.shift)}: max |conv(shift x) - "
        f"shift(conv x)| = {r.conv_max_error:.2e} away from the border")
    say(f"active values unchanged at the same position under 1-pixel shifts: conv+ReLU "
        f"{r.conv_unchanged_fraction:.1%}, after 2x2 max pooling {r.pool_unchanged_fraction:.1%}")
    return {"numbers": {"conv_max_error": r.conv_max_error, "conv_unchanged_fraction": r.conv_unchanged_fraction,
                        "pool_unchanged_fraction": r.pool_unchanged_fraction, "per_shift": r.per_shift},
            "files": files}


def _demo_sparse(out: Path, say) -> dict:
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
        save_figure(viz.conv_matrix_figure(kernel, shape, padding=padding), out / fname, files)
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
    stacked = Sequential([Conv2d(1, 1, 3, padding=1, rng=0), ReLU(), Conv2d(1, 1, 3, padding=1, rng=0), ReLU(),
                          Conv2d(1, 1, 3, padding=1, rng=0), ReLU()], input_shape=(1, 28, 28), name="three_3x3_convs")
    pooled = Sequential([Conv2d(1, 1, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0),
                         ReLU(), MaxPool2d(2), Conv2d(1, 1, 3, padding=1, rng=0)], input_shape=(1, 28, 28),
                        name="convs_with_pooling")
    files: list = []
    numbers = {}
    digit, _ = mnist_digit(0)
    for model in (stacked, pooled, zoo.simple_cnn()):
        wins = viz.receptive_windows(model)
        numbers[model.name] = [w["size"][0] for w in wins]
        numbers[f"{model.name} coverage"] = [w["coverage"] for w in wins]
        table = viz.receptive_table(wins)
        widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
        say(f"{model.name}, unit {wins[-1]['unit']} of the last layer and the chain below it:\n"
            + "\n".join("  ".join(cell.ljust(wd) for cell, wd in zip(row, widths)).rstrip() for row in table))
        note = _receptive_erratum(wins) if model is stacked else None
        if note:
            say(note)
        save_figure(viz.receptive_field_figure(model, image=digit, note=note),
                    out / f"receptive_field_{model.name}.png", files)
    return {"numbers": numbers, "files": files}


#: what tutorial 01 prints for the pixels three stacked 3x3 convolutions see
RECEPTIVE_FIELD_PRINTED = (9, 15, 21)


def _receptive_erratum(wins) -> str:
    """The erratum, with the correct numbers taken from the computed fields (3x3, 5x5, 7x7)."""
    sizes = [w["size"] for w in wins[1:]]
    fields = ", ".join(f"{h}x{w}" for h, w in sizes)
    pixels = ", ".join(str(h * w) for h, w in sizes)
    printed = ", ".join(map(str, RECEPTIVE_FIELD_PRINTED))
    return (f"erratum: tutorial 01 prints \"{printed} pixels\" for three stacked 3x3 convolutions;\n"
            f"their fields are {fields} = {pixels} pixels.")


def _demo_params(out: Path, say) -> dict:
    rows, text = explain.parameter_comparison(print_fn=say)
    files: list = []
    save_figure(viz.parameter_figure(rows), out / "params.png", files)
    return {"numbers": {r.name: {"dense": r.dense_params, "conv": r.conv_params} for r in rows}, "files": files}


#: the hand-set filters whose responses feed the BatchNorm demo (one channel each)
BATCHNORM_FILTERS = ("vertical_edge", "horizontal_edge", "gaussian_blur", "sharpen")


def _demo_batchnorm(out: Path, say) -> dict:
    # A real batch: 64 MNIST test digits through 4 hand-set filters -> (64, 4, 28, 28), then BatchNorm2d.
    x = np.stack([mnist_digit(k)[0] for k in range(64)])[:, None]  # (64, 1, 28, 28)
    w = np.stack([_kernel(name)[1] for name in BATCHNORM_FILTERS])[:, None]  # (4, 1, 3, 3)
    acts, _ = conv2d_forward(x, w, np.zeros(len(w)), stride=1, padding=1)  # (64, 4, 28, 28)
    d = viz.batchnorm_numbers(acts)
    files: list = []
    save_figure(viz.batchnorm_figure(acts, channel_names=[n.replace("_", " ") for n in BATCHNORM_FILTERS]),
                out / "batchnorm.png", files)
    say(f"BatchNorm2d (training mode, gamma 1, beta 0) on {acts.shape[0]} MNIST digits x {acts.shape[1]} filter "
        f"responses of {acts.shape[2]}x{acts.shape[3]}; per channel over {acts.shape[0] * acts.shape[2] * acts.shape[3]:,} values:")
    for k, name in enumerate(BATCHNORM_FILTERS):
        say(f"  {name:16s} before: mean {d['mean_before'][k]:+.4f} std {d['std_before'][k]:.4f}   "
            f"after: mean {d['mean_after'][k]:+.1e} std {d['std_after'][k]:.6f}")
    say("  (std after is not exactly 1: BatchNorm divides by sqrt(var + eps), eps = 1e-5)")
    return {"numbers": {k: d[k].tolist() for k in ("mean_before", "std_before", "mean_after", "std_after")},
            "files": files}


def _demo_dropout(out: Path, say) -> dict:
    x = np.arange(1, 37, dtype=np.float64).reshape(6, 6) / 10  # 0.1 .. 3.6: every value distinct
    files: list = []
    save_figure(viz.dropout_figure(x, (0.5, 0.2)), out / "dropout.png", files)
    numbers = {}
    for p in (0.5, 0.2):
        d = viz.dropout_numbers(x, p)
        kept = d["output"][d["keep"]]
        say(f"dropout p = {p:g} on a 6x6 grid: kept {int(d['keep'].sum())} of {x.size} ({d['kept_fraction']:.0%}; "
            f"expected {1 - p:.0%}), kept values x 1/(1-{p:g}) = x {d['scale']:.4g}: "
            + ", ".join(f"{a:.1f}->{b:.3g}" for a, b in zip(x[d["keep"]][:4], kept[:4])) + ", ...; "
            f"mean in {x.mean():.3f}, mean out {d['output'].mean():.3f}")
        average = np.mean([viz.dropout_numbers(x, p, seed)["output"] for seed in range(10_000)], axis=0)
        say(f"  averaged over 10,000 masks the output approaches the input: max |mean out - x| = "
            f"{np.max(np.abs(average - x)):.3f} (inference returns x unchanged)")
        numbers[f"p={p:g}"] = {"kept_fraction": d["kept_fraction"], "scale": d["scale"],
                               "output": d["output"].tolist(), "keep": d["keep"].tolist()}
    return {"numbers": {"input": x.tolist(), **numbers}, "files": files}


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
    "batchnorm": _demo_batchnorm,
    "dropout": _demo_dropout,
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
    out = out_folder(out_dir)
    say = print_fn if print_fn is not None else (lambda *_: None)
    result = DEMOS[name](out, say)
    say("wrote " + ", ".join(result["files"]))
    return {"name": name, **result}
