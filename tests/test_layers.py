"""Layers: the modules of a package import each other one way only, lazy imports in functions included.

A cycle that only a function-level import closes still ties both modules together: neither can be
understood, tested or moved without the other, and the import order decides which half-initialised
module the other sees. `import_edges` reads every import with `ast` (module level, in functions,
under `if TYPE_CHECKING:`), resolves relative ones, and keeps those between modules of the package.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def module_files(package_dir: Path, package: str) -> dict[str, Path]:
    """Every module of the package by dotted name; a package (its __init__.py) under its own name."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement asks for: `from .a import b` gives `pkg.a.b` (a submodule or a name)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    return [f"{base}.{alias.name}" for alias in node.names]


def _owning_module(name: str, modules: dict[str, Path]) -> str | None:
    """The module of the package that `name` is, or is defined in (the longest module prefix)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges(package_dir: Path, package: str) -> set[tuple[str, str]]:
    """(importer, imported) for every import from one module of the package to another.

    A submodule's implicit import of its parent package is not an edge (every package would be a
    cycle with its own __init__.py); an explicit `import pkg` or `from pkg import name` is.
    """
    modules = module_files(package_dir, package)
    edges = set()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _imported_names(node, module, path.name == "__init__.py"):
                target = _owning_module(name, modules)
                if target is not None and target != module:
                    edges.add((module, target))
    return edges


def find_cycle(edges) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None; the same one on every run."""
    graph = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    done, path = set(), []

    def visit(node: str) -> list[str] | None:
        path.append(node)
        for following in sorted(graph[node]):
            if following in path:
                return path[path.index(following):] + [following]
            if following not in done:
                cycle = visit(following)
                if cycle:
                    return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_model_zoo_has_no_import_cycle():
    edges = import_edges(REPO / "model_zoo", "model_zoo")
    assert ("model_zoo", "model_zoo.push") in edges  # a function-level import counts
    assert ("model_zoo.recipes", "model_zoo.config") in edges  # `from ..config import` resolves
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_closed_by_a_lazy_relative_import_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("import os\n\nfrom .sub.b import helper\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def helper():\n    from ..a import os\n    import pkg\n")
    edges = import_edges(package, "pkg")
    assert edges == {("pkg", "pkg.a"), ("pkg.a", "pkg.sub.b"), ("pkg.sub.b", "pkg.a"), ("pkg.sub.b", "pkg")}
    assert find_cycle(edges) == ["pkg", "pkg.a", "pkg.sub.b", "pkg"]
    assert find_cycle(edges - {("pkg.sub.b", "pkg"), ("pkg.sub.b", "pkg.a")}) is None


def test_crema_tools_has_no_import_cycle():
    edges = import_edges(REPO / "crema_tools", "crema_tools")
    assert ("crema_tools.loading.transforms", "crema_tools.representations") in edges
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _module_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported (not those inside functions)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending += [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]


def test_the_data_half_never_imports_the_model_half():
    """crema_tools is usable without model_zoo: only the `predict` command reaches it, when it runs."""
    lazy = set()
    for module, path in module_files(REPO / "crema_tools", "crema_tools").items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        at_load = {id(node) for node in _module_level_imports(tree)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    n.split(".")[0] == "model_zoo" for n in _imported_names(node, module, path.name == "__init__.py")):
                assert id(node) not in at_load, f"{module} imports model_zoo when it is imported"
                lazy.add(module)
    assert lazy <= {"crema_tools.cli"}, f"only the CLI's predict command may reach model_zoo, not {sorted(lazy)}"


def test_no_module_is_over_450_lines():
    for package in ("crema_tools", "model_zoo"):
        for path in module_files(REPO / package, package).values():
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= 450, f"{path.relative_to(REPO)}: {lines} lines; split it into the jobs it does"
