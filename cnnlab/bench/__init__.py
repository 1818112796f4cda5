"""``cnnlab bench``: cnnlab beside PyTorch on the CPU, timed fairly; and the implementation ladder.

**vs PyTorch** (the default): one process tree, a parent that drives two persistent worker
processes, one per framework, and interleaves them (A B, then B A, ...) so that machine noise
hits both alike. Separate processes matter: PyTorch's OpenMP threads and NumPy's OpenBLAS
threads busy-wait between calls, and in one process they fight over the cores (PyTorch's
conv1 measured 200 ms instead of 4 ms that way). Each worker pauses ``gap`` seconds before
each timing so that the other one's threads have gone to sleep. What is timed, float32:

* a full training epoch of ``zoo.simple_cnn`` on MNIST (60,000 images) at batch 64 and 128,
  with SGD + momentum and with Adam: cnnlab's own ``fit`` as users get it (``verbose=0``,
  training doctor on; doctor off too), PyTorch a plain idiomatic loop with ``torch.optim``
  over the same data (shuffled each epoch, loss and accuracy accumulated per batch); each
  repeat trains a fresh model from the same seed;
* inference on the 10,000 test images (``model.predict``; PyTorch ``inference_mode`` + softmax);
* forward + backward of every layer type at the shapes of ``simple_cnn`` and ``bn_cnn``;
* the optimizer steps on simple_cnn's 421,642 parameters;
* a plain two-conv RGB block (3->64, 64->64, 3x3, ReLU, max pool; batch 16) through
  ``Sequential`` at 32, 64, 128 and 224 px, each size in a fresh pair of workers;
* each worker's peak resident memory (``getrusage``) after its training epochs, and after each RGB block.

``--only train|inference|layers|rgb`` (repeatable) runs a part.

Every figure is the median of ``repeats`` runs, printed with the cnnlab/PyTorch time ratio and
the arithmetic rate (GFLOP/s of the convolutions and matrix products, forward = 1x,
training = 3x minus the first layer's input gradient) against the machine's float32
matrix-multiply peak, measured with ``np.matmul`` on 2048x2048 in the cnnlab worker.

**Ladder** (``--impl naive --impl im2col --impl fast``): cnnlab alone, forward + backward of
conv and max-pool layers at small shapes for each implementation, so a learner sees each step
up (for ``fast``, with the NumPy and the Numba backend).

Example (the test suite runs this machinery on tiny sizes)::

    cnnlab bench --repeats 3 --markdown BENCHMARKS.md     # about 15 minutes on 2 cores
    cnnlab bench --quick                                  # a short smoke run
    cnnlab bench --repeats 5 --only layers --only rgb     # the layer rows and the RGB blocks
    cnnlab bench --impl naive --impl im2col --impl fast   # the ladder, a few seconds
"""
from cnnlab.bench.cli import add_commands, main
from cnnlab.bench.flops import LAYERS
from cnnlab.bench.ladder import LADDER, run_ladder
from cnnlab.bench.report import check_targets, format_ladder, format_table, to_markdown
from cnnlab.bench.results import BenchConfig, BenchResult, Row
from cnnlab.bench.workers import run_vs_torch

__all__ = ["BenchConfig", "Row", "BenchResult", "run_vs_torch", "format_table", "to_markdown", "run_ladder",
           "format_ladder", "check_targets", "add_commands", "main", "LAYERS", "LADDER"]
