"""The ``cnnlab`` command line: train, evaluate, predict and summarize CNNs on MNIST.

Run ``cnnlab --help`` (or ``python -m cnnlab --help``) and ``cnnlab COMMAND --help``.
Every user error (bad argument, missing or corrupted file, unreadable image) ends with ONE
line on stderr and exit status 2, never a traceback (set ``CNNLAB_DEBUG=1`` to see one).

Other modules add commands without editing this file: ``cnnlab.lab_cli`` and
``cnnlab.bench`` each expose ``add_commands(subparsers)``, called when the module exists.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cnnlab._argtypes import bounded_int, fraction, nonneg_int, positive_float

from cnnlab.callbacks import Callback, atomic_write_text
from cnnlab.runlock import RunFolderBusy, hold_run_folder

#: modules that contribute sub-commands through ``add_commands(subparsers)``
PLUGIN_MODULES = ("cnnlab.lab_cli", "cnnlab.bench", "cnnlab.warmup_cli", "cnnlab.server.command",
                  "cnnlab.exercises.cli")

# The recipe of ``cnnlab train``: simple_cnn reaches 99.51 / 99.47 / 99.44% test accuracy with
# seeds 0 / 1 / 2 (median 99.47%). Batch 128 with twice the learning rate runs an epoch faster
# than batch 64 and, over 15 cosine-decayed epochs, ends higher (batch 64 at 1e-3: 99.37%).
DEFAULTS = {
    "model": "simple_cnn", "epochs": 15, "batch_size": 128, "optimizer": "adam", "lr": 2e-3,
    "seed": 0, "augment": True, "shift": 2, "schedule": "cosine", "val_split": 0.05,
}


_TRAIN_COUNT = bounded_int(1, 60_000, "MNIST has 60,000 training images")
_TEST_COUNT = bounded_int(1, 10_000, "MNIST has 10,000 test images")


class UsageError(Exception):
    """A user error reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr (exit 2), no usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


# ----- shared helpers ----------------------------------------------------------------------------
def _load_mnist_float(limit: int | None = None, test_limit: int | None = None):
    """MNIST as float32 (N, 1, 28, 28) in [0, 1] and integer labels; first ``limit`` images."""
    from cnnlab.datasets import add_channel_axis, load_mnist, to_float

    (x_train, y_train), (x_test, y_test) = load_mnist()
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
    if test_limit is not None:
        x_test, y_test = x_test[:test_limit], y_test[:test_limit]
    prep = lambda x: add_channel_axis(to_float(x))  # noqa: E731  (N, 28, 28) uint8 -> (N, 1, 28, 28) float32
    return (prep(x_train), y_train.astype(np.int64)), (prep(x_test), y_test.astype(np.int64))


def _load_model_file(path):
    from cnnlab.io import load_model

    if not Path(path).exists():
        raise UsageError(f"no model file at {path}")
    return load_model(path)  # ModelFileError (a ValueError) names the problem


def _check_mnist_shape(model, path) -> None:
    if model.input_shape is not None and tuple(model.input_shape) != (1, 28, 28):
        raise UsageError(f"{path} holds a model for inputs of shape {tuple(model.input_shape)}; "
                         f"this command uses MNIST images (1, 28, 28)")


def _ensure_writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(f"output folder {folder} is not writable: {err.strerror or err}") from None


def _plot_curves(history, path: Path) -> None:
    """Loss and accuracy curves as a PNG (the lab's plot when present, else a minimal one)."""
    try:
        from cnnlab.viz.training_views import training_curves
    except ImportError:
        training_curves = None
    if training_curves is not None:
        training_curves(history, save=path)
        return
    from matplotlib.figure import Figure  # no pyplot: headless, renders with Agg

    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, key in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for k, style in ((key, "-o"), (f"val_{key}", "--s")):
            if history.history.get(k):
                ax.plot(range(1, len(history.history[k]) + 1), history.history[k], style, label=k)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.savefig(path, dpi=100)


# ----- train -------------------------------------------------------------------------------------
TRAIN_EPILOG = """\
The default recipe trains simple_cnn (421,642 parameters) with Adam (lr 2e-3), a cosine
learning-rate schedule, random shifts of up to 2 pixels and batch size 128 for 15 epochs; it
aims at >= 99.4% test accuracy on MNIST (99.44-99.51% over seeds 0, 1, 2).

The output folder receives: model.npz (weights and optimizer state), checkpoint.npz (written
after every epoch; resume with --resume), history.json, history.csv, curves.png and
report.html (a self-contained report: curves, confusion matrix, predictions, filters, feature maps).

examples:
  cnnlab train                                   # the default recipe, into runs/simple_cnn
  cnnlab train --limit 2000 --epochs 2           # a quick run on 2,000 images
  cnnlab train --model lenet5 --optimizer sgd --lr 0.05 --schedule step --out runs/lenet
  cnnlab train --model simple_cnn --epochs 3 --no-augment --schedule none
  cnnlab train --resume                          # continue an interrupted run in runs/simple_cnn
"""


def _add_train(sub) -> None:
    from cnnlab.zoo import MODELS

    p = sub.add_parser("train", help="train a model on MNIST", description="Train a CNN on MNIST and save it.",
                       epilog=TRAIN_EPILOG, formatter_class=_formatter)
    p.add_argument("--model", default=DEFAULTS["model"], choices=sorted(MODELS), metavar="NAME",
                   help=f"zoo model: {', '.join(sorted(MODELS))} (default: %(default)s)")
    p.add_argument("--epochs", type=bounded_int(1, 10_000, "epochs"), default=DEFAULTS["epochs"],
                   help="total epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=bounded_int(1, 60_000, "MNIST has 60,000 training images"),
                   default=DEFAULTS["batch_size"], help="(default: %(default)s)")
    p.add_argument("--optimizer", default=DEFAULTS["optimizer"], choices=["sgd", "adam", "adamw"],
                   help="(default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=DEFAULTS["lr"], help="learning rate (default: %(default)s)")
    p.add_argument("--momentum", type=fraction, default=None, help="SGD momentum (default: 0.9 with sgd)")
    p.add_argument("--seed", type=nonneg_int, default=DEFAULTS["seed"],
                   help="seed for the weights, shuffling and augmentation (default: %(default)s)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=DEFAULTS["augment"],
                   help="random shifts of the training images (default: on)")
    p.add_argument("--shift", type=bounded_int(1, 27, "MNIST images are 28 pixels wide"), default=DEFAULTS["shift"],
                   help="largest shift in pixels with --augment (default: %(default)s)")
    p.add_argument("--schedule", default=DEFAULTS["schedule"], choices=["cosine", "step", "none"],
                   help="learning-rate schedule: cosine decay to 0, step (x0.1 every third of the "
                        "epochs) or none (default: %(default)s)")
    p.add_argument("--val-split", type=fraction, default=DEFAULTS["val_split"],
                   help="fraction of the training images held out for validation (default: %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<model>)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (default: <out>/checkpoint.npz); every setting must match the "
                        "run's, except those named with --allow-change")
    p.add_argument("--allow-change", action="append", choices=["epochs", "lr"], default=None, metavar="NAME",
                   help="with --resume: let NAME differ from the run's: epochs (train further; always allowed) or "
                        "lr (continue at the new --lr, the schedule scaled to it); repeatable")
    p.add_argument("--limit", type=_TRAIN_COUNT, default=None, help="use only the first N training images")
    p.add_argument("--test-limit", type=_TEST_COUNT, default=None, help="use only the first N test images")
    p.add_argument("--quiet", action="store_true", help="no progress bars; print only the test accuracy "
                                                        "(the same as --verbose 0)")
    p.add_argument("--verbose", type=int, choices=[0, 1, 2], default=None,
                   help="0: only the test accuracy; 1: a progress bar per epoch; 2: one line per epoch "
                        "(default: 1 on a terminal, 2 when the output goes to a file or pipe)")
    p.set_defaults(func=cmd_train)


class _EpochTimer(Callback):
    """Wall-clock seconds of each epoch (for history.json and the final report)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t0)


def _finished_run(resume_from, epochs: int, model):
    """``(model, history)`` restored from a checkpoint that already completed ``epochs`` epochs
    with ``model``'s architecture, else None (fit resumes it as usual)."""
    if resume_from is None:
        return None
    from cnnlab.checkpoints import _architecture, load_checkpoint, restore

    state = load_checkpoint(resume_from)
    if state.epoch is None or state.epoch < epochs or state.progress is not None:
        return None
    if _architecture(state.model.get_config()) != _architecture(model.get_config()):
        raise UsageError(f"{resume_from} holds another architecture than --model; pass the same options as the run")
    return restore(resume_from), state.history


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _train_verbosity(args) -> int:
    """--quiet is --verbose 0; by default a bar on a terminal, one line per epoch otherwise
    (a bar's carriage-return updates fill a log file: 297 KB for 8 epochs)."""
    if args.quiet:
        return 0
    if args.verbose is not None:
        return args.verbose
    return 1 if sys.stdout.isatty() and sys.stderr.isatty() else 2


def _resume_command(argv, checkpoint) -> str:
    """The exact command that continues this run: the same options, ``--resume CHECKPOINT``."""
    import shlex

    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
            if not token.startswith("-"):
                continue  # the value of a previous --resume
        if token == "--resume":
            skip = True
            continue
        if token.startswith("--resume="):
            continue
        kept.append(token)
    return shlex.join(["cnnlab", *kept, "--resume", str(checkpoint)])


def _interrupted_note(history, args, checkpoint) -> str:
    """What a Ctrl-C left on disk, and the exact command that continues (or restarts) the run."""
    import shlex

    from cnnlab.checkpoints import load_checkpoint

    at = history.stopped_at or {}
    argv = getattr(args, "argv", ["train"])
    saved = history.last_good_checkpoint
    if not saved:
        return (f"interrupted at epoch {at.get('epoch')}, batch {at.get('batch')} before anything was saved; "
                f"start again with: {shlex.join(['cnnlab', *argv])}")
    state = load_checkpoint(saved)
    if state.progress is not None:
        what = f"epoch {state.epoch + 1} up to batch {int(state.progress['batch'])}"
    else:
        what = f"{_plural(int(state.epoch), 'epoch')}"
    return (f"interrupted at epoch {at.get('epoch')}, batch {at.get('batch')}; saved {saved} ({what} done) and "
            f"history.json. Resume with: {_resume_command(argv, checkpoint)}")


def _report_settings(args, out: Path, resume_from, n_train: int, n_val: int, n_test: int, test_acc: float,
                     train_seconds: float) -> dict:
    """The run's settings as a reader of report.html needs them: resolved paths and the values
    used (no command-line internals such as --quiet or an unset --resume)."""
    settings = {"model": args.model, "output folder": str(out.resolve()), "epochs": args.epochs,
                "batch size": args.batch_size, "optimizer": args.optimizer, "initial learning rate": args.lr}
    if args.optimizer == "sgd":
        settings["momentum"] = 0.9 if args.momentum is None else args.momentum
    settings["learning-rate schedule"] = args.schedule
    settings["augmentation"] = f"random shifts of up to {args.shift} px" if args.augment else "none"
    settings["seed"] = args.seed
    settings["training images"] = n_train
    settings["validation images"] = n_val
    settings["test images"] = n_test
    if resume_from is not None:
        settings["resumed from"] = str(Path(resume_from).resolve())
    settings["test accuracy"] = f"{test_acc:.2%}"
    settings["training time"] = f"{train_seconds:.1f} s"
    return settings


def cmd_train(args) -> int:
    # ---- check everything that can be checked before the long part; create nothing until then
    out = args.out if args.out is not None else Path("runs") / args.model
    checkpoint = out / "checkpoint.npz"
    resume_from = None
    if args.resume is not None:
        resume_from = Path(args.resume) if args.resume else checkpoint
        if not resume_from.is_file():
            raise UsageError(f"no checkpoint to resume from at {resume_from}")
    elif args.allow_change:
        raise UsageError("--allow-change applies only with --resume")
    if args.momentum is not None and args.optimizer != "sgd":
        raise UsageError("--momentum applies only to --optimizer sgd")
    _check_output_folder(out)
    say = (lambda *a: None) if _train_verbosity(args) == 0 else print  # noqa: E731
    _ensure_writable_folder(out)
    with hold_run_folder(out, "cnnlab train"):
        return _train(args, out, checkpoint, resume_from, say)


def _check_output_folder(out: Path) -> None:
    """Refuse, before creating anything, an output folder that cannot work: the nearest existing
    folder above it is not writable, it is a file, or one of the run's files is a folder."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file")
    for name in RUN_FILES:
        if (out / name).is_dir():
            raise UsageError(f"cannot write {out / name}: it is a folder; remove it or choose another --out")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing if str(existing) else ".", os.W_OK):
        raise UsageError(f"output folder {out} is not writable: {existing} is read-only")


#: what ``cnnlab train`` writes into its output folder
RUN_FILES = ("checkpoint.npz", "model.npz", "history.json", "history.csv", "curves.png", "report.html")


def _train(args, out: Path, checkpoint: Path, resume_from, say) -> int:
    from cnnlab.callbacks import CosineDecay, CSVLogger, StepDecay
    from cnnlab.checkpoints import save_training_state
    from cnnlab.training import fit
    from cnnlab.zoo import get_model

    # ---- data and model
    (x_train, y_train), (x_test, y_test) = _load_mnist_float(args.limit, args.test_limit)
    model = get_model(args.model, seed=args.seed)
    if tuple(model.input_shape) != (1, 28, 28):
        raise UsageError(f"{args.model} takes inputs of shape {tuple(model.input_shape)}; train uses MNIST "
                         f"(1, 28, 28) images: choose simple_cnn, keras_tutorial_cnn, lenet5 or bn_cnn")
    opt_kwargs = {"lr": args.lr}
    if args.optimizer == "sgd":
        opt_kwargs["momentum"] = 0.9 if args.momentum is None else args.momentum
    model.compile(args.optimizer, **opt_kwargs)
    callbacks = [CSVLogger(out / "history.csv", append=resume_from is not None), timer := _EpochTimer()]
    if args.schedule == "cosine":
        callbacks.insert(0, CosineDecay(args.epochs))
    elif args.schedule == "step":
        callbacks.insert(0, StepDecay(step_size=max(1, -(-args.epochs // 3)), gamma=0.1))
    n_val = int(len(x_train) * args.val_split)
    held_out = f" ({n_val:,} more held out for validation)" if n_val >= 1 else ""
    say(f"training {args.model} ({model.num_parameters():,} parameters) on {len(x_train) - n_val:,} MNIST images"
        f"{held_out}: {_plural(args.epochs, 'epoch')}, batch {args.batch_size}, {args.optimizer} lr {args.lr:g}, schedule "
        f"{args.schedule}, augment {'+-' + str(args.shift) + ' px' if args.augment else 'off'}; output in {out}")

    # ---- compile the kernels now (once per machine), not inside the progress bar's rate and ETA
    from cnnlab.warmup_cli import ensure_warm

    ensure_warm(say)

    # ---- train; a run killed after its last checkpoint but before model.npz only needs finishing
    t0 = time.perf_counter()
    finished = _finished_run(resume_from, args.epochs, model)
    if finished is not None:
        model, history = finished
        say(f"{resume_from} already holds all {_plural(args.epochs, 'epoch')}: testing and saving it")
    else:
        from tqdm.auto import tqdm

        from cnnlab.doctor import warnings_as_lines

        # the doctor's warnings as one clean line each, printed between the bar's updates
        with warnings_as_lines(lambda text: tqdm.write(text, file=sys.stderr)):
            history = fit(model, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                          validation_split=args.val_split if n_val >= 1 else 0.0,
                          callbacks=callbacks,
                          verbose=_train_verbosity(args), seed=args.seed, augment=args.shift if args.augment else None,
                          checkpoint=checkpoint, resume_from=resume_from,
                          allow_change=("epochs", *(args.allow_change or ())))
    train_seconds = time.perf_counter() - t0

    # ---- test, save, plot
    status = 0
    record = {"model": args.model, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                            if k not in ("func", "argv")},
              "history": history.to_dict(), "epoch_seconds": timer.seconds, "train_seconds": train_seconds}
    if history.stop_reason == "diverged":
        print(f"cnnlab train: training diverged: {history.diagnostics[-1].message}", file=sys.stderr)
        status = 1
    elif history.stop_reason == "interrupted":
        print(f"cnnlab train: {_interrupted_note(history, args, checkpoint)}", file=sys.stderr)
        status = 130
    else:
        test_loss, test_acc = model.evaluate(x_test, y_test)
        record["test"] = {"loss": test_loss, "accuracy": test_acc, "images": int(len(x_test))}
        save_training_state(out / "model.npz", model, model.optimizer, epoch=len(history.epoch), history=history)
        per_epoch = f", {np.mean(timer.seconds):.1f} s per epoch" if timer.seconds else ""
        say(f"trained in {train_seconds:.1f} s{per_epoch}")
        print(f"test accuracy: {test_acc:.2%} (loss {test_loss:.4f}) on {len(x_test):,} images")
        say(f"saved {out / 'model.npz'}")
    atomic_write_text(out / "history.json", json.dumps(record, indent=2, allow_nan=True))
    if history.epoch:
        _plot_curves(history, out / "curves.png")
    if status == 0:
        from cnnlab.lab import write_report

        report = write_report(out, model, history, x_test, y_test,
                              settings=_report_settings(args, out, resume_from, len(x_train) - n_val, n_val,
                                                        len(x_test), test_acc, train_seconds),
                              class_names=[str(d) for d in range(10)])
        say(f"saved {report}")
    return status


# ----- evaluate ----------------------------------------------------------------------------------
EVALUATE_EPILOG = """\
Prints the accuracy, the accuracy of each digit and the confusion matrix (rows: true digit,
columns: predicted digit) on the MNIST test set.

examples:
  cnnlab evaluate runs/simple_cnn/model.npz
  cnnlab evaluate runs/simple_cnn/checkpoint.npz --limit 1000
"""


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy and confusion matrix of a saved model on MNIST test",
                       description="Evaluate a saved model on the MNIST test set.", epilog=EVALUATE_EPILOG,
                       formatter_class=_formatter)
    p.add_argument("model", metavar="MODEL", help="a model file (model.npz or a checkpoint)")
    p.add_argument("--limit", type=_TEST_COUNT, default=None, help="use only the first N test images")
    p.add_argument("--batch-size", type=_TEST_COUNT, default=256, help="(default: %(default)s)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from cnnlab.training import predict

    model = _load_model_file(args.model)
    _check_mnist_shape(model, args.model)
    _, (x_test, y_test) = _load_mnist_float(limit=1, test_limit=args.limit)
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


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="classify PNG/JPEG images with a saved model",
                       description="Classify images with a saved model.", epilog=PREDICT_EPILOG,
                       formatter_class=_formatter)
    p.add_argument("model", metavar="MODEL", help="a model file")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top", type=bounded_int(1, 1000, "classes listed"), default=3, help="how many classes to list (default: %(default)s)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from cnnlab.datasets import load_image, to_float
    from cnnlab.training import predict

    model = _load_model_file(args.model)
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


def _add_summary(sub) -> None:
    p = sub.add_parser("summary", help="layers, output shapes and parameter counts of a model",
                       description="Print a model's layers, output shapes and parameter counts.",
                       epilog=SUMMARY_EPILOG, formatter_class=_formatter)
    p.add_argument("model", metavar="MODEL_NAME_OR_FILE", help="a zoo model name or a model file")
    p.set_defaults(func=cmd_summary)


def cmd_summary(args) -> int:
    from cnnlab.zoo import MODELS, get_model

    if args.model in MODELS:
        get_model(args.model).summary()
        return 0
    if not Path(args.model).exists():
        raise UsageError(f"{args.model!r} is neither a zoo model ({', '.join(MODELS)}) nor a file")
    from cnnlab.io import load_model

    model, header, _ = load_model(args.model, return_header=True)
    model.summary()
    opt = header.get("optimizer")
    if header.get("epoch") is not None or isinstance(opt, dict):
        name = opt.get("class") if isinstance(opt, dict) else "none"
        print(f"Saved training state: {header.get('epoch')} epochs, optimizer {name}")
    return 0


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
    from cnnlab import __version__

    parser = _Parser(prog="cnnlab", description="Convolutional neural networks from scratch on NumPy.",
                     epilog=MAIN_EPILOG, formatter_class=_formatter)
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    _add_summary(sub)
    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # the module exists but something it imports is missing: say so
                raise
            continue
        module.add_commands(sub)
    return parser


#: an error message quotes at most this many characters (a hostile file can make one of megabytes)
MAX_ERROR_CHARS = 1000


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
    from cnnlab.io import ModelFileError

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
