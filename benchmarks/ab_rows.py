"""A/B a few of `cnnlab bench`'s rows between two versions or settings of cnnlab, in turn.

Each side runs in a fresh process, one after the other, ``--rounds`` times, so both meet the
same machine; the medians of the rounds are printed side by side. A side is the current
tree, an older copy (``--before PATH``: a folder holding that ``cnnlab``, e.g. from
``git worktree add /tmp/old <commit>``), or the current tree with environment settings
(``--env NAME=K=V,K=V``). ``--cpu`` times process CPU instead of wall time (with
``--threads 1``: the work itself, which a busy machine barely changes).

    python benchmarks/ab_rows.py --before /tmp/old --row "conv2+relu+pool fused" --rgb 32 --epoch 12800
    python benchmarks/ab_rows.py --env off=CNNLAB_KEEP_MALLOC=1 --row "bn_cnn batchnorm2d 16 @28" --rounds 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_WORKER = r'''
import json, os, sys, time
import cnnlab.bench.runners as R
from cnnlab.engines import runtime
args = json.loads(sys.argv[1])
if args["cpu"]:
    def cpu_call(fn, iters, warmup=3):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(iters):
            t = time.process_time(); fn(); times.append(time.process_time() - t)
        return sorted(times)[len(times) // 2]
    R.median_call = cpu_call
runtime.kernels()
r = R.CnnlabRunner(args["threads"])
res = {}
for name in args["rows"]:
    res[name] = r.layer(name, 64, args["iters"]) * 1e3
for size in args["rgb"]:
    res[f"RGB block @{size} (ms)"] = r.rgb_block(size, iters=3) * 1e3
if args["epoch"] or args["infer"]:
    r.load(max(args["epoch"], 256), max(args["infer"], 256))
    r.warmup()
if args["epoch"]:
    for opt in ("sgd", "adam"):
        t = time.perf_counter(); r.epoch(64, opt, True, 0); res[f"epoch b64 {opt} (s)"] = time.perf_counter() - t
if args["infer"]:
    res[f"predict {args['infer']} (s)"] = min(r.infer(256) for _ in range(3))
with open("/proc/self/status") as f:
    res["peak RSS (MB)"] = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
print(json.dumps(res))
'''


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", metavar="PATH", help="a folder holding an older cnnlab: the 'before' side")
    p.add_argument("--env", action="append", default=[], metavar="NAME=K=V,...",
                   help="a side running the current tree with these environment settings (repeatable)")
    p.add_argument("--row", action="append", default=[], help="a layer row of cnnlab bench, by name (repeatable)")
    p.add_argument("--rgb", action="append", type=int, default=[], help="an RGB block size in px (repeatable)")
    p.add_argument("--epoch", type=int, default=0, help="also time SGD and Adam epochs of this many images")
    p.add_argument("--infer", type=int, default=0, help="also time predicting this many test images (batch 256)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=30, help="calls per layer row (median)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpu", action="store_true", help="process CPU time instead of wall time (layer rows)")
    args = p.parse_args()
    here = str(Path(__file__).resolve().parents[1])
    sides = {"before": {"PYTHONPATH": args.before}} if args.before else {}
    sides["now"] = {"PYTHONPATH": here}
    for spec in args.env:
        name, _, settings = spec.partition("=")
        sides[name] = {"PYTHONPATH": here, **dict(kv.split("=", 1) for kv in settings.split(",") if kv)}
    if args.threads == 1:
        for env in sides.values():
            env.update(OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    job = json.dumps({"rows": args.row, "rgb": args.rgb, "epoch": args.epoch, "infer": args.infer,
                      "iters": args.iters, "threads": args.threads, "cpu": args.cpu})
    results = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, env in sides.items():
            out = subprocess.run([sys.executable, "-c", _WORKER, job], env={**os.environ, **env},
                                 capture_output=True, text=True, cwd="/")
            if out.returncode != 0:
                sys.exit(f"{name}: {out.stderr[-2000:]}")
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    unit = "CPU ms" if args.cpu else "ms"
    print(f"medians of {args.rounds} rounds in turn, {args.threads} thread(s); layer rows in {unit}")
    for key in results["now"][0]:
        cells = "  ".join(f"{name} {statistics.median(r[key] for r in runs):9.3f}" for name, runs in results.items())
        print(f"{key[:44]:44s} {cells}")


if __name__ == "__main__":
    main()
