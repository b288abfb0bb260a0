"""The packages form one-way layers: no package imports a package above it or beside it.

Every ``import`` in every module is read with ``ast`` (function-level imports included, since
those are how a lower package would sneak an upward dependency past import time), and the
top-level package it names must sit on a lower floor than the importer's. With a strict order
there can be no circular import between packages either.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. Packages on the same floor must not import each other.
FLOORS: tuple[frozenset[str], ...] = (
    frozenset({"core"}),  # errors, settings, vocabulary, types: imports nothing
    frozenset({"db", "synth_backend"}),  # the schema | volumes in, volumes out (no database)
    frozenset({"catalog"}),  # every database write about volumes and jobs
    frozenset({"studies"}),  # specs, selection, blinding, accounts, answers
    frozenset({"evaluation"}),  # metrics, figures, reports over catalog and studies
    frozenset({"app"}),  # the Streamlit shell
    frozenset({"turingct"}),  # the CLI shell
)
FLOOR = {package: level for level, packages in enumerate(FLOORS) for package in packages}

# Known debt, (importing module, imported package): each must disappear, never grow; a paid-off
# entry must leave the set, so it cannot silently come back. None is owed now.
KNOWN_DEBT: frozenset[tuple[str, str]] = frozenset()


def _project_packages() -> set[str]:
    return {p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests"}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (relative imports stay inside)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importing module, imported top-level package) -> imported names, across packages."""
    edges: dict[tuple[str, str], list[str]] = {}
    for package in sorted(FLOOR):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
                ".__init__"
            )
            for name in _imports(path):
                target = name.split(".")[0]
                if target in FLOOR and target != package:
                    edges.setdefault((module, target), []).append(name)
    return edges


def test_every_package_has_a_floor():
    assert _project_packages() <= set(FLOOR), (
        f"place {sorted(_project_packages() - set(FLOOR))} in FLOORS of tests/test_layers.py"
    )


def test_no_package_imports_upward_or_sideways():
    edges = _edges()
    violations = sorted(
        f"{module} imports {', '.join(sorted(names))} "
        f"({module.split('.')[0]} is on floor {FLOOR[module.split('.')[0]]}, "
        f"{target} on floor {FLOOR[target]})"
        for (module, target), names in edges.items()
        if FLOOR[target] >= FLOOR[module.split(".")[0]] and (module, target) not in KNOWN_DEBT
    )
    assert not violations, "upward or sideways imports:\n" + "\n".join(violations)
    paid = sorted(f"{m} -> {t}" for m, t in KNOWN_DEBT if (m, t) not in edges)
    assert not paid, f"remove from KNOWN_DEBT (no longer imported): {paid}"


def test_ground_floor_imports_only_the_standard_library_and_numpy():
    allowed = {
        "__future__",
        "enum",
        "functools",
        "importlib",
        "os",
        "pathlib",
        "subprocess",
        "typing",
        "numpy",
    }
    for path in (ROOT / "core").rglob("*.py"):
        assert {name.split(".")[0] for name in _imports(path)} <= allowed, path


def test_the_walk_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from db.models import Study\n    import app.state\n")
    assert _imports(module) == {"db.models", "app.state"}


def _module_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (anywhere in the file). ``from pkg
    import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``."""
    paths = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for package in FLOOR
        for p in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in paths)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in paths:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in paths else node.module)
        graph[module] = deps - {module}
    return graph


def test_no_circular_import_between_modules():
    """Inside a package too: two modules that need each other (even through a function-level
    import) are one module, or share a third below both."""
    from graphlib import CycleError, TopologicalSorter

    try:
        TopologicalSorter(_module_graph()).prepare()
    except CycleError as exc:
        raise AssertionError(f"circular import: {' -> '.join(exc.args[1])}") from None
