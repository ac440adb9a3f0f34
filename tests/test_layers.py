"""The import graph of ``robustbench_med``: no cycle, and no module imports a layer above its own.

Every ``import robustbench_med...`` and ``from robustbench_med... import`` is read with ``ast``,
at module level and inside functions alike (a lazy import is still a dependency). A module's layer
is its first component under ``robustbench_med`` (``robustbench_med.models.zoo`` -> ``models``), so a
package may grow modules without this file changing. The README's "Layout" section states the
same order.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "robustbench_med"

# Lowest first; a module may import its own layer and the layers below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("<root>", "errors", "registry", "events", "versions", "randomness", "device", "store",
     "factory_options", "batchnorm_settle"),
    ("data",),
    ("models",),
    ("attacks",),
    ("evaluation",),
    ("training",),
    ("defenses",),
    ("workflow", "catalog", "model_request"),
    ("pipeline",),
    ("api",),
    ("report",),
    ("grid",),
    ("cli", "__main__"),
)
# ``robustbench_med/__init__.py`` imports nothing at module level; its ``__getattr__`` hands out the
# API lazily, so ``import robustbench_med`` stays free of torch. That one lazy edge is the facade
# over every layer, not a dependency of the package's modules on the API.
FACADE = ("<root>", "api")
# The registry is the plugin locator: on first lookup it imports each built-in catalog (explicitly,
# in one function per kind), whose modules then register into it. Those four lazy edges are the
# only ones allowed to point up from the registry; any other one fails below.
LOCATOR = {("robustbench_med.registry", f"robustbench_med.{kind}.catalog")
           for kind in ("data", "models", "defenses", "attacks")}


def module_names() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (a package by its ``__init__``)."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "robustbench_med":
            for alias in node.names:  # `from pkg import module` imports the module itself
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "robustbench_med")
        assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path}: relative import"
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, without the facade's and the locator's lazy edges."""
    modules = module_names()
    edges = {name: {t for t in imports_of(path, modules) if t != name} for name, path in modules.items()}
    edges["robustbench_med"] = {t for t in edges["robustbench_med"] if layer_of(t) != FACADE[1]}
    edges["robustbench_med.registry"] -= {target for _, target in LOCATOR}
    return edges


RANK = {layer: rank for rank, names in enumerate(LAYERS) for layer in names}


def test_every_module_has_a_declared_layer():
    assert sorted({layer_of(m) for m in module_names()} - set(RANK)) == []


def test_no_module_imports_a_layer_above_its_own():
    upward = sorted(f"{m} -> {t} ({layer_of(m)} imports {layer_of(t)}, a layer above it)"
                    for m, targets in graph().items() for t in targets
                    if RANK[layer_of(t)] > RANK[layer_of(m)])
    assert upward == []


def test_the_registry_finds_the_built_ins_by_explicit_imports_only():
    """No module named in a string (``importlib.import_module``): the locator edges are real imports."""
    modules = module_names()
    source = modules["robustbench_med.registry"].read_text(encoding="utf-8")
    assert "import_module" not in source and "__import__" not in source
    assert {("robustbench_med.registry", t) for t in imports_of(modules["robustbench_med.registry"], modules)
            if layer_of(t) != "errors"} == LOCATOR


def test_the_import_graph_has_no_cycle():
    edges = graph()
    state: dict[str, int] = defaultdict(int)  # 0 unseen, 1 on the current path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:  # depth first; path: the modules above node
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state[nxt] == 1:
                cycles.append(" -> ".join([*path[path.index(nxt):], node, nxt]))  # nxt is on the path
            elif state[nxt] == 0:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in sorted(edges):
        if state[module] == 0:
            visit(module, [])
    assert cycles == []


@pytest.mark.parametrize("source, expected", [
    ("from robustbench_med.models import zoo\n", {"robustbench_med.models.zoo"}),
    ("def f():\n    from robustbench_med.grid.plan import Cell\n", {"robustbench_med.grid.plan"}),
    ("import robustbench_med.data.loading as loading\n", {"robustbench_med.data.loading"}),
    ("from robustbench_med.models import build_model\n", {"robustbench_med.models"}),
])
def test_imports_are_read_at_any_depth(tmp_path, source, expected):
    """The reader this file relies on: it must see a lazy import as well as a top-level one."""
    path = tmp_path / "m.py"
    path.write_text(source)
    assert imports_of(path, module_names()) == expected
