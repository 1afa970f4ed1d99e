"""agent -> shared <- controller: neither side imports the other, shared imports neither.

``controller.demo`` drives the controller and the agents as processes over HTTP,
so it imports neither the agent nor the rest of the controller. The planner's
pure core (``controller.planner``) imports nothing of the controller outside
itself and no database library; its shell is ``controller.plans``. No package
has an import cycle, lazy imports included: a cycle means two modules are one
concern, or one of them holds something that belongs in a third.
"""

import ast
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
FORBIDDEN = {
    "agent": {"controller"},
    "controller": {"agent"},
    "shared": {"agent", "controller"},
    "controller/demo": {"agent"},
}
# numpy: bootstrap intervals over items for every (model, class) the planner scores,
# vectorised (pure Python took 0.27 s per model); every part of edgefleet already needs it.
SHARED_ALLOWED_THIRD_PARTY = {"pydantic", "pydantic_settings", "yaml", "gguf", "typer", "numpy"}
DATABASE_LIBRARIES = {"sqlmodel", "sqlalchemy", "alembic"}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_nodes(path: Path) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in _import_nodes(path):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def _imported_targets(path: Path, root: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` imports; ``from pkg import mod`` counts as ``pkg.mod``."""
    package = _module_name(path if path.name == "__init__.py" else path.parent, root)
    targets = set()
    for node in _import_nodes(path):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            child = f"{base}.{alias.name}"
            targets.add(child if child in known else base)
    return targets & known


def _cycle(package: str, root: Path = REPO) -> list[str]:
    """One import cycle among ``package``'s modules (first module repeated at the end), or []."""
    paths = {_module_name(p, root): p for p in (root / package).rglob("*.py")}
    known = set(paths)
    graph = {m: _imported_targets(p, root, known) - {m} for m, p in paths.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return []


def _imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in _imported_modules(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package: str) -> None:
    offenders = {
        f"{path.relative_to(REPO)} imports {sorted(_imported_roots(path) & FORBIDDEN[package])}"
        for path in (REPO / package).rglob("*.py")
        if _imported_roots(path) & FORBIDDEN[package]
    }
    assert not offenders


def test_demo_reaches_the_controller_only_as_a_process() -> None:
    offenders = {
        f"{path.relative_to(REPO)} imports {module}"
        for path in (REPO / "controller" / "demo").rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] == "controller" and not module.startswith("controller.demo")
    }
    assert not offenders


def test_shared_uses_only_small_pure_libraries() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    for path in (REPO / "shared").rglob("*.py"):
        third_party = _imported_roots(path) - stdlib - {"shared", "__future__"}
        assert third_party <= SHARED_ALLOWED_THIRD_PARTY, f"{path.name}: {third_party}"


def test_the_planner_core_imports_the_controller_only_within_itself() -> None:
    offenders = {
        f"{path.relative_to(REPO)} imports {module}"
        for path in (REPO / "controller" / "planner").rglob("*.py")
        for module in _imported_modules(path)
        if (module.split(".")[0] == "controller" and not module.startswith("controller.planner"))
        or module.split(".")[0] in DATABASE_LIBRARIES
    }
    assert not offenders


@pytest.mark.parametrize("package", ["agent", "controller", "shared"])
def test_no_import_cycles(package: str) -> None:
    assert _cycle(package) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    """The check itself: a two-module cycle through a relative import is found."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    cycle = _cycle("pkg", tmp_path)
    assert sorted(cycle) == ["pkg.a", "pkg.a", "pkg.b"] and cycle[0] == cycle[-1]
