"""Pictures of cnnlab's own computations, for the CNN tutorials.

Every function builds a ``matplotlib.figure.Figure`` without pyplot (no GUI backend is
needed or changed, nothing is shown) and returns it; ``save="path.png"`` (or ``.svg``,
``.pdf``) also writes it. Colour maps carry colour bars; signed data use a zero-centred
diverging map. The numbers drawn come from cnnlab's ops and models, never from a copy.

Example:
    >>> from cnnlab.lab.viz import conv_matrix_figure
    >>> fig = conv_matrix_figure(np.ones((3, 3)), (4, 4))
    >>> type(fig).__name__
    'Figure'
"""
import numpy as np  # noqa: F401  (for the doctest above)

from cnnlab.lab.viz._common import (DIVERGING, SEQUENTIAL, conv_image, finish, new_figure, png_bytes, pool_maps,
                                    symmetric_norm)
from cnnlab.lab.viz.batchnorm_views import batchnorm_figure, batchnorm_numbers
from cnnlab.lab.viz.basics import flatten_figure, pipeline_figure, pipeline_numbers, relu_figure
from cnnlab.lab.viz.digits import decimals_for, number_format
from cnnlab.lab.viz.conv_steps import conv_animation, conv_step, conv_step_numbers
from cnnlab.lab.viz.dropout_views import dropout_figure, dropout_numbers
from cnnlab.lab.viz.equivariance import equivariance_figure
from cnnlab.lab.viz.explain_views import channel_waterfall, pixel_figure
from cnnlab.lab.viz.filters import edge_test_image, kernel_gallery, kernel_responses
from cnnlab.lab.viz.model_views import (class_probabilities, feature_map_layers, feature_maps, filters_before_after,
                                    filters_figure, first_conv_index, probabilities_figure)
from cnnlab.lab.viz.receptive import receptive_field_figure, receptive_table, receptive_windows
from cnnlab.lab.viz.saliency import input_gradient, saliency_figure, saliency_map
from cnnlab.lab.viz.params_views import parameter_figure, ratio_label
from cnnlab.lab.viz.pooling_views import pool_routing, pool_routing_figure, pooling_figure
from cnnlab.lab.viz.sparse_views import conv_matrix_figure
from cnnlab.lab.viz.training_views import (confusion_matrix, confusion_matrix_figure, history_dict, most_confused,
                                       most_confused_figure, prediction_grid, training_curves)

__all__ = [
    "DIVERGING", "SEQUENTIAL", "finish", "new_figure", "png_bytes", "symmetric_norm", "conv_image", "pool_maps",
    "conv_step", "conv_step_numbers", "conv_animation",
    "edge_test_image", "kernel_responses", "kernel_gallery",
    "relu_figure", "pooling_figure", "flatten_figure", "pipeline_numbers", "pipeline_figure",
    "feature_map_layers", "feature_maps", "first_conv_index", "filters_figure", "class_probabilities",
    "probabilities_figure", "filters_before_after",
    "history_dict", "training_curves", "prediction_grid", "confusion_matrix", "confusion_matrix_figure",
    "most_confused", "most_confused_figure",
    "receptive_windows", "receptive_table", "receptive_field_figure",
    "input_gradient", "saliency_map", "saliency_figure",
    "pixel_figure", "channel_waterfall", "conv_matrix_figure", "parameter_figure", "ratio_label", "equivariance_figure",
    "decimals_for", "number_format", "pool_routing", "pool_routing_figure",
    "batchnorm_numbers", "batchnorm_figure", "dropout_numbers", "dropout_figure",
]
