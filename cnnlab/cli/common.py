"""What every cnnlab command shares: the parser class, one-line user errors, MNIST and model loading."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from cnnlab.datasets import add_channel_axis, load_mnist, to_float
from cnnlab.models.io import load_model
from cnnlab.utils.argtypes import bounded_int

__all__ = ["UsageError", "Parser", "formatter", "load_mnist_float", "load_model_file", "check_mnist_shape",
           "ensure_writable_folder", "TRAIN_COUNT", "TEST_COUNT", "MAX_ERROR_CHARS", "one_line"]

#: argparse types of image counts: at most what MNIST has
TRAIN_COUNT = bounded_int(1, 60_000, "MNIST has 60,000 training images")
TEST_COUNT = bounded_int(1, 10_000, "MNIST has 10,000 test images")
#: an error message quotes at most this many characters (a hostile file can make one of megabytes)
MAX_ERROR_CHARS = 1000


class UsageError(Exception):
    """A user error reported as one line with exit status 2."""


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr (exit 2), no usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def load_mnist_float(limit: int | None = None, test_limit: int | None = None):
    """MNIST as float32 (N, 1, 28, 28) in [0, 1] and integer labels; first ``limit`` images."""
    (x_train, y_train), (x_test, y_test) = load_mnist()
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    if test_limit is not None:
        x_test, y_test = x_test[:test_limit], y_test[:test_limit]
    prep = lambda x: add_channel_axis(to_float(x))  # noqa: E731  (N, 28, 28) uint8 -> (N, 1, 28, 28) float32
    return (prep(x_train), y_train.astype(np.int64)), (prep(x_test), y_test.astype(np.int64))


def load_model_file(path):
    if not Path(path).exists():
        raise UsageError(f"no model file at {path}")
    return load_model(path)  # ModelFileError (a ValueError) names the problem


def check_mnist_shape(model, path) -> None:
    if model.input_shape is not None and tuple(model.input_shape) != (1, 28, 28):
        raise UsageError(f"{path} holds a model for inputs of shape {tuple(model.input_shape)}; "
                         f"this command uses MNIST images (1, 28, 28)")


def ensure_writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(f"output folder {folder} is not writable: {err.strerror or err}") from None


def one_line(err: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """The message of ``err`` on one line, cut to ``limit`` characters with the cut counted."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and not isinstance(err, (FileNotFoundError, PermissionError)) and err.strerror:
        text = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    if isinstance(err, MemoryError):
        text = ("not enough memory" + (f" ({text})" if str(err) else "") + "; try a smaller --batch-size or "
                "--limit, or a smaller model")
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit:,} more characters cut)"
    return text
