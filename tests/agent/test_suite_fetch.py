"""A bench command's suite: built in or fetched once, always pinned by sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.bench.suite_fetch import SuiteUnavailable, load_suite
from shared.messages import SuiteSource
from shared.suites.builtin import builtin_bytes, builtin_source

DATA = builtin_bytes("everyday-choice")
SHA = hashlib.sha256(DATA).hexdigest()


def _no_network(url: str) -> bytes:
    raise AssertionError(f"no download expected, got {url}")


def test_no_suite_means_the_builtin_nine_categories(tmp_path: Path) -> None:
    suite = load_suite(None, cache_dir=tmp_path, download=_no_network)
    assert suite.name == "nine-categories" and len(suite.items) == 36


def test_a_builtin_suite_is_used_only_at_the_commands_sha256(tmp_path: Path) -> None:
    source = builtin_source("gsm8k-sample")
    assert load_suite(source, cache_dir=tmp_path, download=_no_network).sha256 == source.sha256
    other = SuiteSource(suite_id="gsm8k-sample", sha256="0" * 64)
    with pytest.raises(SuiteUnavailable, match="another edgefleet version"):
        load_suite(other, cache_dir=tmp_path, download=_no_network)


def test_a_fetched_suite_is_verified_cached_and_then_used_offline(tmp_path: Path) -> None:
    source = SuiteSource(suite_id="clinic", sha256=SHA, url="/api/v1/suites/clinic/file")
    fetched: list[str] = []

    def download(url: str) -> bytes:
        fetched.append(url)
        return DATA

    suite = load_suite(source, cache_dir=tmp_path, download=download)
    assert (suite.sha256, len(suite.items), fetched) == (SHA, 108, [source.url])
    again = load_suite(source, cache_dir=tmp_path, download=_no_network)
    assert again.sha256 == SHA and (tmp_path / f"{SHA}.jsonl").read_bytes() == DATA


def test_bytes_that_do_not_hash_to_the_commands_sha256_are_refused_and_not_cached(
    tmp_path: Path,
) -> None:
    source = SuiteSource(suite_id="clinic", sha256=SHA, url="/x")
    with pytest.raises(SuiteUnavailable, match="hash to"):
        load_suite(source, cache_dir=tmp_path, download=lambda url: DATA + b"\n")
    assert list(tmp_path.iterdir()) == []
