"""The suite a bench command names: built in, cached, or fetched from the controller.

A suite is pinned by sha256: a built-in suite of another version, or a download
whose bytes do not hash to the command's sha256, is refused, never used.
Downloaded suites are cached by sha256 so a device benchmarks offline after.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from shared.messages import SuiteSource
from shared.suites.builtin import BUILTIN, DEFAULT_SUITE, load_builtin
from shared.suites.suite import Suite, SuiteError, parse_suite


class SuiteUnavailable(RuntimeError):
    """The named suite cannot be had at the named sha256."""


def load_suite(
    source: SuiteSource | None, *, cache_dir: Path, download: Callable[[str], bytes]
) -> Suite:
    """The suite ``source`` names (None: the built-in default), verified by sha256."""
    if source is None:
        return load_builtin(DEFAULT_SUITE)
    if source.url is None:
        return _builtin(source)
    cached = cache_dir / f"{source.sha256}.jsonl"
    if cached.is_file():
        data = cached.read_bytes()
    else:
        data = download(source.url)
    actual = hashlib.sha256(data).hexdigest()
    if actual != source.sha256:
        raise SuiteUnavailable(
            f"suite {source.suite_id}: its bytes hash to {actual[:12]}, "
            f"the command names {source.sha256[:12]}"
        )
    try:
        suite = parse_suite(data, name=source.suite_id)
    except SuiteError as exc:
        raise SuiteUnavailable(str(exc)) from None
    if not cached.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        partial.write_bytes(data)
        os.replace(partial, cached)
    return suite


def _builtin(source: SuiteSource) -> Suite:
    if source.suite_id not in BUILTIN:
        raise SuiteUnavailable(f"no built-in suite {source.suite_id!r} and no url to fetch it")
    suite = load_builtin(source.suite_id)
    if suite.sha256 != source.sha256:
        raise SuiteUnavailable(
            f"built-in suite {source.suite_id} here is {suite.sha256[:12]}, "
            f"the command wants {source.sha256[:12]} (another edgefleet version)"
        )
    return suite
