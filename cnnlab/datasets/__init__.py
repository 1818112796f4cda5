"""Data for cnnlab: MNIST and relatives (Keras-style loaders), the IDX format, safe
downloads, image folders, preprocessing helpers and the tutorials' toy datasets.

MNIST ships with the package, so this works offline:

    >>> from cnnlab.datasets import load_mnist
    >>> (x_train, y_train), (x_test, y_test) = load_mnist()
    >>> x_train.shape, y_train.dtype
    ((60000, 28, 28), dtype('uint8'))
"""
from cnnlab.datasets import toys
from cnnlab.datasets.download import ChecksumError, DownloadError, download, fetch_files
from cnnlab.datasets.folders import IMAGE_EXTENSIONS, load_image, load_image_folder, to_mnist_like
from cnnlab.datasets.idx import read_idx, write_idx
from cnnlab.datasets.mnist import DATASETS, load_fashion_mnist, load_kmnist, load_mnist
from cnnlab.datasets.preprocessing import (
    add_channel_axis,
    batches,
    one_hot,
    random_shift,
    standardize,
    to_float,
    train_val_split,
)
from cnnlab.datasets.toys import lines_dataset, ox_dataset, ox_templates

__all__ = [
    "load_mnist", "load_fashion_mnist", "load_kmnist", "DATASETS",
    "load_image_folder", "load_image", "to_mnist_like", "IMAGE_EXTENSIONS",
    "read_idx", "write_idx",
    "download", "fetch_files", "DownloadError", "ChecksumError",
    "to_float", "standardize", "add_channel_axis", "one_hot", "train_val_split", "random_shift", "batches",
    "toys", "ox_dataset", "ox_templates", "lines_dataset",
]
