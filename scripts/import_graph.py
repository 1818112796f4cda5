"""Count a package's import cycles and function-level imports (runs on any cnnlab tree).

    python scripts/import_graph.py [PACKAGE_DIR] [--except A:B ...]   # default: ./cnnlab

``--except A:B`` leaves out the edges from module A to modules under B (a documented
exception, e.g. ``cnnlab.models.sequential:cnnlab.training``).

An edge A -> B is any ``import``/``from ... import`` of a module of the package, at module
level or inside a function (a function-level import still makes a cycle at run time).
``from pkg import name`` counts as an edge to ``pkg.name`` when that is a module, else to
``pkg``. Cycles: strongly connected components of more than one module (the package
top ``cnnlab/__init__`` excluded: it only re-exports). Also counted at package level
(``cnnlab.ops.conv`` -> ``cnnlab.ops``; top-level modules stand for themselves).
"""
import ast
import sys
from pathlib import Path


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]):
    """Yield (target module, at function level?) for each import of the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    func_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                yield t, id(node) in func_nodes


def sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def main(root: Path, excepted=()) -> None:
    mods = modules(root)
    known = set(mods)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    n_func, func_mods = 0, set()
    n_any = sum(1 for p in mods.values() for f in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                for n in f.body for m in ast.walk(n) if isinstance(m, (ast.Import, ast.ImportFrom)))
    for name, path in mods.items():
        for target, in_func in imports(name, path, known):
            if in_func:
                n_func += 1
                func_mods.add(name)
            if target == name.split(".")[0]:  # the top package: its __init__ only re-exports
                continue
            if any(name == a and (target == b or target.startswith(b + ".")) for a, b in excepted):
                continue
            graph[name].add(target)
    cycles = sccs(graph)
    top = lambda m: ".".join(m.split(".")[:2])  # noqa: E731
    pkg_graph: dict[str, set[str]] = {}
    for a, targets in graph.items():
        pkg_graph.setdefault(top(a), set()).update(top(t) for t in targets if top(t) != top(a))
    pkg_cycles = sccs(pkg_graph)
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in mods.values())
    print(f"modules: {len(mods)}, lines: {lines}")
    print(f"function-level imports of the package: {n_func} in {len(func_mods)} modules "
          f"({n_any} function-level import statements of any module)")
    print(f"import cycles (strongly connected groups): {len(cycles)}, modules in them: {sum(map(len, cycles))}")
    for c in cycles:
        print("  ", " <-> ".join(c))
    print(f"package-level cycles: {len(pkg_cycles)}, packages/modules in them: {sum(map(len, pkg_cycles))}")
    for c in pkg_cycles:
        print("  ", " <-> ".join(c))


if __name__ == "__main__":
    args = sys.argv[1:]
    excepted = [tuple(args[i + 1].split(":")) for i, a in enumerate(args) if a == "--except"]
    paths = [a for i, a in enumerate(args) if a != "--except" and (i == 0 or args[i - 1] != "--except")]
    main(Path(paths[0]) if paths else Path("cnnlab"), excepted)
