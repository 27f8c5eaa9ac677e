"""stanlib's import graph has no cycles.

An AST walk collects every import of a stanlib module by a stanlib module, at module level and
inside functions: a lazy (function-level) import hides a cycle from Python, not from a reader, and
a module that imports "upwards" cannot be understood or tested without the layers above it.

- Module-level imports alone must form no cycle at all.
- All imports together must form no cycle once the upward imports listed in
  ``KNOWN_UPWARD_IMPORTS`` are left out. Each entry says why it exists and how it goes away; the
  list may only shrink (an entry whose import is gone is reported with a warning: delete it).

A failure names the cycle as ``module -> module (file:line)`` steps.

Deprecated aliases that a module resolves on first access (a module ``__getattr__``, PEP 562, e.g.
``stanlib.engine.evaluate.cli_main``) are redirects for old code, not dependencies, and are not counted.
"""
from __future__ import annotations

import ast
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "stanlib"

# (importer, imported): an import that points upwards, why it exists and what removes it. Empty: the
# package has none; the list may only shrink.
KNOWN_UPWARD_IMPORTS: dict[tuple[str, str], str] = {}


def package_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package under ``root``."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _known(name: str, modules: dict) -> str | None:
    """The module an import of ``name`` loads: the longest prefix that is a module of the package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _module_level_nodes(tree: ast.Module) -> set[int]:
    """ids of the import nodes that run when the module is imported (not inside a def or lambda)."""
    found, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.add(id(node))
        todo.extend(ast.iter_child_nodes(node))
    return found


def import_edges(root: Path = ROOT) -> list[tuple[str, str, str, bool]]:
    """``(importer, imported, "file:line", module_level)`` for every intra-package import."""
    modules = package_modules(root)
    edges = []
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        top = _module_level_nodes(tree)
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                # `from pkg import name`: the submodule pkg.name if there is one, else pkg itself
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            for name in names:
                target = _known(name, modules) if name.split(".")[0] == PACKAGE else None
                if target and target != mod:
                    edges.append((mod, target, where, id(node) in top))
                    # importing stanlib.a.b first runs the subpackage stanlib.a (its __init__), unless the
                    # importer is inside it; the root package is always running already
                    parent = target.rpartition(".")[0]
                    while parent.count("."):
                        if parent in modules and not mod.startswith(parent + ".") and parent != mod:
                            edges.append((mod, parent, where, id(node) in top))
                        parent = parent.rpartition(".")[0]
    return edges


def find_cycle(edges) -> list[tuple[str, str, str]] | None:
    """One cycle as a list of ``(importer, imported, where)`` steps, or None (depth-first search)."""
    graph: dict[str, dict[str, str]] = {}
    for src, dst, where, _ in edges:
        graph.setdefault(src, {}).setdefault(dst, where)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                loop = path[path.index(nxt):] + [nxt]
                return [(a, b, graph[a][b]) for a, b in zip(loop, loop[1:])]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def _describe(cycle) -> str:
    return "import cycle:\n" + "\n".join(f"  {a} -> {b}  ({where})" for a, b, where in cycle)


def test_the_graph_sees_every_kind_of_import(tmp_path):
    files = {
        "__init__.py": "from stanlib.a import thing\n",
        "a.py": "from stanlib import b\nimport stanlib.sub.c\nthing = 1\n",
        "b.py": "def f():\n    from stanlib.sub import c\n    from stanlib import thing\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\nfrom ..b import f\nif True:\n    import stanlib.sub\n",
    }
    for name, text in files.items():
        (tmp_path / PACKAGE / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / PACKAGE / name).write_text(text)
    got = {(a, b, where, top) for a, b, where, top in import_edges(tmp_path)}
    assert got == {
        ("stanlib", "stanlib.a", "stanlib/__init__.py:1", True),
        ("stanlib.a", "stanlib.b", "stanlib/a.py:1", True),          # `from pkg import module`: the submodule
        ("stanlib.a", "stanlib.sub.c", "stanlib/a.py:2", True),
        ("stanlib.a", "stanlib.sub", "stanlib/a.py:2", True),        # a submodule runs its package's __init__
        ("stanlib.b", "stanlib.sub.c", "stanlib/b.py:2", False),     # inside a function
        ("stanlib.b", "stanlib.sub", "stanlib/b.py:2", False),
        ("stanlib.b", "stanlib", "stanlib/b.py:3", False),           # `from pkg import name`: the package
        ("stanlib.sub.c", "stanlib.a", "stanlib/sub/c.py:1", True),  # relative imports
        ("stanlib.sub.c", "stanlib.b", "stanlib/sub/c.py:2", True),
        ("stanlib.sub.c", "stanlib.sub", "stanlib/sub/c.py:4", True),  # under an `if`: still module level
    }
    cycle = find_cycle([e for e in import_edges(tmp_path) if e[3]])
    assert cycle == [("stanlib.a", "stanlib.sub.c", "stanlib/a.py:2"), ("stanlib.sub.c", "stanlib.a", "stanlib/sub/c.py:1")]


def test_no_cycle_among_module_level_imports():
    cycle = find_cycle([e for e in import_edges() if e[3]])
    assert cycle is None, _describe(cycle)


def test_no_cycle_among_all_imports_except_the_known_upward_ones():
    edges = import_edges()
    cycle = find_cycle([e for e in edges if (e[0], e[1]) not in KNOWN_UPWARD_IMPORTS])
    assert cycle is None, _describe(cycle) + "\n(function-level imports count: move the shared code down a layer)"
    present = {(a, b) for a, b, _, _ in edges}
    gone = sorted(set(KNOWN_UPWARD_IMPORTS) - present)
    if gone:
        warnings.warn(f"these upward imports are gone: delete them from KNOWN_UPWARD_IMPORTS: {gone}")


def test_the_package_does_not_import_the_repository_scripts():
    """``benchmarks/`` and ``tools/`` are scripts of the repository, not in the wheel: stanlib never imports them."""
    scripts = {path.stem for folder in ("benchmarks", "tools") for path in (ROOT / folder).glob("*.py")}
    scripts |= {"benchmarks", "tools"}
    found = []
    for mod, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in scripts]
    assert not found, "the package imports repository scripts:\n" + "\n".join(found)
    assert (ROOT / "benchmarks" / "bench.py").is_file() and not (ROOT / PACKAGE / "bench.py").exists()


def test_distributed_helpers_live_in_one_module():
    import stanlib.engine.distributed as distributed
    import stanlib.engine.losses as losses
    import stanlib.engine.trainer as train

    for name in ("dist_ready", "gather_with_grad", "gather_no_grad"):
        assert getattr(losses, name) is getattr(distributed, name), name  # old import path still works
    for name in ("DistInfo", "init_distributed", "current_dist"):
        assert getattr(train, name) is getattr(distributed, name), name


def test_moved_evaluation_command_keeps_its_old_names():
    import pytest

    import stanlib.engine.evaluate as evaluate
    import stanlib.inference.evaluate as evaluate_checkpoint

    for name in ("cli_main", "load_trained"):
        with pytest.warns(DeprecationWarning, match="stanlib.inference.evaluate"):
            assert getattr(evaluate, name) is getattr(evaluate_checkpoint, name)


def test_old_flat_module_paths_still_import_the_same_module_with_a_warning():
    """Code written for the flat layout (``import stanlib.train``) gets the module that now holds the code."""
    import importlib
    import sys

    import pytest

    from stanlib._moved import MOVED

    modules = package_modules()
    for old, new in MOVED.items():
        assert new in modules, f"{old} points to {new}, which is not a module of the package"
        assert old not in modules, f"{old} exists as a file again: delete it or its MOVED entry"
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert sys.modules[old] is module
    sys.modules.pop("stanlib.train")
    with pytest.warns(DeprecationWarning):
        from stanlib.train import Trainer  # `from old import name` too
    from stanlib.engine.trainer import Trainer as new_trainer
    assert Trainer is new_trainer


def test_the_repository_uses_only_the_new_module_paths():
    """The package, tests, tools, benchmarks and notebooks import from the current layout (no warnings)."""
    import re

    from stanlib._moved import MOVED

    pattern = re.compile(r"\b(" + "|".join(re.escape(old) for old in MOVED) + r")\b(?![.\w-])")
    found = []
    skip = {ROOT / "stanlib" / "_moved.py", ROOT / "stanlib" / "__init__.py", ROOT / "tests" / "test_imports.py"}
    files = [p for folder in ("stanlib", "tests", "tools", "benchmarks", "notebooks") for p in (ROOT / folder).rglob("*")
             if p.suffix in (".py", ".ipynb", ".md") and p not in skip]
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not found, "old module paths (see stanlib/_moved.py):\n" + "\n".join(found[:30])


def test_every_subpackage_says_what_it_holds():
    import importlib

    for name in ("model", "weights", "data", "engine", "inference", "teaching", "viz", "assets"):
        doc = importlib.import_module(f"stanlib.{name}").__doc__
        assert doc and len(doc.split()) >= 10, f"stanlib/{name}/__init__.py needs a docstring saying what it holds"
