"""Same numbers before and after a change: a fixed-seed 1-epoch fit on 2,000 MNIST images.

Prints one SHA-256 per zoo model over all of its weights (and buffers) after training, plus
the hash of the predictions of the trained model. Run it on two trees and on both engines
(``CNNLAB_NO_NUMBA=1``); identical lines mean bit-identical training.

    PYTHONPATH=$PWD python scripts/check_same_numbers.py
    CNNLAB_NO_NUMBA=1 PYTHONPATH=$PWD python scripts/check_same_numbers.py
"""
import hashlib

import numpy as np

import cnnlab
from cnnlab.datasets import load_mnist


def weights_hash(model) -> str:
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    (x, y), _ = load_mnist()
    x = x[:2000, None].astype(np.float32) / 255  # (2000, 1, 28, 28)
    y = y[:2000].astype(np.int64)
    for name in ("simple_cnn", "lenet5", "bn_cnn"):
        model = getattr(cnnlab.models.zoo, name)(seed=0)
        model.compile(optimizer="adam", lr=1e-3)
        model.fit(x, y, epochs=1, batch_size=64, seed=0, verbose=0, validation_split=0.1)
        p = model.predict(x[:256])
        print(f"{name:12s} weights {weights_hash(model)}  predict "
              f"{hashlib.sha256(p.tobytes()).hexdigest()[:16]}", flush=True)


if __name__ == "__main__":
    main()
