"""OpenBLAS's parallel matrix products on the kernels' threads: one thread pool per process.

Why: a training step alternates a matrix product (NumPy's OpenBLAS, its own threads) and a
compiled kernel (Numba's OpenMP threads) every 0.1-2 ms. Two pools cannot both keep their
threads spinning on 2 cores (they would take turns on them), so each pool's threads sleep
right after their work, and every kernel and every product starts by waking a sleeping
thread. In a virtual machine a sleeping core is halted and waking it costs 30-160 us
(measured: a tiny kernel starts in 2.4 us with its thread awake, 89 us after 1 ms asleep),
many times per step. OpenBLAS (0.3.27 and later) can hand its parallel jobs to a caller's
pool instead (``openblas_set_threads_callback_function``): with the products on the
kernels' OpenMP threads there is one pool, its threads may spin between calls, and no
core is woken from halt inside a step.

:func:`share` registers a Numba ``cfunc`` (``_run_on_kernel_threads``) with each loaded
OpenBLAS that has the hook; OpenBLAS then calls it with ``numjobs`` jobs that must run at
the same time (they wait on each other), one per thread of a ``prange``. So OpenBLAS's
thread count is capped at the kernels' (:func:`share` sets it). :func:`release` undoes it
(after ``fork``: GNU OpenMP cannot run in a forked child).
The products' results are bit for bit the same: the same OpenBLAS code runs the same
jobs, only on other threads.
"""
from __future__ import annotations

import ctypes
import functools

import numba
import numpy as np
from llvmlite import ir
from numba import cfunc, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["hookable_libraries", "share", "release", "shared_libraries"]


@intrinsic
def _call_job(typingctx, job_fn, position, job, job_arg):
    """Call OpenBLAS's ``void dojob(int thread, void *job, int arg)`` at address ``job_fn``."""
    sig = types.void(types.intp, types.int32, types.intp, types.int32)

    def codegen(context, builder, signature, args):
        address, thread, job_address, arg = args
        bytes_ptr = ir.IntType(8).as_pointer()
        fn_type = ir.FunctionType(ir.VoidType(), [ir.IntType(32), bytes_ptr, ir.IntType(32)])
        builder.call(builder.inttoptr(address, fn_type.as_pointer()),
                     [thread, builder.inttoptr(job_address, bytes_ptr), arg])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _pool_threads(typingctx, count):
    """Set the calling thread's kernel thread count to ``count`` (when > 0); returns the previous
    one. Calls the threading layer's C functions by name, as ``numba.get_num_threads`` does,
    which keeps the callers cacheable."""
    sig = types.intp(types.intp)

    def codegen(context, builder, signature, args):
        get_fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(cgutils.intp_t, []), "get_num_threads")
        set_fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(32)]),
                                                "set_num_threads")
        before = builder.call(get_fn, [])
        with builder.if_then(builder.icmp_signed(">", args[0], ir.Constant(cgutils.intp_t, 0))):
            builder.call(set_fn, [builder.trunc(args[0], ir.IntType(32))])
        return before

    return sig, codegen


@njit(parallel=True, cache=True, nogil=True)
def _run_jobs(job_fn, numjobs, job_size, jobs, job_arg):
    """Job i at ``jobs + i * job_size``, all ``numjobs`` at once, one per kernel thread."""
    # numba.set_num_threads(k) in the calling thread would run the jobs k at a time: they would wait forever
    chosen = _pool_threads(0)
    if chosen < numjobs:
        _pool_threads(numjobs)  # GNU OpenMP runs a team of that size, even above NUMBA_NUM_THREADS
    for i in prange(numjobs):
        _call_job(job_fn, np.int32(i), jobs + i * job_size, job_arg)
    if chosen < numjobs:
        _pool_threads(chosen)


# void callback(int sync, dojob_fn dojob, int numjobs, size_t jobdata_elsize, void *jobdata, int dojob_data)
_CALLBACK_TYPE = types.void(types.int32, types.intp, types.int32, types.uintp, types.intp, types.int32)


def _run_on_kernel_threads(sync, job_fn, numjobs, job_size, jobs, job_arg):
    _run_jobs(job_fn, numjobs, job_size, jobs, job_arg)


@functools.cache
def _callback():
    """The C callback OpenBLAS calls, compiled (or loaded from the disk cache) on first use:
    it links to the threading layer's functions, which exist once the layer has started."""
    numba.get_num_threads()  # starts the threading layer if no kernel has yet
    return cfunc(_CALLBACK_TYPE, cache=True)(_run_on_kernel_threads)


#: the hook's name in OpenBLAS builds: plain, and NumPy/SciPy's renamed 64-bit-integer build
_REGISTER = ("openblas_set_threads_callback_function", "scipy_openblas_set_threads_callback_function64_")
_SET_THREADS = ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_")
_GET_THREADS = ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_")
_shared: list[tuple[str, object]] = []


def _functions(path: str):
    """(register, set_threads, get_threads) of a loaded OpenBLAS, or None without the hook."""
    try:
        lib = ctypes.CDLL(path)  # already loaded: the same handle
    except OSError:
        return None
    found = [next((getattr(lib, n) for n in names if hasattr(lib, n)), None)
             for names in (_REGISTER, _SET_THREADS, _GET_THREADS)]
    return None if None in found else found


def hookable_libraries(paths: list[str]) -> list[str]:
    """Those of these loaded OpenBLAS libraries that can run their jobs on a caller's threads."""
    return [path for path in paths if _functions(path)]


def share(paths: list[str]) -> list[str]:
    """Run the parallel jobs of these loaded OpenBLAS libraries (``runtime.loaded_openblas()``) on
    the kernels' threads, those that can (0.3.27+).

    OpenBLAS's thread count is capped to the kernels' pool (``NUMBA_NUM_THREADS``), so a product
    splits as the kernels do. Raised later (``threadpoolctl``), the jobs still all run at once:
    the call asks GNU OpenMP for a team of that size (tested).

    Returns:
        the paths of the libraries now sharing (empty when none could).
    """
    if _shared:
        return shared_libraries()
    for path in paths:
        functions = _functions(path)
        if functions is None:
            continue
        register, set_threads, get_threads = functions
        if get_threads() > numba.config.NUMBA_NUM_THREADS:
            set_threads(int(numba.config.NUMBA_NUM_THREADS))
        register(ctypes.c_void_p(_callback().address))
        _shared.append((path, register))
    return shared_libraries()


def release() -> None:
    """Give OpenBLAS its own threads back (it restarts them at its next parallel product)."""
    while _shared:
        _path, register = _shared.pop()
        register(ctypes.c_void_p(0))


def shared_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries whose jobs run on the kernels' threads now."""
    return [path for path, _ in _shared]
