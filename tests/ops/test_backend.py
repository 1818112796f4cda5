"""cnnlab.engines.runtime: the switch, the NumPy fallback, and the Numba kernels' element-by-element rules."""
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from cnnlab.engines import runtime as backend
from cnnlab.engines import maxpool2d_backward, maxpool2d_forward, relu_backward, relu_forward

needs_numba = pytest.mark.skipif(not backend.HAVE_NUMBA, reason="compares the Numba kernels with NumPy")


def test_switch_restores_and_rejects_unknown_names():
    before = backend.get_backend()
    with backend.backend("numpy"):
        assert backend.get_backend() == "numpy" and not backend.use_numba()
    assert backend.get_backend() == before
    with pytest.raises(ValueError, match="unknown backend 'gpu'; expected one of 'numba', 'numpy'"):
        backend.set_backend("gpu")
    assert backend.get_backend() == before


def test_environment_variable_forces_numpy_and_everything_still_trains():
    code = ("import numpy as np\n"
            "from cnnlab.engines import runtime as backend\n"
            "from cnnlab.models.zoo import simple_cnn\n"
            "assert not backend.HAVE_NUMBA and backend.get_backend() == 'numpy'\n"
            "try:\n    backend.set_backend('numba')\nexcept ValueError as e:\n    print(e)\n"
            "m = simple_cnn(); m.compile('sgd', lr=0.05)\n"
            "rng = np.random.default_rng(0)\n"
            "h = m.fit(rng.random((64, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 64), batch_size=32,"
            " verbose=0, doctor=False)\n"
            "import sys; print('numba' in sys.modules, h.stop_reason)\n")
    env = dict(os.environ, CNNLAB_NO_NUMBA="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["backend 'numba' is not available: CNNLAB_NO_NUMBA is set.",
                                       "False completed"]


@needs_numba
def test_kernels_run_on_the_first_available_layer_and_leave_no_openmp_setting_behind():
    if "NUMBA_THREADING_LAYER" in os.environ:
        pytest.skip("the environment chooses the threading layer")
    with backend.backend("numba"):
        relu_forward(np.ones(1 << 16, dtype=np.float32))  # a parallel kernel has run
        assert backend.threading_layer() in backend.LAYER_PRIORITY
        assert os.environ.get("GOMP_SPINCOUNT") != backend.GOMP_SPIN  # set while libgomp loaded, then removed


@needs_numba
def test_a_child_forked_after_the_kernels_ran_computes_with_numpy():
    import multiprocessing as mp

    from cnnlab.ops.conv import conv2d_forward

    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((3, 4, 3, 3))
    with backend.backend("numba"):
        want = conv2d_forward(x, w, None, 1, 1)[0]
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_conv, args=(queue, x, w))
    child.start()
    got, engine, message = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    if backend.threading_layer() == "omp":  # GNU OpenMP: the child fell back to NumPy, and says why
        assert engine == "numpy" and "forked" in message


def _child_conv(queue, x, w):
    from cnnlab.ops.conv import conv2d_forward

    message = ""
    try:
        backend.set_backend("numba")
    except ValueError as err:
        message = str(err)
    queue.put((conv2d_forward(x, w, None, 1, 1)[0], backend.get_backend(), message))


# ----- ReLU: the same bits, NaN, infinities and signed zeros included ---------------------------------
@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernel_matches_numpy_on_special_values(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1 << 16).astype(dtype)  # above the kernel threshold
    x[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0]
    dout = rng.standard_normal(x.shape).astype(dtype)
    dout[6:9] = [np.nan, -np.inf, -2.0]
    x[6:9] = -1.0  # masked out: NaN * 0 = NaN, -inf * 0 = NaN, -2 * 0 = -0, as NumPy's product
    with backend.backend("numpy"), np.errstate(invalid="ignore"):
        want_out, want_mask = relu_forward(x)
        want_dx = relu_backward(dout, want_mask)
    with backend.backend("numba"):
        out, mask = relu_forward(x)
        dx = relu_backward(dout, mask)
    np.testing.assert_array_equal(out, want_out)  # NaN == NaN here; -0 and 0 compare equal
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(dx, want_dx)
    assert out.dtype == dx.dtype == dtype and mask.dtype == bool


# ----- max pooling: ties, padding, overlap, NaN ------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 1, 1), (3, 2, 1), ((2, 3), (1, 2), (1, 1)), (2, 3, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_kernels_match_numpy_bit_for_bit(k, s, p, dtype):
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, (3, 4, 9, 8)).astype(dtype)  # many ties
    x[0, 0, 2, 3] = np.nan
    x[1, 1] = -np.inf  # a channel of -inf: windows tie with the -inf padding
    with backend.backend("numpy"), np.errstate(invalid="ignore"):
        want, want_cache = maxpool2d_forward(x, k, s, p)
        dout = rng.standard_normal(want.shape).astype(dtype)
        want_dx = maxpool2d_backward(dout, want_cache)
    with backend.backend("numba"):
        out, cache = maxpool2d_forward(x, k, s, p)
        dx = maxpool2d_backward(dout, cache)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(cache.argmax, want_cache.argmax)
    np.testing.assert_allclose(dx, want_dx, rtol=0, atol=0)


# ----- the training loop's fused steps ---------------------------------------------------------------------
@pytest.mark.parametrize("engine", [b for b in backend.BACKENDS if b == "numpy" or backend.HAVE_NUMBA])
def test_fit_with_fused_steps_gives_the_weights_of_the_layer_by_layer_loop(engine):
    from cnnlab.models.zoo import simple_cnn

    rng = np.random.default_rng(2)
    x = rng.random((96, 1, 28, 28), dtype=np.float32)
    x[x < 0.6] = 0  # MNIST-like zeros: ties in every pooling window
    y = rng.integers(0, 10, 96)
    with backend.backend(engine):
        fitted = simple_cnn(seed=3)
        fitted.compile("sgd", lr=0.05, momentum=0.9)
        fitted.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0, doctor=False)
        manual = simple_cnn(seed=3)
        opt = manual.compile("sgd", lr=0.05, momentum=0.9).optimizer
        for start in range(0, 96, 32):  # layer by layer: the model's fusion plan is not used
            logits = x[start:start + 32]
            for layer in manual.layers:
                logits = layer.forward(logits, training=True)
            manual.loss_fn.forward(logits, y[start:start + 32])
            opt.zero_grad()
            dout = manual.loss_fn.backward()
            for layer in reversed(manual.layers):
                dout = layer.backward(dout)
            opt.step()
    for key, value in manual.state_dict().items():
        np.testing.assert_array_equal(fitted.state_dict()[key], value, err_msg=key)


# ----- im2col / col2im kernels: every geometry, bit for bit ---------------------------------------------
@needs_numba
def test_im2col_and_col2im_kernels_match_numpy_on_many_geometries():
    from cnnlab.ops.im2col import col2im, im2col

    K = backend.kernels()
    rng = np.random.default_rng(3)
    cases = 0
    # sizes from 1 (a kernel far wider than the image: shifts past whole rows) to 6, strides 1-3
    for H, W, KH, KW, sh, sw in [(1, 2, 3, 5, 1, 1), (2, 1, 5, 3, 1, 1), (5, 4, 3, 3, 1, 1), (6, 5, 2, 3, 2, 1),
                                 (4, 6, 3, 2, 1, 3), (3, 3, 1, 1, 2, 2), (6, 6, 3, 3, 3, 2), (1, 1, 3, 3, 1, 1)]:
        for ph in range(KH):
            for pw in range(KW):
                H_out, W_out = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
                if H_out < 1 or W_out < 1:
                    continue
                x = rng.standard_normal((2, 3, H, W))
                cols = np.full((3 * KH * KW, 2 * H_out * W_out), np.nan)  # every entry must be written
                K.im2col(x, KH, KW, sh, sw, ph, pw, H_out, W_out, cols)
                np.testing.assert_array_equal(cols, im2col(x, (KH, KW), (sh, sw), (ph, pw)))
                d = rng.standard_normal(cols.shape)
                dx = np.full(x.shape, np.nan)
                K.col2im(d.copy(), KH, KW, sh, sw, ph, pw, H_out, W_out, dx)
                np.testing.assert_array_equal(dx, col2im(d, x.shape, (KH, KW), (sh, sw), (ph, pw)))
                cases += 1
    assert cases == 47


def _layer_by_layer(model, x):
    for layer in model.layers:  # without the model's fusion plan
        x = layer.forward(x)
    return x


@pytest.mark.parametrize("engine", [b for b in backend.BACKENDS if b == "numpy" or backend.HAVE_NUMBA])
def test_predict_and_evaluate_with_fused_steps_give_the_layer_by_layer_numbers(engine):
    from cnnlab.training.losses import CrossEntropyLoss
    from cnnlab.ops.activation import softmax
    from cnnlab.models.zoo import bn_cnn, simple_cnn

    rng = np.random.default_rng(4)
    x = rng.random((40, 1, 28, 28), dtype=np.float32)
    x[x < 0.6] = 0
    y = rng.integers(0, 10, 40)
    with backend.backend(engine):
        for model in (simple_cnn(seed=5), bn_cnn(seed=5)):
            logits = np.concatenate([_layer_by_layer(model, x[s:s + 16]) for s in range(0, 40, 16)])
            np.testing.assert_array_equal(model.predict(x, batch_size=16), softmax(logits, axis=1))
            loss = sum(CrossEntropyLoss().forward(logits[s:s + 16], y[s:s + 16]) * len(y[s:s + 16])
                       for s in range(0, 40, 16)) / 40
            got_loss, got_acc = model.evaluate(x, y, batch_size=16)
            assert got_loss == pytest.approx(loss, rel=1e-12)
            assert got_acc == np.mean(np.argmax(logits, axis=1) == y)


@needs_numba
@pytest.mark.parametrize("keep", [False, True])
def test_openblas_threads_are_calmed_when_the_kernels_load_unless_asked_not_to(keep):
    code = ("import os, numpy as np\n"
            "from cnnlab.engines import runtime as backend\n"
            "from cnnlab.engines import relu_forward\n"
            "a = np.random.default_rng(0).random((300, 300))\n"
            "before = a @ a\n"
            "relu_forward(np.ones(1 << 16, dtype=np.float32))  # loads the kernels\n"
            "print(len(backend._calmed), os.environ.get('OPENBLAS_THREAD_TIMEOUT'))\n"
            "print(np.array_equal(a @ a, before))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "CNNLAB_KEEP_OPENBLAS")}
    if keep:
        env["CNNLAB_KEEP_OPENBLAS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    calmed, same = out.stdout.split()[:2], out.stdout.split()[2]
    assert same == "True"  # the products are unchanged (and run) after the restart
    uses_openblas = "openblas" in str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]).lower()
    if keep or not uses_openblas or not os.path.exists("/proc/self/maps"):
        assert calmed == ["0", "None"]
    else:
        assert int(calmed[0]) >= 1 and calmed[1] == "4"


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="the malloc settings come with the Numba kernels")
@pytest.mark.parametrize("keep", [False, True])
def test_freed_arrays_keep_their_pages_when_the_kernels_load_unless_asked_not_to(keep):
    # a (64, 16, 28, 28) batch norm frees and allocates 3 MB arrays every step: with glibc's
    # defaults each step faults them in again (hundreds of page faults); with the settings, none
    code = ("import resource, numpy as np\n"
            "from cnnlab.engines import runtime as backend\n"
            "from cnnlab.layers import BatchNorm2d\n"
            "bn, rng = BatchNorm2d(16), np.random.default_rng(0)\n"
            "x = rng.standard_normal((64, 16, 28, 28), dtype=np.float32)\n"
            "for _ in range(4):\n"
            "    bn.forward(x, training=True); bn.backward(x)\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(10):\n"
            "    bn.forward(x, training=True); bn.backward(x)\n"
            "print(backend._malloc_kept == [True], (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "CNNLAB_KEEP_MALLOC"}
    if keep:
        env["CNNLAB_KEEP_MALLOC"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    applied, faults = out.stdout.split()[:2]
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert applied == str(glibc and not keep)
    if applied == "True":
        assert float(faults) < 50  # the pages were kept (defaults: ~770 per step on Linux/glibc)


@pytest.mark.skipif(not (backend.HAVE_NUMBA and sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"),
                    reason="the malloc settings are glibc's, and come with the Numba kernels")
def test_freed_memory_kept_before_training_is_handed_back():
    # arrays freed after the kernels load stay mapped (the settings keep them for the next
    # training step); release_freed_memory, which fit calls first, returns them
    code = ("import numpy as np\n"
            "from cnnlab.engines import runtime as backend\n"
            "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
            "backend.kernels()\n"
            "parts = [np.ones(10 << 20, dtype=np.float32) for _ in range(3)]\n"  # 3 x 40 MB, from the heap
            "loaded = rss(); del parts\n"
            "kept = rss(); released = backend.release_freed_memory()\n"
            "print(backend._malloc_kept == [True], released, round(loaded - kept), round(kept - rss()))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "CNNLAB_KEEP_MALLOC"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    applied, released, dropped_by_del, dropped_by_release = out.stdout.split()
    assert applied == released == "True"
    assert int(dropped_by_del) < 20  # kept: freeing 120 MB gave (almost) nothing back
    assert int(dropped_by_release) > 100  # handed back


def test_fit_hands_back_memory_freed_before_training(monkeypatch):
    from cnnlab.layers import Dense
    from cnnlab.models import Sequential
    from cnnlab.training import loop

    calls = []
    monkeypatch.setattr(loop.runtime, "release_freed_memory", lambda: calls.append(1) or True)
    model = Sequential([Dense(4, 2, rng=0)]).compile("sgd")
    x, y = np.zeros((8, 4), np.float32), np.zeros(8, np.int64)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert calls == [1]  # once, before the first step
