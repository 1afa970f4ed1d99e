"""agent -> shared <- controller: neither side imports the other, shared imports neither.

``controller.demo`` drives the controller and the agents as processes over HTTP,
so it imports neither the agent nor the rest of the controller.
"""

import ast
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
SHARED_ALLOWED_THIRD_PARTY = {"pydantic", "yaml", "gguf", "typer", "numpy"}


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


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
