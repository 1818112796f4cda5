"""The child process of ``check``: imports the learner's file and runs the graded cases.

Run as ``python -m cnnlab.exercises._child FILE NAME RESULT.json``. The parent sets the memory
and CPU limits before this starts; results go to RESULT.json (the learner may print freely).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback


def main(argv) -> int:
    path, name, result_path = argv
    result = {"exercise": name, "cases": [], "error": None}
    try:
        from cnnlab.exercises import _run_cases, catalog

        ex = catalog.get(name)
        cases = ex.cases()
        spec = importlib.util.spec_from_file_location("learner_solution", path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        try:
            spec.loader.exec_module(module)
        except MemoryError:
            raise
        except Exception as err:  # noqa: BLE001
            line = next((f.lineno for f in reversed(traceback.extract_tb(err.__traceback__)) if f.filename == path), "?")
            result["error"] = f"importing {path} failed at line {line}: {type(err).__name__}: {err}"
            cases = []
        for case in cases:
            result["cases"].append(_run_cases.run_case(module, case, ex.hints))
        _run_cases.assign_hints(result["cases"])
    except MemoryError:
        result["error"] = "memory"
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
