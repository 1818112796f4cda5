"""cnnlab: convolutional neural networks from scratch on NumPy, understandable and fast.

Example:
    >>> import cnnlab
    >>> model = cnnlab.models.zoo.simple_cnn()
    >>> model.num_parameters()
    421642
"""
__version__ = "0.1.0"

from cnnlab import datasets, layers, models, ops  # noqa: E402
from cnnlab.models import Sequential, zoo  # noqa: E402
from cnnlab.models.io import load_model, save_model  # noqa: E402

__all__ = ["datasets", "layers", "models", "ops", "zoo", "load_model", "save_model", "Sequential", "__version__"]
