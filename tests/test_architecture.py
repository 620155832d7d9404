"""The layout's rules, read from the source with `ast`: no import cycle among faceshield modules,
modules of a readable size, the engine free of gRPC and the service free of tensor math. Only the
last test imports anything of FaceShield: the public APIs, whose `__all__` must resolve (the
engine's brings torch)."""

from __future__ import annotations

import ast
import importlib
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATED = "faceshield.v1"  # grpcio-tools' output: neither sized nor held to the rules below
MAX_LINES = 400
# Modules over MAX_LINES lines, each with its size when listed: split them, then drop the entry
# (the test fails on an entry that no longer needs to be here). Add none.
OVER_MAX_LINES: dict[str, int] = {}

# Import cycles that existed when this test was written, each as the set of modules in it: break
# them, then drop the entry (the test fails on an entry that is no longer a cycle). Add none.
KNOWN_CYCLES: set[frozenset[str]] = set()  # none left


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module = field(repr=False)

    @property
    def lines(self) -> int:
        return len(self.path.read_text().splitlines())


def _package_dirs() -> dict[str, Path]:
    """pyproject.toml's package-dir: the `faceshield.*` packages and the folders they live in."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {name: ROOT / folder for name, folder in config["tool"]["setuptools"]["package-dir"].items()}


def _modules() -> dict[str, Module]:
    modules = {}
    for package, folder in _package_dirs().items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = Module(name, path, is_package, ast.parse(path.read_text(), str(path)))
    return modules


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import among `nodes` and under them, at module level and inside functions and
    classes, except in `if TYPE_CHECKING:` blocks (their `else:` counts)."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.orelse)
        else:
            yield from _import_nodes(ast.iter_child_nodes(node))


def _resolve(module: Module, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The faceshield modules that an import statement names (a `from x import y` names the
    module x.y when there is one, else x)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module.name if module.is_package else module.name.rpartition(".")[0]
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - (node.level - 1)])
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names]
    out = set()
    for name in names:
        while name and name not in MODULES:  # `import a.b.c` where c is an attribute: the deepest module
            name = name.rpartition(".")[0]
        if name.startswith("faceshield.") and name != module.name:
            out.add(name)
    return out


def imports(module: Module) -> set[str]:
    """The faceshield modules that `module` imports."""
    return set().union(*(_resolve(module, node) for node in _import_nodes([module.tree])))


def import_graph() -> dict[str, set[str]]:
    return {name: imports(m) for name, m in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(graph, component) for component in components]


def _cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle from the component's first module back to it, within the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


# -- the rules ---------------------------------------------------------------------------
def test_the_walk_sees_the_packages():
    """Guards the tests below against passing on an empty walk."""
    assert {"faceshield.engine", "faceshield.service", "faceshield.cli", "faceshield.client"} <= set(MODULES)
    assert len(MODULES) > 50
    graph = import_graph()
    assert "faceshield.client.errors" in graph["faceshield.client.sync"]  # a relative import
    assert "faceshield.v1.faceshield_pb2" in graph["faceshield.client.sync"]  # `from faceshield.v1 import x`


def test_no_import_cycle():
    found = cycles(import_graph())
    new = [c for c in found if frozenset(c) not in KNOWN_CYCLES]
    assert not new, "import cycles among faceshield modules:\n" + "\n".join(" -> ".join(c) for c in new)
    gone = [sorted(k) for k in KNOWN_CYCLES if k not in {frozenset(c) for c in found}]
    assert not gone, f"no longer a cycle: drop from KNOWN_CYCLES: {gone}"


def test_cycles_are_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_imports_inside_functions_count_and_type_checking_ones_do_not():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import faceshield.engine.errors\n"
        "else:\n    from ..engine import config\n"
        "def f():\n    from faceshield.engine.metrics import psnr\n"
        "class C:\n    def g(self):\n        import faceshield.engine.nothing_such\n"
    )
    module = Module("faceshield.service.example", Path("example.py"), False, tree)
    assert imports(module) == {"faceshield.engine.config", "faceshield.engine.metrics", "faceshield.engine"}


def test_modules_stay_readable_in_size():
    sizes = {name: m.lines for name, m in MODULES.items() if not name.startswith(GENERATED)}
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    unlisted = {name: n for name, n in over.items() if name not in OVER_MAX_LINES}
    assert not unlisted, f"modules over {MAX_LINES} lines (split them): " + ", ".join(
        f"{name} ({n})" for name, n in sorted(unlisted.items())
    )
    stale = sorted(name for name in OVER_MAX_LINES if sizes.get(name, 0) <= MAX_LINES)
    assert not stale, f"no longer over {MAX_LINES} lines (or gone): drop from OVER_MAX_LINES: {', '.join(stale)}"


def _imported_roots(module: Module, *, module_level_only: bool) -> set[str]:
    nodes = (
        [n for n in module.tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        if module_level_only
        else _import_nodes([module.tree])
    )
    roots = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_engine_never_imports_grpc():
    offenders = [
        name
        for name, m in MODULES.items()
        if name.startswith("faceshield.engine")
        and any(root.startswith("grpc") for root in _imported_roots(m, module_level_only=False))
    ]
    assert not offenders, f"engine modules importing grpc: {offenders}"


def test_service_does_no_tensor_math():
    """The servicer maps messages to engine calls: torch stays in the engine (a module-level
    import there would be tensor math, or at least torch at start-up)."""
    offenders = [
        name
        for name, m in MODULES.items()
        if name.startswith("faceshield.service") and "torch" in _imported_roots(m, module_level_only=True)
    ]
    assert not offenders, f"service modules importing torch at module level: {offenders}"


@pytest.mark.parametrize("package", ["faceshield.engine", "faceshield.client"])
def test_public_api_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__, f"{package} has an empty __all__"
    assert len(set(module.__all__)) == len(module.__all__), f"{package}.__all__ lists a name twice"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"
