"""``cnnlab warmup``: compile the fast kernels once, ahead of the first run (``cnnlab.training.warmup``)."""
from __future__ import annotations

import argparse

from cnnlab.engines import runtime
from cnnlab.training.warmup import workload

__all__ = ["add_warmup", "cmd_warmup"]

WARMUP_EPILOG = """\
The first run on a machine compiles cnnlab's fast Numba kernels (about a minute on 2 cores); the
machine code is cached on disk (beside the package, or in NUMBA_CACHE_DIR), so later runs
load it in under a second. `cnnlab train` and `cnnlab demo` do this for you when needed;
run it ahead to keep the first run quick.

examples:
  cnnlab warmup
"""


def add_warmup(sub) -> None:
    p = sub.add_parser("warmup", help="compile the fast kernels once (cached on disk)",
                       description="Compile (or load from the disk cache) every Numba kernel cnnlab uses.",
                       epilog=WARMUP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=cmd_warmup)


def cmd_warmup(args) -> int:
    runtime.warmup(workload)
    return 0
