"""OpenBLAS's parallel matrix products on the kernels' threads (``cnnlab.engines.blas_threads``)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from cnnlab.engines import runtime

pytestmark = pytest.mark.skipif(not runtime.HAVE_NUMBA, reason="the kernels' threads come with Numba")


@pytest.fixture(scope="module")
def blas_threads():
    runtime.kernels()
    from cnnlab.engines import blas_threads

    if not blas_threads.hookable_libraries(runtime.loaded_openblas()):
        pytest.skip("no loaded OpenBLAS has the threads hook (OpenBLAS 0.3.27 or later)")
    if os.environ.get("CNNLAB_KEEP_OPENBLAS") or runtime.threading_layer() != "omp":
        pytest.skip("the environment keeps OpenBLAS's own threads")
    return blas_threads


def _operands(dtype):
    # large enough for OpenBLAS to split the product over 2 threads
    rng = np.random.default_rng(0)
    return rng.standard_normal((256, 300)).astype(dtype), rng.standard_normal((300, 700)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_give_the_same_bits_on_the_kernels_threads_as_on_openblas_own(blas_threads, dtype):
    assert blas_threads.shared_libraries() == blas_threads.hookable_libraries(runtime.loaded_openblas())
    a, b = _operands(dtype)
    shared = a @ b
    blas_threads.release()
    try:
        assert blas_threads.shared_libraries() == []
        own = a @ b
    finally:
        blas_threads.share(runtime.loaded_openblas())
    assert np.array_equal(shared, own)
    np.testing.assert_allclose(shared, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-3)


def test_openblas_hands_a_products_jobs_to_the_callback(blas_threads):
    import ctypes

    args = (ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int32)
    real = ctypes.CFUNCTYPE(None, *args)(blas_threads._callback().address)
    calls = []

    @ctypes.CFUNCTYPE(None, *args)
    def counting(sync, job_fn, numjobs, job_size, jobs, job_arg):
        calls.append(numjobs)
        real(sync, job_fn, numjobs, job_size, jobs, job_arg)

    a, b = _operands(np.float32)
    want = a @ b
    register = blas_threads._functions(blas_threads.shared_libraries()[0])[0]
    register(ctypes.cast(counting, ctypes.c_void_p))
    try:
        got = a @ b
    finally:
        register(ctypes.c_void_p(blas_threads._callback().address))
    assert np.array_equal(got, want)
    threads = blas_threads.numba.config.NUMBA_NUM_THREADS
    if threads > 1:  # one product: one call, its jobs one per thread
        assert len(calls) == 1 and 2 <= calls[0] <= threads


def _run(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "CNNLAB_KEEP_OPENBLAS"}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_product_completes_when_the_caller_asked_numba_for_one_thread(blas_threads):
    # the jobs wait on each other: run one at a time they would hang (the timeout would fail the test)
    code = ("import numba, numpy as np\n"
            "from cnnlab.engines import runtime, blas_threads\n"
            "runtime.kernels()\n"
            "a = np.random.default_rng(0).random((400, 400))\n"
            "want = a @ a\n"
            "numba.set_num_threads(1)\n"
            "got = a @ a\n"
            "print(len(blas_threads.shared_libraries()), np.array_equal(got, want), numba.get_num_threads())\n")
    assert _run(code) == ["1", "True", "1"]


def test_a_product_completes_when_openblas_is_given_more_threads_than_the_pool(blas_threads):
    # e.g. threadpoolctl raising OpenBLAS to 4 threads on 2 cores: 4 jobs, all at once
    code = ("import ctypes, numpy as np\n"
            "from cnnlab.engines import runtime, blas_threads\n"
            "runtime.kernels()\n"
            "a = np.random.default_rng(0).random((600, 600))\n"
            "want = a @ a\n"
            "set_threads = blas_threads._functions(blas_threads.shared_libraries()[0])[1]\n"
            "set_threads(blas_threads.numba.config.NUMBA_NUM_THREADS + 2)\n"
            "print(np.array_equal(a @ a, want))\n")
    assert _run(code) == ["True"]


def test_cnnlab_keep_openblas_leaves_openblas_its_own_threads(blas_threads):
    code = ("from cnnlab.engines import runtime, blas_threads\n"
            "runtime.kernels()\n"
            "print(len(blas_threads.shared_libraries()))\n")
    assert _run(code, CNNLAB_KEEP_OPENBLAS="1") == ["0"]
    assert _run(code) == ["1"]


def test_a_forked_child_runs_products_on_openblas_own_threads(blas_threads):
    import multiprocessing as mp

    a, b = _operands(np.float64)
    want = a @ b
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_product, args=(queue, a, b))
    child.start()
    got, shared = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    assert shared == [] and np.array_equal(got, want)


def _child_product(queue, a, b):
    from cnnlab.engines import blas_threads

    queue.put((a @ b, blas_threads.shared_libraries()))
