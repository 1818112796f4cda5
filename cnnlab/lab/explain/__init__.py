"""The numbers behind the CNN tutorials' explanations, computed from cnnlab's own layers and ops.

Nothing here is typed in: output sizes come from the one formula in ``cnnlab.ops.shapes``,
parameter counts from the layers' own formulas, the convolution matrix is checked against
``cnnlab.ops.conv``, and the per-pixel story of :func:`explain_pixel` is read off a real
model's forward and backward passes.

Contents (one module each; everything is importable from ``cnnlab.lab.explain``):
    * ``sizes``: :func:`output_size`, the output-size formula with the numbers filled in;
      :func:`receptive_field`, how far back each Conv/Pool layer "sees" (1, 3, 5, 7 for
      stacked 3x3 convolutions; pooling makes it grow faster).
    * ``parameters``: :func:`parameter_comparison`, dense versus convolutional parameter counts.
    * ``conv_matrix``: :func:`conv_matrix`, a convolution as multiplication by a sparse
      (Toeplitz) matrix.
    * ``equivariance``: :func:`translation_equivariance`, shift the input, the feature map
      shifts; pooling makes small shifts (partly) invisible.
    * ``describe``: :func:`explain_layer`, :func:`explain_model`, plain-language descriptions
      with numbers.
    * ``pixel``: :func:`explain_pixel`, one output value of a convolution, forward and backward;
      :func:`explain_dense`, the same for a Dense unit (a logit).

Example:
    >>> output_size(28, 3, 1, 1)[1]
    'out = floor((n + 2p - k) / s) + 1 = floor((28 + 2*1 - 3) / 1) + 1 = floor(27 / 1) + 1 = 27 + 1 = 28'
"""
from __future__ import annotations

from cnnlab.lab.explain.conv_matrix import conv_matrix, conv_matrix_triplets
from cnnlab.lab.explain.describe import explain_layer, explain_model
from cnnlab.lab.explain.equivariance import EquivarianceResult, shift_image, translation_equivariance
from cnnlab.lab.explain.parameters import (PARAMETER_CASES, ParameterCase, conv_parameters, dense_parameters,
                                       parameter_comparison)
from cnnlab.lab.explain.pixel import DenseExplanation, PixelExplanation, explain_dense, explain_pixel
from cnnlab.lab.explain.sizes import ReceptiveFieldRow, output_size, receptive_field

__all__ = [
    "output_size", "ReceptiveFieldRow", "receptive_field", "ParameterCase", "dense_parameters",
    "conv_parameters", "parameter_comparison", "conv_matrix", "conv_matrix_triplets",
    "EquivarianceResult", "shift_image", "translation_equivariance", "explain_layer", "explain_model",
    "PixelExplanation", "explain_pixel", "DenseExplanation", "explain_dense",
]
