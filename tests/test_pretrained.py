"""The pretrained SimpleCNN shipped in the package: its checksum, its size and its accuracy."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

import cnnlab
from cnnlab.models import pretrained


def test_shipped_weights_match_their_checksum_and_size():
    sums = pretrained.expected_checksums()
    path = pretrained.WEIGHTS_DIR / "simple_cnn.npz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sums["simple_cnn.npz"]
    assert path.stat().st_size <= 2_000_000


def test_pretrained_simple_cnn_scores_at_least_99_4_percent_on_mnist_test():
    from cnnlab.datasets import add_channel_axis, load_mnist, to_float

    model = cnnlab.models.zoo.simple_cnn(pretrained=True)
    assert model.num_parameters() == 421642
    _, (x_test, y_test) = load_mnist()
    _, accuracy = model.evaluate(add_channel_axis(to_float(x_test)), y_test.astype(np.int64))
    assert accuracy >= 0.994, f"test accuracy {accuracy:.4f}"


def test_a_corrupted_weights_file_is_refused(tmp_path, monkeypatch):
    shutil.copy(pretrained.WEIGHTS_DIR / pretrained.CHECKSUM_FILE, tmp_path / pretrained.CHECKSUM_FILE)
    data = bytearray((pretrained.WEIGHTS_DIR / "simple_cnn.npz").read_bytes())
    data[len(data) // 2] ^= 1  # one bit flipped in a weight
    (tmp_path / "simple_cnn.npz").write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="SHA-256 .* expected"):
        cnnlab.models.zoo.simple_cnn(pretrained=True)


def test_unknown_pretrained_model_names_the_available_ones():
    with pytest.raises(ValueError, match="pretrained models: simple_cnn"):
        pretrained.weights_path("lenet5")
