"""Imports run one way: a package never imports one above it, and no module imports itself back.

Every import counts: module level, inside functions, under ``TYPE_CHECKING``, and ``importlib`` calls
with a literal name. A function-local import of an alignkit module must say why on its line or the
line above (the only accepted reason is start-up time: the module it sits in is imported by something
that should not pay for the one it imports).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"

# Lowest first. A module may import its own package and anything in a lower layer.
LAYERS: list[tuple[str, ...]] = [
    ("alignkit", "alignkit.errors", "alignkit.io", "alignkit.result", "alignkit.threads"),
    ("alignkit.config",),
    ("alignkit.data",),
    ("alignkit.losses",),  # pure functions of tensors: models' per-token log-probs use their math
    ("alignkit.models",),
    # Retrieval and guardrails know no model API: chat, the server and the probes call them around generation.
    ("alignkit.retrieval", "alignkit.guard"),
    ("alignkit.generation",),
    ("alignkit.training",),
    ("alignkit.rewards",),
    ("alignkit.evaluation",),
    ("alignkit.synth",),
    ("alignkit.recipes",),
    ("alignkit.serve",),
    ("alignkit.commands",),
    ("alignkit.pipeline",),
    ("alignkit.cli",),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the unit it belongs to): a package of the layer list, or a top-level module."""
    best: tuple[int, str] | None = None
    for index, units in enumerate(LAYERS):
        for unit in units:
            if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best[1])):
                best = (index, unit)
    assert best is not None and best[1] != "alignkit" or module == "alignkit", f"{module}: not in LAYERS"
    return best


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _existing(name: str, modules: set[str]) -> str | None:
    """The module ``name`` refers to: itself, or its parent when ``name`` is ``module.attribute``."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_edges() -> list[tuple[str, str, int, bool, Path]]:
    """(importer, imported, line, function-local, file) for every alignkit import in src/."""
    files = {module_name(path): path for path in SRC.rglob("*.py")}
    modules = set(files)
    edges = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        local_lines = {
            node.lineno
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Import | ast.ImportFrom)
        }
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", node)
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "import_module" and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                targets = [node.args[0].value]
            for target in targets:
                if target.split(".")[0] != "alignkit":
                    continue
                imported = _existing(target, modules)
                if imported is not None and imported != module:
                    edges.append((module, imported, node.lineno, node.lineno in local_lines, path))
    return edges


def test_every_module_is_in_a_layer() -> None:
    unplaced = []
    for path in SRC.rglob("*.py"):
        try:
            layer_of(module_name(path))
        except AssertionError:
            unplaced.append(module_name(path))
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"


def test_imports_run_one_way() -> None:
    against = []
    for importer, imported, line, _, path in import_edges():
        (low, unit), (high, other) = layer_of(imported), layer_of(importer)
        if low > high:
            against.append(f"{path.relative_to(SRC)}:{line}: {importer} imports {imported} ({other} < {unit})")
    assert not against, "imports against the layer order:\n" + "\n".join(sorted(against))


def test_no_module_imports_itself_back() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, imported, *_ in import_edges():
        graph[importer].add(imported)
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph[node]):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_function_local_imports_say_why() -> None:
    silent = []
    for importer, imported, line, local, path in import_edges():
        if not local:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        said = "start-up" in lines[line - 1] or (line >= 2 and "start-up" in lines[line - 2])
        if not said:
            silent.append(f"{path.relative_to(SRC)}:{line}: {importer} imports {imported} inside a function")
    assert not silent, "function-local imports without a start-up reason:\n" + "\n".join(sorted(silent))


def test_the_checker_sees_local_and_importlib_edges() -> None:
    """The walk itself: a function-local import and an importlib call are edges too."""
    edges = {(a, b, local) for a, b, _, local, _ in import_edges()}
    assert ("alignkit.pipeline", "alignkit.commands", False) in edges
    assert any(a == "alignkit.commands" and b == "alignkit.config.recipes" for a, b, _ in edges)
    assert layer_of("alignkit.recipes.sft") > layer_of("alignkit.losses.sft")
    assert layer_of("alignkit.io") == (0, "alignkit.io")
