"""``cnnlab bench`` and ``python benchmarks/bench_vs_torch.py``: the command line of the benchmark."""
from __future__ import annotations

import argparse
import os
import sys
import textwrap

from cnnlab.bench.ladder import run_ladder
from cnnlab.bench.report import format_ladder, format_table, read_notes, to_markdown
from cnnlab.bench.results import PARTS, BenchConfig
from cnnlab.bench.workers import run_vs_torch
from cnnlab.utils.argtypes import bounded_int, thread_count
from cnnlab.utils.files import check_writable_folder

__all__ = ["add_commands", "main"]


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeats", type=bounded_int(1, 1000, "runs per figure"), default=3,
                   help="runs per figure; medians (default: 3)")
    p.add_argument("--limit", type=bounded_int(1, 60_000, "MNIST has 60,000 training images"), default=None,
                   help="training images per epoch (default: all 60,000; --quick: 2,048)")
    p.add_argument("--test-limit", type=bounded_int(1, 10_000, "MNIST has 10,000 test images"), default=None,
                   help="test images for inference (default: all 10,000; --quick: 1,000)")
    p.add_argument("--quick", action="store_true", help="a short smoke run: 1 repeat, --limit 2048, few layers")
    p.add_argument("--threads", type=thread_count, default=os.cpu_count() or 1,
                   help="threads per framework, at most the machine's cores (default: %(default)s)")
    p.add_argument("--only", action="append", choices=PARTS, metavar="PART",
                   help="time only this part (repeat for several): train (the epochs and the memory after them), "
                        "inference, layers, rgb (the RGB conv blocks, 32 to 224 px); default: all of them")
    p.add_argument("--no-doctor-off", action="store_true",
                   help="skip the two epochs with cnnlab's training doctor off (4 epoch rows instead of 6)")
    p.add_argument("--markdown", metavar="PATH", help="write the results as markdown to PATH")
    p.add_argument("--impl", action="append", choices=("naive", "im2col", "fast"),
                   help="time cnnlab's implementation ladder instead (repeat: --impl naive --impl fast)")


def _run(args, command: str | None = None) -> int:
    if args.markdown:  # before the long part: a benchmark must not be lost to a typo in a path
        check_writable_folder(args.markdown, "cannot write --markdown")
        if os.path.isdir(args.markdown):
            raise IsADirectoryError(f"cannot write --markdown {args.markdown}: it is a folder; name a file")
    if args.impl:
        results = run_ladder(tuple(dict.fromkeys(args.impl)), args.repeats, log=lambda s: print(s, file=sys.stderr))
        print(format_ladder(results))
        return 0
    try:
        import torch  # noqa: F401  (only to fail early, with the fix)
    except ModuleNotFoundError:
        raise ValueError("cnnlab bench compares with PyTorch, which is not installed: pip install torch "
                         "(or time the implementations alone with --impl naive --impl im2col --impl fast)") from None
    cfg = BenchConfig(repeats=args.repeats, threads=args.threads)
    if args.quick:
        cfg.repeats, cfg.limit, cfg.test_limit, cfg.layer_iters = 1, 2048, 1000, 5
        cfg.layers = ("conv2 32->64 3x3 @14", "maxpool 2 @32x28x28", "conv2+relu+pool fused")
        cfg.rgb_sizes = (32,)
    if args.no_doctor_off:
        cfg.doctor_off = False
    if args.only:
        cfg.parts = tuple(p for p in PARTS if p in args.only)
    cfg.limit = args.limit or cfg.limit
    cfg.test_limit = args.test_limit or cfg.test_limit
    result = run_vs_torch(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_table(result))
    if args.markdown:
        if command is None:  # ``cnnlab ... bench OPTIONS``: the options as typed
            argv = sys.argv[sys.argv.index("bench") + 1:] if "bench" in sys.argv else []
            command = " ".join(["cnnlab bench", *argv])
        ladder = run_ladder(repeats=args.repeats)
        text = to_markdown(result, command, ladder, read_notes(args.markdown))  # keeps the file's notes
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


def add_commands(subparsers) -> None:
    """Add ``bench`` to the ``cnnlab`` sub-command parsers."""
    p = subparsers.add_parser(
        "bench", help="time cnnlab beside PyTorch (or its implementation ladder)",
        description=textwrap.fill(
            "Time cnnlab beside PyTorch on the CPU: full training epochs of simple_cnn on MNIST (batch 64 and 128, "
            "SGD+momentum and Adam), inference on the 10,000 test images, every layer type forward and backward, "
            "a plain two-conv RGB block at 32 to 224 px, and peak memory; two worker processes, interleaved; "
            "medians, ratios, GFLOP/s and % of the measured matmul peak. --only runs a part. With --impl: cnnlab's "
            "implementation ladder alone.", 79),
        epilog="examples:\n  cnnlab bench --repeats 3 --markdown BENCHMARKS.md   (about 15 minutes on 2 cores)\n"
               "  cnnlab bench --repeats 5 --only layers --only rgb   (the layer rows and RGB blocks alone)\n"
               "  cnnlab bench --quick\n  cnnlab bench --impl naive --impl im2col --impl fast",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _configure(p)
    p.set_defaults(func=_run)


def main(argv=None) -> int:
    """``python benchmarks/bench_vs_torch.py``: the same as ``cnnlab bench``."""
    parser = argparse.ArgumentParser(prog="bench_vs_torch", description="cnnlab beside PyTorch on the CPU.")
    _configure(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    return _run(parser.parse_args(argv), " ".join(["python benchmarks/bench_vs_torch.py", *argv]))
