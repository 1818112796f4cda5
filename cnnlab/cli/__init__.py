"""The ``cnnlab`` command line: train, evaluate, predict and summarize CNNs on MNIST.

Run ``cnnlab --help`` (or ``python -m cnnlab --help``) and ``cnnlab COMMAND --help``.
Every user error (bad argument, missing or corrupted file, unreadable image) ends with ONE
line on stderr and exit status 2, never a traceback (set ``CNNLAB_DEBUG=1`` to see one).

The commands live beside this file (``train``, ``inspect``: evaluate/predict/summary, ``warmup``);
other packages add theirs without editing it: each module in ``PLUGIN_MODULES`` exposes
``add_commands(subparsers)``, called when the module exists.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys

from cnnlab import __version__
from cnnlab.cli.common import Parser, UsageError, formatter, one_line
from cnnlab.cli.inspect import add_evaluate, add_predict, add_summary, cmd_evaluate, cmd_predict, cmd_summary  # noqa: F401
from cnnlab.cli.train import add_train, cmd_train  # noqa: F401
from cnnlab.cli.warmup import add_warmup
from cnnlab.models.io import ModelFileError
from cnnlab.utils.runlock import RunFolderBusy

__all__ = ["PLUGIN_MODULES", "UsageError", "build_parser", "main"]

#: modules that contribute sub-commands through ``add_commands(subparsers)``
PLUGIN_MODULES = ("cnnlab.lab.commands", "cnnlab.bench", "cnnlab.server.command", "cnnlab.exercises.cli")


# ----- main --------------------------------------------------------------------------------------
MAIN_EPILOG = """\
examples:
  cnnlab train                                   # train simple_cnn on MNIST (about 99.5%)
  cnnlab evaluate runs/simple_cnn/model.npz      # accuracy and confusion matrix
  cnnlab predict runs/simple_cnn/model.npz digit.png
  cnnlab summary lenet5
  cnnlab COMMAND --help                          # options and examples of one command
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``cnnlab`` argument parser, with the plugin modules' commands added."""
    parser = Parser(prog="cnnlab", description="Convolutional neural networks from scratch on NumPy.",
                     epilog=MAIN_EPILOG, formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_train(sub)
    add_evaluate(sub)
    add_predict(sub)
    add_summary(sub)
    add_warmup(sub)
    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # the module exists but something it imports is missing: say so
                raise
            continue
        module.add_commands(sub)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 training diverged, 2 user error,
    130 interrupted)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while the parser and the plugin modules are being imported
        print("cnnlab: interrupted", file=sys.stderr)
        return 130


def _main(argv) -> int:
    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 file name prints escaped, never fails
        with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and argument errors
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    func = getattr(args, "func", None)
    if func is None:
        commands = ", ".join(parser._subparsers._group_actions[0].choices)  # noqa: SLF001
        print(f"cnnlab: error: choose a command: {commands} (see cnnlab --help)", file=sys.stderr)
        return 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the resume command after Ctrl-C
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ModelFileError, OSError, ValueError, TypeError, MemoryError, RunFolderBusy) as err:
        if os.environ.get("CNNLAB_DEBUG"):
            raise
        print(f"cnnlab {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
