"""``cnnlab evaluate``, ``cnnlab predict`` and ``cnnlab summary``: look at a saved or zoo model."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cnnlab.cli.common import TEST_COUNT, UsageError, check_mnist_shape, formatter, load_mnist_float, load_model_file
from cnnlab.datasets import load_image, to_float
from cnnlab.models.io import load_model
from cnnlab.models.zoo import MODELS, get_model
from cnnlab.training import predict
from cnnlab.utils.argtypes import bounded_int

__all__ = ["add_evaluate", "add_predict", "add_summary", "cmd_evaluate", "cmd_predict", "cmd_summary"]


# ----- evaluate ----------------------------------------------------------------------------------
EVALUATE_EPILOG = """\
Prints the accuracy, the accuracy of each digit and the confusion matrix (rows: true digit,
columns: predicted digit) on the MNIST test set.

examples:
  cnnlab evaluate runs/simple_cnn/model.npz
  cnnlab evaluate runs/simple_cnn/checkpoint.npz --limit 1000
"""


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy and confusion matrix of a saved model on MNIST test",
                       description="Evaluate a saved model on the MNIST test set.", epilog=EVALUATE_EPILOG,
                       formatter_class=formatter)
    p.add_argument("model", metavar="MODEL", help="a model file (model.npz or a checkpoint)")
    p.add_argument("--limit", type=TEST_COUNT, default=None, help="use only the first N test images")
    p.add_argument("--batch-size", type=TEST_COUNT, default=256, help="(default: %(default)s)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    model = load_model_file(args.model)
    check_mnist_shape(model, args.model)
    _, (x_test, y_test) = load_mnist_float(limit=1, test_limit=args.limit)
    probs = predict(model, x_test, batch_size=args.batch_size)
    k = probs.shape[1]
    if y_test.max() >= k:
        raise UsageError(f"{args.model} has {k} outputs; MNIST has 10 classes")
    pred = probs.argmax(axis=1)
    p_true = np.maximum(probs[np.arange(len(y_test)), y_test].astype(np.float64), np.finfo(probs.dtype).tiny)
    loss = float(-np.mean(np.log(p_true)))
    confusion = np.bincount(y_test * k + pred, minlength=k * k).reshape(k, k)  # (true, predicted)
    print(f"model: {args.model} ({model.name}, {model.num_parameters():,} parameters)")
    print(f"test images: {len(y_test):,}")
    print(f"accuracy: {np.mean(pred == y_test):.2%}   loss: {loss:.4f}")
    print("per-class accuracy:")
    for c in range(k):
        n = int(confusion[c].sum())
        acc = f"{confusion[c, c] / n:.2%}" if n else "-"
        print(f"  {c}: {acc:>7}  ({n} images)")
    print("confusion matrix (rows: true class, columns: predicted class):")
    width = max(4, len(str(int(confusion.max()))) + 1)
    print("    " + "".join(f"{c:>{width}}" for c in range(k)))
    for c in range(k):
        print(f"  {c} " + "".join(f"{v:>{width}}" for v in confusion[c]))
    return 0


# ----- predict -----------------------------------------------------------------------------------
PREDICT_EPILOG = """\
Each image is converted like an MNIST digit before classification: grayscale, its background
(grey or unevenly lit paper, shadows) estimated and removed, the ink made bright on black,
cropped, scaled into a 20x20 box and centred in 28x28. A warning goes to stderr when a
picture has no ink or the model is unsure (top class under twice chance).

examples:
  cnnlab predict runs/simple_cnn/model.npz digit.png
  cnnlab predict runs/simple_cnn/model.npz photos/*.jpg --top 5
"""


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify PNG/JPEG images with a saved model",
                       description="Classify images with a saved model.", epilog=PREDICT_EPILOG,
                       formatter_class=formatter)
    p.add_argument("model", metavar="MODEL", help="a model file")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top", type=bounded_int(1, 1000, "classes listed"), default=3, help="how many classes to list (default: %(default)s)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    model = load_model_file(args.model)
    shape = model.input_shape
    if shape is None or len(shape) != 3 or shape[0] != 1:
        raise UsageError(f"{args.model} holds a model for inputs of shape {shape}; predict needs a "
                         f"single-channel image model (1, H, W)")
    images = []
    for path in args.images:
        if not Path(path).is_file():
            raise UsageError(f"no image file at {path}")
        images.append(load_image(path, image_size=tuple(shape[1:])))  # (H, W) uint8; raises ValueError if unreadable
    x = to_float(np.stack(images))[:, None].astype(model.dtype)  # (N, 1, H, W)
    probs = predict(model, x)
    top = min(args.top, probs.shape[1])
    chance = 1 / probs.shape[1]
    for path, image, p in zip(args.images, images, probs):
        order = np.argsort(-p, kind="stable")[:top]
        listing = ", ".join(f"{c}: {p[c]:.1%}" for c in order)
        print(f"{path}: {order[0]}  ({listing})")
        if not image.any():
            print(f"cnnlab predict: warning: {path}: no ink found (the picture looks blank after removing its "
                  f"background), so this prediction means nothing", file=sys.stderr)
        elif p[order[0]] < 2 * chance:  # e.g. under 20% for 10 classes
            print(f"cnnlab predict: warning: {path}: the model is unsure (top class {p[order[0]]:.1%}, chance is "
                  f"{chance:.0%}); is it one digit, dark on light or light on dark, filling most of the picture?",
                  file=sys.stderr)
    return 0


# ----- summary -----------------------------------------------------------------------------------
SUMMARY_EPILOG = """\
examples:
  cnnlab summary simple_cnn                     # a zoo model
  cnnlab summary runs/simple_cnn/model.npz      # a saved model (and its training state)
"""


def add_summary(sub) -> None:
    p = sub.add_parser("summary", help="layers, output shapes and parameter counts of a model",
                       description="Print a model's layers, output shapes and parameter counts.",
                       epilog=SUMMARY_EPILOG, formatter_class=formatter)
    p.add_argument("model", metavar="MODEL_NAME_OR_FILE", help="a zoo model name or a model file")
    p.set_defaults(func=cmd_summary)


def cmd_summary(args) -> int:
    if args.model in MODELS:
        get_model(args.model).summary()
        return 0
    if not Path(args.model).exists():
        raise UsageError(f"{args.model!r} is neither a zoo model ({', '.join(MODELS)}) nor a file")
    model, header, _ = load_model(args.model, return_header=True)
    model.summary()
    opt = header.get("optimizer")
    if header.get("epoch") is not None or isinstance(opt, dict):
        name = opt.get("class") if isinstance(opt, dict) else "none"
        print(f"Saved training state: {header.get('epoch')} epochs, optimizer {name}")
    return 0
