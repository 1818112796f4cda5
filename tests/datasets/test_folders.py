"""Image folders and single pictures: generated PNG/JPEG files in temporary folders."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.datasets import load_image, load_image_folder, to_mnist_like
from cnnlab.datasets.mnist import SHIPPED_DIR
from cnnlab.datasets.idx import read_idx


def _save(path, array):
    """Save as an image; the mode follows the array: (H, W) L, (H, W, 3) RGB, (H, W, 4) RGBA."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "shapes"
    _save(root / "b_dog" / "1.png", np.full((10, 12), 200))
    _save(root / "b_dog" / "0.PNG", np.full((30, 30), 50))  # upper-case extension counts
    _save(root / "a_cat" / "x.jpg", np.full((16, 16, 3), 128))  # colour JPEG -> grey
    _save(root / "c_red" / "r.png", np.dstack([np.full((8, 8), 255), np.zeros((8, 8)), np.zeros((8, 8))]))
    (root / "b_dog" / "notes.txt").write_text("not an image, ignored")
    (root / "b_dog" / ".hidden.png").write_bytes(b"")  # hidden: ignored, though it would fail
    (root / ".git").mkdir()  # hidden folder: not a class
    return root


def test_happy_path_grayscale(folder):
    x, y, names = load_image_folder(folder)
    assert names == ["a_cat", "b_dog", "c_red"]
    assert x.shape == (4, 28, 28) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 1, 2]
    assert abs(int(x[0].mean()) - 128) <= 2  # JPEG is lossy
    np.testing.assert_array_equal(x[1], 50)  # "0.PNG" sorts before "1.png"
    np.testing.assert_array_equal(x[2], 200)  # a constant image stays constant when resized
    assert x[3].min() == x[3].max() == 76  # pure red in ITU-R 601 luma: 255 * 299/1000 = 76.2


def test_happy_path_colour_is_channels_first(folder):
    x, y, names = load_image_folder(folder, image_size=(5, 7), grayscale=False)
    assert x.shape == (4, 3, 5, 7) and x.dtype == np.uint8 and x.flags.c_contiguous
    np.testing.assert_array_equal(x[3, 0], 255)
    np.testing.assert_array_equal(x[3, 1:], 0)
    np.testing.assert_array_equal(x[2], 200)


def test_height_and_width_are_not_swapped(tmp_path):
    img = np.zeros((40, 40), np.uint8)
    img[:20] = 255  # top half white
    _save(tmp_path / "root" / "only" / "a.png", img)
    x, _, _ = load_image_folder(tmp_path / "root", image_size=(20, 10))
    assert x.shape == (1, 20, 10)
    np.testing.assert_array_equal(x[0, :9], 255)
    np.testing.assert_array_equal(x[0, 11:], 0)


def test_extensions_argument(folder):
    (folder.parent / "j").mkdir()
    _save(folder.parent / "j" / "k" / "a.jpg", np.zeros((4, 4)))
    _save(folder.parent / "j" / "k" / "b.png", np.zeros((4, 4)))
    x, y, names = load_image_folder(folder.parent / "j", image_size=4, extensions=("jpg",))
    assert x.shape == (1, 4, 4) and names == ["k"]


def test_missing_root_and_no_classes(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    _save(tmp_path / "flat" / "a.png", np.zeros((4, 4)))
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_image_folder(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match="has no class sub-folders; expected .*<class name>/<image files>"):
        load_image_folder(tmp_path / "flat")


def test_empty_class_folder_is_named(folder):
    (folder / "d_empty").mkdir()
    with pytest.raises(ValueError, match="class 'd_empty'.* holds no images"):
        load_image_folder(folder)
    (folder / "d_empty" / "readme.md").write_text("x")
    with pytest.raises(ValueError, match="d_empty.*1 other file.*readme.md"):
        load_image_folder(folder)


def test_zero_byte_image_is_named(folder):
    (folder / "a_cat" / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png is empty \\(0 bytes\\)"):
        load_image_folder(folder)


def test_text_file_named_png_is_named(folder):
    (folder / "b_dog" / "fake.png").write_text("this is not a PNG at all")
    with pytest.raises(ValueError, match="cannot read image file .*fake.png"):
        load_image_folder(folder)


def test_truncated_png_is_named(folder, tmp_path):
    good = _save(tmp_path / "g.png", np.random.default_rng(0).integers(0, 256, (64, 64)))
    data = good.read_bytes()
    (folder / "a_cat" / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read image file .*cut.png"):
        load_image_folder(folder)


@pytest.mark.parametrize("side", [12, 20])  # 144 px: Pillow warns; 400 px: Pillow raises
def test_decompression_bomb_guard(tmp_path, monkeypatch, side):
    path = _save(tmp_path / "big" / "c" / "big.png", np.zeros((side, side)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match="big.png is too large"):
        load_image_folder(tmp_path / "big")
    with pytest.raises(ValueError, match="too large"):
        load_image(path)


def test_bad_image_size():
    with pytest.raises(ValueError, match="image_size must be"):
        load_image_folder(".", image_size=(0, 28))
    with pytest.raises(ValueError, match="image_size must be"):
        load_image("x.png", image_size=(28, 28, 1))


# ----- single pictures ----------------------------------------------------------------------
def _seven(light_background: bool):
    """A thick '7' drawn on a 60x40 canvas."""
    img = np.full((60, 40), 15, np.uint8)
    img[8:14, 6:34] = 245  # top bar
    for r in range(14, 52):  # diagonal stroke
        c = 34 - (r - 14) * 20 // 38
        img[r, c - 3 : c + 3] = 245
    return 255 - img if light_background else img


def test_load_image_inverts_a_light_background(tmp_path):
    light = load_image(_save(tmp_path / "light.png", _seven(True)))
    dark = load_image(_save(tmp_path / "dark.png", _seven(False)))
    assert light.shape == (28, 28) and light.dtype == np.uint8
    np.testing.assert_array_equal(light, dark)  # inverting the picture changes nothing
    assert light[0].max() == light[-1].max() == light[:, 0].max() == light[:, -1].max() == 0  # black margin
    assert light.max() == 255
    rows, cols = np.nonzero(light > 25)
    assert rows.max() - rows.min() + 1 == 20  # the taller side fits MNIST's 20-pixel box
    assert cols.max() - cols.min() + 1 <= 20
    mass = light.astype(float)
    cy = (mass.sum(1) * np.arange(28)).sum() / mass.sum()
    cx = (mass.sum(0) * np.arange(28)).sum() / mass.sum()
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # centre of mass where MNIST has it
    assert light[6:9, 8:20].mean() > 150  # the bar of the 7 is near the top


def test_load_image_reproduces_an_mnist_digit(tmp_path):
    digit = read_idx(SHIPPED_DIR / "mnist" / "t10k-images-idx3-ubyte.gz")[0]  # a 7
    photo = Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.NEAREST)  # dark ink on paper
    photo.save(tmp_path / "seven.png")
    out = load_image(tmp_path / "seven.png").astype(float)
    corr = np.corrcoef(out.ravel(), digit.astype(float).ravel())[0, 1]
    assert corr > 0.9


def test_transparent_png_is_flattened_on_white(tmp_path):
    rgba = np.zeros((30, 30, 4), np.uint8)  # fully transparent...
    rgba[5:25, 13:17] = (0, 0, 0, 255)  # ...except an opaque black stroke
    out = load_image(_save(tmp_path / "t.png", rgba))
    assert out.max() == 255 and out[0, 0] == 0  # white background inverted to black, ink bright


def test_load_image_plain_mode_and_blank_picture(tmp_path):
    path = _save(tmp_path / "flat.png", np.full((50, 70), 200))
    plain = load_image(path, image_size=(10, 14), mnist_like=False)
    assert plain.shape == (10, 14)
    np.testing.assert_array_equal(plain, 200)  # no inversion, no cropping
    np.testing.assert_array_equal(load_image(path), 0)  # blank: nothing to centre


def test_load_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ValueError, match="cannot read image file .*text.png"):
        load_image(tmp_path / "text.png")
    with pytest.raises(ValueError, match="2-D uint8"):
        to_mnist_like(np.zeros((3, 3, 3), np.uint8))


def _bar_picture(side: int, seed: int = 0) -> np.ndarray:
    """A dark vertical bar (a "1") on noisy light paper; the geometry scales with ``side``."""
    rng = np.random.default_rng(seed)
    img = np.full((side, side), 235, np.int16)
    img[side * 2 // 9:side * 7 // 9, side * 4 // 9:side * 52 // 90] = 20
    return np.clip(img + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)


def test_a_huge_picture_is_shrunk_first_and_needs_little_memory():
    import tracemalloc

    from cnnlab.datasets.folders import MNIST_LIKE_MAX_SIDE

    big = _bar_picture(3 * MNIST_LIKE_MAX_SIDE)  # 6144 x 6144: 38 MB of uint8
    tracemalloc.start()
    try:
        out = to_mnist_like(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # without the shrink the float32 temporaries alone took 4 x 4 x 38 MB; now about 2048**2 x 4 bytes each
    assert peak < 64e6, f"peak {peak / 1e6:.0f} MB"
    small = to_mnist_like(_bar_picture(600, seed=1))  # the same drawing, small
    assert out.shape == small.shape == (28, 28)
    crops = []
    for img in (out, small):
        rows, cols = np.flatnonzero(img.max(axis=1) > 128), np.flatnonzero(img.max(axis=0) > 128)
        crops.append(img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(int))
    # the same digit as the small picture gives (the centre may round to the next row): the bar
    # fills the 20-pixel box, 5 pixels wide, at full ink
    assert crops[0].shape == crops[1].shape == (20, 5)
    # (edge rows and columns shift by a fraction of a pixel between the two scales)
    assert np.abs(crops[0] - crops[1]).max() <= 8 and np.median(crops[0]) >= 250 and crops[0].min() >= 230
