"""zoo.ox_tutorial_cnn: the O-versus-X tutorial's network (one 3x3 filter + bias, ReLU, 2x2 max
pool, flatten, dense to 2), starting from the tutorial's ring filter, learns the ox toy."""
import warnings

import numpy as np

from cnnlab.datasets import worked_examples as we
from cnnlab.datasets.toys import ox_dataset
from cnnlab.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU
from cnnlab.models import zoo


def _letters(dtype=np.float32):
    return np.stack([we.letter_o(), we.letter_x()])[:, None].astype(dtype)  # (2, 1, 6, 6)


def test_the_architecture_is_the_tutorials():
    m = zoo.ox_tutorial_cnn()
    assert [type(layer) for layer in m.layers] == [Conv2d, ReLU, MaxPool2d, Flatten, Dense]
    assert m.num_parameters() == 9 + 1 + 4 * 2 + 2
    shapes = [o.shape[1:] for o in m.intermediate_outputs(_letters())]
    assert shapes == [(1, 4, 4), (1, 4, 4), (1, 2, 2), (4,), (2,)]
    assert "ox_tutorial_cnn" in zoo.MODELS


def test_it_starts_from_the_ring_filter_whose_pooled_vectors_are_equal():
    m = zoo.ox_tutorial_cnn()
    conv, _, pooled, flat, _ = m.intermediate_outputs(_letters(np.float32))
    assert conv[0, 0, 0].tolist() == [2, 1, 1, 2] and conv[1, 0, 1].tolist() == [1, 2, 2, 1]  # the tutorial's maps
    assert flat[0].tolist() == flat[1].tolist() == [2, 2, 2, 2]  # the ring alone cannot tell O from X
    random = zoo.ox_tutorial_cnn(tutorial_filter=False)
    assert not np.array_equal(random.layers[0].weight.data[0, 0], np.asarray(we.OX_FILTER))


def test_a_short_run_learns_the_ox_toy_and_the_tutorials_letters():
    x, y = ox_dataset(60, seed=0)
    xt, yt = ox_dataset(50, seed=1000)
    m = zoo.ox_tutorial_cnn(seed=0).compile("adam", lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the training doctor may comment on the first epochs
        m.fit(x, y, epochs=20, batch_size=16, seed=0, verbose=0)
    _, acc = m.evaluate(xt, yt)
    assert acc >= 0.95
    assert m.predict(_letters()).argmax(axis=1).tolist() == [0, 1]  # the crisp 6x6 O and X
