"""load_image reads an open binary file (an upload held in memory) exactly as it reads the file."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnnlab.datasets import load_image


def test_bytes_give_the_same_pixels_as_the_file(tmp_path):
    img = np.full((60, 40), 240, np.uint8)
    img[10:50, 18:24] = 20  # a dark "1" on white
    path = tmp_path / "one.png"
    Image.fromarray(img).save(path)
    from_file = load_image(path)
    from_bytes = load_image(io.BytesIO(path.read_bytes()))
    assert np.array_equal(from_file, from_bytes) and from_bytes.max() == 255


@pytest.mark.parametrize("data, words", [(b"", "empty"), (b"not an image", "cannot read image")])
def test_bad_bytes_raise_a_value_error(data, words):
    with pytest.raises(ValueError, match=words):
        load_image(io.BytesIO(data))
