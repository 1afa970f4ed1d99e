"""The ``fleet`` fixture: ``controller run`` with the end-to-end device classes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories.profiles import write_profiles
from tests.support.fleet import Fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A running controller (no agents yet); every process it starts is stopped afterwards."""
    classes = tmp_path / "classes"
    write_profiles(classes)
    with Fleet(tmp_path, classes) as running:
        yield running
