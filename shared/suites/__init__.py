"""Evaluation suites as data: judged, exact and choice items in versioned JSON-lines files."""
