"""The learning lab: explanations, pictures, demos and reports, all computed by cnnlab itself.

* ``explain``: the numbers behind the tutorials' explanations (output sizes, receptive
  fields, the convolution matrix, one pixel forward and backward).
* ``viz``: matplotlib figures of cnnlab's own computations.
* ``demos``: ``cnnlab demo`` (toy worlds, the demos, ``visualize``, the HTML report).
* ``filters``: classic image filters (edge detectors, blur) applied with the conv op.
* ``commands``: the lab's CLI commands (``demo``, ``visualize``, ``explain``).
"""
