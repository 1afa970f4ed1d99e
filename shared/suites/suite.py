"""A suite: a versioned JSON-lines file of items, identified by the sha256 of its bytes.

An optional first line ``{"suite": NAME, "version": V, "description": ...}``
names the suite; without it the caller's name is used. Every other line is an
item (see ``items``). FastChat's ``question.jsonl`` lines (``question_id``,
``turns``, no ``type``) load as judged items: the first turn is the question.
Parsing is pure (bytes in, a suite or one error per bad line out).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shared.suites.items import ChoiceItem, ExactItem, JudgedItem, SuiteItem

MAX_SUITE_BYTES = 5_000_000
MAX_ITEMS = 5000
MAX_REPORTED_ERRORS = 50
_AnyItem = JudgedItem | ExactItem | ChoiceItem
_ITEM = TypeAdapter[_AnyItem](SuiteItem)


class SuiteError(ValueError):
    """A suite file that cannot be used; ``errors`` holds one message per bad line."""

    def __init__(self, source: str, errors: Sequence[str]) -> None:
        self.source = source
        self.errors = list(errors)
        shown = self.errors[:MAX_REPORTED_ERRORS]
        more = len(self.errors) - len(shown)
        tail = [f"... and {more} more bad lines"] if more > 0 else []
        super().__init__("\n".join(f"{source}: {e}" for e in [*shown, *tail]))


@dataclass(frozen=True)
class Suite:
    """A parsed suite; ``sha256`` of the exact bytes it came from identifies this version."""

    name: str
    version: str
    sha256: str
    items: tuple[_AnyItem, ...]
    description: str = ""

    def counts(self) -> dict[str, int]:
        """How many items of each type."""
        return dict(Counter(item.type for item in self.items))

    def filtered(
        self,
        categories: Sequence[str],
        per_category: int | None = None,
        max_items: int | None = None,
    ) -> Suite:
        """The items of some categories (all when empty), at most ``per_category`` each."""
        seen: Counter[str] = Counter()
        kept = []
        for item in self.items:
            if categories and item.category not in categories:
                continue
            seen[item.category] += 1
            if per_category is None or seen[item.category] <= per_category:
                kept.append(item)
        kept = kept[:max_items] if max_items is not None else kept
        return Suite(self.name, self.version, self.sha256, tuple(kept), self.description)


def parse_suite(data: bytes, *, name: str, source: str | None = None) -> Suite:
    """Parse and validate a suite file's bytes; raise ``SuiteError`` listing every bad line."""
    where = source or name
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteError(where, [f"{len(data)} bytes; a suite holds at most {MAX_SUITE_BYTES}"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(where, [f"not UTF-8 (byte {exc.start})"]) from None
    header, items, errors = _parse_lines(text)
    if not items and not errors:
        errors.append("no items")
    if len(items) > MAX_ITEMS:
        errors.append(f"{len(items)} items; a suite holds at most {MAX_ITEMS}")
    if errors:
        raise SuiteError(where, errors)
    return Suite(
        name=str(header.get("suite", name)),
        version=str(header.get("version", "1")),
        sha256=hashlib.sha256(data).hexdigest(),
        items=tuple(items),
        description=str(header.get("description", "")),
    )


def _parse_lines(text: str) -> tuple[dict[str, Any], list[_AnyItem], list[str]]:
    """The header, the good items, and one error per bad line."""
    header: dict[str, Any] = {}
    items: list[_AnyItem] = []
    errors: list[str] = []
    ids: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = _json_object(line)
            if not items and not header and "suite" in raw:
                header = _header(raw)
                continue
            item = _ITEM.validate_python(_from_fastchat(raw))
        except (ValueError, ValidationError) as exc:
            errors.append(f"line {number}: {_message(exc)}")
            continue
        if item.id in ids:
            errors.append(f"line {number}: id {item.id!r} repeats line {ids[item.id]}")
            continue
        ids[item.id] = number
        items.append(item)
    return header, items, errors


def _json_object(line: str) -> dict[str, Any]:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    return raw


def _header(raw: dict[str, Any]) -> dict[str, Any]:
    unknown = set(raw) - {"suite", "version", "description", "licence", "source"}
    if unknown:
        raise ValueError(f"suite header: unknown keys {sorted(unknown)}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", str(raw["suite"])):
        raise ValueError("suite header: 'suite' must be a name of letters, digits, . _ -")
    return raw


def _from_fastchat(raw: dict[str, Any]) -> dict[str, Any]:
    """FastChat's question.jsonl line as a judged item (first turn, first reference)."""
    if "type" in raw or "question_id" not in raw:
        return raw
    turns = raw.get("turns")
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], str):
        raise ValueError("turns: must be a non-empty list of strings")
    reference = raw.get("reference")
    if isinstance(reference, list):
        reference = reference[0] if reference else None
    category = re.sub(r"[^a-z0-9_-]+", "-", str(raw.get("category", "generic")).lower())
    return {
        "id": str(raw["question_id"]),
        "type": "judged",
        "category": category.strip("-_")[:40] or "generic",
        "question": turns[0],
        "reference": reference or None,
    }


def _message(exc: ValueError | ValidationError) -> str:
    """The first problem, named by its field: one clear error per line."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    first = exc.errors(include_url=False)[0]
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return "type: must be one of 'judged', 'exact', 'choice'"
    path = ".".join(str(p) for p in first["loc"] if p not in ("judged", "exact", "choice"))
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}" if path else message
