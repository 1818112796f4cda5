"""The learning lab's commands for the ``cnnlab`` command line: ``demo``, ``visualize`` and
``explain``. ``cnnlab.cli`` calls :func:`add_commands`; user errors are raised as
``ValueError`` / ``FileNotFoundError`` and reported by the main CLI as one line (exit 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cnnlab.datasets import load_image, load_mnist
from cnnlab.lab.demos import DEMOS, run_demo, toy_data
from cnnlab.lab.report import visualize
from cnnlab.training.warmup import ensure_warm
from cnnlab.lab.explain import explain_pixel
from cnnlab.lab.viz import pixel_figure
from cnnlab.models.io import load_model
from cnnlab.models.zoo import MODELS, get_model
from cnnlab.utils.argtypes import nonneg_int

__all__ = ["add_commands", "load_model_arg", "load_image_arg", "parse_position", "cmd_demo", "cmd_visualize",
           "cmd_explain"]

_FORMATTER = argparse.RawDescriptionHelpFormatter

DEMO_EPILOG = """\
demos:
  convolution      the tutorials' 7x7 edge (0 30 30 0 0) and O/X ring filter step by step, PNGs and GIFs
  kernels          the 7x7 edge example's numbers, then edge, Sobel, blur and sharpen kernels on real images
  relu             a feature map before and after ReLU, with the ReLU curve
  pooling          max and average pooling of a real feature map, windows drawn; the tutorial's
                   4x4 example and its gradient routing (erratum: [[6,8],[9,11]], not [[3,4],[9,11]])
  pipeline         the tutorial's O and X side by side: conv -> ReLU -> max pool -> flatten -> dense
  ox               train the tutorial's O-vs-X network to 100%, then its filters, maps, saliency, one pixel explained
  lines            the same for vertical-vs-horizontal lines
  equivariance     shift the input 5 px, the feature map shifts too; pooling hides small shifts
  sparse-matrix    a convolution as multiplication by a sparse (Toeplitz) matrix
  receptive-field  how far back each layer sees: 3x3, 5x5, 7x7 = 9, 25, 49 pixels for stacked 3x3
                   convs (erratum: not "9, 15, 21"), faster with pooling; output size and coverage
  params           dense versus convolutional parameter counts, linear and log, ratios written
  batchnorm        per-channel activations of a real batch before and after BatchNorm2d
  dropout          the dropout mask and the 1/(1-p) scaling of the kept values
  all              every demo above

examples:
  cnnlab demo convolution --out lab
  cnnlab demo all --out lab
"""

IMAGE_HELP = ("an image file (PNG, JPEG, ...; converted like an MNIST digit for single-channel models), "
              "or mnist:N (MNIST test image N), ox:N or lines:N (held-out toy example N)")

VISUALIZE_EPILOG = """\
Writes feature_maps.png, filters.png, probabilities.png and saliency.png into --out.

examples:
  cnnlab visualize runs/simple_cnn/model.npz digit.png --out vis
  cnnlab visualize runs/simple_cnn/model.npz mnist:0 --out vis
  cnnlab visualize lenet5 mnist:7                 # a zoo model with its untrained, seeded weights
"""

EXPLAIN_EPILOG = """\
Explains one output value of a Conv2d layer: the window on its input (with padding and
stride), the patch, the filter, every product, the bias and their sum (checked against the
model's own output), the activation and max pooling after it, and the backward view: where
a gradient of 1 at that value lands on the layer input and on the image. For a layer with
several input channels it shows each channel's partial sum and how they add up, with the
bias, to the value. Prints the numbers and writes explain_pixel.png into --out.

examples (mnist:0 is a 7; these positions lie on its stroke):
  cnnlab explain runs/simple_cnn/model.npz mnist:0 --layer 0 --at 14,17 --channel 3 --out why
  cnnlab explain simple_cnn mnist:0 --layer 3 --at 7,8 --out why      # zoo model, seeded weights
"""


def add_commands(subparsers) -> None:
    """Add ``demo``, ``visualize`` and ``explain`` to the ``cnnlab`` sub-command parsers."""
    p = subparsers.add_parser("demo", help="run a learning-lab demo: print its numbers, write its figures",
                              description="Run a demo of the CNN tutorials on cnnlab's own code.",
                              epilog=DEMO_EPILOG, formatter_class=_FORMATTER)
    p.add_argument("name", metavar="NAME", choices=[*DEMOS, "all"], help="demo name (listed below)")
    p.add_argument("--out", type=Path, default=Path("lab"), help="folder for the figures (default: %(default)s)")
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("visualize", help="feature maps, filters, probabilities and saliency of one image",
                              description="Draw what a model sees in one image.", epilog=VISUALIZE_EPILOG,
                              formatter_class=_FORMATTER)
    p.add_argument("model", metavar="MODEL", help="a model file, or a zoo model name")
    p.add_argument("image", metavar="IMAGE", help=IMAGE_HELP)
    p.add_argument("--out", type=Path, default=Path("visualize"), help="output folder (default: %(default)s)")
    p.set_defaults(func=cmd_visualize)

    p = subparsers.add_parser("explain", help="explain one output value of a conv layer, forward and backward",
                              description="Explain one output value of a Conv2d layer, with real numbers.",
                              epilog=EXPLAIN_EPILOG, formatter_class=_FORMATTER)
    p.add_argument("model", metavar="MODEL", help="a model file, or a zoo model name")
    p.add_argument("image", metavar="IMAGE", help=IMAGE_HELP)
    p.add_argument("--layer", type=nonneg_int, required=True, help="index of a Conv2d layer (see cnnlab summary)")
    p.add_argument("--at", type=parse_position, required=True, metavar="I,J", help="output row and column, e.g. 14,17")
    p.add_argument("--channel", type=nonneg_int, default=0, help="output channel (filter) (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("explain"), help="output folder (default: %(default)s)")
    p.set_defaults(func=cmd_explain)


# ----- argument types ---------------------------------------------------------------------------
def parse_position(text: str) -> tuple[int, int]:
    """``"I,J"`` -> ``(I, J)``, two integers >= 0.

    Example:
        >>> parse_position("14,7")
        (14, 7)
    """
    parts = text.split(",")
    try:
        i, j = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a position I,J such as 14,14; received {text!r}") from None
    if i < 0 or j < 0:
        raise argparse.ArgumentTypeError(f"expected a position I,J of integers >= 0; received {text!r}")
    return i, j


# ----- inputs -------------------------------------------------------------------------------------
def load_model_arg(spec: str):
    """A model from a file, or a zoo model (seeded, untrained) by name.

    Raises:
        FileNotFoundError: neither a zoo name nor an existing file.
        ValueError: the file is not a valid model (``ModelFileError``).
    """
    if spec in MODELS and not Path(spec).exists():
        return get_model(spec)
    if not Path(spec).is_file():
        raise FileNotFoundError(f"no model file at {spec} (and not a zoo model: {', '.join(MODELS)})")
    return load_model(spec)


def load_image_arg(spec: str, model) -> tuple[np.ndarray, int | None]:
    """The image ``spec`` names, as the model's input ``(C, H, W)`` of its dtype, and its label when known.

    ``mnist:N``, ``ox:N``, ``lines:N`` pick a test example; anything else is an image file,
    read with ``cnnlab.datasets.load_image`` at the model's input size and scaled to [0, 1]
    (as ``cnnlab train`` scales MNIST).

    Raises:
        ValueError: bad spec, index out of range, or an image that does not fit the model.
        FileNotFoundError: no such file.
    """
    shape = model.input_shape
    if shape is None or len(shape) != 3:
        raise ValueError(f"the model has input shape {shape}; expected a known (C, H, W)")
    dtype = model.dtype or np.float32
    kind, _, index = spec.partition(":")
    if kind in ("mnist", "ox", "lines") and index:
        try:
            n = int(index)
        except ValueError:
            raise ValueError(f"expected {kind}:N with an integer N; received {spec!r}") from None
        if kind == "mnist":
            _, (x, y) = load_mnist(verify=False)
            x = x[:, None].astype(np.float64) / 255.0  # (N, 1, 28, 28)
        else:
            _, (x, y) = toy_data(kind)
        if not 0 <= n < len(x):
            raise ValueError(f"{kind} has test examples 0..{len(x) - 1}; received {n}")
        image, label = x[n], int(y[n])
        if tuple(image.shape) != tuple(shape):
            raise ValueError(f"{kind} images have shape {tuple(image.shape)} but the model takes {tuple(shape)}")
        return image.astype(dtype), label
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {spec}")
    if shape[0] != 1:
        raise ValueError(f"image files are read as grayscale; the model takes {shape[0]} channels")
    pixels = load_image(path, image_size=tuple(shape[1:]))  # (H, W) uint8
    return (pixels.astype(np.float64) / 255.0)[None].astype(dtype), None  # (1, H, W)


# ----- commands ---------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    ensure_warm()  # a cold kernel cache: compile once, announced, not as a silent 17 s stall
    names = list(DEMOS) if args.name == "all" else [args.name]
    for name in names:
        print(f"== demo {name} ==")
        run_demo(name, args.out)
    return 0


def cmd_visualize(args) -> int:
    model = load_model_arg(args.model)
    image, label = load_image_arg(args.image, model)
    result = visualize(model, image, args.out, label=label)
    probs = np.asarray(result["numbers"]["probabilities"])
    order = np.argsort(-probs, kind="stable")[:3]
    print(f"predicted {result['numbers']['predicted']}" + ("" if label is None else f" (true {label})") + ": "
          + ", ".join(f"{c}: {probs[c]:.1%}" for c in order))
    print("wrote " + ", ".join(result["files"]))
    return 0


def cmd_explain(args) -> int:
    model = load_model_arg(args.model)
    image, _ = load_image_arg(args.image, model)
    explanation = explain_pixel(model, image, args.layer, at=args.at, channel=args.channel)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "explain_pixel.png"
    pixel_figure(explanation, save=path)
    print(explanation)
    print(f"wrote {path}")
    return 0
