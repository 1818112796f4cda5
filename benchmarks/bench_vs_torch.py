"""cnnlab beside PyTorch on the CPU: training epochs, inference, layers, memory (``cnnlab bench``).

The code lives in ``cnnlab/bench/`` (so that ``cnnlab bench`` runs the same thing); see its
docstring for what is timed and how (two worker processes, interleaved).

    python benchmarks/bench_vs_torch.py --repeats 3 --markdown BENCHMARKS.md
    python benchmarks/bench_vs_torch.py --quick
    python benchmarks/bench_vs_torch.py --impl naive --impl im2col --impl fast
"""
import sys

from cnnlab.bench import main

if __name__ == "__main__":
    sys.exit(main())
