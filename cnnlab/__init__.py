"""cnnlab: convolutional neural networks from scratch on NumPy, understandable and fast."""
__version__ = "0.1.0"
