"""The grader proven: reference solutions pass, skeletons fail, classic mistakes get their hint."""
import json
import sys
import types

import numpy as np
import pytest

from cnnlab import exercises
from cnnlab.exercises import _run_cases, catalog
from cnnlab.exercises.catalog_challenge import _gradcheck

from .solutions import SOLUTIONS, WRONG

FAST = [n for n in catalog.names() if n != "challenge"]


def grade(name, source):
    """Run every case in this process (fast); the subprocess path has its own tests below."""
    module = types.ModuleType("learner")
    module.__file__ = "<learner>"
    exec(compile(source, "<learner>", "exec"), module.__dict__)  # noqa: S102  (test sources only)
    ex = catalog.get(name)
    with np.errstate(all="ignore"):  # a wrong softmax overflows on purpose
        records = [_run_cases.run_case(module, c, ex.hints) for c in ex.cases()]
    _run_cases.assign_hints(records)
    return records


def test_every_exercise_has_a_source_cases_and_skeleton():
    assert len(catalog.names()) == 15
    for name in catalog.names():
        ex = catalog.get(name)
        assert "cnnlab exercise: " + name in ex.skeleton and "TODO" in ex.skeleton
        assert ex.source[:2] in {"01", "03", "04"}
        assert len(ex.cases()) >= 2


@pytest.mark.parametrize("name", FAST)
def test_reference_solution_passes(name):
    results = grade(name, SOLUTIONS[name])
    assert [r["label"] for r in results if not r["passed"]] == []


@pytest.mark.parametrize("name", catalog.names())
def test_skeleton_fails_every_case(name):
    results = grade(name, catalog.get(name).skeleton)
    assert not any(r["passed"] for r in results)
    assert "not written yet" in results[0]["message"]


@pytest.mark.parametrize("name,old,new,hint", WRONG, ids=[f"{w[0]}-{w[3]}-{i}" for i, w in enumerate(WRONG)])
def test_classic_mistake_fails_with_its_hint(name, old, new, hint):
    source = SOLUTIONS[name]
    assert old in source
    wrong = source.replace(old, new)
    if name == "challenge":  # the gradient check is what catches a broken backward
        module = types.ModuleType("learner")
        exec(compile(wrong, "<learner>", "exec"), module.__dict__)  # noqa: S102
        ok, message = _gradcheck(module)
        assert not ok and "relative gradient error" in message
        return
    results = grade(name, wrong)
    failed = [r for r in results if not r["passed"]]
    assert failed
    if hint is not None:
        assert hint in {r["hint"] for r in failed}
        assert hint in catalog.get(name).hints


def test_every_exercise_has_two_wrong_solutions_and_every_hint_is_proven():
    counts = {}
    for name, *_, hint in WRONG:
        counts[name] = counts.get(name, 0) + 1
    assert all(counts.get(n, 0) >= 2 for n in catalog.names())
    proven = {(w[0], w[3]) for w in WRONG}
    assert [(n, k) for n in catalog.names() for k in catalog.get(n).hints if (n, k) not in proven] == []


def test_challenge_gradient_check_passes_the_reference():
    module = types.ModuleType("learner")
    exec(compile(SOLUTIONS["challenge"], "<learner>", "exec"), module.__dict__)  # noqa: S102
    ok, message = _gradcheck(module)
    assert ok, message


def test_tutorial_numbers_are_the_first_cases():
    conv = catalog.get("convolve2d").cases()[0]
    assert conv.expected[0].tolist() == [0, 30, 30, 0, 0]
    pool = catalog.get("maxpool").cases()[0]
    assert pool.expected[0, 0].tolist() == [[6, 8], [9, 11]]


# ----- the real, separate-process check --------------------------------------------------------
def _write(tmp_path, name, source):
    path = exercises.start(name, tmp_path)
    path.write_text(f'"""cnnlab exercise: {name}"""\n' + source)
    return path


def test_check_in_a_subprocess_passes_and_fails(tmp_path):
    good = _write(tmp_path, "maxpool", SOLUTIONS["maxpool"])
    result = exercises.check(good)
    assert result.passed and len(result.cases) == 14
    bad = _write(tmp_path / "b", "maxpool", SOLUTIONS["maxpool"].replace("+= dout", "= dout"))
    result = exercises.check(bad)
    assert not result.passed
    assert "accumulate with +=" in result.report()
    assert "expected:" in result.report() and "max error" in result.report()


def test_infinite_loop_is_stopped_with_a_clear_message(tmp_path):
    path = _write(tmp_path, "relu", "def relu_forward(x):\n    while True:\n        pass\n")
    result = exercises.check(path, timeout=4)
    assert not result.passed and "stopped after" in result.error and "infinite loop" in result.error


def test_huge_allocation_ends_with_a_memory_message(tmp_path):
    # 1.15 GB would fit on this machine: only the child's 600 MB limit stops it
    path = _write(tmp_path, "relu", "import numpy as np\ndef relu_forward(x):\n    return np.ones((12000, 12000))\n")
    result = exercises.check(path, timeout=30, memory_mb=600)
    assert not result.passed and "ran out of memory" in result.error


def test_import_error_is_reported(tmp_path):
    path = _write(tmp_path, "relu", "def relu_forward(x):\n    return x +\n")
    result = exercises.check(path, timeout=30)
    assert "importing" in result.error and "SyntaxError" in result.error


def test_cli_list_start_check_json(tmp_path, capsys):
    from cnnlab.cli import main

    assert main(["exercise", "list"]) == 0
    assert "conv_matrix" in capsys.readouterr().out
    assert main(["exercise", "start", "output_size", "--dir", str(tmp_path)]) == 0
    capsys.readouterr()
    path = tmp_path / "output_size.py"
    assert main(["exercise", "check", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and len(data["cases"]) == 8
    path.write_text(path.read_text() + SOLUTIONS["output_size"])
    assert main(["exercise", "check", str(path)]) == 0
    assert main(["exercise", "start", "output_size", "--dir", str(tmp_path)]) == 2  # never overwrites
    assert main(["exercise", "start", "nope"]) == 2


def test_challenge_end_to_end_in_a_subprocess(tmp_path):
    """Gradient check, then MNIST 0 vs 1 at 14x14 to >= 99% (2,000 training images: seconds)."""
    path = _write(tmp_path, "challenge", SOLUTIONS["challenge"])
    result = exercises.check(path)
    assert result.passed, result.report()
    assert "test accuracy" in result.cases[1]["message"]
    acc = float(result.cases[1]["message"].split("test accuracy ")[1].split("%")[0])
    assert acc >= 99.0


def test_bad_paths_and_names_are_clear_errors(tmp_path, capsys):
    from cnnlab.cli import main

    with pytest.raises(FileNotFoundError, match="no exercise file"):
        exercises.check(tmp_path / "missing.py")
    plain = tmp_path / "plain.py"
    plain.write_text("x = 1\n")
    with pytest.raises(ValueError, match="cnnlab exercise: NAME"):
        exercises.check(plain)
    with pytest.raises(ValueError, match="no exercise named 'nope'"):
        exercises.check(plain, name="nope")
    assert main(["exercise", "check", str(tmp_path / "missing.py")]) == 2
    assert "no exercise file" in capsys.readouterr().err
