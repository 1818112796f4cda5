"""`cnnlab warmup` and the cold-cache detection behind it (cnnlab.engines.runtime, cnnlab.training.warmup)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.engines import runtime as backend
from cnnlab.cli import main

needs_numba = pytest.mark.skipif(not backend.HAVE_NUMBA, reason="Numba is missing or CNNLAB_NO_NUMBA is set: "
                                                                "there are no kernels to compile")

_PROBE = ("from cnnlab.engines import runtime as backend; from cnnlab.engines import numba_kernels as k; "
          "print(sorted(backend.kernel_cache_files()) == sorted(k.__all__), backend.cold_kernels() == "
          "sorted(k.__all__), all(str(p).startswith(%r) for p in backend.kernel_cache_files().values()))")


@needs_numba
def test_an_empty_numba_cache_dir_is_detected_as_cold(tmp_path):
    """A fresh NUMBA_CACHE_DIR holds no index file: every kernel counts as cold (nothing compiles here)."""
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", _PROBE % str(cache)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "True", "True"]


@needs_numba
def test_warmup_compiles_every_kernel_and_says_so(capsys):
    """After `cnnlab warmup` no kernel lacks its compiled code on disk, so train will not stall."""
    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert "kernels ready in" in out and "not used by the warm-up" not in out
    assert backend.cold_kernels() == []
    assert all(path.is_file() for path in backend.kernel_cache_files().values())


def test_nothing_to_compile_on_the_numpy_backend(capsys):
    from cnnlab.training.warmup import ensure_warm, workload

    with backend.backend("numpy"):
        assert backend.cold_kernels() == [] and ensure_warm() is False
        assert backend.warmup(workload) == 0.0
    assert "nothing to compile" in capsys.readouterr().out
