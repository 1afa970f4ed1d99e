"""Config errors that name the key and the problem, never the value (it may be a secret).

pydantic's own message repeats each bad input, and a YAML parser's repeats the
lines around the mistake; both would print a password or token that sits there.
"""

from __future__ import annotations

import yaml
from pydantic import ValidationError


def describe_validation_error(exc: ValidationError) -> str:
    """``key: problem; ...`` for every error, without the input values."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    )


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """Where the YAML is broken and why, without quoting the document."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    if mark is None:
        return f"not valid YAML ({problem})"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1} ({problem})"
