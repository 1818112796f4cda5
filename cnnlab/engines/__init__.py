"""Engines: faster ways to run the ops of ``cnnlab.ops``, chosen through one table.

* ``dispatch``: the table (op, engine) -> (forward, backward) and the entry points the layers
  call (``conv2d_forward(..., impl=...)``, ``maxpool2d_forward``, ...).
* ``numpy_conv`` + ``wide``: the NumPy engine's stride-1 convolution in the wide layout.
* ``numba_conv``, ``numba_ops``: the Numba engine around the compiled ``numba_kernels``.
* ``runtime``: whether Numba is there, the default engine, threads and fork handling
  (``CNNLAB_NO_NUMBA=1`` makes NumPy the default).
"""
from cnnlab.engines import runtime
from cnnlab.engines.dispatch import (ENGINES, IMPLS, TABLE, ConvReLUPoolCache, avgpool2d_backward, avgpool2d_forward,
                                     batchnorm_backward, batchnorm_forward, can_fuse_maxpool, conv2d_backward,
                                     conv2d_backward_fast, conv2d_forward, conv2d_forward_fast,
                                     conv2d_relu_maxpool2d_backward, conv2d_relu_maxpool2d_forward, lookup,
                                     maxpool2d_backward, maxpool2d_forward, relu_backward, relu_forward, resolve)

__all__ = ["runtime", "ENGINES", "IMPLS", "TABLE", "lookup", "resolve", "conv2d_forward", "conv2d_backward",
           "conv2d_forward_fast", "conv2d_backward_fast", "maxpool2d_forward", "maxpool2d_backward",
           "avgpool2d_forward", "avgpool2d_backward", "relu_forward", "relu_backward", "batchnorm_forward",
           "batchnorm_backward", "ConvReLUPoolCache", "can_fuse_maxpool", "conv2d_relu_maxpool2d_forward",
           "conv2d_relu_maxpool2d_backward"]
