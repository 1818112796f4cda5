"""Run an exercise's cases on an imported learner module and compare (inside the child process)."""
from __future__ import annotations

import copy
import traceback

import numpy as np

SHOW_LIMIT = 64  # values: arrays larger than this are summarized, not printed


def _tol(dtype) -> tuple[float, float]:
    return (1e-4, 1e-5) if np.dtype(dtype) == np.float32 else (1e-7, 1e-9)


def _parts(value, names):
    if names:
        if not isinstance(value, (tuple, list)) or len(value) != len(names):
            return None
        return list(value)
    return [value]


def _close(exp, got) -> tuple[bool, str, float]:
    """(equal?, why not, max abs error) for one array or number."""
    try:
        g = np.asarray(got)
    except Exception:  # noqa: BLE001  (anything the learner returns)
        return False, f"returned {type(got).__name__}, not an array or number", float("inf")
    e = np.asarray(exp)
    if g.shape != e.shape:
        return False, f"shape {g.shape}, expected {e.shape}", float("inf")
    if not np.issubdtype(g.dtype, np.number) and g.dtype != bool:
        return False, f"dtype {g.dtype}, expected numbers", float("inf")
    if e.ndim and np.issubdtype(e.dtype, np.floating) and g.dtype != e.dtype:
        return False, f"dtype {g.dtype}, expected {e.dtype} (keep the input's dtype)", float("inf")
    if e.ndim == 0 and isinstance(exp, (int, np.integer)) and not float(g).is_integer():
        return False, f"{g.item()!r} is not an integer", float(abs(float(g) - float(e)))
    if not np.all(np.isfinite(g.astype(np.float64))):
        return False, "contains inf or nan", float("inf")
    err = float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64)))) if e.size else 0.0
    rtol, atol = _tol(e.dtype if np.issubdtype(e.dtype, np.floating) else np.float64)
    ok = bool(np.allclose(g.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol))
    return ok, "" if ok else f"values differ (max error {err:.3g})", err


def compare(expected, got, names) -> tuple[bool, str, float]:
    exp_parts, got_parts = _parts(expected, names), _parts(got, names)
    if got_parts is None:
        return False, f"must return a tuple of {len(names)}: ({', '.join(names)})", float("inf")
    worst = 0.0
    for i, (e, g) in enumerate(zip(exp_parts, got_parts)):
        ok, why, err = _close(e, g)
        if not ok:
            return False, (f"{names[i]}: " if names else "") + why, err
        worst = max(worst, err)
    return True, "", worst


def _matches(variant, got, names) -> bool:
    v_parts, g_parts = _parts(variant, names), _parts(got, names)
    if g_parts is None:
        return False
    for v, g in zip(v_parts, g_parts):
        try:
            v, g = np.asarray(v, np.float64), np.asarray(g, np.float64)
        except Exception:  # noqa: BLE001
            return False
        if v.shape != g.shape or not np.allclose(g, v, rtol=1e-4, atol=1e-5):
            return False
    return True


def diagnose(case, got, hints) -> list[str]:
    """Keys of the classic mistakes the learner's output matches on this case (maybe several:
    on one case two wrong formulas can agree; the grader picks the one matching most cases)."""
    keys = [key for key, variant in case.variants.items()
            if not compare(case.expected, variant, case.names)[0] and _matches(variant, got, case.names)]
    if "non_finite" in hints:
        for part in _parts(got, case.names) or []:
            try:
                if not np.all(np.isfinite(np.asarray(part, np.float64))):
                    keys.append("non_finite")
                    break
            except Exception:  # noqa: BLE001
                pass
    return keys


def _show(value):
    """JSON-able form of a value: small arrays as nested lists, big ones summarized."""
    if isinstance(value, (tuple, list)) and not isinstance(value, np.ndarray):
        return [_show(v) for v in value]
    try:
        a = np.asarray(value)
    except Exception:  # noqa: BLE001
        return repr(value)[:200]
    if a.dtype == object:
        return repr(value)[:200]
    if a.size <= SHOW_LIMIT:
        if np.issubdtype(a.dtype, np.floating):
            a = a.round(5)  # readable; the max error is reported exactly
        return a.tolist() if a.ndim else a.item()
    return f"array of shape {a.shape}, dtype {a.dtype}"


def run_case(module, case, hints) -> dict:
    record = {"label": case.label, "passed": False, "message": "", "max_error": None, "matches": []}
    try:
        if case.call is not None:
            got = case.call(module)
        else:
            fn = getattr(module, case.func, None)
            if fn is None:
                record["message"] = f"your file defines no function {case.func}()"
                return record
            got = fn(*copy.deepcopy(case.args))
    except NotImplementedError:
        record["message"] = f"{case.func}() is not written yet (it raises NotImplementedError: fill in the TODO)"
        return record
    except MemoryError:
        raise
    except SystemExit:
        record["message"] = f"{case.func}() called sys.exit() / exit(): return a value instead"
        return record
    except Exception as err:  # noqa: BLE001  (the learner's bug, reported)
        tb = traceback.extract_tb(err.__traceback__)
        where = next((f" (line {f.lineno} of your file)" for f in reversed(tb) if f.filename == module.__file__), "")
        record["message"] = f"raised {type(err).__name__}: {err}{where}"
        return record
    if case.expected is None:  # self-grading case: call returns (ok, message)
        record["passed"], record["message"] = bool(got[0]), got[1]
        return record
    ok, why, err = compare(case.expected, got, case.names)
    record.update(passed=ok, message=why, max_error=None if err == float("inf") else err)
    if not ok:
        record["matches"] = diagnose(case, got, hints)
        record["size"] = case.size()
        record["input"] = [_show(a) for a in case.args]
        exp_show, got_show = case.expected, got
        if case.names and isinstance(got, (tuple, list)) and len(got) == len(case.names):
            for i, name in enumerate(case.names):  # show only the part that is wrong
                if not _close(case.expected[i], got[i])[0]:
                    record["part"], exp_show, got_show = name, case.expected[i], got[i]
                    break
        record["expected"], record["got"] = _show(exp_show), _show(got_show)
    return record


def assign_hints(records) -> None:
    """Give each failing record the ``hint`` key, among its matches, that matches the most cases."""
    counts: dict[str, int] = {}
    for r in records:
        for key in r.get("matches", []):
            counts[key] = counts.get(key, 0) + 1
    for r in records:
        r["hint"] = max(r.get("matches", []), key=lambda k: counts[k], default=None)
