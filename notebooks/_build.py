"""Build the four companion notebooks, stored without outputs: ``python notebooks/_build.py``.

Edit the cells here, not in the .ipynb files, so the four stay consistent.
"""
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

SETUP = '''import os, tempfile
import numpy as np
import matplotlib
import matplotlib.pyplot as plt
from IPython.display import display

# Quick by default; set CNNLAB_FULL=1 (or FULL = True) for the tutorials' full training runs.
FULL = os.environ.get("CNNLAB_FULL") == "1"
WORK = tempfile.mkdtemp(prefix="cnnlab-exercises-")  # where the exercise skeletons go
print("full runs" if FULL else "quick runs (set FULL = True for the full ones)")'''

EXERCISE_HOWTO = '''from cnnlab import exercises

def try_exercise(name):
    """Write the skeleton (first time only) and grade it; edit the file, then run this cell again."""
    path = os.path.join(WORK, name + ".py")
    if not os.path.exists(path):
        exercises.start(name, WORK)
    result = exercises.check(path)
    print(result.report().splitlines()[-1], "-", path)
    return result'''


def md(text):
    return nbf.v4.new_markdown_cell(text.strip())


def code(text):
    return nbf.v4.new_code_cell(text.strip())


def notebook(cells, path):
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = cells
    nbf.write(nb, path)


# ----- 01 -------------------------------------------------------------------------------------------
notebook([
    md("""# From Pixels to Patterns, with cnnlab

Companion to tutorial 01 (*Understanding Convolutional Neural Networks: From Pixels to Patterns*).
Every number below is computed by cnnlab; the tutorial's text stays in the tutorial. Run the cells
top to bottom. Interactive version of several figures: `cnnlab lab` (the browser lab)."""),
    code(SETUP),
    md("""## The vertical-edge example
A 7x7 image, bright on the left, dark on the right, and the 3x3 kernel with columns 1, 0, -1.
A valid convolution gives a 5x5 map whose middle columns light up where the edge is."""),
    code('''from cnnlab.lab.filters import KERNELS, apply_kernel
image = np.array([[10, 10, 10, 0, 0, 0, 0]] * 7, dtype=float)
edge = apply_kernel(image, KERNELS["vertical_edge"])
print(edge)
assert edge[0].tolist() == [0, 30, 30, 0, 0]'''),
    code('''from cnnlab.lab.viz import conv_step
fig = conv_step(image, KERNELS["vertical_edge"], at=(0, 1))'''),
    md("""## The kernel zoo on a real digit
Pick a kernel with the dropdown (ipywidgets) and see its response on an MNIST test digit."""),
    code('''import ipywidgets as widgets
from cnnlab.datasets import load_mnist
_, (x_test, y_test) = load_mnist()
digit = x_test[0].astype(float) / 255

def show_kernel(name="sobel_x"):
    fig, ax = plt.subplots(1, 3, figsize=(8, 2.6))
    ax[0].imshow(digit, cmap="gray"); ax[0].set_title(f"digit {y_test[0]}")
    ax[1].imshow(KERNELS[name], cmap="RdBu_r"); ax[1].set_title(name)
    ax[2].imshow(apply_kernel(digit, KERNELS[name], padding=1), cmap="RdBu_r"); ax[2].set_title("response")
    for a in ax: a.axis("off")
    plt.show()

display(widgets.interactive(show_kernel, name=sorted(KERNELS)))'''),
    md("## Padding and stride: the output-size formula"),
    code('''from cnnlab.lab.explain import output_size
for n, k, s, p in [(7, 3, 1, 0), (7, 3, 1, 1), (28, 3, 1, 1), (28, 2, 2, 0), (32, 5, 2, 2)]:
    print(output_size(n, k, s, p)[1])'''),
    md("""## Max pooling — and an erratum
The tutorial's 4x4 example prints `[[3, 4], [9, 11]]`. Each 2x2 block's maximum is in fact
**[[6, 8], [9, 11]]**: the top-left block holds 1, 3, 5, 6 and the top-right 2, 4, 7, 8."""),
    code('''from cnnlab.ops.pool import maxpool2d_forward
x = np.array([[1, 3, 2, 4], [5, 6, 7, 8], [9, 2, 1, 3], [4, 5, 11, 2]], dtype=float)[None, None]
pooled, _ = maxpool2d_forward(x, 2, 2)
print(pooled[0, 0])
assert pooled[0, 0].tolist() == [[6, 8], [9, 11]]'''),
    md("""## Receptive field growth — and a second erratum
Three stacked 3x3 convolutions see 3x3, 5x5 and 7x7 windows of the input: **9, 25 and 49 pixels**
(the tutorial says 9, 15, 21, which adds widths instead of squaring them)."""),
    code('''from cnnlab.lab.explain import receptive_field
from cnnlab.layers import Conv2d
from cnnlab.models import Sequential
stack = Sequential([Conv2d(1, 1, 3, padding=1), Conv2d(1, 1, 3, padding=1), Conv2d(1, 1, 3, padding=1)],
                   input_shape=(1, 28, 28))
rows, text = receptive_field(stack)
print(text)'''),
    md("## The tutorial's SimpleCNN: 421,642 parameters"),
    code('''from cnnlab import zoo
model = zoo.simple_cnn()
model.summary()
assert model.num_parameters() == 421642'''),
    md("""Train it. The quick run uses 2,000 images and one epoch (about 89% on 1,000 test digits); `FULL = True` runs
`cnnlab train`'s recipe on all 60,000 (>= 99.3%; minutes)."""),
    code('''from cnnlab.datasets import add_channel_axis, to_float
(x_train, y_train), _ = load_mnist()
n = None if FULL else 2000
xtr, ytr = add_channel_axis(to_float(x_train[:n])), y_train[:n].astype(np.int64)
xte, yte = add_channel_axis(to_float(x_test[:1000])), y_test[:1000].astype(np.int64)
model = zoo.simple_cnn(seed=0)
model.compile("adam", lr=1e-3)
model.fit(xtr, ytr, epochs=8 if FULL else 1, batch_size=64, verbose=0, seed=0)
print(f"test accuracy on 1,000 test digits: {model.evaluate(xte, yte)[1]:.2%}")'''),
    md("""## Backpropagation through convolution and pooling: your turn
The exercises below come from this tutorial. `try_exercise(NAME)` writes a skeleton into a temporary
folder and grades it (in a separate process, with time and memory limits). Open the printed file,
fill in the TODOs, and run the cell again. From a terminal: `cnnlab exercise start NAME`,
`cnnlab exercise check NAME.py`."""),
    code(EXERCISE_HOWTO),
    code('''for name in ["output_size", "convolve2d", "maxpool", "conv2d_backward"]:
    try_exercise(name)'''),
    code('''print(exercises.check(os.path.join(WORK, "maxpool.py")).report()[-400:])'''),
], HERE / "01_from_pixels_to_patterns.ipynb")


# ----- 02 -------------------------------------------------------------------------------------------
notebook([
    md("""# CNNs, a complete tutorial (after StatQuest): O versus X, then a Keras-style MNIST CNN

Companion to tutorial 02. The 6x6 letters, one convolution step at a time, ReLU, pooling,
flattening, a trainable one-filter CNN, then the Keras tutorial's MNIST network, all in cnnlab."""),
    code(SETUP),
    md("## The letters O and X"),
    code('''from cnnlab.datasets import ox_templates
letters = ox_templates()  # (2, 6, 6): O and X
fig, ax = plt.subplots(1, 2, figsize=(4, 2))
for a, img, name in zip(ax, letters, "OX"):
    a.imshow(img, cmap="gray_r"); a.set_title(name); a.axis("off")
print(letters.shape)'''),
    md("""## Step 1, convolution: one window at a time
The slider moves the filter over the letter (ipywidgets); the figure writes the multiply-add out."""),
    code('''import ipywidgets as widgets
from cnnlab.lab.filters import KERNELS
from cnnlab.lab.viz import conv_step
kernel = KERNELS["diagonal_edge_main"]

def step(i=0, j=0):
    conv_step(letters[0], kernel, at=(i, j))
    plt.show()

display(widgets.interactive(step, i=(0, 3), j=(0, 3)))'''),
    md("## Steps 2-4: ReLU, max pooling, flatten"),
    code('''from cnnlab.lab.viz import pipeline_figure
fig = pipeline_figure(letters[1], kernel, padding=1, pool=2)'''),
    md("""## A trainable CNN for O versus X
Noisy, shifted letters; the tutorial's network (`zoo.ox_tutorial_cnn`: one 3x3 filter that starts as the tutorial's ring, ReLU, 2x2 max pool, dense) learns with Adam."""),
    code('''from cnnlab.lab import train_toy
model, history, acc = train_toy("ox", seed=0)
print(f"held-out accuracy: {acc:.1%} after {len(history.history['loss'])} epochs")
assert acc > 0.9'''),
    code('''from cnnlab.lab.viz import filters_figure
fig = filters_figure(model)'''),
    md("""## The Keras tutorial's MNIST CNN
Same architecture as the tutorial's Keras model (two conv + pool blocks, dropout, dense).
Quick: 3,000 images, one epoch (about 83% on 1,000 test digits); `FULL = True`: all 60,000 and five epochs."""),
    code('''from cnnlab import zoo
from cnnlab.datasets import add_channel_axis, load_mnist, to_float
(x_train, y_train), (x_test, y_test) = load_mnist()
n = None if FULL else 3000
xtr, ytr = add_channel_axis(to_float(x_train[:n])), y_train[:n].astype(np.int64)
xte, yte = add_channel_axis(to_float(x_test[:1000])), y_test[:1000].astype(np.int64)
keras_cnn = zoo.keras_tutorial_cnn(seed=0)
keras_cnn.summary()
keras_cnn.compile("adam", lr=1e-3)
keras_cnn.fit(xtr, ytr, epochs=5 if FULL else 1, batch_size=64, verbose=0, seed=0)
print(f"test accuracy on 1,000 digits: {keras_cnn.evaluate(xte, yte)[1]:.2%}")'''),
    md("## Feature maps and the prediction for one digit"),
    code('''from cnnlab.lab.viz import class_probabilities, feature_maps, probabilities_figure
fig = feature_maps(keras_cnn, xte[:1], max_channels=8)
fig = probabilities_figure(class_probabilities(keras_cnn, xte[:1]), true_label=int(yte[0]), image=xte[0, 0])'''),
    md("""## Exercises from this tutorial
ReLU, max pooling, softmax cross-entropy and the dense layer. `try_exercise` writes the skeleton and
grades it; edit the file and rerun. The full, interactive walk-through lives in `cnnlab lab`."""),
    code(EXERCISE_HOWTO),
    code('''for name in ["relu", "maxpool", "softmax_ce", "dense"]:
    try_exercise(name)'''),
], HERE / "02_statquest_ox_and_keras.ipynb")


# ----- 03 -------------------------------------------------------------------------------------------
notebook([
    md("""# CNNs Deep Dive: convolutions from scratch, with cnnlab

Companion to tutorial 03: convolve2d with stride and padding, pooling, layer classes with a
backward pass, the lines toy and its learned filters."""),
    code(SETUP),
    md("## convolve2d with stride and padding"),
    code('''from cnnlab.lab.filters import KERNELS, apply_kernel
from cnnlab.ops.shapes import conv_output_size
rng = np.random.default_rng(0)
image = rng.integers(0, 10, (7, 7)).astype(float)
for stride, padding in [(1, 0), (1, 1), (2, 0), (2, 1)]:
    out = apply_kernel(image, KERNELS["sharpen"], stride=stride, padding=padding)
    print(f"stride {stride}, padding {padding}: output {out.shape}, formula {conv_output_size(7, 3, stride, padding)}")'''),
    md("""## Stride and padding, interactively (ipywidgets)"""),
    code('''import ipywidgets as widgets
from cnnlab.lab.viz import conv_step

def explore(stride=1, padding=0, i=0, j=0):
    n = conv_output_size(7, 3, stride, padding)
    conv_step(image, KERNELS["sharpen"], at=(min(i, n - 1), min(j, n - 1)), stride=stride, padding=padding)
    plt.show()

display(widgets.interactive(explore, stride=(1, 3), padding=(0, 2), i=(0, 8), j=(0, 8)))'''),
    md("## Max and average pooling"),
    code('''from cnnlab.ops.pool import avgpool2d_forward, maxpool2d_forward
fmap = np.arange(16.0).reshape(1, 1, 4, 4)
print("max 2x2/2:\\n", maxpool2d_forward(fmap, 2, 2)[0][0, 0])
print("avg 2x2/2:\\n", avgpool2d_forward(fmap, 2, 2)[0][0, 0])
print("max 3x3/1 (overlapping windows):\\n", maxpool2d_forward(fmap, 3, 1)[0][0, 0])'''),
    md("""## Layers with a backward pass, checked
cnnlab's layers hold the forward/backward pairs; a central-difference gradient check confirms them."""),
    code('''from cnnlab.layers import Conv2d, MaxPool2d
from cnnlab.testing import check_layer_gradients
x = rng.standard_normal((2, 1, 6, 6))
print(check_layer_gradients(Conv2d(1, 2, 3, dtype=np.float64, rng=0), x))
print(check_layer_gradients(MaxPool2d(2), x))'''),
    md("""## The lines toy: vertical versus horizontal
An 8x8 image with one line; a tiny CNN learns filters that look like line detectors."""),
    code('''from cnnlab.lab import train_toy
from cnnlab.lab.viz import filters_figure
model, history, acc = train_toy("lines", seed=0)
print(f"held-out accuracy: {acc:.1%}")
assert acc > 0.9
fig = filters_figure(model)'''),
    md("""## Exercises from this tutorial
convolve2d with stride and padding, average pooling, conv2d forward and batch norm.
(In a terminal: `cnnlab exercise list`.)"""),
    code(EXERCISE_HOWTO),
    code('''for name in ["convolve2d_stride_padding", "avgpool", "conv2d_forward", "batchnorm"]:
    try_exercise(name)'''),
], HERE / "03_cnns_deep_dive.ipynb")


# ----- 04 -------------------------------------------------------------------------------------------
notebook([
    md("""# Motivation for Convolutions, with cnnlab

Companion to tutorial 04: why dense layers do not scale to images, Sobel edges, translation
equivariance, convolution as a sparse matrix, receptive fields, then the tutorial's exercises and
its challenge, graded."""),
    code(SETUP),
    md("## Parameters: dense versus convolutional"),
    code('''from cnnlab.lab.explain import parameter_comparison
rows, text = parameter_comparison()'''),
    md("## Sobel edges on a checkerboard (coding exercise 1)"),
    code('''from cnnlab.lab.filters import KERNELS, apply_kernel
board = (np.indices((8, 8)).sum(axis=0) % 2).astype(float)
fig, ax = plt.subplots(1, 3, figsize=(8, 2.6))
ax[0].imshow(board, cmap="gray"); ax[0].set_title("checkerboard")
for a, name in zip(ax[1:], ["sobel_x", "sobel_y"]):
    a.imshow(apply_kernel(board, KERNELS[name]), cmap="RdBu_r"); a.set_title(name)
for a in ax: a.axis("off")'''),
    md("""## Translation equivariance (coding exercise 2)
Shift a digit by 5 pixels: the feature map shifts by 5 pixels too. Move the slider (ipywidgets)."""),
    code('''import ipywidgets as widgets
from cnnlab.datasets import load_mnist
from cnnlab.lab.explain import translation_equivariance
from cnnlab.lab.viz import equivariance_figure
_, (x_test, _) = load_mnist()
digit = np.pad(x_test[0].astype(float) / 255, 6)  # a zero border: the shift loses nothing

def shift(dx=5):
    result = translation_equivariance(digit, KERNELS["sobel_x"], shifts=((0, dx),))
    equivariance_figure(result)
    plt.show()
    print(f"max |conv(shift(x)) - shift(conv(x))| = {result.conv_max_error:.2e}")

display(widgets.interactive(shift, dx=(-6, 6)))'''),
    md("## Convolution as a sparse 16x36 matrix (coding exercise 3)"),
    code('''from cnnlab.lab.explain import conv_matrix
kernel = np.arange(1.0, 10).reshape(3, 3)
M = conv_matrix(kernel, (6, 6))
x = np.random.default_rng(0).standard_normal((6, 6))
print(M.shape, "non-zeros per row:", set((M != 0).sum(axis=1)))
assert np.allclose(M @ x.ravel(), apply_kernel(x, kernel).ravel())
plt.figure(figsize=(7, 3)); plt.imshow(M, cmap="viridis"); plt.title("16 x 36: one row per output pixel");'''),
    md("""## Receptive fields
Stacked 3x3 convolutions see 3x3, 5x5, 7x7 = 9, 25, 49 input pixels (tutorial 01 writes 9, 15, 21:
an erratum)."""),
    code('''from cnnlab.lab.explain import receptive_field
from cnnlab.layers import Conv2d, MaxPool2d
from cnnlab.models import Sequential
net = Sequential([Conv2d(1, 1, 3, padding=1), Conv2d(1, 1, 3, padding=1), Conv2d(1, 1, 3, padding=1),
                  MaxPool2d(2), Conv2d(1, 1, 3, padding=1)], input_shape=(1, 28, 28))
print(receptive_field(net)[1])'''),
    md("""## The exercises, graded
`try_exercise(NAME)` writes the skeleton and grades it. The challenge (your own conv, ReLU and dense
functions in a cnnlab `Sequential`, gradient-checked, then trained on MNIST 0 vs 1 at 14x14 to >= 99%)
is graded the same way: fill in `challenge.py` and run its cell again."""),
    code(EXERCISE_HOWTO),
    code('''for name in ["sobel", "equivariance", "conv_matrix", "challenge"]:
    try_exercise(name)'''),
    code('''print(exercises.check(os.path.join(WORK, "challenge.py")).report())'''),
], HERE / "04_motivation_for_convolutions.ipynb")
