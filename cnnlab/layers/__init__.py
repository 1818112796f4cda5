"""Stateful layers: thin wrappers that hold settings, parameters and a cache, and call ops."""
from cnnlab.layers.base import Layer, Parameter
from cnnlab.layers.conv import Conv2d
from cnnlab.layers.pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from cnnlab.layers.activation import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from cnnlab.layers.normalization import BatchNorm1d, BatchNorm2d
from cnnlab.layers.dropout import Dropout
from cnnlab.layers.dense import Dense
from cnnlab.layers.reshape import Flatten

#: name -> class, used by save/load to rebuild a model from its JSON config
LAYER_CLASSES = {
    cls.__name__: cls
    for cls in (Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, ReLU, LeakyReLU, Sigmoid, Tanh,
                Softmax, BatchNorm2d, BatchNorm1d, Dropout, Dense, Flatten)
}

__all__ = ["Layer", "Parameter", "LAYER_CLASSES", *LAYER_CLASSES]
