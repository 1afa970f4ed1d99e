"""agent -> shared <- controller: neither side imports the other, shared imports neither.

``demo`` drives both as processes over HTTP, so it imports neither either.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
FORBIDDEN = {
    "agent": {"controller"},
    "controller": {"agent"},
    "shared": {"agent", "controller"},
    "demo": {"agent", "controller"},
}
SHARED_ALLOWED_THIRD_PARTY = {"pydantic", "yaml", "gguf", "typer"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package: str) -> None:
    offenders = {
        f"{path.relative_to(REPO)} imports {sorted(_imported_roots(path) & FORBIDDEN[package])}"
        for path in (REPO / package).rglob("*.py")
        if _imported_roots(path) & FORBIDDEN[package]
    }
    assert not offenders


def test_shared_uses_only_small_pure_libraries() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    for path in (REPO / "shared").rglob("*.py"):
        third_party = _imported_roots(path) - stdlib - {"shared", "__future__"}
        assert third_party <= SHARED_ALLOWED_THIRD_PARTY, f"{path.name}: {third_party}"
