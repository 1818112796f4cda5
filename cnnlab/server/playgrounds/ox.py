"""Playground 3, O versus X: the tutorial's one-filter network on the 6x6 letters, layer by layer.

conv (one 3x3 filter + bias) -> ReLU -> 2x2 max pool -> flatten (4) -> dense (4 -> 2) -> softmax.
The dense layer is *fitted* here, not typed: a cnnlab ``Dense(4, 2)`` starting from zeros takes
``steps`` plain gradient-descent steps (SGD, fixed learning rate) on the two unshifted letters
with the filter held fixed, so the scores say how well *this* filter's features separate O from X.
Deterministic: zero start, full batch, no randomness.
"""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import OX_BIAS, OX_FILTER, letter_o, letter_x
from cnnlab.lab.explain.equivariance import shift_image
from cnnlab.lab.viz.basics import pipeline_numbers
from cnnlab.layers.dense import Dense
from cnnlab.ops.activation import softmax
from cnnlab.server.playgrounds.grids import get_grid
from cnnlab.server.validation import BadRequest, check_fields, get_choice, get_float, get_int
from cnnlab.training.losses import CrossEntropyLoss
from cnnlab.training.optim import SGD

LEARNING_RATE = 0.1
MAX_WEIGHT = 10  # filter cells and bias: keeps the fitted scores readable
CLASSES = ("O", "X")

#: Filters the page offers (the tutorial's ring first); any 3x3 of numbers may be typed instead.
FILTER_PRESETS = {
    "ring (tutorial)": [list(r) for r in OX_FILTER],
    "diagonals": [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
    "plus": [[0, 1, 0], [1, 1, 1], [0, 1, 0]],
    "corner": [[0, 1, 1], [1, 0, 0], [1, 0, 0]],
}


def _letters(dy: int, dx: int, mode: str) -> dict[str, np.ndarray]:
    """The O and X moved by (dy, dx): rolled round the edges, or with zeros filling in. (6, 6) each."""
    move = (lambda a: np.roll(a, (dy, dx), axis=(0, 1))) if mode == "roll" else (lambda a: shift_image(a, dy, dx))
    return {"O": move(letter_o()), "X": move(letter_x())}


def features(images: np.ndarray, kernel: np.ndarray, bias: float) -> dict[str, np.ndarray]:
    """conv -> ReLU -> 2x2 max pool -> flatten with cnnlab's ops (``pipeline_numbers``, per image).

    Shape:
        images: (N, 6, 6). kernel: (3, 3). conv, relu: (N, 4, 4). pooled: (N, 2, 2). flat: (N, 4).
    """
    per_image = [pipeline_numbers(image, kernel, bias=bias, padding=0) for image in images]
    return {name: np.stack([p[key] for p in per_image])
            for name, key in (("conv", "conv"), ("relu", "relu"), ("pooled", "pool"), ("flat", "flat"))}


def fit_dense(flat: np.ndarray, steps: int) -> tuple[Dense, list[float]]:
    """A zero-initialised Dense(4, 2) after ``steps`` full-batch SGD steps on (flat, [O, X]).

    Shape:
        flat: (2, 4), the O's features then the X's. Returns the layer and the loss before each step.
    """
    layer = Dense(flat.shape[1], len(CLASSES), weight_init="zeros", dtype=np.float64)
    loss_fn, labels = CrossEntropyLoss(), np.arange(len(CLASSES))
    opt = SGD(layer.parameters(), lr=LEARNING_RATE)
    losses = []
    for _ in range(steps):
        losses.append(loss_fn.forward(layer.forward(flat, training=True), labels))
        opt.zero_grad()
        layer.backward(loss_fn.backward())
        opt.step()
    return layer, losses


def ox_pipeline(data: dict) -> dict:
    """The O and the X through the tutorial's network.

    Request: ``filter`` 3x3 (default the tutorial's ring), ``bias`` (default -2), ``steps``
    0-500 of dense fitting (default 100), ``shift`` [dy, dx] each -1..1 and ``shift_mode``
    roll|zero. Returns per letter the (shifted) input, conv (4, 4), ReLU, pooled (2, 2), flat (4,),
    scores (2,) and softmax probabilities; the unshifted flat vectors; the fitted dense weight
    (4, 2) and bias (2,), and the training loss before and after fitting.
    """
    check_fields(data, {"filter", "bias", "steps", "shift", "shift_mode"})
    kernel = get_grid(data, "filter", max_side=3, max_channels=1)[0] if "filter" in data else np.array(OX_FILTER, float)
    if kernel.shape != (3, 3):
        raise BadRequest(f"filter must be 3x3 (the tutorial's network); received {kernel.shape[0]}x{kernel.shape[1]}")
    if np.abs(kernel).max() > MAX_WEIGHT:
        raise BadRequest(f"filter cells must be in [-{MAX_WEIGHT}, {MAX_WEIGHT}]; received {np.abs(kernel).max():g}")
    bias = get_float(data, "bias", -MAX_WEIGHT, MAX_WEIGHT, default=OX_BIAS)
    steps = get_int(data, "steps", 0, 500, default=100)
    dy, dx = _get_shift(data)
    mode = get_choice(data, "shift_mode", ("roll", "zero"), default="zero")

    plain = features(np.stack([letter_o(), letter_x()]), kernel, bias)
    layer, losses = fit_dense(plain["flat"], steps)
    moved = _letters(dy, dx, mode)
    shown = features(np.stack([moved[c] for c in CLASSES]), kernel, bias)
    scores = layer.forward(shown["flat"])  # (2, 2): rows O, X; columns score for O, X
    probs = softmax(scores, axis=1)
    letters = {c: {"input": moved[c].tolist(), "conv": shown["conv"][i].tolist(), "relu": shown["relu"][i].tolist(),
                   "pooled": shown["pooled"][i].tolist(), "flat": shown["flat"][i].tolist(),
                   "scores": scores[i].tolist(), "probabilities": probs[i].tolist()}
               for i, c in enumerate(CLASSES)}
    final_loss = CrossEntropyLoss().forward(layer.forward(plain["flat"]), np.arange(len(CLASSES)))
    return {"letters": letters, "classes": list(CLASSES),
            "unshifted_flat": {c: plain["flat"][i].tolist() for i, c in enumerate(CLASSES)},
            "flat_differ": bool(not np.array_equal(shown["flat"][0], shown["flat"][1])),
            "filter": kernel.tolist(), "bias": bias, "shift": [dy, dx], "shift_mode": mode,
            "dense": {"weight": layer.weight.data.tolist(), "bias": layer.bias.data.tolist(), "steps": steps,
                      "learning_rate": LEARNING_RATE, "loss_start": losses[0] if losses else final_loss,
                      "loss_end": final_loss},
            "filter_presets": FILTER_PRESETS}


def _get_shift(data: dict) -> tuple[int, int]:
    value = data.get("shift", [0, 0])
    if (not isinstance(value, list) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or not -1 <= v <= 1 for v in value)):
        raise BadRequest(f"shift must be [rows, cols] with each in -1..1; received {value!r:.60}")
    return value[0], value[1]
