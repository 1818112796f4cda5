"""Pretrained weights shipped inside the package, checked by SHA-256 before they are read.

``cnnlab/models/zoo_weights/`` holds ``simple_cnn.npz`` (the default ``cnnlab train`` recipe on all
60,000 MNIST training images, made by ``scripts/make_pretrained.py``) and ``SHA256SUMS``, the
one place its checksum is written (``sha256sum -c SHA256SUMS`` checks it from a shell).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from cnnlab.models.io import load_model

WEIGHTS_DIR = Path(__file__).resolve().parent / "zoo_weights"
CHECKSUM_FILE = "SHA256SUMS"


def expected_checksums() -> dict[str, str]:
    """``{file name: sha256 hex digest}`` as written in ``zoo_weights/SHA256SUMS``."""
    sums = {}
    path = WEIGHTS_DIR / CHECKSUM_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                digest, name = line.split()
                sums[name.lstrip("*")] = digest
    return sums


def weights_path(name: str) -> Path:
    """The shipped weights file of zoo model ``name`` after checking its SHA-256.

    Raises:
        ValueError: no pretrained weights for ``name``, or the file's checksum is wrong
            (a corrupted or replaced file is never loaded).
    """
    sums = expected_checksums()
    file = f"{name}.npz"
    path = WEIGHTS_DIR / file
    if file not in sums or not path.is_file():
        have = sorted(Path(n).stem for n in sums)
        raise ValueError(f"no pretrained weights for {name!r}; pretrained models: {', '.join(have) or 'none'}.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sums[file]:
        raise ValueError(f"{path} has SHA-256 {digest}, expected {sums[file]} (from {CHECKSUM_FILE}): the file is "
                         f"corrupted or was replaced; reinstall cnnlab or run scripts/make_pretrained.py.")
    return path


def load_pretrained(name: str, dtype=None):
    """The zoo model ``name`` with its shipped, checksum-verified weights (a ``Sequential``)."""
    import numpy as np

    model = load_model(weights_path(name))
    if dtype is not None and np.dtype(dtype) != model.dtype:
        model.astype(dtype)
    return model
