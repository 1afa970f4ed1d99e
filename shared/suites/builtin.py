"""The suites shipped in the package, by name."""

from __future__ import annotations

import hashlib
from importlib import resources

from shared.messages import SuiteSource
from shared.suites.suite import Suite, parse_suite

BUILTIN = ("nine-categories", "gsm8k-sample", "everyday-choice")
"""Judged questions in the paper's nine categories; exact GSM8K problems; our own choices."""
DEFAULT_SUITE = "nine-categories"


def builtin_bytes(name: str) -> bytes:
    """The exact bytes of a built-in suite (its sha256 identifies it)."""
    if name not in BUILTIN:
        raise KeyError(f"no built-in suite {name!r}; built in: {', '.join(BUILTIN)}")
    return (resources.files("shared.suites") / "data" / f"{name}.jsonl").read_bytes()


def load_builtin(name: str = DEFAULT_SUITE) -> Suite:
    """A built-in suite, parsed."""
    return parse_suite(builtin_bytes(name), name=name, source=f"built-in suite {name}")


def builtin_source(name: str = DEFAULT_SUITE) -> SuiteSource:
    """A bench command's reference to a built-in suite at this version (no download)."""
    return SuiteSource(suite_id=name, sha256=hashlib.sha256(builtin_bytes(name)).hexdigest())
