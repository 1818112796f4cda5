"""The learning lab: explanations, pictures, demos and reports, all computed by cnnlab itself.

* ``explain``: the numbers behind the tutorials' explanations (output sizes, receptive
  fields, the convolution matrix, one pixel forward and backward).
* ``viz``: matplotlib figures of cnnlab's own computations.
* ``demos``: ``cnnlab demo`` (toy worlds, the demos, ``visualize``, the HTML report).
* ``filters``: classic image filters (edge detectors, blur) applied with the conv op.
* ``commands``: the lab's CLI commands (``demo``, ``visualize``, ``explain``).
"""
from cnnlab.lab.demos import DEMOS, TOYS, mnist_digit, run_demo, toy_data, train_toy
from cnnlab.lab.report import visualize, write_report

__all__ = ["DEMOS", "TOYS", "mnist_digit", "run_demo", "toy_data", "train_toy", "visualize", "write_report"]
