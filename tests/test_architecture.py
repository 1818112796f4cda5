"""The package imports only downward, has no import cycles, and no module imports another's private names.

Levels, bottom first (docs/ARCHITECTURE.md); a module may import its own level or lower. At the
lab level, ``lab`` comes first: ``bench``, ``server`` and ``exercises`` may use it, nothing below
uses them, and only ``cli`` imports them. The old top-level names (``cnnlab.models.zoo``, ...) are
shims that nothing inside cnnlab imports.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "cnnlab"
LEVELS = {"utils": 0, "datasets": 1, "ops": 2, "testing": 2, "engines": 3, "layers": 4, "models": 5, "training": 6,
          "lab": 7, "bench": 7.5, "server": 7.5, "exercises": 7.5, "cli": 8, "__main__": 9, "": 9}
SHIMS = {"zoo", "io", "explain", "viz", "backend", "callbacks", "checkpoints", "doctor", "history", "optim", "losses",
         "initializers"}
#: the one upward edge, and why: Keras-style ``model.compile/fit/evaluate/predict`` hand the model to
#: ``cnnlab.training`` when called (function-level imports in those four methods only)
ALLOWED_UP = {("cnnlab.models.sequential", "cnnlab.training")}


def _modules():
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(name, path, known):
    """(target module, imported names) of every cnnlab import in the module, function level included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnnlab"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                yield (sub, ()) if sub in known else (node.module, (a.name,))
        elif isinstance(node, ast.Import):
            yield from ((a.name, ()) for a in node.names if a.name.startswith("cnnlab"))


def _level(module):
    top = module.split(".")[1] if "." in module else ""
    return 10 if top in SHIMS else LEVELS[top]


def test_imports_go_down_without_cycles_or_private_names():
    modules = dict(_modules())
    graph, bad = {}, []
    for name, path in modules.items():
        for target, names in _imports(name, path, set(modules)):
            if target == "cnnlab" or target == name:
                continue
            allowed = any(name == a and target.startswith(b) for a, b in ALLOWED_UP)
            up = _level(target) > _level(name) and not allowed
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [target] if "._" in target and target.rsplit(".", 1)[0] not in name else []
            bad += [f"{name} imports {target} {'(upward) ' if up else ''}{private or ''}"] if up or private else []
            if not allowed:
                graph.setdefault(name, set()).add(target)
    assert not bad, "\n".join(bad)
    state = {}  # depth-first search: 1 on the path, 2 done

    def visit(node, path):
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [node])
