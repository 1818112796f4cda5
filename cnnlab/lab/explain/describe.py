"""Plain-language descriptions of layers and models: they live with the layers
(``cnnlab.layers.describe``); re-exported here for ``cnnlab.lab.explain``."""
from cnnlab.layers.describe import explain_layer, explain_model

__all__ = ["explain_layer", "explain_model"]
